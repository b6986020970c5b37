-- one row per order sent to the exchange, keyed by the trading system's order id
create table if not exists raw_orders (
    order_id text primary key,
    trading_day date not null,          -- IST date of submission
    trade_id text,                      -- the closed trade the fill belongs to, if any
    symbol text not null,
    side text not null,                 -- BUY or SELL
    quantity integer not null,
    status text not null,               -- filled, rejected, errored, cancelled, open
    submitted_at timestamptz not null,
    filled_at timestamptz,              -- set exactly when status = filled
    run_id text,
    loaded_at timestamptz not null
);
create index if not exists ix_raw_orders_day on raw_orders (trading_day);
