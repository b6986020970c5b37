-- one row per minute: increase of the trading API's error counter
create table if not exists raw_error_minutes (
    ts timestamptz primary key,         -- minute start, UTC
    error_count double precision not null,
    run_id text,
    loaded_at timestamptz not null
);
