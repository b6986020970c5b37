-- one row per KPI period and source: how much of the period's window the source has landed
create table if not exists period_coverage (
    grain text not null,                -- day, week, month, quarter
    period_start date not null,         -- first IST date of the period
    source text not null,               -- source_coverage.source
    first_landed timestamptz,           -- UTC first instant of the period's window the source has landed (null: none)
    last_landed timestamptz,            -- UTC end of the last span landed inside the window (null: none)
    missing_from timestamptz,           -- UTC first instant of the window not landed (null: none missing)
    is_covered boolean not null,        -- nothing of the window is missing
    primary key (grain, period_start, source)
);
