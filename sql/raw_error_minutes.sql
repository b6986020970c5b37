-- one row per minute: increase of the trading API's error counter
create table if not exists raw_error_minutes (
    ts timestamptz primary key,         -- Prometheus sample time, UTC (covers the minute ending at ts)
    error_count double precision not null,
    run_id text,
    loaded_at timestamptz not null
);
