"""The replay of scheduled operation (issue 13's acceptance), shortened: ``bench/replay.py``
(``make replay`` runs 3.5 weeks) on history up to Thu 29 Oct 2026, then every scheduled
run of the four review DAGs up to the end of Mon 2 Nov through Airflow (``dag.test``):
Friday's daily review, Monday's weekly review (week 44, whose weekend holds the demo's
Prometheus scrape gap with seed 91), the monthly review of October (a month end) and
Monday's daily review. Then a one-shot rebuild of the whole range, compared row by row."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from kaizen import calendar as cal

pytestmark = pytest.mark.dag

REPO = Path(__file__).resolve().parents[1]
X, DAYS = date(2026, 10, 29), 4
DEMO = {"demo_end": date(2026, 11, 27), "months": 3, "seed": 91, "trades_per_day": 20}


def _load_replay():
    spec = importlib.util.spec_from_file_location("kaizen_bench_replay", REPO / "bench" / "replay.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


replay = _load_replay()


def ist(d: date, hh: int, mm: int = 0) -> datetime:
    return cal.ist_datetime(d, time(hh, mm))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    # the review DAGs only: the hourly kaizen_ingest would add 24 runs a day here (make replay
    # runs it; tests/test_ingest.py replays its runs around a weekly review)
    return replay.replay(history_to=X, days=DAYS, workdir=tmp_path_factory.mktemp("replay"),
                         dag_ids=replay.REVIEW_DAGS, **DEMO)


def _kpis_per_grain() -> dict[str, int]:
    from kaizen.kpis import catalog

    cat = catalog.load_catalog()
    return {g: len(list(cat.active(g))) for g in ("day", "week", "month", "quarter")}


def _gap_minutes_in(manifest: dict, start: datetime, end: datetime) -> int:
    gap = manifest["scrape_gap"]
    first = datetime.fromisoformat(gap["first_missing_sample"].replace("Z", "+00:00"))
    return sum(start <= first + timedelta(minutes=i) < end for i in range(gap["samples"]))


def test_every_scheduled_run_of_the_window_ran_through_airflow_in_time_order(result):
    runs = [(r.run.dag_id, r.run.run_after, r.state) for r in result.runs]
    assert runs == [
        ("daily_review", ist(date(2026, 10, 30), 16), "success"),
        ("weekly_review", ist(date(2026, 11, 2), 10), "success"),
        ("monthly_review", ist(date(2026, 11, 2), 14), "success"),
        ("daily_review", ist(date(2026, 11, 2), 16), "success"),
    ]
    assert result.runs_per_dag == {"daily_review": 2, "weekly_review": 1, "monthly_review": 1,
                                   "quarterly_review": 0, "kaizen_ingest": 0}
    assert all(r.ok and r.run_id.startswith("manual__") for r in result.runs), [r.problems for r in result.runs]
    # each run had its scheduled data interval (dag.test infers it from the logical date)
    weekly, monthly = result.runs[1].run, result.runs[2].run
    assert (weekly.interval_start, weekly.interval_end) == (ist(date(2026, 10, 26), 0), ist(date(2026, 11, 2), 0))
    assert (monthly.interval_start, monthly.interval_end) == (ist(date(2026, 10, 1), 0), ist(date(2026, 11, 1), 0))
    # delivered to the outbox (no Slack connection): both daily reviews, the week, October
    out = result.workdir / "out"
    for folder in ("daily_review/2026-10-30", "daily_review/2026-11-02", "weekly_review/2026-W44",
                   "monthly_review/2026-10"):
        assert (out / folder).is_dir(), folder
    assert json.loads((out / "weekly_review/2026-W44/headline.json").read_text())


def test_every_period_that_ended_in_the_window_equals_the_one_shot_rebuild(result):
    c = result.comparison
    assert c.periods == {"day": ["2026-10-30", "2026-11-02"], "week": ["2026-10-26"], "month": ["2026-10-01"]}
    n = _kpis_per_grain()
    assert c.rows == 2 * n["day"] + n["week"] + n["month"]
    assert c.mismatches == []
    assert result.ok
    text = replay.summary(result)
    assert "REPLAY OK" in text and f"{c.rows} rows compared; 0 mismatches" in text
    # what was compared is real: October, complete, with every probed minute of the demo's
    # Prometheus (31 days less the scrape gap's samples), as the monthly review computed it
    engine = sa.create_engine(f"sqlite:///{result.workdir / 'replay.db'}")
    with engine.connect() as conn:
        up = conn.execute(sa.text(
            "select denominator, is_complete, status, run_id from kpi_values "
            "where kpi_id = 'uptime_pct' and grain = 'month' and period_start = '2026-10-01'")).mappings().one()
    engine.dispose()
    october = (ist(date(2026, 10, 1), 0), ist(date(2026, 11, 1), 0))
    assert up["denominator"] == 31 * 1440 - _gap_minutes_in(result.manifest, *october)
    assert up["is_complete"] in (1, True) and up["status"] != "stale"


def test_the_weekly_review_document_shows_the_weeks_probed_minutes(result):
    [doc] = result.weekly_docs
    assert doc.key == "2026-W44" and doc.path == result.workdir / "out/weekly_review/2026-W44/review.md"
    # the week has 10,080 minutes; the demo's one scrape gap (seed 91: 4 samples on Sat 31 Oct,
    # landed by the Monday review's own tail extract) leaves 10,076 probed
    assert doc.full_minutes == 10_080 and doc.gap_samples == 4
    assert doc.probed_replay == doc.probed_oneshot == doc.expected_probed == 10_076
    # the document: error budget = 0.1 % of the week's 10,080 minutes; uptime and minutes
    # down over the probed minutes; every figure as in the one-shot rebuild's week
    assert doc.figures["error budget: budget"] == "10.1 min"
    assert doc.figures["uptime"].startswith("100.00 %") and doc.figures["downtime"].startswith("0 min")
    assert doc.figures == doc.oneshot_figures
    assert doc.problems == []


def test_a_difference_from_the_one_shot_is_reported_row_by_row(result, tmp_path):
    shutil.copy(result.workdir / "replay.db", tmp_path / "tampered.db")
    tampered = sa.create_engine(f"sqlite:///{tmp_path / 'tampered.db'}")
    oneshot = sa.create_engine(f"sqlite:///{result.workdir / 'oneshot.db'}")
    with tampered.begin() as c:
        c.execute(sa.text("update kpi_values set value = value + 1 where kpi_id = 'trades_count' "
                          "and grain = 'week' and period_start = '2026-10-26'"))
        c.execute(sa.text("update kpi_values set is_complete = 0 where kpi_id = 'uptime_pct' "
                          "and grain = 'month' and period_start = '2026-10-01'"))
        c.execute(sa.text("delete from kpi_values where kpi_id = 'win_rate_pct' "
                          "and grain = 'day' and period_start = '2026-11-02'"))
    try:
        c = replay.compare_kpi_values(tampered, oneshot, *result.window)
    finally:
        tampered.dispose()
        oneshot.dispose()
    got = sorted((m.kind, m.grain, m.period_start, m.kpi_id, m.column) for m in c.mismatches)
    assert got == [
        ("differs", "week", "2026-10-26", "trades_count", "value"),
        ("missing in replay", "day", "2026-11-02", "win_rate_pct", None),
        ("not complete", "month", "2026-10-01", "uptime_pct", "is_complete"),
    ]
    [value] = [m for m in c.mismatches if m.kind == "differs"]
    assert value.replay == value.oneshot + 1


def test_a_failed_run_is_reported_with_its_task_and_log(result, tmp_path):
    weekly = result.runs[1].run  # its warehouse cannot be opened: the task that needs it fails
    env = replay.run_env(tmp_path, result.workdir / "demo", tmp_path / "no-such-dir" / "w.db", tmp_path / "out")
    with replay.environment(env):
        dags = replay.load_dags_for_replay(("weekly_review",))
        failed = replay.run_through_airflow(dags["weekly_review"], weekly, tmp_path / "logs")
    assert failed.state == "failed" and not failed.ok
    tasks = {f["task_id"]: f for f in failed.failed_tasks}
    assert {k: f["state"] for k, f in tasks.items()} == {
        "compute_rollups": "failed", "render_review": "upstream_failed", "deliver_review": "upstream_failed",
        "check_sources": "upstream_failed"}
    log = tasks["compute_rollups"]["log"]
    assert "Task failed with exception" in log and "unable to open database file" in log
    assert "Done. Returned value was" not in log  # the failure, not the whole run's log
    broken = replay.ReplayResult(result.code, result.history, result.window, [failed], result.comparison, [],
                                 {}, result.manifest, tmp_path)
    text = replay.summary(broken)
    assert "REPLAY FAILED" in text and "FAILED RUN weekly_review Mon 02 Nov 10:00 IST" in text
    assert "task compute_rollups: failed" in text and "unable to open database file" in text


def test_the_default_window_lists_all_five_dags_from_their_timetables():
    """``make replay``'s window (no run): Fri 18 Sep 16:00 IST – Mon 12 Oct, as the
    timetables schedule it — NSE holidays skipped, the quarter's last Friday, the first
    Monday's monthly review, and the ingestion every hour (at half past, IST)."""
    x = replay.DEFAULTS["history_to"]
    runs = replay.scheduled_runs(replay.history_cutoff(x), replay.window_end(x, replay.DEFAULTS["days"]))
    assert [r.run_after for r in runs] == sorted(r.run_after for r in runs)
    by_dag = {}
    for r in runs:
        by_dag.setdefault(r.dag_id, []).append(r.run_after.astimezone(cal.IST).strftime("%a %d %b %H:%M"))
    assert by_dag["quarterly_review"] == ["Fri 25 Sep 10:00"]
    assert by_dag["monthly_review"] == ["Mon 05 Oct 14:00"]
    assert by_dag["weekly_review"] == ["Mon 21 Sep 10:00", "Mon 28 Sep 10:00", "Mon 05 Oct 10:00", "Mon 12 Oct 10:00"]
    daily = by_dag["daily_review"]
    assert len(daily) == 15 and daily[0] == "Mon 21 Sep 16:00" and daily[-1] == "Mon 12 Oct 16:00"
    assert "Fri 02 Oct 16:00" not in daily  # Gandhi Jayanti
    [q] = [r for r in runs if r.dag_id == "quarterly_review"]  # the quarter to date: to the meeting
    assert (q.interval_start, q.interval_end) == (ist(date(2026, 7, 1), 0), ist(date(2026, 9, 25), 10))
    ingest = by_dag["kaizen_ingest"]
    # 11:00 UTC on 18 Sep to 18:00 UTC on 12 Oct: 24 days of 24 runs and 8 more
    assert (ingest[0], ingest[-1], len(ingest)) == ("Fri 18 Sep 16:30", "Mon 12 Oct 23:30", 24 * 24 + 8)
    [i] = [r for r in runs if r.dag_id == "kaizen_ingest" and r.run_after == ist(date(2026, 10, 5), 9, 30)]
    assert (i.interval_start, i.interval_end) == (ist(date(2026, 10, 5), 8, 30), ist(date(2026, 10, 5), 9, 30))
