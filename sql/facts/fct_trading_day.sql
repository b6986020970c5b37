-- grain: one row per NSE trading day with closed trades (raw_trades.trading_day, the IST date the trades closed).
-- Written with the day's slice of raw_trades, in the same transaction (kaizen.warehouse.facts).
-- Counts, extremes and sums compose over any set of days by sum / max / min. A float sum
-- is two columns: the correctly rounded sum and its rounding rest, which together are
-- the exact sum of the trades' values (sum both with an exact summation, e.g. Python's
-- math.fsum, to get bit for bit what summing every trade gives; sum(x) alone is right
-- to about 1e-15 of x).
create table if not exists fct_trading_day (
    trading_day date primary key,             -- IST trading day
    trades integer not null,                  -- closed trades
    wins integer not null,                    -- trades with net P&L > 0
    losses integer not null,                  -- trades with net P&L < 0 (break-even is neither)
    net_pnl_inr double precision not null,    -- Σ net P&L (₹), rounded
    net_pnl_rest_inr double precision not null,      -- rounding rest: net_pnl_inr + this is the exact sum
    gross_profit_inr double precision not null,      -- Σ net P&L of the wins (₹)
    gross_profit_rest_inr double precision not null, -- rounding rest of gross_profit_inr
    gross_loss_inr double precision not null,        -- −Σ net P&L of the losses (₹, positive)
    gross_loss_rest_inr double precision not null,   -- rounding rest of gross_loss_inr
    largest_win_inr double precision,         -- max net P&L of a win; null without wins
    largest_loss_inr double precision         -- min net P&L of a loss; null without losses
);
