-- grain: one row per IST trading day and execution time in whole µs of its filled orders (raw_orders with status filled and a fill time).
-- Written with the day's slice of raw_orders, in the same transaction (kaizen.warehouse.facts).
-- Counts compose by sum: the execution times of any set of days are the union of
-- theirs, so a percentile over any set of days is exact (each time taken `orders` times).
create table if not exists fct_execution_day (
    trading_day date not null,                -- IST date of submission
    execution_us bigint not null,             -- filled_at − submitted_at in whole µs
    orders integer not null,                  -- filled orders of the day with that execution time
    primary key (trading_day, execution_us)
);
