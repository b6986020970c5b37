-- one row per month of the Team tab the team keeps by hand in the Sheet, keyed by the month (the tab as last read)
create table if not exists raw_team_months (
    month text primary key,             -- YYYY-MM
    month_start date not null,          -- first day of the month
    team_size integer,                  -- people on the team that month (null: not entered)
    documentation_coverage_pct double precision, -- share of components documented (README, architecture, setup, API), 0–100 (null: not entered)
    tech_talks integer,                 -- tech talks held in the month (null: not entered)
    innovation_day_participants integer, -- team members who took part in the month's innovation day (null: not entered)
    notes text,                         -- free text from the tab (untrusted text)
    sheet_row integer not null,         -- row of the Team tab (1 is the header)
    run_id text,
    loaded_at timestamptz not null
);
