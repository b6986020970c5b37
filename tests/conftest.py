"""Shared fixtures. Warehouse tests run on SQLite and on PostgreSQL; each test
session makes its own PostgreSQL database and drops it at the end. Under CI=true a
missing PostgreSQL fails the run instead of skipping."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "tests"))

from kaizen import config as _config  # noqa: E402

_config.local_airflow_defaults()  # the Makefile's Airflow settings, so plain `pytest` works too


def _own_airflow_db_per_worker() -> None:
    """Under pytest-xdist (``make test`` runs two workers), each worker gets its own copy
    of the migrated Airflow metadata database: two ``dag.test()`` runs of one DAG and day
    would otherwise collide in one SQLite file (locks, the same run id). Done before
    anything imports airflow, which reads its settings at import time."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    import sqlite3

    source = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    home = Path(os.environ["AIRFLOW_HOME"]) / f"xdist-{worker}"
    home.mkdir(parents=True, exist_ok=True)
    target = home / "airflow.db"
    target.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)  # a consistent copy even of a database in WAL mode
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{target}"


_own_airflow_db_per_worker()

PG_ADMIN_URL = os.environ.get("KAIZEN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_admin_engine():
    import sqlalchemy as sa

    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_url():
    """URL of a fresh PostgreSQL database for this test session."""
    import sqlalchemy as sa

    name = f"kaizen_test_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin_engine()
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'create database "{name}"')
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI=true and is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    from kaizen.warehouse import _engine_for

    _engine_for.cache_clear()
    sa.create_engine(url).dispose()
    with admin.connect() as c:
        c.exec_driver_sql(f'drop database if exists "{name}" with (force)')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    """An empty warehouse with the DDL applied, on each dialect. PostgreSQL tables are
    emptied per test (the database itself is per session)."""
    import sqlalchemy as sa

    from kaizen import warehouse

    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
        warehouse.apply_ddl(eng)
        yield eng
        eng.dispose()
        return
    url = request.getfixturevalue("pg_url")
    eng = sa.create_engine(url)
    warehouse.apply_ddl(eng)
    with eng.begin() as c:
        tables = [r[0] for r in c.exec_driver_sql("select tablename from pg_tables where schemaname = 'public'")]
        if tables:
            c.exec_driver_sql("truncate " + ", ".join(tables))
    yield eng
    eng.dispose()


@pytest.fixture
def waits(monkeypatch):
    """The source HTTP client's back-off sleeps, recorded instead of slept."""
    from kaizen.sources import http

    slept: list[float] = []
    monkeypatch.setattr(http, "_sleep", slept.append)
    return slept


@pytest.fixture(scope="session")
def range_demo(tmp_path_factory):
    """Two months of demo sources (40 trades a day) ending 2026-10-09: the range
    rebuild tests run 21 Sep – 9 Oct across a quarter boundary."""
    from datetime import date

    from kaizen.demo import generate

    out = tmp_path_factory.mktemp("range-demo")
    generate(end=date(2026, 10, 9), months=2, seed=11, out_dir=out, trades_per_day=40)
    return out


RANGE_FIRST, RANGE_LAST = (__import__("datetime").date(2026, 9, 21), __import__("datetime").date(2026, 10, 9))
KEEP_TABLES = {"kaizen_schema", "kpi_definitions"}  # what prepare_warehouse writes


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rebuilt_range_conn(request, range_demo, tmp_path_factory):
    """A warehouse rebuilt for 21 Sep – 9 Oct 2026 from ``range_demo``, once per test
    module and dialect: the tests that use it (through ``rebuilt``) must leave it as
    they found it — which is what they assert."""
    import sqlalchemy as sa

    from kaizen import pipeline

    if request.param == "sqlite":
        conn = {"conn_type": "sqlite", "host": str(tmp_path_factory.mktemp("rebuilt") / "w.db")}
    else:
        u = sa.engine.make_url(request.getfixturevalue("pg_url"))
        conn = {"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username, "schema": u.database}
    with pytest.MonkeyPatch.context() as mp:
        engine = use_demo(mp, range_demo, conn)
        pipeline.prepare_warehouse()
        with engine.begin() as c:  # the session's PostgreSQL database: start from empty tables
            for table in sorted(set(sa.inspect(c).get_table_names()) - KEEP_TABLES):
                c.exec_driver_sql(f"delete from {table}")
        pipeline.rebuild(RANGE_FIRST, RANGE_LAST, "clean")
    return conn


@pytest.fixture
def rebuilt(rebuilt_range_conn, range_demo, monkeypatch):
    """The module's rebuilt warehouse (see ``rebuilt_range_conn``), the pipeline pointed at it."""
    return use_demo(monkeypatch, range_demo, rebuilt_range_conn)


def use_demo(monkeypatch, demo, conn: dict):
    """Point the pipeline at the demo sources in ``demo`` and the warehouse ``conn``."""
    import json

    from kaizen import warehouse

    monkeypatch.setenv("KAIZEN_SOURCES", "demo")
    monkeypatch.setenv("KAIZEN_DEMO_DIR", str(demo))
    monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps(conn))
    return warehouse.get_engine()
