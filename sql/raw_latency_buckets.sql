-- one row per minute and histogram bucket: increase of the request-latency bucket counter
create table if not exists raw_latency_buckets (
    ts timestamptz not null,            -- Prometheus sample time, UTC (covers the minute ending at ts)
    le text not null,                   -- bucket upper bound in seconds as Prometheus spells it ('0.25', '+Inf')
    le_seconds double precision,        -- the same as a number; null for +Inf
    request_count double precision not null,  -- cumulative (le) count increase in the minute
    run_id text,
    loaded_at timestamptz not null,
    primary key (ts, le)
);
