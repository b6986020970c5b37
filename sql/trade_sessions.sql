-- one row per trading day with closed trades: its session P&L, summed from raw_trades by the warehouse itself (triggers in triggers.<dialect>.sql), so drawdown and Sharpe read a row per day instead of every trade since the history start
create table if not exists trade_sessions (
    trading_day date primary key,       -- IST trading day
    trades integer not null,            -- closed trades of the day (its rows in raw_trades)
    net_pnl_inr double precision not null -- session P&L: sum of the day's net_pnl_inr (₹)
);
