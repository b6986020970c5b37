-- one row per closed trade (round trip), keyed by the trading system's trade id
create table if not exists raw_trades (
    trade_id text primary key,
    trading_day date not null,          -- IST date on which the trade closed
    symbol text not null,
    side text not null,                 -- entry side: BUY (long) or SELL (short)
    quantity integer not null,
    entry_time timestamptz not null,
    exit_time timestamptz not null,
    entry_price_inr double precision not null,
    exit_price_inr double precision not null,
    fees_inr double precision not null,
    net_pnl_inr double precision not null,
    strategy text not null,
    ab_arm text,                        -- A/B experiment arm tag, null outside experiments
    run_id text,
    loaded_at timestamptz not null
);
-- by day, covering net P&L: the session P&L of the whole history (drawdown, Sharpe)
-- is read from the index alone, so a day's run does not grow with the history
drop index if exists ix_raw_trades_day;
create index if not exists ix_raw_trades_day_pnl on raw_trades (trading_day, net_pnl_inr);
