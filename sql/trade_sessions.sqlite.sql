-- SQLite: triggers run per row, and a sum per row would cost a bulk load dearly, so a
-- statement on raw_trades, whoever runs it, only marks the days it touched stale; they
-- are summed again (kaizen.warehouse.sync_trade_sessions) before trade_sessions is read
-- and at the end of each trades load. Statements are separated by a line "/".
create table if not exists trade_sessions_stale (trading_day date primary key) without rowid
/
create trigger if not exists trade_sessions_after_insert after insert on raw_trades
begin
    insert or ignore into trade_sessions_stale (trading_day) values (new.trading_day);
end
/
create trigger if not exists trade_sessions_after_update after update of trading_day, net_pnl_inr on raw_trades
begin
    insert or ignore into trade_sessions_stale (trading_day) values (old.trading_day);
    insert or ignore into trade_sessions_stale (trading_day) values (new.trading_day);
end
/
create trigger if not exists trade_sessions_after_delete after delete on raw_trades
begin
    insert or ignore into trade_sessions_stale (trading_day) values (old.trading_day);
end
