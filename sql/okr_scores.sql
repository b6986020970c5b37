-- one row per review × key result of a quarter started by the review: its value and score as the review scored it (kaizen.goals.scoring)
create table if not exists okr_scores (
    review_key text not null,           -- the review that scored it (raw_okrs.review_key)
    sheet_row integer not null,         -- raw_okrs.sheet_row
    quarter text not null,              -- calendar quarter of the key result, e.g. 2026-Q4
    objective text not null,            -- the objective as written (untrusted text)
    key_result text not null,           -- the key result as written (untrusted text)
    owner text not null,                -- who owns the key result (untrusted text)
    kind text not null,                 -- kpi (scored from kpi_values) or manual
    kpi_id text,                        -- the KPI of a KPI-linked key result
    better text,                        -- higher or lower: the catalog's for a KPI, baseline → target for a manual value; null for a manual score
    baseline double precision,          -- as entered (null: met / not met)
    target double precision,            -- as entered
    value double precision,             -- the quarter's kpi_values value (KPI-linked) or the manual value; null: no value
    value_status text,                  -- KPI-linked: the kpi_values status (missing: no row yet); manual: manual
    is_complete boolean,                -- KPI-linked: the quarter's kpi_values row is complete; null for manual
    score double precision,             -- 0.0 to 1.0 (0.7 = on track); null: not scored (no value)
    computed_at timestamptz not null,
    run_id text,
    primary key (review_key, sheet_row)
);
