"""DAG integrity: every DAG file imports, has the expected id, tags and default args,
and serialises (custom timetables registered), and parses fast."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPECTED_DAGS = {"daily_review", "kaizen_backfill", "kaizen_ingest", "weekly_review", "monthly_review", "quarterly_review"}
KNOWN_TAGS = {"kaizen", "review", "daily", "weekly", "monthly", "quarterly", "backfill", "ops", "ingest"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dag_ids(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_conventions(dagbag, dag_id):
    dag = dagbag.get_dag(dag_id)
    assert Path(dag.fileloc).stem == dag_id
    assert dag.tags and set(dag.tags) <= KNOWN_TAGS
    assert dag.doc_md and len(dag.doc_md) > 200
    for t in dag.tasks:
        assert t.retries >= 2, t.task_id
        assert t.execution_timeout is not None, t.task_id
        assert t.retry_exponential_backoff, t.task_id


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_serialises_round_trip(dagbag, dag_id):
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.get_dag(dag_id)
    back = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert type(back.timetable).__name__ == type(dag.timetable).__name__
    if type(dag.timetable).__module__.startswith("kaizen."):
        assert back.timetable.summary == dag.timetable.summary


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (REPO / "dags").glob("*.py")))
def test_dag_file_has_no_heavy_imports(dag_file):
    """Parse cost: importing the DAG file must not import pandas, sqlalchemy & co.
    (Timing itself is measured in bench/, not asserted here.)"""
    code = (
        "import sys, time, importlib.util, airflow.sdk\n"
        f"sys.path.insert(0, {str(REPO / 'plugins')!r})\n"
        "before = set(sys.modules)\n"
        "t = time.perf_counter()\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(REPO / 'dags' / dag_file)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(time.perf_counter() - t)\n"
        "heavy = {'pandas', 'numpy', 'sqlalchemy', 'gspread', 'slack_sdk', 'matplotlib', 'scipy',"
        " 'pandas_market_calendars', 'exchange_calendars', 'jinja2'}\n"
        "print(sorted(heavy & {n.split('.')[0] for n in set(sys.modules) - before}))\n"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "[]", f"{dag_file} imports heavy modules at parse time: {lines[-1]}"
    assert time.perf_counter() - t < 60


def test_dag_source_list_matches_the_sources_package():
    from kaizen import pipeline, sources

    assert pipeline.SOURCES == sources.SOURCES
