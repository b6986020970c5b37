"""``kpi_values`` of the demo warehouse equal the committed snapshot, on SQLite and
PostgreSQL: every column but ``computed_at`` and ``run_id``, floats exactly.

The snapshot (tests/data/kpi_values_demo.csv.gz, 3,198 rows) was taken with the code of
2026-12-04 before the facts refactor; ``make snapshot-check`` does the same for the
benchmark's year (tests/data/kpi_values_year.csv.gz, 12,363 rows). A deliberate
semantic change rewrites the snapshot in the same commit and names the change.

Rewritten since: a period that starts before the history begins is never complete
(``is_complete`` of the 3 periods overlapping each history's start — 117 rows in each
snapshot — became false; nothing else changed, on either snapshot).

Rewritten again (coverage and observed spans; demo 145 of 3,198 rows, year 168 of
12,363; no ``is_complete`` changed — every period of a one-shot rebuild is covered):
- the 3 periods overlapping each history's start take their rates over the span
  observed: average daily P&L, deployments per business day, alerts per day, error
  budget (15 rows each); staleness judged over the observed minutes;
- MTBF counts only the observed window in its trailing 90 days (every grain within
  90 days of the history's start: 77 demo rows, 81 year rows);
- trends of the later periods that look back to those values;
- a bad latency bucket quarantines its whole minute: the demo's one bad sample (27 Nov)
  moves ``sli_p95_latency_ms`` of that day, week, month and quarter (4 rows each).

Additions since (no existing row changed; checked by filtering the new snapshot to the
old KPI ids): the cost KPIs from the demo's AWS bill (``infra_cost_inr``,
``infra_cost_per_day_inr``, ``infra_cost_per_trade_inr``, ``roi``: their week, month and
quarter rows: 80 demo rows, 3,278 in all; 284 year rows, 12,647 in all).

Extended (the team metrics, issue 17: kaizen.team): the rows of the eight team KPIs were
added — 56 demo rows, 3,334 in all; 179 year rows, 12,826 in all — and no earlier row
changed (compared filtered to the earlier KPI ids)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

import kpi_snapshot

END, MONTHS, SEED = date(2026, 11, 27), 3, 42
ENV_KEYS = ("KAIZEN_SOURCES", "KAIZEN_DEMO_DIR", "KAIZEN_DATA_DIR", "KAIZEN_OUT_DIR", "AIRFLOW_CONN_KAIZEN_WAREHOUSE")


@pytest.fixture
def own_pg_database(request):
    """A PostgreSQL database of its own (the session's is shared with other tests)."""
    request.getfixturevalue("pg_url")  # fails under CI=true when PostgreSQL is missing
    from conftest import PG_ADMIN_URL, _pg_admin_engine

    name = f"kaizen_snap_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin_engine()
    with admin.connect() as c:
        c.exec_driver_sql(f'create database "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.exec_driver_sql(f'drop database if exists "{name}" with (force)')
    admin.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_demo_kpi_values_equal_the_snapshot(dialect, request, monkeypatch):
    from kaizen.warehouse import _engine_for

    url = request.getfixturevalue("own_pg_database") if dialect == "postgres" else None
    for key in ENV_KEYS:
        monkeypatch.setenv(key, "")  # build() sets them; the test's end restores them
    _engine_for.cache_clear()
    try:
        rows = kpi_snapshot.build(END, MONTHS, SEED, None, url)
    finally:
        _engine_for.cache_clear()
    expected = kpi_snapshot.read(kpi_snapshot.DATA / "kpi_values_demo.csv.gz")
    assert len(expected) == 3334
    assert kpi_snapshot.diff(expected, rows) == []
