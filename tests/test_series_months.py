"""``series_months``: whole IST months of the big series, cached reduced so a rollup to
date does not read its past months' rows every day — and dropped by the warehouse's
own triggers whenever one of their rows is written, by whatever writer. Each read is
checked field for field against the rows read directly."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from conftest import use_demo
from kaizen import calendar as cal
from kaizen import pipeline, sources, warehouse
from kaizen.kpis import series
from kaizen.period import midnight_utc
from test_rebuild_landed import _conn, _same

KINDS = ("trades", "orders", "probes", "latency", "errors")
SEP, OCT = date(2026, 9, 1), date(2026, 10, 1)
LAST = date(2026, 10, 9)


def test_the_month_grid():
    o = date.toordinal
    assert series._months("orders", o(date(2026, 8, 15)), o(date(2026, 11, 1))) == [
        (o(SEP), o(OCT), SEP), (o(OCT), o(date(2026, 11, 1)), OCT)]
    assert series._months("trades", o(SEP), o(date(2026, 9, 30))) == []  # September without its 30th
    ist_sep, ist_oct = (series.us(midnight_utc(d)) for d in (SEP, OCT))
    assert ist_sep == series.us(cal.ist_datetime(SEP, cal.time(0)))  # 31 Aug 18:30 UTC
    assert series._months("probes", ist_sep, ist_oct) == [(ist_sep, ist_oct, SEP)]
    assert series._months("probes", ist_sep + 1, ist_oct + 10**9) == []
    assert series._months("errors", ist_sep - 1, ist_oct) == [(ist_sep, ist_oct, SEP)]
    dec, jan = date(2026, 12, 1), date(2027, 1, 1)
    assert series._months("trades", o(dec), o(jan)) == [(o(dec), o(jan), dec)]  # across the year


def _span_keys(kind: str) -> tuple[int, int]:
    """1 Sep – 9 Oct in the series' key units."""
    if kind in ("trades", "orders"):
        return SEP.toordinal(), LAST.toordinal() + 1
    a, b = midnight_utc(SEP), midnight_utc(LAST + timedelta(days=1))
    return series.us(a), series.us(b)


def _cached(engine) -> dict:
    with engine.connect() as c:
        rows = c.execute(sa.text("select kind, month, rows from series_months")).all()
    return {(k, m if isinstance(m, date) else date.fromisoformat(m)): n for k, m, n in rows}


def _triggers(engine) -> int:
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":
            return c.execute(sa.text("select count(*) from pg_trigger where not tgisinternal")).scalar()
        return c.execute(sa.text("select count(*) from sqlite_master where type = 'trigger'")).scalar()


def _reads_like_rows(engine, counts: list | None = None) -> None:
    with engine.begin() as c:
        for kind in KINDS:
            got = series.span(kind, c, *_span_keys(kind))
            assert _same(got, series._read(kind, c, *_span_keys(kind))), kind
            if counts is not None:
                counts.append((kind, len(got["key"])))


@pytest.fixture(params=["sqlite", "postgres"])
def loaded(request, range_demo, tmp_path, monkeypatch):
    engine = use_demo(monkeypatch, range_demo, _conn(request.param, tmp_path, request))
    pipeline.prepare_warehouse()
    with engine.begin() as c:  # the session's PostgreSQL database: start from empty tables
        for t in (*warehouse.SERIES_TABLES, "series_months"):
            c.exec_driver_sql(f"delete from {t}")
    _reads_like_rows(engine)  # nothing loaded yet: September is cached empty ...
    assert set(_cached(engine)) == {(k, SEP) for k in KINDS} and not any(_cached(engine).values())
    sources.extract_range(SEP, LAST, engine, "range")
    assert _cached(engine) == {}  # ... until rows land in it
    return engine


def test_a_cached_month_is_its_rows_and_is_read_instead_of_them(loaded, monkeypatch):
    engine = loaded
    _reads_like_rows(engine)
    cached = _cached(engine)
    assert set(cached) == {(k, SEP) for k in KINDS}  # October is not whole in the span
    with engine.connect() as c:
        assert cached[("orders", SEP)] == c.execute(
            sa.text("select count(*) from raw_orders where trading_day >= :a and trading_day < :b"),
            {"a": warehouse.bind_value(SEP), "b": warehouse.bind_value(OCT)}).scalar() > 0

    reads = []
    real = series._read
    monkeypatch.setattr(series, "_read", lambda kind, conn, lo, hi: reads.append((kind, lo)) or real(kind, conn, lo, hi))
    with engine.begin() as c:
        for kind in KINDS:
            series.span(kind, c, *_span_keys(kind))
    assert sorted(reads) == sorted((k, series._months(k, *_span_keys(k))[0][1]) for k in KINDS)  # October only


def test_any_write_drops_the_month_it_touches(loaded):
    engine = loaded
    _reads_like_rows(engine)
    triggers = _triggers(engine)
    b = warehouse.bind_value
    with engine.begin() as c:  # an operator's edits, by hand
        c.execute(sa.text("update raw_orders set status = 'rejected' where order_id = (select min(order_id) "
                          "from raw_orders where trading_day = :d and status = 'filled')"), {"d": b(date(2026, 9, 15))})
        c.execute(sa.text("delete from raw_error_minutes where ts = (select min(ts) from raw_error_minutes "
                          "where ts >= :t)"), {"t": b(cal.ist_datetime(date(2026, 9, 10), cal.time(12)))})
    assert set(_cached(engine)) == {(k, SEP) for k in ("trades", "probes", "latency")}
    counts = []
    _reads_like_rows(engine, counts)  # the edits show, and the months are cached again
    assert set(_cached(engine)) == {(k, SEP) for k in KINDS}

    sources.extract_range(date(2026, 10, 5), date(2026, 10, 5), engine, "daily")  # October: September stays
    assert set(_cached(engine)) == {(k, SEP) for k in KINDS}
    sources.extract_range(date(2026, 9, 15), date(2026, 9, 15), engine, "daily")  # the pipeline's bulk load
    assert _cached(engine) == {}  # it replaced a day of all five: September is dropped from each
    assert _triggers(engine) == triggers  # lifted for the load only
    again = []
    _reads_like_rows(engine, again)
    assert again == counts  # the reload restored the day as it was; the edits elsewhere stay


def test_a_rebuild_warms_the_quarter_so_far(loaded):
    engine = loaded
    sources.extract_range(date(2026, 8, 17), date(2026, 8, 31), engine, "range")
    with engine.begin() as c:
        assert series.warm(c, date(2026, 9, 30)) == 10  # July and August of Q3, five series
        assert series.warm(c, date(2026, 9, 30)) == 0
        aug = series.span("orders", c, date(2026, 8, 1).toordinal(), SEP.toordinal())
        assert _same(aug, series._read("orders", c, date(2026, 8, 1).toordinal(), SEP.toordinal()))
        assert len(aug["key"]) > 0
    assert _cached(engine)[("trades", date(2026, 7, 1))] == 0  # before the demo's history: empty, still whole


def test_a_load_during_caching_is_not_lost_on_postgres(pg_url, range_demo, tmp_path, monkeypatch, request):
    """A load of a September day commits while a reader has read September's rows and
    not yet cached them: the reader's lock makes the load wait, so its trigger drops
    the month cached from the rows before it, rather than the stale month staying."""
    engine = use_demo(monkeypatch, range_demo, _conn("postgres", tmp_path, request))
    pipeline.prepare_warehouse()
    with engine.begin() as c:
        for t in (*warehouse.SERIES_TABLES, "series_months"):
            c.exec_driver_sql(f"delete from {t}")
    sources.extract_range(SEP, date(2026, 9, 30), engine, "range")
    with engine.begin() as c:
        c.exec_driver_sql("delete from raw_error_minutes")  # the load below brings 15 Sep's back
    done = threading.Event()

    def load():
        sources.extract_range(date(2026, 9, 15), date(2026, 9, 15), engine, "daily")
        done.set()

    real, loader = series._read, threading.Thread(target=load)

    def read_then_load(kind, conn, lo, hi):
        out = real(kind, conn, lo, hi)
        if not loader.is_alive() and not done.is_set():
            loader.start()
            loader.join(1.0)  # it would commit now, but for the lock
        return out

    monkeypatch.setattr(series, "_read", read_then_load)
    with engine.begin() as c:
        assert len(series.span("errors", c, *_span_keys("errors"))["key"]) == 0
    assert not done.is_set() or ("errors", SEP) not in _cached(engine)
    loader.join(30)
    assert done.is_set()
    monkeypatch.setattr(series, "_read", real)
    assert ("errors", SEP) not in _cached(engine)
    with engine.begin() as c:
        assert len(series.span("errors", c, *_span_keys("errors"))["key"]) > 0


def test_months_older_than_the_quarter_before_are_let_go(engine):
    with engine.begin() as c:
        for m in (date(2026, 3, 1), date(2026, 4, 1), date(2026, 6, 1)):
            series._store(c, "errors", m, series._empty("errors"))
        assert {str(r[0])[:10] for r in c.exec_driver_sql("select month from series_months")} == {
            "2026-03-01", "2026-04-01", "2026-06-01"}
        series._store(c, "trades", date(2026, 8, 1), series._empty("trades"))  # Q3: keeps Q2 on
        assert {str(r[0])[:10] for r in c.exec_driver_sql("select month from series_months")} == {
            "2026-04-01", "2026-06-01", "2026-08-01"}

