-- one row per review × closed improvement × target KPI: the KPI over equal windows before and after the close day (kaizen.goals.impact)
create table if not exists improvement_impacts (
    review_key text not null,           -- the review that measured it (raw_improvements.review_key)
    issue_number integer not null,      -- raw_improvements.issue_number
    kpi_id text not null,               -- a KPI named by the issue's 'Target KPIs:' line
    close_day date not null,            -- IST date the issue was closed (in neither window)
    window_days integer not null,       -- length of each window in days (KAIZEN_IMPACT_WINDOW_DAYS)
    before_first date not null,         -- first IST day of the before window
    before_last date not null,          -- last IST day of the before window (the day before the close day)
    after_first date not null,          -- first IST day of the after window (the day after the close day)
    after_last date not null,           -- last IST day of the after window
    before_value double precision,      -- the KPI recomputed over the before window; null: no value
    after_value double precision,       -- the KPI recomputed over the after window; null: no value
    before_status text,                 -- the before window's KPI status (insufficient_data, no_events, …); null: not measured
    after_status text,                  -- the after window's KPI status; null: not measured
    change double precision,            -- after − before, in the KPI's unit
    change_pct double precision,        -- change ÷ |before| × 100; null when before is 0 or missing
    verdict text not null,              -- improved, worsened, unchanged (within the KPI's neutral band), pending, no data
    note text,                          -- why pending or no data
    computed_at timestamptz not null,
    run_id text,
    primary key (review_key, issue_number, kpi_id)
);
