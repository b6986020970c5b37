-- PostgreSQL: after every statement on raw_trades, whoever runs it, the days it touched
-- are summed again from raw_trades (statement triggers with transition tables: one
-- aggregate per statement, nothing per row). Statements are separated by a line "/".
create or replace function kaizen_trade_sessions_sum(days date[]) returns void
language sql as $$
    delete from trade_sessions where trading_day = any(days);
    insert into trade_sessions (trading_day, trades, net_pnl_inr)
    select trading_day, count(*), sum(net_pnl_inr) from raw_trades
    where trading_day = any(days) group by trading_day;
$$
/
create or replace function kaizen_trade_sessions_sync() returns trigger
language plpgsql as $$
begin
    -- one writer at a time: a concurrent statement on the same days waits here and then
    -- sums (read committed: a new snapshot per statement) with the other's rows committed
    lock table trade_sessions in share row exclusive mode;
    if tg_op = 'TRUNCATE' then
        delete from trade_sessions;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        perform kaizen_trade_sessions_sum(array(select distinct trading_day from new_rows));
    end if;
    if tg_op in ('DELETE', 'UPDATE') then
        perform kaizen_trade_sessions_sum(array(select distinct trading_day from old_rows));
    end if;
    return null;
end
$$
/
create or replace trigger trade_sessions_after_insert after insert on raw_trades
referencing new table as new_rows for each statement execute function kaizen_trade_sessions_sync()
/
create or replace trigger trade_sessions_after_update after update on raw_trades
referencing old table as old_rows new table as new_rows for each statement execute function kaizen_trade_sessions_sync()
/
create or replace trigger trade_sessions_after_delete after delete on raw_trades
referencing old table as old_rows for each statement execute function kaizen_trade_sessions_sync()
/
create or replace trigger trade_sessions_after_truncate after truncate on raw_trades
for each statement execute function kaizen_trade_sessions_sync()
