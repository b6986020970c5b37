"""No secret leaks (issue 14, acceptance "Secrets"): with a distinctive token as the
secret of every connection Kaizen uses — the warehouse on PostgreSQL with a password
(trust authentication accepts any), the trading database, Prometheus, GitHub,
PagerDuty, Slack, the Sheets service-account key and SMTP — ``python -m kaizen demo``
runs as a subprocess (demo sources, every report through Airflow's ``dag.test()``),
and ``daily_review`` runs in this process through ``dag.test()`` with *live* sources
against the local fakes (every token sent where it belongs). Then none of the tokens
is found in: the subprocess's stdout and stderr, this process's output (``dag.test()``
writes the task logs there), files under ``AIRFLOW_HOME/logs`` written meanwhile,
every file under the out folders, the Airflow metadata database (XComs, rendered
fields), any text of any row of any warehouse table, or anything posted to Slack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import PG_ADMIN_URL, REPO, _pg_admin_engine
from fakes.github import FakeGitHub
from fakes.pagerduty import FakePagerDuty
from fakes.prometheus import FakePrometheus
from fakes.sheets import FakeSheetsServer
from fakes.slack import FakeSlack
from kaizen import calendar as cal
from source_wire import (
    DAY,
    ORDERS,
    TRADES,
    create_pg_trading_tables,
    github_data,
    issues_data,
    pagerduty_data,
    prom_series,
)
from source_wire import (
    REPO as GITHUB_REPO,
)

pytestmark = pytest.mark.dag

DEMO_DAY = date(2026, 11, 27)
SPREADSHEET = "1SekritTestSpreadsheet"
CHANNELS = {"KAIZEN_SLACK_DAILY_CHANNEL": "C0DAILY01", "KAIZEN_SLACK_REVIEWS_CHANNEL": "C0REVIEW1",
            "KAIZEN_SLACK_OPS_CHANNEL": "C0OPS0001"}


def _database(name: str) -> str:
    admin = _pg_admin_engine()
    with admin.connect() as c:
        c.exec_driver_sql(f'create database "{name}"')
    admin.dispose()
    return name


def _drop(name: str) -> None:
    admin = _pg_admin_engine()
    with admin.connect() as c:
        c.exec_driver_sql(f'drop database if exists "{name}" with (force)')
    admin.dispose()


def _pg(db: str, password: str) -> dict:
    u = sa.engine.make_url(PG_ADMIN_URL)
    return {"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username,
            "password": password, "schema": db}


def _service_account_key(token_uri: str, key_id: str) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "kaizen-test", "private_key_id": key_id,
            "private_key": pem, "client_email": "kaizen-sheets@kaizen-test.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": token_uri}


def _fill_trading_db(db: str) -> None:
    eng = sa.create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}")
    with eng.begin() as c:
        create_pg_trading_tables(c)
        c.execute(sa.text("insert into trades values (:trade_id, :symbol, :side, :quantity, :entry_time,"
                          " :exit_time, :entry_price, :exit_price, :fees, :net_pnl, :strategy, :ab_arm)"), TRADES)
        c.execute(sa.text("insert into orders values (:order_id, :trade_id, :symbol, :side, :quantity, :status,"
                          " :submitted_at, :filled_at, :fill_price)"), ORDERS)
    eng.dispose()


def _warehouse_hits(db: str, needle: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per table of ``db``: its rows, and the rows whose text (every column) holds ``needle``."""
    eng = sa.create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}")
    sizes, hits = {}, {}
    with eng.connect() as c:
        tables = [r[0] for r in c.exec_driver_sql(
            "select tablename from pg_tables where schemaname = 'public' order by tablename")]
        for t in tables:
            sizes[t] = c.exec_driver_sql(f'select count(*) from "{t}"').scalar()
            hits[t] = c.execute(sa.text(f'select count(*) from "{t}" r where r::text like :p'),
                                {"p": f"%{needle}%"}).scalar()
    eng.dispose()
    return sizes, hits


def _files_with(root: Path, needles: list[bytes], newer_than: float | None = None) -> tuple[int, list[str]]:
    """(files read, files holding any of ``needles``) under ``root``."""
    n, found = 0, []
    for p in sorted(root.rglob("*")) if root.exists() else []:
        if not p.is_file() or (newer_than is not None and p.stat().st_mtime < newer_than):
            continue
        n += 1
        data = p.read_bytes()
        if any(x in data for x in needles):
            found.append(str(p))
    return n, found


def test_no_connection_secret_reaches_output_logs_files_or_the_warehouse(tmp_path, monkeypatch, capfd):
    started = time.time()
    base = f"sekrit-{uuid.uuid4().hex}"
    names = ("warehouse", "trading", "prometheus", "github", "pagerduty", "slack", "gsheets", "smtp")
    token = {n: f"{base}-{n}" for n in names}
    suffix = uuid.uuid4().hex[:10]
    (tmp_path / "cli").mkdir()
    dbs = {"cli": f"kaizen_secrets_cli_{suffix}", "dag": f"kaizen_secrets_dag_{suffix}",
           "trading": f"kaizen_secrets_trading_{suffix}"}
    for db in dbs.values():
        _database(db)
    try:
        _fill_trading_db(dbs["trading"])
        deps, statuses, compares = github_data()
        with FakeSlack(token=token["slack"]) as slack, \
                FakeSheetsServer(require_token="ya29.access") as sheets, \
                FakePrometheus(_prom_by_query(), token=token["prometheus"]) as prom, \
                FakeGitHub(GITHUB_REPO, deps, statuses, compares, token=token["github"],
                           issues=issues_data()) as gh, \
                FakePagerDuty(*pagerduty_data(), token=token["pagerduty"]) as pd:
            sheets.create_spreadsheet(SPREADSHEET)
            key = _service_account_key(sheets.token_uri, key_id=token["gsheets"])
            pem_line = key["private_key"].splitlines()[1]
            conns = {
                "KAIZEN_TRADING_DB": _pg(dbs["trading"], token["trading"]),
                "KAIZEN_PROMETHEUS": {"conn_type": "http", "host": prom.url, "password": token["prometheus"]},
                "KAIZEN_GITHUB": {"conn_type": "http", "host": gh.url, "password": token["github"],
                                  "extra": {"repo": GITHUB_REPO}},
                "KAIZEN_PAGERDUTY": {"conn_type": "http", "host": pd.url, "password": token["pagerduty"]},
                "KAIZEN_SLACK": {"conn_type": "slack", "password": token["slack"],
                                 "extra": {"base_url": slack.base_url}},
                "KAIZEN_GSHEETS": {"conn_type": "google_cloud_platform",
                                   "extra": {"spreadsheet_id": SPREADSHEET, "base_url": sheets.base_url,
                                             "keyfile_dict": json.dumps(key)}},
                "KAIZEN_SMTP": {"conn_type": "smtp", "host": "127.0.0.1", "port": 9, "login": "kaizen",
                                "password": token["smtp"]},
            }
            env_conns = {f"AIRFLOW_CONN_{k}": json.dumps(v) for k, v in conns.items()}

            # 1. the demo command, as `make demo` runs it
            env = {**os.environ, **env_conns, **CHANNELS,
                   "AIRFLOW_CONN_KAIZEN_WAREHOUSE": json.dumps(_pg(dbs["cli"], token["warehouse"])),
                   "KAIZEN_DATA_DIR": str(tmp_path / "cli" / "data"), "KAIZEN_OUT_DIR": str(tmp_path / "cli" / "out"),
                   "KAIZEN_DEMO_DIR": str(tmp_path / "cli" / "demo"), "PYTHONPATH": str(REPO / "plugins")}
            cli = _run_cli(["demo", "--months", "1", "--day", str(DEMO_DAY)], env, tmp_path / "cli")
            assert "warehouse: postgresql+psycopg://postgres:***@" in cli.stdout  # shown, without its password
            posted_by_cli = len(slack.calls_to("chat.postMessage"))
            assert posted_by_cli >= 4  # the daily, weekly, monthly and quarterly reviews

            # 2. daily_review in this process, live sources against the fakes
            for k, v in {**env_conns, **CHANNELS}.items():
                monkeypatch.setenv(k, v)
            monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps(_pg(dbs["dag"], token["warehouse"])))
            monkeypatch.setenv("KAIZEN_SOURCES", "live")
            monkeypatch.setenv("KAIZEN_RETENTION_PROMETHEUS_DAYS", "0")
            monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "dag" / "out"))
            monkeypatch.setenv("KAIZEN_DATA_DIR", str(tmp_path / "dag" / "data"))
            from kaizen.cli import dag_for_test

            at = cal.ist_datetime(DAY, cal.REVIEW_TIME)
            run = dag_for_test("daily_review").test(logical_date=at, run_after=at)
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
            out, err = capfd.readouterr()

            # every secret was used: the grep below means something
            assert len(slack.calls_to("chat.postMessage")) > posted_by_cli, states
            assert {r["headers"]["authorization"] for r in prom.requests} == {f"Bearer {token['prometheus']}"}
            assert gh.requests and pd.requests and sheets.token_requests
            with sa.create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbs['dag']}").connect() as c:
                assert c.exec_driver_sql("select count(*) from raw_trades").scalar() > 0
                assert c.exec_driver_sql("select count(*) from raw_probe_minutes").scalar() > 0
        assert "success" in str(run.state), states

        needles = [base.encode(), pem_line.encode()]
        texts = {"demo stdout": cli.stdout, "demo stderr": cli.stderr, "dag.test stdout": out,
                 "dag.test stderr": err}
        assert len(cli.stdout) > 10_000 and len(out) > 10_000  # the task logs are there
        leaks = {k: v.count(base) + v.count(pem_line) for k, v in texts.items()}
        assert leaks == {k: 0 for k in texts}
        # "***" is what the masker writes in their place
        n_out, found = _files_with(tmp_path, needles)
        assert n_out > 20 and found == []
        airflow_home = Path(os.environ["AIRFLOW_HOME"])
        _n_logs, found = _files_with(airflow_home / "logs", needles, newer_than=started - 1)
        assert found == []
        metadata = [p for p in airflow_home.glob("airflow.db*") if p.is_file()]
        assert [str(p) for p in metadata if any(x in p.read_bytes() for x in needles)] == []
        posted = json.dumps([c.body for c in slack.calls], default=str)
        assert base not in posted
        for name in ("cli", "dag"):
            sizes, hits = _warehouse_hits(dbs[name], base)
            assert sizes["kpi_values"] > 0 and sizes["report_deliveries"] > 0
            assert {t: n for t, n in hits.items() if n} == {}
        assert time.time() - started < 120
    finally:
        from kaizen.warehouse import _engine_for

        _engine_for.cache_clear()
        for db in dbs.values():
            _drop(db)


def _run_cli(args: list[str], env: dict, folder: Path, timeout_s: float = 180) -> subprocess.CompletedProcess:
    """``python -m kaizen <args>``: its stdout and stderr, kept in ``folder``; a failure
    or a hang fails the test with the failed task's traceback."""
    out_path, err_path = folder / "stdout.txt", folder / "stderr.txt"
    with out_path.open("w") as out, err_path.open("w") as err:
        p = subprocess.Popen([sys.executable, "-m", "kaizen", *args], cwd=REPO, env=env, stdout=out, stderr=err)
        try:
            rc = p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
    stdout, stderr = out_path.read_text(), err_path.read_text()
    if rc != 0:
        failed = stdout.find("Task failed with exception")
        pytest.fail(f"python -m kaizen {' '.join(args)} ended with {rc}:\n"
                    f"{stdout[failed:failed + 6000] if failed >= 0 else stdout[-3000:]}\n{stderr[-2000:]}")
    return subprocess.CompletedProcess(p.args, rc, stdout, stderr)


def _prom_by_query() -> dict[str, list[dict]]:
    from kaizen.sources import prometheus

    return {prometheus.QUERIES[name]: s for name, s in prom_series().items()}
