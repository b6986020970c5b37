-- one row per review × non-blank row of the OKRs tab as the review read it (its snapshot; refused rows are in quarantine, source okrs)
create table if not exists raw_okrs (
    review_key text not null,           -- the review whose snapshot this is: its period key (2026-11, 2026-Q4)
    sheet_row integer not null,         -- the row of the OKRs tab (1 is the header)
    quarter text not null,              -- calendar quarter of the key result, e.g. 2026-Q4
    quarter_start date not null,        -- first IST day of that quarter
    objective text not null,            -- the objective as written (untrusted text)
    key_result text not null,           -- the key result as written (untrusted text)
    owner text not null,                -- who owns the key result (untrusted text)
    kpi_id text,                        -- KPI-linked key result: the KPI scored from kpi_values; null for a manual one
    baseline double precision,          -- value the key result starts from (null: scored met / not met)
    target double precision,            -- value to reach (null only for a manual key result entered as a score)
    manual_value double precision,      -- manual key result: the current value entered by hand
    manual_score double precision,      -- manual key result: the score entered by hand (0.0 to 1.0)
    location text not null,             -- the tab or file read
    read_at timestamptz not null,       -- UTC time the tab was read
    run_id text,
    loaded_at timestamptz not null,
    primary key (review_key, sheet_row)
);
