"""kaizen.sources: the shared load step, the trading source (demo SQLite and live
PostgreSQL transports), every trading validation rule, idempotent re-extraction and
``extract_day`` over a demo directory — on SQLite and PostgreSQL warehouses."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from kaizen.sources import ExtractResult, Reject, SourceError, base, extract_range, trading
from source_wire import (
    DAY,
    ORDER_REASONS,
    ORDERS,
    PREV_DAY,
    TRADE_REASONS,
    TRADES,
    create_pg_trading_tables,
    quarantine,
    rows,
    snapshot,
    trade,
    write_demo_dir,
    write_trading_db,
)


@pytest.fixture
def demo(tmp_path, monkeypatch):
    root = write_demo_dir(tmp_path / "demo")
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(root))
    return root


def by_table(results):
    return {r.table: r for r in results}


# ------------------------------------------------------------------ load step


def test_load_raises_and_writes_nothing_when_counts_disagree(engine):
    row = {"ts": base.parse_ts("2026-11-26T04:00:00Z"), "error_count": 1.0}
    bad = base.TableLoad(
        "errors",
        "raw_error_minutes",
        base.TS_SLICE,
        {"start": base.parse_ts("2026-11-26T00:00:00Z"), "end": base.parse_ts("2026-11-27T00:00:00Z")},
        extracted=3,
        rows=[row],
        rejects=[Reject("errors", "k", "r", {})],
    )
    with pytest.raises(SourceError, match="extracted 3 records but loaded 1 and quarantined 1"):
        base.load(engine, DAY, "run-1", [bad])
    assert rows(engine, "select * from raw_error_minutes") == []
    assert rows(engine, "select * from quarantine") == []


def test_key_loaded_for_another_day_is_quarantined_not_fatal(engine, tmp_path):
    first = [trade("T1", entry="2026-11-25T04:00:00Z", exit="2026-11-25T05:00:00Z")]
    again = [trade("T1")]  # the same id closing on D
    trading.extract(
        PREV_DAY,
        engine,
        "r",
        trading.demo_transport(write_trading_db(tmp_path / "a" / "trading.db", first, []).parent),
    )
    res = by_table(
        trading.extract(
            DAY,
            engine,
            "r",
            trading.demo_transport(write_trading_db(tmp_path / "b" / "trading.db", again, []).parent),
        )
    )
    assert (res["raw_trades"].loaded, res["raw_trades"].quarantined) == (0, 1)
    (q,) = quarantine(engine, "trades")["T1"]
    assert "already loaded in raw_trades for another day" in q["reason"]


# ------------------------------------------------------------------ trading


def test_trading_demo_extract_rows_and_counts(engine, demo):
    res = by_table(trading.extract(DAY, engine, "run-1"))
    assert res["raw_trades"] == ExtractResult("trades", "raw_trades", 9, 2, 7)
    assert res["raw_orders"] == ExtractResult("orders", "raw_orders", 5, 2, 3)
    got = {r["trade_id"]: r for r in rows(engine, "select * from raw_trades")}
    assert set(got) == {"T1", "T2"}
    assert got["T1"]["net_pnl_inr"] == 80.0 and got["T2"]["net_pnl_inr"] == 40.0
    assert got["T2"]["side"] == "SELL" and got["T2"]["quantity"] == 5
    assert str(got["T1"]["trading_day"]) == "2026-11-26"
    assert got["T1"]["run_id"] == "run-1"
    orders = {r["order_id"]: r for r in rows(engine, "select * from raw_orders")}
    assert {k: v["status"] for k, v in orders.items()} == {"O1": "filled", "O2": "rejected"}
    assert str(orders["O2"]["trading_day"]) == "2026-11-26"  # 19:00Z on the 25th is 00:30 IST on D
    assert orders["O2"]["filled_at"] is None


def test_trading_every_rule_quarantines_with_reason_and_payload(engine, demo):
    trading.extract(DAY, engine, "run-1")
    q = quarantine(engine, "trades")
    assert set(q) == set(TRADE_REASONS)
    for key, reason in TRADE_REASONS.items():
        (entry,) = q[key]
        assert reason in entry["reason"], (key, entry["reason"])
        payload = json.loads(entry["payload"])
        assert payload["trade_id"] == key and "net_pnl" in payload  # the raw record as read
        assert entry["run_id"] == "run-1" and str(entry["extract_day"]) == "2026-11-26"
    assert "= 80.00" in q["T6"][0]["reason"]
    q = quarantine(engine, "orders")
    assert set(q) == set(ORDER_REASONS)
    for key, reason in ORDER_REASONS.items():
        assert reason in q[key][0]["reason"], (key, q[key][0]["reason"])
        assert json.loads(q[key][0]["payload"])["order_id"] == key


def test_trading_reextract_is_identical(engine, demo):
    trading.extract(DAY, engine, "run-1")
    trading.extract(PREV_DAY, engine, "run-1")
    first = snapshot(engine)
    trading.extract(DAY, engine, "run-1")
    assert snapshot(engine) == first
    assert len(first["raw_trades"]) == 3  # T1, T2 on D and T9 on D-1


def test_trading_live_transport_postgres_timestamptz(engine, request, monkeypatch):
    """The live trading DB is PostgreSQL with timestamptz columns and statuses as sent."""
    pg_url = request.getfixturevalue("pg_url")
    src = sa.create_engine(pg_url)
    with src.begin() as c:
        create_pg_trading_tables(c)
        c.execute(
            sa.text(
                "insert into trades values (:trade_id, :symbol, :side, :quantity, :entry_time,"
                " :exit_time, :entry_price, :exit_price, :fees, :net_pnl, :strategy, :ab_arm)"
            ),
            TRADES,
        )
        c.execute(
            sa.text(
                "insert into orders values (:order_id, :trade_id, :symbol, :side, :quantity, :status,"
                " :submitted_at, :filled_at, :fill_price)"
            ),
            ORDERS,
        )
    u = sa.engine.make_url(pg_url)
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAIZEN_TRADING_DB",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": u.host,
                "port": u.port,
                "login": u.username,
                "schema": u.database,
            }
        ),
    )
    try:
        res = by_table(trading.extract(DAY, engine, "run-live"))
    finally:
        with src.begin() as c:
            c.exec_driver_sql("drop table trades; drop table orders")
        src.dispose()
    assert res["raw_trades"] == ExtractResult("trades", "raw_trades", 9, 2, 7)
    assert res["raw_orders"] == ExtractResult("orders", "raw_orders", 5, 2, 3)
    assert set(quarantine(engine, "trades")) == set(TRADE_REASONS)


def test_trading_missing_connection_names_it(engine, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_TRADING_DB", raising=False)
    with pytest.raises(LookupError, match="kaizen_trading_db"):
        trading.extract(DAY, engine, "r")


def test_trading_unreachable_db_names_connection(engine, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_TRADING_DB", "postgres://nobody:secret-pw@127.0.0.1:1/trading")
    with pytest.raises(SourceError, match="kaizen_trading_db") as exc:
        trading.extract(DAY, engine, "r")
    assert "secret-pw" not in str(exc.value)


# ------------------------------------------------------------------ all sources


def test_extract_day_runs_all_sources_and_is_idempotent(engine, demo):
    results = extract_range(DAY, DAY, engine, "run-all")
    assert [r.source for r in results] == [
        "trades",
        "orders",
        "probes",
        "latency",
        "errors",
        "deployments",
        "incidents",
        "alerts",
        "log_entries",
        "action_items",
    ]
    for r in results:
        assert r.extracted == r.loaded + r.quarantined
        assert r.as_dict()["table"].startswith("raw_")
    first = snapshot(engine)
    assert sum(len(v) for v in first.values()) > 0
    extract_range(DAY, DAY, engine, "run-all")
    assert snapshot(engine) == first
    n_q = rows(engine, "select count(*) as n from quarantine")[0]["n"]
    assert n_q == sum(r.quarantined for r in results)


def test_holiday_is_not_a_trading_day_for_the_window():
    from kaizen import calendar as cal

    assert not cal.is_trading_day(date(2026, 11, 24))
