-- one row per probed minute and probe instance (Prometheus probe_success, step 60 s)
create table if not exists raw_probe_minutes (
    instance text not null,
    ts timestamptz not null,            -- Prometheus sample time, UTC (covers the minute ending at ts)
    is_up integer not null,             -- 1 when the probe succeeded for the whole minute
    run_id text,
    loaded_at timestamptz not null,
    primary key (instance, ts)
);
create index if not exists ix_raw_probe_minutes_ts on raw_probe_minutes (ts);
