"""A review sees all of its period (issue: operated day after day). Data lands with the
16:00 IST daily run on trading days, so the Monday 10:00 weekly review used to run
before the weekend's Prometheus, PagerDuty and GitHub data was extracted: it saw
6,720 of the week's 10,080 minutes. Replayed as the scheduler runs it — the daily
pipeline for Mon 16 – Fri 20 Nov 2026 (the tasks' steps, day by day), then the
weekly_review DAG (dag.test) at its Monday 10:00 meeting — the review extracts the
tail after Friday's run itself, and its week has every minute."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import pipeline
from kaizen.kpis import periods
from kaizen.warehouse.coverage import parse_ts

pytestmark = pytest.mark.dag

WEEK = [date(2026, 11, 16) + __import__("datetime").timedelta(days=i) for i in range(5)]


def _week_row(engine, kpi_id: str) -> dict:
    with engine.connect() as c:
        return dict(c.execute(sa.text(
            "select value, numerator, denominator, status, is_complete from kpi_values "
            "where kpi_id = :k and grain = 'week' and period_start = :p"), {"k": kpi_id, "p": "2026-11-16"}
        ).mappings().one())


def _run_daily_days(monkeypatch, demo, tmp_path, days) -> sa.Engine:
    """The demo sources, a SQLite warehouse and the outbox (no Slack); then the daily
    pipeline's steps for each of ``days`` in order, as the scheduled runs do them."""
    db = tmp_path / "w.db"
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(demo))
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    pipeline.prepare_warehouse()
    for d in days:
        assert cal.is_trading_day(d)
        for source in pipeline.SOURCES:
            pipeline.extract_source(source, d, f"daily-{d}")
        pipeline.compute_day_kpis(d, f"daily-{d}")
        pipeline.compute_rollups_to_date(d, f"daily-{d}")
    return sa.create_engine(f"sqlite:///{db}")


def test_the_monday_weekly_review_sees_the_whole_week(range_demo_nov, tmp_path, monkeypatch):
    from kaizen.cli import dag_for_test

    # Friday 13th's window opens the week's Monday
    engine = _run_daily_days(monkeypatch, range_demo_nov, tmp_path, [date(2026, 11, 13), *WEEK])
    # after Friday's run the week is computed to Friday 16:00: minutes are missing
    assert _week_row(engine, "uptime_pct")["denominator"] <= 6_720  # Mon 00:00 – Fri 16:00 IST
    # ended on Sunday, yet not complete while the weekend has not landed: the time
    # sources are missing from Friday's cut-off; trades and orders, kept by session,
    # have landed all of it (no session before Monday)
    at = cal.ist_datetime(date(2026, 11, 23), __import__("datetime").time(10, 0))
    periods.compute_rollups(engine, ["week"], WEEK[0], WEEK[0], "early", as_of=at)
    assert _week_row(engine, "uptime_pct")["is_complete"] in (0, False)
    with engine.connect() as c:
        missing = dict(c.execute(sa.text(
            "select source, missing_from from period_coverage where grain = 'week' and period_start = '2026-11-16'"
        )).tuples().all())
    friday = cal.ist_datetime(WEEK[-1], cal.review_time(WEEK[-1]))
    assert {s: m and parse_ts(m) for s, m in missing.items()} == {
        **{s: friday for s in ("action_items", "deployments", "errors", "incidents", "latency", "probes",
                               "assignments", "oncall_spans", "satisfaction")},
        "trades": None, "orders": None}

    run = dag_for_test("weekly_review").test(logical_date=at, run_after=at)
    assert str(run.state) == "success"
    up = _week_row(engine, "uptime_pct")
    assert up["is_complete"] in (1, True) and up["status"] != "stale"
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from period_coverage where grain = 'week' "
                                 "and period_start = '2026-11-16' and is_covered")).scalar() == 11
    # every minute of the week the demo's Prometheus has (its scrapes leave a few gaps),
    # and the week's rows as a one-shot rebuild of the same days has them
    with engine.connect() as c:
        week = c.execute(sa.text(
            "select kpi_id, value, numerator, denominator, status from kpi_values "
            "where grain = 'week' and period_start = '2026-11-16'")).tuples().all()
    assert 10_000 < up["denominator"] <= 10_080
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE",
                       json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "oneshot.db")}))
    pipeline.rebuild(date(2026, 11, 13), date(2026, 11, 23), "oneshot", ("day", "week"))
    with sa.create_engine(f"sqlite:///{tmp_path / 'oneshot.db'}").connect() as c:
        oneshot = c.execute(sa.text(
            "select kpi_id, value, numerator, denominator, status from kpi_values "
            "where grain = 'week' and period_start = '2026-11-16'")).tuples().all()
    assert sorted(week) == sorted(oneshot)


@pytest.fixture(scope="module")
def range_demo_nov(tmp_path_factory):
    from kaizen.demo import generate

    out = tmp_path_factory.mktemp("demo-nov")
    generate(end=date(2026, 11, 27), months=1, seed=3, out_dir=out, trades_per_day=30)
    return out


def test_prometheus_down_at_the_weekly_review_posts_the_gap_then_the_next_daily_run_revises_it(
        range_demo_nov, tmp_path, monkeypatch):
    """Prometheus unreachable when the Monday review extracts the weekend: the review
    still goes out, titled as awaiting the probes from Friday's cut-off, and the run
    fails at check_sources (not at compute_rollups, which would have sent nothing).
    Monday's 16:00 daily run, Prometheus back, lands the weekend, completes the week
    and revises the delivered review in place (outbox: revisions.json, version 2)."""
    from kaizen import dag_defaults
    from kaizen.cli import dag_for_test
    from kaizen.sources import http, prometheus

    engine = _run_daily_days(monkeypatch, range_demo_nov, tmp_path, [date(2026, 11, 13), *WEEK])

    def down(start, end, transport=None):
        raise http.HttpError("Prometheus GET /api/v1/query_range still failing after 5 attempts "
                             "(last: ConnectionError); Prometheus may be down", transient=True)

    with pytest.MonkeyPatch.context() as mp:  # Prometheus down, the task's retries spent
        mp.setattr(prometheus, "prepare_window", down)
        mp.setitem(dag_defaults.DEFAULT_ARGS, "retries", 0)
        at = cal.ist_datetime(date(2026, 11, 23), __import__("datetime").time(10, 0))
        run = dag_for_test("weekly_review").test(logical_date=at, run_after=at)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "failed"
    assert states == {"resolve_period": "success", "compute_rollups": "success", "render_review": "success",
                      "deliver_review": "success", "check_sources": "failed"}
    folder = tmp_path / "out" / "weekly_review" / "2026-W47"
    doc = (folder / "review.md").read_text()
    assert "(awaiting errors from 20 Nov 16:00 IST, latency from 20 Nov 16:00 IST, probes from 20 Nov 16:00 IST)" in doc
    assert not (folder / "revisions.json").exists()
    assert _week_row(engine, "uptime_pct")["is_complete"] in (0, False)

    # Prometheus is back: Monday's daily run
    monday = date(2026, 11, 23)
    for source in pipeline.SOURCES:
        pipeline.extract_source(source, monday, "daily-monday")
    pipeline.compute_day_kpis(monday, "daily-monday")
    rollups = pipeline.compute_rollups_to_date(monday, "daily-monday")
    assert "week:2026-11-16" in rollups["changed"]
    revised = pipeline.revise_reviews(rollups["changed"], "daily-monday")
    assert [r["period_key"] for r in revised] == ["2026-W47"]
    assert _week_row(engine, "uptime_pct")["is_complete"] in (1, True)
    assert "awaiting" not in (folder / "review.md").read_text()
    notes = json.loads((folder / "revisions.json").read_text())
    assert [n["version"] for n in notes] == [2]
