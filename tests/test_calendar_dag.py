"""The daily_review DAG (dag.test) on the days the calendar makes special: a weekday of a
provisional year on which nothing traded (a festival holiday NSE has not published
yet), and a Saturday special session from the operator's overrides file, reviewed with
its own session hours."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen.period import midnight_utc

pytestmark = pytest.mark.dag


def _run_daily(dag_env, day: date, monkeypatch):
    from kaizen.cli import dag_for_test

    root, demo = dag_env
    db = root / f"warehouse-{day}.db"
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(demo))
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(root / "out"))
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    at = cal.ist_datetime(day, cal.review_time(day))
    run = dag_for_test("daily_review").test(logical_date=at, run_after=at)
    return run, sa.create_engine(f"sqlite:///{db}"), root / "out" / "daily_review" / day.isoformat()


def _kpis(engine, day: date) -> dict:
    with engine.connect() as c:
        rows = c.execute(sa.text("select kpi_id, value, numerator, denominator, status from kpi_values "
                                 "where grain = 'day' and period_start = :d"), {"d": day.isoformat()}).mappings()
        return {r["kpi_id"]: dict(r) for r in rows}


# ---------------------------------------------------------------- a provisional weekday without trades
HOLIDAY_2027 = date(2027, 1, 5)  # a Tuesday: a session for the provisional 2027 calendar


@pytest.fixture(scope="module")
def provisional_env(tmp_path_factory):
    """Demo sources through 8 Jan 2027, with the trading DB empty on 5 Jan (as if NSE
    had been closed for a festival the calendar does not know)."""
    from kaizen.demo import generate

    root = tmp_path_factory.mktemp("provisional")
    generate(end=date(2027, 1, 8), months=1, seed=7, out_dir=root / "demo", trades_per_day=60)
    day_utc = (midnight_utc(HOLIDAY_2027), midnight_utc(HOLIDAY_2027 + timedelta(days=1)))
    lo, hi = (t.strftime("%Y-%m-%dT%H:%M") for t in day_utc)
    con = sqlite3.connect(root / "demo" / "trading.db")
    with con:
        n = con.execute("delete from trades where exit_time >= ? and exit_time < ?", (lo, hi)).rowcount
        m = con.execute("delete from orders where submitted_at >= ? and submitted_at < ?", (lo, hi)).rowcount
    con.close()
    assert n > 0 and m > 0
    return root, root / "demo"


def test_a_provisional_weekday_without_trades_is_a_probable_holiday(provisional_env, monkeypatch):
    assert cal.is_provisional(2027) and cal.is_trading_day(HOLIDAY_2027)
    run, engine, out = _run_daily(provisional_env, HOLIDAY_2027, monkeypatch)
    assert "success" in str(run.state)
    kpis = _kpis(engine, HOLIDAY_2027)
    for k in ("trades_count", "win_rate_pct", "net_pnl_inr", "execution_success_pct", "avg_execution_ms"):
        assert (kpis[k]["value"], kpis[k]["status"]) == (None, "no_events"), k
    assert "stale" not in {r["status"] for k, r in kpis.items() if k in ("trades_count", "win_rate_pct")}
    assert kpis["uptime_pct"]["status"] != "stale"  # Prometheus ran as usual
    md = (out / "daily_review.md").read_text()
    payload = json.loads((out / "slack_payload.json").read_text())
    text = json.dumps(payload, ensure_ascii=False)
    assert "Trades: **no trades — probable market holiday, not in the calendar**" in md
    assert "probable market holiday, not in the calendar" in text
    assert "stale" not in md.split("**System Performance**")[0]
    # the provisional year says so too
    assert "The NSE holiday list for 2027 is not confirmed" in md


# ---------------------------------------------------------------- a Saturday special session
SATURDAY = date(2026, 11, 14)
CLOSED_THURSDAY = date(2026, 11, 12)


@pytest.fixture(scope="module")
def special_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("special")
    overrides = root / "overrides.json"
    overrides.write_text(json.dumps({
        "holidays": {CLOSED_THURSDAY.isoformat(): "Test closure"},
        "special_sessions": {SATURDAY.isoformat(): {"name": "Test Saturday session", "open": "10:00",
                                                    "close": "12:00"}},
    }))
    mp = pytest.MonkeyPatch()
    mp.setenv(cal.ENV_OVERRIDES, str(overrides))
    cal.refresh()
    from kaizen.demo import generate

    manifest = generate(end=date(2026, 11, 16), months=1, seed=11, out_dir=root / "demo", trades_per_day=60)
    yield root, root / "demo", manifest
    mp.undo()
    cal.refresh()


def test_the_saturday_session_is_reviewed_with_its_own_hours(special_env, monkeypatch):
    root, demo, manifest = special_env
    assert SATURDAY.isoformat() in manifest["per_day"]
    assert CLOSED_THURSDAY.isoformat() not in manifest["per_day"]
    run, engine, out = _run_daily((root, demo), SATURDAY, monkeypatch)
    assert "success" in str(run.state)
    kpis = _kpis(engine, SATURDAY)
    bad = [b for b in manifest["bad_records"] if b["source"] == "trades" and b.get("day") == SATURDAY.isoformat()]
    assert kpis["trades_count"]["value"] == manifest["per_day"][SATURDAY.isoformat()]["trades"] - len(bad) > 0
    open_utc, close_utc = cal.session_bounds_utc(SATURDAY)
    assert (open_utc.astimezone(cal.IST).time(), close_utc.astimezone(cal.IST).time()) == (time(10), time(12))
    with engine.connect() as c:
        exits = [datetime.fromisoformat(str(v)) for (v,) in
                 c.execute(sa.text("select exit_time from raw_trades where trading_day = :d"),
                           {"d": SATURDAY.isoformat()})]
        # session uptime counts the probed minutes of 10:00–12:00 IST only: counted here by SQL
        probed = c.execute(sa.text(
            "select count(distinct ts) from raw_probe_minutes where ts >= :a and ts < :b"),
            {"a": cal.utc_text(open_utc), "b": cal.utc_text(close_utc)}).scalar_one()
    assert exits and all(open_utc <= (e if e.tzinfo else e.replace(tzinfo=cal.UTC)) <= close_utc for e in exits)
    assert probed > 0 and kpis["session_uptime_pct"]["denominator"] == probed <= 120
    md = (out / "daily_review.md").read_text()
    assert "Sat 14 Nov 2026" in md and "since Fri 13 Nov 16:00 IST" in md
