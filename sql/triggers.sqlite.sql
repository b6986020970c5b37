-- SQLite: what the warehouse derives from the landing tables itself, whoever writes them.
-- Triggers run per row here, so they do the least: a write to raw_trades marks its day
-- stale, summed again (kaizen.warehouse.sync_trade_sessions) before trade_sessions is
-- read; a write to a big landing table drops the cached month of series_months it falls
-- in. The pipeline's own bulk loads lift them and do the same once per slice
-- (kaizen.warehouse.bulk_write). Statements are separated by a line "/".
create table if not exists trade_sessions_stale (trading_day date primary key) without rowid
/
create trigger if not exists trade_sessions_after_insert after insert on raw_trades
begin
    insert or ignore into trade_sessions_stale (trading_day) values (new.trading_day);
end
/
create trigger if not exists trade_sessions_after_update after update on raw_trades
begin
    insert or ignore into trade_sessions_stale (trading_day) values (old.trading_day);
    insert or ignore into trade_sessions_stale (trading_day) values (new.trading_day);
end
/
create trigger if not exists trade_sessions_after_delete after delete on raw_trades
begin
    insert or ignore into trade_sessions_stale (trading_day) values (old.trading_day);
end
/
create trigger if not exists series_months_trades_after_insert after insert on raw_trades
begin
    delete from series_months where kind = 'trades' and month = date(new.trading_day, 'start of month');
end
/
create trigger if not exists series_months_trades_after_update after update on raw_trades
begin
    delete from series_months where kind = 'trades' and month = date(old.trading_day, 'start of month');
    delete from series_months where kind = 'trades' and month = date(new.trading_day, 'start of month');
end
/
create trigger if not exists series_months_trades_after_delete after delete on raw_trades
begin
    delete from series_months where kind = 'trades' and month = date(old.trading_day, 'start of month');
end
/
create trigger if not exists series_months_orders_after_insert after insert on raw_orders
begin
    delete from series_months where kind = 'orders' and month = date(new.trading_day, 'start of month');
end
/
create trigger if not exists series_months_orders_after_update after update on raw_orders
begin
    delete from series_months where kind = 'orders' and month = date(old.trading_day, 'start of month');
    delete from series_months where kind = 'orders' and month = date(new.trading_day, 'start of month');
end
/
create trigger if not exists series_months_orders_after_delete after delete on raw_orders
begin
    delete from series_months where kind = 'orders' and month = date(old.trading_day, 'start of month');
end
/
create trigger if not exists series_months_probes_after_insert after insert on raw_probe_minutes
begin
    delete from series_months where kind = 'probes' and month = date(new.ts, '+330 minutes', 'start of month');
end
/
create trigger if not exists series_months_probes_after_update after update on raw_probe_minutes
begin
    delete from series_months where kind = 'probes' and month = date(old.ts, '+330 minutes', 'start of month');
    delete from series_months where kind = 'probes' and month = date(new.ts, '+330 minutes', 'start of month');
end
/
create trigger if not exists series_months_probes_after_delete after delete on raw_probe_minutes
begin
    delete from series_months where kind = 'probes' and month = date(old.ts, '+330 minutes', 'start of month');
end
/
create trigger if not exists series_months_latency_after_insert after insert on raw_latency_buckets
begin
    delete from series_months where kind = 'latency' and month = date(new.ts, '+330 minutes', 'start of month');
end
/
create trigger if not exists series_months_latency_after_update after update on raw_latency_buckets
begin
    delete from series_months where kind = 'latency' and month = date(old.ts, '+330 minutes', 'start of month');
    delete from series_months where kind = 'latency' and month = date(new.ts, '+330 minutes', 'start of month');
end
/
create trigger if not exists series_months_latency_after_delete after delete on raw_latency_buckets
begin
    delete from series_months where kind = 'latency' and month = date(old.ts, '+330 minutes', 'start of month');
end
/
create trigger if not exists series_months_errors_after_insert after insert on raw_error_minutes
begin
    delete from series_months where kind = 'errors' and month = date(new.ts, '+330 minutes', 'start of month');
end
/
create trigger if not exists series_months_errors_after_update after update on raw_error_minutes
begin
    delete from series_months where kind = 'errors' and month = date(old.ts, '+330 minutes', 'start of month');
    delete from series_months where kind = 'errors' and month = date(new.ts, '+330 minutes', 'start of month');
end
/
create trigger if not exists series_months_errors_after_delete after delete on raw_error_minutes
begin
    delete from series_months where kind = 'errors' and month = date(old.ts, '+330 minutes', 'start of month');
end
