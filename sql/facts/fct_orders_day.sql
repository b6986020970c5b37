-- grain: one row per IST trading day with submitted orders (raw_orders.trading_day, the IST date of submission).
-- Written with the day's slice of raw_orders, in the same transaction (kaizen.warehouse.facts).
-- Counts compose by sum; the execution-time sum is rounded sum + rounding rest, as in
-- fct_trading_day. Percentiles (p95 execution) compose from fct_execution_day.
create table if not exists fct_orders_day (
    trading_day date primary key,             -- IST date of submission
    submitted integer not null,               -- orders sent
    filled integer not null,                  -- orders with status filled
    executions integer not null,              -- filled orders with a fill time
    execution_ms double precision not null,   -- Σ (filled_at − submitted_at) in ms over executions, rounded
    execution_rest_ms double precision not null      -- rounding rest of execution_ms
);
