"""``trade_sessions``: one row per trading day, kept by the warehouse itself equal to the
sums of ``raw_trades`` whoever writes them (the pipeline's bulk loads, a plain INSERT,
an operator's UPDATE or DELETE, TRUNCATE) — checked against sums computed here from
the rows each test wrote."""

from __future__ import annotations

import math
import threading
import time
from datetime import date

import pandas as pd
import sqlalchemy as sa
from tests.test_kpis_rollup import LOADED, insert, trade

from kaizen import warehouse
from kaizen.kpis import series
from kaizen.sources.base import TableLoad, load

D1, D2, D3 = date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)


def sessions(engine) -> dict[date, tuple[int, float]]:
    """What a reader gets: (trades, session P&L) per day, after the sync readers run."""
    with engine.begin() as c:
        warehouse.sync_trade_sessions(c)
        rows = c.execute(sa.text("select trading_day, trades, net_pnl_inr from trade_sessions")).all()
    return {d if isinstance(d, date) else date.fromisoformat(d): (n, round(p, 2)) for d, n, p in rows}


def expected(trades: dict[str, tuple[date, float]]) -> dict[date, tuple[int, float]]:
    out: dict[date, list[float]] = {}
    for day, pnl in trades.values():
        out.setdefault(day, []).append(pnl)
    return {d: (len(v), round(math.fsum(v), 2)) for d, v in out.items()}


def test_every_kind_of_write_keeps_the_day_sums(engine):
    book = {"A": (D1, 1200.5), "B": (D1, -300.25), "C": (D2, 99.99)}
    insert(engine, "raw_trades", [trade(k, d, p) for k, (d, p) in book.items()])  # executemany / COPY
    assert sessions(engine) == expected(book) == {D1: (2, 900.25), D2: (1, 99.99)}

    with engine.begin() as c:  # what an operator or a test does by hand
        c.execute(sa.text("update raw_trades set net_pnl_inr = 500 where trade_id = 'B'"))
        c.execute(sa.text("update raw_trades set trading_day = :d where trade_id = 'C'"), {"d": warehouse.bind_value(D3)})
        c.execute(sa.text("delete from raw_trades where trade_id = 'A'"))
    book.update(B=(D1, 500.0), C=(D3, 99.99))
    del book["A"]
    assert sessions(engine) == expected(book) == {D1: (1, 500.0), D3: (1, 99.99)}  # D2 emptied: its row is gone

    frame = pd.DataFrame([trade(f"F{i}", D2, 10.01 * i) for i in range(1, 6)])  # the bulk load path
    load(engine, (D2, D2), "run-1", [TableLoad("trades", "raw_trades", "trading_day = :d",
                                               {"d": D2}, len(frame), frame, [], key="trade_id")])
    book.update({f"F{i}": (D2, 10.01 * i) for i in range(1, 6)})
    assert sessions(engine) == expected(book)
    assert sessions(engine)[D2] == (5, 150.15)

    with engine.begin() as c:  # the drawdown's reader sees the same
        assert series._read_sessions(c, D1.toordinal(), D3.toordinal() + 1) == {
            D1: 500.0, D2: 150.15, D3: 99.99}

    with engine.begin() as c:
        c.execute(sa.text("delete from raw_trades"))
    assert sessions(engine) == {}


def test_truncate_empties_it_on_postgres(pg_url):
    eng = sa.create_engine(pg_url)
    try:
        warehouse.apply_ddl(eng)
        with eng.begin() as c:
            c.exec_driver_sql("truncate raw_trades")
        insert(eng, "raw_trades", [trade("T1", D1, 5.0)])
        assert sessions(eng) == {D1: (1, 5.0)}
        with eng.begin() as c:
            c.exec_driver_sql("truncate raw_trades")
        assert sessions(eng) == {}
    finally:
        eng.dispose()


def test_a_warehouse_from_before_it_is_summed_once(engine):
    book = {f"T{i}": ((D1, D2, D3)[i % 3], 17.5 * i - 40) for i in range(30)}
    insert(engine, "raw_trades", [trade(k, d, p) for k, (d, p) in book.items()])
    with engine.begin() as c:  # as an older release left it: no table, no triggers
        if engine.dialect.name == "postgresql":
            c.exec_driver_sql("drop table trade_sessions cascade")
            c.exec_driver_sql("drop function kaizen_trade_sessions_sync() cascade")
        else:
            for t in ("insert", "update", "delete"):
                c.exec_driver_sql(f"drop trigger trade_sessions_after_{t}")
            c.exec_driver_sql("drop table trade_sessions")
            c.exec_driver_sql("drop table trade_sessions_stale")
    warehouse.apply_ddl(engine)
    assert sessions(engine) == expected(book)
    warehouse.apply_ddl(engine)  # idempotent: nothing counted twice
    assert sessions(engine) == expected(book)
    insert(engine, "raw_trades", [trade("NEW", D3, 1.0)])  # and the triggers are back
    book["NEW"] = (D3, 1.0)
    assert sessions(engine) == expected(book)


def test_concurrent_writers_of_one_day_both_count_on_postgres(pg_url):
    """Two transactions writing trades of the same day: the second waits for the first
    and sums with its rows committed, instead of overwriting the day with its own view."""
    eng = sa.create_engine(pg_url)
    try:
        warehouse.apply_ddl(eng)
        with eng.begin() as c:
            c.exec_driver_sql("truncate raw_trades")
        rows = [{**trade(t, D1, p), "run_id": "r", "loaded_at": LOADED} for t, p in (("X", 100.0), ("Y", 23.0))]
        first = eng.connect()
        tx = first.begin()
        warehouse.insert_rows(first, "raw_trades", [rows[0]])  # holds the trade_sessions lock
        done = threading.Event()

        def second():
            with eng.begin() as c:
                warehouse.insert_rows(c, "raw_trades", [rows[1]])
            done.set()

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        assert not done.is_set(), "the second writer should wait for the first"
        tx.commit()
        first.close()
        t.join(10)
        assert done.is_set()
        assert sessions(eng) == {D1: (2, 123.0)}
    finally:
        eng.dispose()


def test_bulk_load_of_many_days_matches_sums(engine):
    n = 2000
    days = [date(2026, 10, 1 + i) for i in range(20)]
    book = {f"T{i}": (days[i % 20], round((i * 7919 % 20001 - 10000) / 100, 2)) for i in range(n)}
    frame = pd.DataFrame([trade(k, d, p) for k, (d, p) in book.items()])
    load(engine, (days[0], days[-1]), "run-1",
         [TableLoad("trades", "raw_trades", "trading_day >= :a and trading_day <= :b",
                    {"a": days[0], "b": days[-1]}, n, frame, [], key="trade_id")])
    assert sessions(engine) == expected(book)
