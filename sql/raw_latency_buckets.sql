-- one row per minute: the request-latency histogram's bucket increases in the minute
create table if not exists raw_latency_buckets (
    ts timestamptz primary key,         -- Prometheus sample time, UTC (covers the minute ending at ts)
    bounds text not null,               -- JSON array of the bucket upper bounds in seconds as Prometheus spells le, ascending, '+Inf' last (e.g. ["0.005","0.01","+Inf"])
    counts text not null,               -- JSON array of the cumulative (le) count increases in the minute, aligned with bounds (floats, repr precision)
    request_count double precision,     -- the +Inf bucket's increase: all requests of the minute; null when the minute has no +Inf sample
    run_id text,
    loaded_at timestamptz not null
);
