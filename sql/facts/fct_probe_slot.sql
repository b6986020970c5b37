-- grain: one row per 15-minute UTC slot with probe samples (slot = epoch seconds of raw_probe_minutes.ts // 900).
-- Written with the slice of raw_probe_minutes it comes from, in the same transaction
-- (kaizen.warehouse.facts). Every cut-off Kaizen uses (IST midnight, 09:15, 15:30,
-- 16:00, the review meetings) is a slot edge, as IST is UTC+05:30: the minutes of any
-- window are the sums over its slots. Counts compose by sum.
create table if not exists fct_probe_slot (
    slot bigint primary key,                  -- epoch seconds // 900 of the sample times
    slot_start timestamptz not null,          -- UTC start of the slot (slot × 900 s)
    probed_minutes integer not null,          -- minutes with a probe sample of any instance
    up_minutes integer not null,              -- minutes every probed instance was up
    down_minutes integer not null             -- minutes some instance was down (MTBF)
);
