-- PostgreSQL: what the warehouse derives from the landing tables itself, whoever writes
-- them — trade_sessions (sums) and series_months (a cache) — kept by statement triggers
-- with transition tables: one aggregate per statement, nothing per row.
-- Statements are separated by a line "/".
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
/
-- series_months: drop the cached months a statement touched. Arguments: the series, and
-- 'day' (keyed by trading_day) or 'ts' (keyed by ts, in its IST month: UTC+05:30). The lock pairs
-- with the one kaizen.kpis.series takes before it reads rows to cache: a month is cached
-- from rows no uncommitted statement has changed.
create or replace function kaizen_series_months_forget() returns trigger
language plpgsql as $$
declare
    months date[] := '{}';
begin
    lock table series_months in share row exclusive mode;
    if tg_op = 'TRUNCATE' then
        delete from series_months where kind = tg_argv[0];
        return null;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        if tg_argv[1] = 'day' then
            months := months || array(select distinct date_trunc('month', trading_day)::date from new_rows);
        else
            months := months || array(select distinct date_trunc('month', (ts at time zone 'UTC') + interval '330 minutes')::date from new_rows);
        end if;
    end if;
    if tg_op in ('DELETE', 'UPDATE') then
        if tg_argv[1] = 'day' then
            months := months || array(select distinct date_trunc('month', trading_day)::date from old_rows);
        else
            months := months || array(select distinct date_trunc('month', (ts at time zone 'UTC') + interval '330 minutes')::date from old_rows);
        end if;
    end if;
    delete from series_months where kind = tg_argv[0] and month = any(months);
    return null;
end
$$
/
do $$
declare
    t record;
begin
    for t in select * from (values ('raw_trades', 'trades', 'day'), ('raw_orders', 'orders', 'day'),
                                   ('raw_probe_minutes', 'probes', 'ts'), ('raw_latency_buckets', 'latency', 'ts'),
                                   ('raw_error_minutes', 'errors', 'ts')) as v (tbl, kind, col) loop
        execute format('create or replace trigger series_months_after_insert after insert on %I '
                       'referencing new table as new_rows for each statement '
                       'execute function kaizen_series_months_forget(%L, %L)', t.tbl, t.kind, t.col);
        execute format('create or replace trigger series_months_after_update after update on %I '
                       'referencing old table as old_rows new table as new_rows for each statement '
                       'execute function kaizen_series_months_forget(%L, %L)', t.tbl, t.kind, t.col);
        execute format('create or replace trigger series_months_after_delete after delete on %I '
                       'referencing old table as old_rows for each statement '
                       'execute function kaizen_series_months_forget(%L, %L)', t.tbl, t.kind, t.col);
        execute format('create or replace trigger series_months_after_truncate after truncate on %I '
                       'for each statement execute function kaizen_series_months_forget(%L, %L)',
                       t.tbl, t.kind, t.col);
    end loop;
end
$$
