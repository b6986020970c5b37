"""Live: the session's real Airflow 3 (tests/live/fixtures.py: api-server, scheduler,
dag-processor, triggerer, two Celery workers) on 127.0.0.1. Through the REST API v2:
trigger kaizen_backfill for five trading days, create a native backfill of
daily_review for five more, wait for every run, check kpi_values; a form with end
before start is refused with HTTP 400 and creates no run. Run alone: pytest -m live."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
import sqlalchemy as sa

pytest_plugins = ["live.fixtures"]
pytestmark = pytest.mark.live

# across a month end: the rebuild in the task loads two months
BACKFILL_DAYS = [date(2026, 10, 29), date(2026, 10, 30), date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)]
NATIVE_DAYS = [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]


@pytest.fixture
def stack(live):
    return live.stack


def _runs(stack, dag_id) -> list[dict]:
    r = stack.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["dag_runs"]


def _wait_all(stack, dag_id, n, timeout=600, run_type=None) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in _runs(stack, dag_id) if run_type in (None, r["run_type"])]
        if len(runs) >= n and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        stack.check_alive()
        time.sleep(3)
    raise TimeoutError(f"{dag_id}: runs not finished in {timeout} s: {[(r['dag_run_id'], r['state']) for r in runs]}")


def test_invalid_form_is_refused_with_400_and_no_run(stack):
    before = len(_runs(stack, "kaizen_backfill"))
    r = stack.api(
        "POST",
        "/dags/kaizen_backfill/dagRuns",
        json={"logical_date": None, "conf": {"start": "2026-11-27", "end": "2026-11-20"}},
    )
    assert r.status_code == 400
    assert "end: 2026-11-20 is before start 2026-11-27" in r.json()["detail"]
    r = stack.api(
        "POST",
        "/dags/kaizen_backfill/dagRuns",
        json={"logical_date": None, "conf": {"start": "2026-11-20", "end": "2026-11-27", "grains": ["year"]}},
    )
    assert r.status_code == 400 and "grains" in r.text
    assert len(_runs(stack, "kaizen_backfill")) == before


def test_backfill_dag_and_native_backfill_fill_kpi_values(stack, pg_url):
    r = stack.api(
        "POST",
        "/dags/kaizen_backfill/dagRuns",
        json={
            "logical_date": None,
            "conf": {"start": "2026-10-29", "end": "2026-11-04", "grains": ["day", "week"], "deliver_to": "outbox"},
        },
    )
    assert r.status_code == 200, r.text
    r = stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": "daily_review",
            "from_date": "2026-11-16T00:00:00+05:30",
            "to_date": "2026-11-20T16:00:00+05:30",
            "max_active_runs": 2,
        },
    )
    assert r.status_code == 200, r.text

    runs = _wait_all(stack, "kaizen_backfill", 1)
    assert [r["state"] for r in runs] == ["success"]
    r = stack.api("GET", f"/dags/kaizen_backfill/dagRuns/{runs[0]['dag_run_id']}/taskInstances/rebuild_range"
                         "/xcomEntries/return_value")
    assert r.status_code == 200, r.text
    rebuilt = r.json()["value"]
    rebuilt = json.loads(rebuilt) if isinstance(rebuilt, str) else rebuilt
    assert rebuilt["trading_days"] == 5
    native = _wait_all(stack, "daily_review", 5, run_type="backfill")
    assert len(native) == 5 and {r["state"] for r in native} == {"success"}
    # catchup=False: after the backfill the scheduler adds at most the latest due run (for a
    # day past the demo data, so it may fail), never one per day missed since 20 Nov
    scheduled = [r for r in _runs(stack, "daily_review") if r["run_type"] == "scheduled"]
    assert len(scheduled) <= 1, [r["dag_run_id"] for r in scheduled]

    eng = sa.create_engine(pg_url)
    with eng.connect() as c:
        days = {
            r[0]
            for r in c.execute(sa.text("select distinct period_start from kpi_values where grain = 'day'"))
        }
        weeks = {r[0] for r in c.execute(sa.text("select distinct period_start from kpi_values where grain = 'week'"))}
        trades = dict(
            c.execute(sa.text("select period_start, value from kpi_values where grain = 'day' and kpi_id = 'trades_count'")).all()
        )
        keys = [d.isoformat() for d in BACKFILL_DAYS + NATIVE_DAYS]
        posted = c.execute(
            sa.text("select distinct sink, period_key from report_deliveries where report = 'daily_review' "
                    "and period_key in :keys").bindparams(sa.bindparam("keys", expanding=True)),
            {"keys": keys},
        ).all()
    eng.dispose()
    assert set(BACKFILL_DAYS) | set(NATIVE_DAYS) <= days
    assert {date(2026, 10, 26), date(2026, 11, 2), date(2026, 11, 16)} <= weeks
    assert all(trades[d] and trades[d] > 0 for d in BACKFILL_DAYS + NATIVE_DAYS)
    # backfill runs never post to Slack by default (Slack is configured: the fake): the
    # ten days' reviews went to the outbox only
    assert sorted(posted) == sorted(("outbox", k) for k in keys)
