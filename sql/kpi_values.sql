-- one row per KPI × grain × period
create table if not exists kpi_values (
    kpi_id text not null,
    grain text not null,                -- day, week, month, quarter
    period_start date not null,         -- IST date; for grain day the trading day
    period_end date not null,           -- IST date, inclusive
    value double precision,             -- null when status says there is no value
    numerator double precision,
    denominator double precision,
    sample_size integer,
    target double precision,
    status text not null,               -- on_target, off_target, insufficient_data, no_events, stale
    trend text not null,                -- improving, declining, stable, n/a
    is_complete boolean not null,
    computed_at timestamptz not null,
    run_id text,
    primary key (kpi_id, grain, period_start)
);
create index if not exists ix_kpi_values_period on kpi_values (grain, period_start);
