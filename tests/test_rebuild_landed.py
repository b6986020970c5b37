"""How the range rebuild avoids re-reading what it loaded (kaizen.kpis.series.Landed)
and prepares the next month in a second process (kaizen.sources.worker)."""

from __future__ import annotations

import shutil
from dataclasses import fields
from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa

from conftest import use_demo
from kaizen import calendar as cal
from kaizen import pipeline, sources
from kaizen.kpis import periods, series
from kaizen.kpis.measures import load_data
from kaizen.period import Period, review_window_utc
from kaizen.sources.base import SourceError, observe_loads
from kaizen.sources.worker import Preparer, WorkerDied

FIRST, LAST = date(2026, 9, 21), date(2026, 10, 9)
STAMPS = {"run_id", "loaded_at", "quarantined_at", "computed_at"}


def _conn(dialect, tmp_path, request) -> dict:
    if dialect == "sqlite":
        return {"conn_type": "sqlite", "host": str(tmp_path / "w.db")}
    u = sa.engine.make_url(request.getfixturevalue("pg_url"))
    return {"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username, "schema": u.database}


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "values") and hasattr(a, "prefix"):  # measures._Summed
        return _same(a.values, b.values) and (a.prefix is None) == (b.prefix is None) and (
            a.prefix is None or _same(a.prefix, b.prefix))
    if isinstance(a, dict) and a and isinstance(next(iter(a.values())), np.ndarray):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_what_was_loaded_reads_like_the_warehouse(dialect, range_demo, tmp_path, monkeypatch, request):
    engine = use_demo(monkeypatch, range_demo, _conn(dialect, tmp_path, request))
    pipeline.prepare_warehouse()
    with engine.begin() as c:  # the session's PostgreSQL database: start from empty tables
        for t in ("raw_trades", "raw_orders", "raw_probe_minutes", "raw_latency_buckets", "raw_error_minutes"):
            c.exec_driver_sql(f"delete from {t}")
    for d in cal.trading_days(FIRST, LAST):  # the history, day by day
        sources.extract_range(d, d, engine, "daily")
    landed = series.Landed()
    with observe_loads(landed):  # a rebuild of October only: September stays the warehouse's
        sources.extract_range(date(2026, 10, 1), LAST, engine, "range")
    as_of = Period.day(LAST).closes_utc
    scopes = [periods.day_scope(d) for d in cal.trading_days(FIRST, LAST)]
    scopes += [s for s, _ in periods.rollup_scopes(("week", "month", "quarter"), FIRST, LAST, as_of=as_of)]
    with engine.connect() as conn:
        from_warehouse = load_data(conn, scopes)
        mixed = load_data(conn, scopes, landed)
    for f in fields(from_warehouse):
        assert _same(getattr(mixed, f.name), getattr(from_warehouse, f.name)), f.name
    assert len(mixed.order_day) > 14 * 40 and len(mixed.lat_bounds) == 12
    # only September (and the 90 days of down minutes before it) came from the warehouse
    sept = sum(1 for d in mixed.order_day.tolist() if d < date(2026, 10, 1).toordinal())
    assert 0 < landed.read["orders"] == sept < len(mixed.order_day)
    oct1 = series.us(review_window_utc(date(2026, 10, 1))[0])
    assert 0 < landed.read["latency"] == int((mixed.lat_ts < oct1).sum()) < len(mixed.lat_ts)


def test_landed_pieces_are_replaced_and_forgotten():
    landed = series.Landed()
    ts = series.us(review_window_utc(date(2026, 10, 5))[0])
    for lo, hi in ((0, 10), (10, 20), (20, 30)):
        landed._put("errors", ts + lo, ts + hi, series._errors(np.array([ts + lo]), np.array([1.0])))
    landed._put("errors", ts + 5, ts + 15, series._errors(np.array([ts + 7]), np.array([2.0])))
    assert [(a - ts, b - ts) for a, b, _ in landed.pieces["errors"]] == [(5, 15), (20, 30)]
    landed.forget(day=date(2026, 10, 5), ts=review_window_utc(date(2026, 10, 5))[0].replace(microsecond=20))
    assert [(a - ts, b - ts) for a, b, _ in landed.pieces["errors"]] == [(20, 30)]


def test_latency_counts_parse_fast_to_the_same_doubles():
    values = [0.0, 1.0, 22.667, 0.1 + 0.2, 1e-7, 123456.789, 5e-324, 1.7976931348623157e308, 2.5e-05]
    rows = [",".join(repr(v) for v in values), ",".join(repr(v * 3) for v in values)]
    fast = series._counts(rows, len(values))
    assert fast.tolist() == [values, [v * 3 for v in values]]
    # rows the reader cannot vouch for go the exact way, which names a malformed row
    assert series._counts(["1.5,nan", "inf,2"], 2).tolist()[1] == [float("inf"), 2.0]
    with pytest.raises(ValueError, match="do not match its bounds"):
        series._counts(["1.0,2.0", "3.0"], 2)
    with pytest.raises(ValueError):
        series._counts(["1.0,abc"], 2)


def test_one_process_and_three_leave_the_same_warehouse(range_demo, tmp_path, monkeypatch):
    results = {}
    for procs in ("2", "0"):  # three months: the first here, the others to two workers
        monkeypatch.setenv(pipeline.ENV_REBUILD_PROCESSES, procs)
        engine = use_demo(monkeypatch, range_demo, {"conn_type": "sqlite", "host": str(tmp_path / f"w{procs}.db")})
        assert pipeline.rebuild(date(2026, 8, 24), LAST, "range")["kpi_rows"] > 30 * 30
        with engine.connect() as c:
            results[procs] = {
                t: sorted(
                    (tuple(str(v) for k, v in r._mapping.items() if k not in STAMPS)
                     for r in c.execute(sa.text(f"select * from {t}"))), key=repr)
                for t in ("raw_trades", "raw_orders", "raw_latency_buckets", "raw_incidents", "quarantine",
                          "kpi_values")
            }
    assert results["2"] == results["0"]
    monkeypatch.setenv(pipeline.ENV_REBUILD_PROCESSES, "two")
    with pytest.raises(pipeline.ParamError, match="KAIZEN_REBUILD_PROCESSES: 'two'"):
        pipeline.rebuild(date(2026, 8, 24), LAST, "range")


def test_a_source_failing_in_the_worker_fails_the_rebuild(range_demo, tmp_path, monkeypatch):
    broken = tmp_path / "demo"
    shutil.copytree(range_demo, broken)
    (broken / "trading.db").unlink()
    engine = use_demo(monkeypatch, broken, {"conn_type": "sqlite", "host": str(tmp_path / "w.db")})
    with pytest.raises(SourceError, match="trading.db does not exist"):
        pipeline.rebuild(FIRST, LAST, "range")
    with engine.connect() as c:  # no KPI was computed from a half-loaded month
        assert c.exec_driver_sql("select count(*) from kpi_values").scalar() == 0


def test_the_worker_hands_back_loads_and_source_errors(range_demo, tmp_path, monkeypatch):
    from kaizen.sources import trading

    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(range_demo))
    p = Preparer({"KAIZEN_DEMO_DIR": str(tmp_path / "nowhere")})  # the env it is given wins
    try:
        p.submit("trading", date(2026, 10, 1), LAST)
        with pytest.raises(SourceError, match="nowhere/trading.db does not exist"):
            p.result()
    finally:
        p.close()
    p = Preparer()
    try:
        p.submit("trading", date(2026, 10, 1), LAST)
        p.submit("prometheus", date(2026, 10, 1), LAST)
        there = p.result()
        here = trading.prepare_range(date(2026, 10, 1), LAST)
        assert [t.table for t in there] == ["raw_trades", "raw_orders"]
        for a, b in zip(there, here, strict=True):
            assert a.rows.equals(b.rows) and a.rejects == b.rejects and a.extracted == b.extracted > 0
        assert [t.table for t in p.result()] == ["raw_probe_minutes", "raw_latency_buckets", "raw_error_minutes"]
    finally:
        p.close()
    assert p.proc.returncode == 0


def test_a_worker_that_dies_is_named():
    p = Preparer()
    try:
        p.proc.kill()
        p.proc.wait()
        p.submit("trading", FIRST, LAST)
        with pytest.raises(WorkerDied, match="KAIZEN_REBUILD_PROCESSES=0"):
            p.result()
    finally:
        p.close()


def test_an_answer_that_cannot_be_read_stops_the_worker(monkeypatch):
    import pickle

    def garbled(_stream):
        raise pickle.UnpicklingError("garbled")

    monkeypatch.setattr(pickle, "load", garbled)  # the reader thread's next read
    p = Preparer()
    try:
        with pytest.raises(WorkerDied, match="could not be read.*garbled"):
            p.result()
        assert p.proc.returncode is not None  # killed, not left running
    finally:
        p.close()
