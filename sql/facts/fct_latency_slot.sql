-- grain: one row per 15-minute UTC slot × histogram bucket bound (le) with latency samples (slot = epoch seconds of raw_latency_buckets.ts // 900).
-- Written with the slice of raw_latency_buckets it comes from, in the same transaction
-- (kaizen.warehouse.facts). Bucket counts are cumulative (Prometheus le buckets), so
-- summing a bound's count over any set of slots and applying histogram_quantile to the
-- sums is exact. Sums are rounded sum + rounding rest, as in fct_trading_day.
create table if not exists fct_latency_slot (
    slot bigint not null,                     -- epoch seconds // 900 of the sample times
    le text not null,                         -- bucket upper bound in seconds as Prometheus spells it ('+Inf' last)
    slot_start timestamptz not null,          -- UTC start of the slot (slot × 900 s)
    le_seconds double precision not null,     -- the bound as a number (Infinity for +Inf), for ordering
    minutes integer not null,                 -- minutes of the slot whose histogram has this bound
    slot_minutes integer not null,            -- minutes of the slot with any histogram (the same on every bound of the slot)
    count double precision not null,          -- Σ cumulative count increases, rounded
    count_rest double precision not null,     -- rounding rest of count
    primary key (slot, le)
);
