"""Hourly ingestion (dags/kaizen_ingest.py): every source lands on its own schedule,
weekends included, each landing emits its Asset, and a review finds its period landed.

Replayed as the scheduler runs it: the daily pipeline for Fri 13 – Fri 20 Nov 2026,
then kaizen_ingest (dag.test) on Saturday 21 Nov 10:00 UTC, then — after a pause —
on Monday 23 Nov 04:00 UTC (09:30 IST), which fills the gap; then the weekly review at
its 10:00 IST meeting, which has nothing left to extract but the GitHub issues (to its
run time) and the bill."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from kaizen import pipeline, sources, warehouse
from kaizen.warehouse import coverage
from test_review_tail import WEEK, _run_daily_days, _week_row

pytestmark = pytest.mark.dag



@pytest.fixture(scope="module")
def demo_nov(tmp_path_factory):
    from kaizen.demo import generate

    out = tmp_path_factory.mktemp("demo-nov")
    generate(end=date(2026, 11, 27), months=1, seed=3, out_dir=out, trades_per_day=30)
    return out


SATURDAY = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
MONDAY = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 09:30 IST, before the weekly review
FRIDAY_CUT = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)  # 16:00 IST: Monday's window opens


def test_the_ingest_dag_lands_every_source_hourly_and_the_review_finds_its_week_landed(
        demo_nov, tmp_path, monkeypatch):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    from kaizen.cli import dag_for_test

    engine = _run_daily_days(monkeypatch, demo_nov, tmp_path, [date(2026, 11, 13), *WEEK])
    monkeypatch.setenv("KAIZEN_DEMO_NOW", SATURDAY.isoformat())  # the sources answer as at the run
    dag = dag_for_test("kaizen_ingest")
    started = datetime.now(UTC)
    run = dag.test(logical_date=SATURDAY, run_after=SATURDAY)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"prepare_warehouse": "success", **{f"land_{s}": "success" for s in pipeline.INGEST_WINDOW_SOURCES},
                      "land_trading": "skipped"}  # Friday's session landed with Friday's daily run
    with engine.connect() as c:
        spans = coverage.spans(c)
        probes = c.execute(sa.text("select count(distinct ts) from raw_probe_minutes where ts >= :a and ts < :b"),
                           {"a": warehouse.bind_value(FRIDAY_CUT), "b": warehouse.bind_value(SATURDAY)}).scalar()
        quarantined_sat = set(c.execute(sa.text(
            "select source, record_key from quarantine where extract_day = '2026-11-23'")).tuples().all())
    for s in ("probes", "latency", "errors", "incidents", "deployments", "action_items"):
        assert spans[s][-1][1] == SATURDAY, s
    assert 1_380 <= probes <= 23.5 * 60  # Friday 16:00 IST to Saturday 15:30 IST, a few scrape gaps
    with create_session() as session:
        events = {uri for uri, in session.query(AssetModel.uri).join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
                  .filter(AssetEvent.source_run_id == run.run_id, AssetEvent.timestamp >= started)}
    assert events == {f"kaizen.warehouse.{s}" for s in pipeline.INGEST_WINDOW_SOURCES}

    # paused over the rest of the weekend: Monday's first run fills the gap, one run
    monkeypatch.setenv("KAIZEN_DEMO_NOW", MONDAY.isoformat())
    run = dag.test(logical_date=MONDAY, run_after=MONDAY)
    assert str(run.state) == "success"
    with engine.connect() as c:
        spans = coverage.spans(c)
        quarantined_mon = set(c.execute(sa.text(
            "select source, record_key from quarantine where extract_day = '2026-11-23'")).tuples().all())
    assert all(spans[s][-1][1] == MONDAY for s in ("probes", "latency", "errors", "incidents"))
    assert quarantined_sat <= quarantined_mon  # the window re-extracted whole: no rejected record dropped

    # the weekly review at 10:00 IST: the week has landed; left are the issues to its run time,
    # and the bill, which is read by billing period (no time coverage) and so every time
    at = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)
    monkeypatch.setenv("KAIZEN_DEMO_NOW", at.isoformat())
    rollups = pipeline.compute_review_rollups(
        {"kind": "weekly", "grain": "week", "period_start": "2026-11-16", "key": "2026-W47",
         "as_of": datetime(2026, 11, 22, 18, 30, tzinfo=UTC).isoformat(), "run_after": at.isoformat()}, "review")
    assert [t["source"] for t in rollups["tail"]] == ["action_items", "cost_exports", "cost_lines"]
    up = _week_row(engine, "uptime_pct")
    assert up["is_complete"] in (1, True) and 10_000 < up["denominator"] <= 10_080


def test_an_ingest_run_lands_once_and_fills_a_gap_of_at_most_a_week(demo_nov, tmp_path, monkeypatch, capsys,
                                                                   caplog):
    _run_daily_days(monkeypatch, demo_nov, tmp_path, [date(2026, 11, 13)])  # landed to 13 Nov 10:30 UTC
    noon = datetime(2026, 11, 13, 12, 0, tzinfo=UTC)
    assert pipeline.ingest_window_source("prometheus", noon, "r1")
    assert pipeline.ingest_window_source("prometheus", noon, "r2") == []  # nothing new: nothing extracted
    later = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # paused for 11½ days
    capsys.readouterr()
    pipeline.ingest_window_source("prometheus", later, "r3")
    assert ("landed only to 2026-11-13T12:00:00+00:00, more than 7 days ago; 2026-11-13T12:00:00+00:00 to "
            "2026-11-17T10:30:00+00:00 is left to kaizen_backfill") in capsys.readouterr().out + caplog.text
    # (the log reaches stdout through Airflow's structlog, or pytest's handler once a dag.test has run)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as c:
        spans = coverage.spans(c)["probes"]
    # a week back from the run lands in Wednesday 18 Nov's review window, extracted whole
    # from its start (Tuesday 16:00 IST); before it, the gap stays for kaizen_backfill
    assert spans[-2:] == [(spans[-2][0], noon), (datetime(2026, 11, 17, 10, 30, tzinfo=UTC), later)]


def test_a_manual_run_without_a_data_interval_lands_to_its_run_time_on_a_slot_edge():
    at = datetime(2026, 11, 21, 10, 44, 59, 999, tzinfo=UTC)
    assert pipeline.ingest_until(None, at) == datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
    assert pipeline.ingest_until(SATURDAY, at) == SATURDAY  # a scheduled run: its interval's end


def test_the_ingest_dag_maps_every_window_source():
    assert pipeline.INGEST_WINDOW_SOURCES == sources.WINDOW_SOURCES


def test_each_source_lands_what_lands_says(demo_nov, monkeypatch):
    """sources.LANDS (what coverage is looked up under) is what each module loads."""
    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(demo_nov))
    for name in sources.SOURCES:
        loads = (sources.prepare_range(name, date(2026, 11, 20), date(2026, 11, 20)) if name == "trading" else
                 sources.prepare_window(name, FRIDAY_CUT - timedelta(days=1), FRIDAY_CUT))
        assert tuple(tl.source for tl in loads) == sources.LANDS[name], name


def test_the_latest_closed_session_is_landed_once(demo_nov, tmp_path, monkeypatch):
    _run_daily_days(monkeypatch, demo_nov, tmp_path, [date(2026, 11, 19)])
    # Friday 20 Nov 10:15 UTC (15:45 IST): the session closed at 15:30 IST
    out = pipeline.ingest_trading(datetime(2026, 11, 20, 10, 15, tzinfo=UTC), "r1")
    assert out and {r["table"] for r in out} == {"raw_trades", "raw_orders"}
    assert pipeline.ingest_trading(datetime(2026, 11, 20, 11, 0, tzinfo=UTC), "r2") is None
    # at 15:00 IST Friday's session is still open: Thursday's, landed by its daily run
    assert pipeline.ingest_trading(datetime(2026, 11, 20, 9, 30, tzinfo=UTC), "r3") is None
