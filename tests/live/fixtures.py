"""The one Airflow stack every live test shares (a pytest plugin: a live test module
says ``pytest_plugins = ["live.fixtures"]``; the fixture is session-scoped, so the
stack starts once however many live modules run).

The stack (kaizen.localstack): api-server, scheduler, dag-processor, triggerer and two
Celery workers — ``w1`` on Airflow's ``default`` queue, ``w2`` on the deliver queue
``kaizen_deliver`` (``KAIZEN_DELIVER_QUEUE``), so every task that talks to Slack runs
on w2 and everything else on w1: render and deliver land on different workers by
construction, not by chance. Redis 127.0.0.1:6379 is the broker (a database number of
its own), PostgreSQL the metadata database and result backend (a throwaway database),
the warehouse is the session's PostgreSQL database, Slack is the local fake
(tests/fakes/slack.py) and the sources are a month of demo data ending 2026-11-27.

Two hosts, no shared disk: each worker has its own ``KAIZEN_OUT_DIR`` and
``KAIZEN_DATA_DIR``, and (where the kernel lets us, as root here) that directory is a
tmpfs private to the worker's mount namespace, so a local path one worker writes does
not exist for the other. ``KAIZEN_ARTIFACT_ROOT`` is one ``file://`` directory both
see: the bucket. At the end every process is stopped and the session fails if any is
left behind."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from kaizen import localstack

DEMO_END = date(2026, 11, 27)
DELIVER_QUEUE = "kaizen_deliver"
CHANNELS = {"daily": "C0DAILY01", "reviews": "C0REVIEW1", "ops": "C0OPS0001"}
# DAGs the live tests run; the others stay paused (no scheduled runs of their own)
DAGS = ("kaizen_backfill", "daily_review", "weekly_review")


@dataclass
class Live:
    stack: localstack.LocalStack
    root: Path
    pg_url: str  # the warehouse
    slack: object  # fakes.slack.FakeSlack
    workers: dict[str, localstack.Worker]
    isolated: bool  # each worker's KAIZEN_OUT_DIR private to it (mount namespace)
    artifact_root: Path
    started_in_s: float


def _timed(durations: dict, key: str, t0: float) -> float:
    durations[key] = round(time.monotonic() - t0, 1)
    return time.monotonic()


@pytest.fixture(scope="session")
def live(tmp_path_factory, pg_url):
    import sqlalchemy as sa

    from fakes.slack import FakeSlack
    from kaizen.demo import generate

    t0 = t = time.monotonic()
    durations: dict[str, float] = {}
    root = tmp_path_factory.mktemp("live")
    generate(end=DEMO_END, months=1, seed=3, out_dir=root / "demo", trades_per_day=40)
    u = sa.engine.make_url(pg_url)
    slack = FakeSlack().start()
    isolated = localstack.can_isolate()
    workers = {}
    for name, queues, concurrency in (("w1", ("default",), 2), ("w2", (DELIVER_QUEUE,), 1)):
        host = root / "hosts" / name
        workers[name] = localstack.Worker(
            name,
            queues,
            concurrency,
            env={"KAIZEN_OUT_DIR": str(host / "out"), "KAIZEN_DATA_DIR": str(host / "data")},
            private_dirs=(host,) if isolated else (),
        )
        host.mkdir(parents=True)
    env = {
        "KAIZEN_SOURCES": "demo",
        "KAIZEN_DEMO_DIR": str(root / "demo"),
        "KAIZEN_OUT_DIR": str(root / "out"),
        "KAIZEN_DATA_DIR": str(root / "data"),
        "KAIZEN_ARTIFACT_ROOT": (root / "bucket").as_uri(),
        "KAIZEN_DELIVER_QUEUE": DELIVER_QUEUE,
        "KAIZEN_SLACK_DAILY_CHANNEL": CHANNELS["daily"],
        "KAIZEN_SLACK_REVIEWS_CHANNEL": CHANNELS["reviews"],
        "KAIZEN_SLACK_OPS_CHANNEL": CHANNELS["ops"],
        "AIRFLOW_CONN_KAIZEN_WAREHOUSE": json.dumps(
            {"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username, "schema": u.database}
        ),
        "AIRFLOW_CONN_KAIZEN_SLACK": json.dumps(
            {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": slack.base_url}}
        ),
    }
    (root / "bucket").mkdir()
    t = _timed(durations, "demo data", t)
    # the metadata DB on PostgreSQL, as in production: on SQLite the scheduler of a
    # multi-process stack dies now and then on a native backfill (AIRFLOW_NOTES)
    from conftest import PG_ADMIN_URL

    meta = f"kaizen_live_meta_{uuid.uuid4().hex[:10]}"
    redis_db = localstack.claim_redis_db()
    stack = None
    try:
        meta_url = localstack.create_database(meta, PG_ADMIN_URL)
        stack = localstack.LocalStack(
            root / "airflow",
            env,
            metadata_url=meta_url,
            workers=workers.values(),
            broker_url=f"{localstack.REDIS_URL}/{redis_db}",
            parallelism=4,
        )
        stack.migrate()
        t = _timed(durations, "db migrate", t)
        stack.start(migrate=False)
        t = _timed(durations, "start", t)
        stack.import_pools()
        for dag_id in DAGS:
            stack.unpause(dag_id)
        _timed(durations, "pools, DAGs parsed", t)
        yield Live(stack, root, pg_url, slack, workers, isolated, root / "bucket", round(time.monotonic() - t0, 1))
    finally:
        left = []
        if stack is not None:
            t = time.monotonic()
            stack.stop()
            left = stack.leftovers()
            durations["stop"] = round(time.monotonic() - t, 1)
        localstack.release_redis_db(redis_db)
        localstack.drop_database(meta, PG_ADMIN_URL)
        slack.stop()
        print(f"\nlive stack timings (s): {durations}; stop by process: {stack and stack.stopped_in_s}")
        assert left == [], f"processes left behind by the live stack: {left}"


def pytest_collection_modifyitems(config, items):
    """The browser tests look at what the other live tests ran: they go last."""
    items.sort(key=lambda item: Path(str(item.fspath)).name == "test_browser.py")


def run_ok(live: Live, dag_id: str, conf: dict, timeout: float = 300) -> tuple[dict, list[dict]]:
    """Trigger ``dag_id`` with ``conf``, wait for it; the run and its task instances."""
    run = live.stack.trigger(dag_id, conf, run_id=f"live__{dag_id}__{uuid.uuid4().hex[:8]}")
    run = live.stack.wait_run(dag_id, run["dag_run_id"], timeout)
    return run, live.stack.task_instances(dag_id, run["dag_run_id"])


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
