-- grain: one row per 15-minute UTC slot with error-counter samples (slot = epoch seconds of raw_error_minutes.ts // 900).
-- Written with the slice of raw_error_minutes it comes from, in the same transaction
-- (kaizen.warehouse.facts). The error sum is rounded sum + rounding rest, as in
-- fct_trading_day: sum both exactly for bit-for-bit totals.
create table if not exists fct_error_slot (
    slot bigint primary key,                  -- epoch seconds // 900 of the sample times
    slot_start timestamptz not null,          -- UTC start of the slot (slot × 900 s)
    minutes integer not null,                 -- minutes with an error-counter sample
    errors double precision not null,         -- Σ error count increases, rounded
    errors_rest double precision not null     -- rounding rest of errors
);
