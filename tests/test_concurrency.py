"""Overlapping runs on one warehouse (issue: operated day after day). Every write
transaction takes the warehouse's write lock (kaizen.warehouse.writing), and a run's hot
path runs no DDL, so:

- two overlapping backfills at once leave what one clean run leaves (before, a
  concurrent re-load of the same slice hit the primary key and quarantined good rows
  as "already loaded for another day", and KPIs were computed on half-replaced data);
- two runs of the same day, their tasks interleaved, finish without deadlock (before:
  ``drop view if exists v_scorecard`` in each run's prepare_warehouse deadlocked).

The runs are threads of this process, each with its own connections — as two Airflow
workers would be, each with its own."""

from __future__ import annotations

import threading
from datetime import date

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import pipeline, warehouse

FIRST, LAST = date(2026, 9, 21), date(2026, 10, 9)
STAMPS = {"run_id", "computed_at", "loaded_at", "quarantined_at"}


def _state(engine) -> dict:
    out = {}
    with engine.connect() as c:
        for table in ("kpi_values", "raw_trades", "raw_orders", "quarantine", "fct_trading_day", "fct_probe_slot"):
            result = c.execute(sa.text(f"select * from {table}"))
            keep = [i for i, k in enumerate(result.keys()) if k not in STAMPS]
            out[table] = sorted(tuple(str(r[i]) for i in keep) for r in result.tuples())
    return out


def _together(*jobs) -> None:
    """Run the jobs at once (released by one barrier); re-raise the first error."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a run is still waiting: deadlock"
    if errors:
        raise errors[0]


def test_two_overlapping_backfills_at_once_equal_one_clean_run(rebuilt):
    before = _state(rebuilt)
    assert len(before["kpi_values"]) > 500 and before["raw_trades"]
    _together(lambda: pipeline.rebuild(FIRST, date(2026, 10, 2), "a"),
              lambda: pipeline.rebuild(date(2026, 9, 28), LAST, "b"))
    assert _state(rebuilt) == before


def test_two_runs_of_the_same_day_finish_without_deadlock(rebuilt):
    before = _state(rebuilt)
    day = date(2026, 10, 7)
    assert cal.is_trading_day(day)

    def daily_run(name: str):
        def run():  # the daily DAG's tasks, in its order (each its own transaction)
            pipeline.prepare_warehouse()
            for source in pipeline.SOURCES:
                pipeline.extract_source(source, day, name)
            pipeline.compute_day_kpis(day, name)
            pipeline.compute_rollups_to_date(day, name)
        return run

    _together(daily_run("run-1"), daily_run("run-2"))
    assert _state(rebuilt) == before


def test_the_hot_path_runs_no_ddl(rebuilt):
    """prepare_warehouse on an up-to-date warehouse reads its schema version and stops."""
    statements: list[str] = []

    def seen(conn, cursor, statement, *rest):
        statements.append(statement)

    sa.event.listen(rebuilt, "before_cursor_execute", seen)
    try:
        pipeline.prepare_warehouse()
    finally:
        sa.event.remove(rebuilt, "before_cursor_execute", seen)
    ddl = [s for s in statements if s.split()[0].lower() in ("create", "drop", "alter", "comment")]
    assert ddl == [] and any(warehouse.SCHEMA_TABLE in s for s in statements)
