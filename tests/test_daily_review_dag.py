"""daily_review end to end with dag.test(): demo sources → landing tables → day KPIs →
the daily review → a local fake Slack Web API reached through a real Slack connection
(`base_url` extra). Then the same day again: no second post, identical tables."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from fakes.slack import FakeSlack
from kaizen import calendar as cal
from kaizen.pipeline import SOURCES

pytestmark = pytest.mark.dag

DAY = date(2026, 11, 27)  # a Friday; its review window starts Thu 26 Nov 16:00 IST
CHANNEL = "C0DAILY01"
REVIEWS = "C0REVIEW1"


def daily(calls):
    """The calls to the daily channel (the demo's ended A/B experiments post their
    readouts to the reviews channel)."""
    return [c for c in calls if c.body.get("channel") == CHANNEL]


def _snapshot(url: str) -> dict:
    eng = sa.create_engine(url)
    out = {}
    with eng.connect() as c:
        for table, order in [
            ("raw_trades", "trade_id"),
            ("raw_orders", "order_id"),
            ("raw_probe_minutes", "instance, ts"),
            ("raw_latency_buckets", "ts"),
            ("raw_error_minutes", "ts"),
            ("raw_deployments", "deployment_id"),
            ("raw_incidents", "incident_id"),
            ("raw_alerts", "alert_id"),
            ("quarantine", "source, record_key, reason"),
            ("kpi_values", "kpi_id, grain, period_start"),
        ]:
            rows = c.execute(sa.text(f"select * from {table} order by {order}")).mappings().all()
            # run ids and load times differ between runs by design; everything else must not
            out[table] = [
                {
                    k: v
                    for k, v in r.items()
                    if k not in {"run_id", "loaded_at", "quarantined_at", "computed_at"}
                }
                for r in rows
            ]
    eng.dispose()
    return out


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    from kaizen.demo import generate

    root = tmp_path_factory.mktemp("daily_dag")
    demo = root / "demo"
    generate(end=DAY, months=1, seed=7, out_dir=demo, trades_per_day=120)
    return root


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_daily_review_posts_once_and_is_idempotent(demo_env, dialect, monkeypatch, request):
    from kaizen.cli import dag_for_test

    if dialect == "sqlite":
        url = f"sqlite:///{demo_env / 'warehouse.db'}"
        conn = {"conn_type": "sqlite", "host": str(demo_env / "warehouse.db")}
    else:
        url = request.getfixturevalue("pg_url")
        u = sa.engine.make_url(url)
        # the session's database: start from empty tables, whatever ran before in this
        # process (another test's ledger rows would make this run "revise" their reviews)
        with sa.create_engine(url).begin() as c:
            tables = [r[0] for r in c.exec_driver_sql("select tablename from pg_tables where schemaname = 'public'")]
            if tables:
                c.exec_driver_sql("truncate " + ", ".join(tables))
        conn = {
            "conn_type": "postgres",
            "host": u.host,
            "port": u.port,
            "login": u.username,
            "schema": u.database,
        }
    with FakeSlack() as slack:
        monkeypatch.setenv("KAIZEN_SOURCES", "demo")
        monkeypatch.setenv("KAIZEN_DEMO_DIR", str(demo_env / "demo"))
        monkeypatch.setenv("KAIZEN_OUT_DIR", str(demo_env / f"out-{dialect}"))
        monkeypatch.setenv("KAIZEN_SLACK_DAILY_CHANNEL", CHANNEL)
        monkeypatch.setenv("KAIZEN_SLACK_REVIEWS_CHANNEL", REVIEWS)  # the demo's A/B readouts go there
        monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps(conn))
        monkeypatch.setenv(
            "AIRFLOW_CONN_KAIZEN_SLACK",
            json.dumps(
                {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": slack.base_url}}
            ),
        )
        dag = dag_for_test("daily_review")
        at = cal.ist_datetime(DAY, cal.REVIEW_TIME)

        run = dag.test(logical_date=at, run_after=at)
        assert "success" in str(run.state)
        posts = daily(slack.calls_to("chat.postMessage"))
        assert len(posts) == 1
        # the demo's two A/B experiments have ended by this day: one readout each, in the
        # reviews channel, with the planted verdicts
        readouts = [c for c in slack.top_level_posts() if c.body["channel"] == REVIEWS]
        heads = sorted(c.body["blocks"][0]["text"]["text"] for c in readouts)
        assert len(heads) == 2 and heads[0].startswith("🧪 A/B readout — entry-filter") \
            and heads[1].startswith("🧪 A/B readout — sl-2pct"), heads
        body = posts[0].body
        assert body["channel"] == CHANNEL
        blocks = body["blocks"]
        assert blocks[0]["type"] == "header" and "27 Nov 2026" in blocks[0]["text"]["text"]
        text = json.dumps(blocks, ensure_ascii=False)
        # user-visible "&" arrives escaped as Slack requires
        for label in ("Trades", "Win Rate", "P&amp;L", "Largest Win", "Largest Loss", "Uptime", "Errors", "Alerts"):
            assert label in text, label
        first = _snapshot(url)
        kpis = {r["kpi_id"]: r for r in first["kpi_values"] if r["grain"] == "day"}
        # the day's trade rows as the generator wrote them, less its deliberately bad ones
        manifest = json.loads((demo_env / "demo" / "manifest.json").read_text())
        day_counts = manifest["per_day"][DAY.isoformat()]
        bad = [b for b in manifest["bad_records"] if b["source"] == "trades" and b.get("day") == DAY.isoformat()]
        assert len(bad) == 3
        assert kpis["trades_count"]["value"] == day_counts["trades"] - len(bad)
        assert f"{int(kpis['trades_count']['value']):,}" in text
        # every deliberately bad record of the day is in the quarantine, with a reason
        quarantined = {(r["source"], r["record_key"]): r["reason"] for r in first["quarantine"]}
        for b in manifest["bad_records"]:
            if b.get("day") == DAY.isoformat():
                assert quarantined.get((b["source"], b["key"])), b

        daily_tab = json.loads((demo_env / f"out-{dialect}" / "sheets" / "Daily.json").read_text())
        assert [r[0] for r in daily_tab["rows"]] == [DAY.isoformat()]
        col = daily_tab["header"].index("trades_count")
        assert daily_tab["rows"][0][col] == kpis["trades_count"]["value"]  # a number, not text

        run = dag.test(logical_date=at, run_after=at)
        assert "success" in str(run.state)
        assert len(daily(slack.calls_to("chat.postMessage"))) == 1, "a re-run must not post again"
        assert len([c for c in slack.top_level_posts() if c.body["channel"] == REVIEWS]) == 2
        assert slack.calls_to("chat.update") == []  # nor revise the readouts: nothing changed
        again = json.loads((demo_env / f"out-{dialect}" / "sheets" / "Daily.json").read_text())
        assert again["rows"] == daily_tab["rows"]
        assert daily(slack.calls_to("chat.update")) == []
        assert _snapshot(url) == first


@pytest.fixture
def prometheus_down(demo_env, tmp_path, monkeypatch):
    """daily_review on the demo sources, a SQLite warehouse and the fake Slack, with
    Prometheus refusing connections (a port nothing listens on) and every task's
    retries spent at once; ``recover()`` brings Prometheus back. The HTTP client's own
    back-off waits are recorded in ``waits``."""
    import socket
    from types import SimpleNamespace

    from kaizen import dag_defaults
    from kaizen.cli import dag_for_test
    from kaizen.sources import http, prometheus

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    demo_transport = prometheus.default_transport
    monkeypatch.setattr(prometheus, "default_transport",
                        lambda: prometheus.http_transport(f"http://127.0.0.1:{dead}"))
    waits = []
    monkeypatch.setattr(http, "_sleep", waits.append)
    monkeypatch.setitem(dag_defaults.DEFAULT_ARGS, "retries", 0)
    db = tmp_path / "w.db"
    with FakeSlack() as slack:
        monkeypatch.setenv("KAIZEN_SOURCES", "demo")
        monkeypatch.setenv("KAIZEN_DEMO_DIR", str(demo_env / "demo"))
        monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
        monkeypatch.setenv("KAIZEN_SLACK_DAILY_CHANNEL", CHANNEL)
        monkeypatch.setenv("KAIZEN_SLACK_REVIEWS_CHANNEL", REVIEWS)  # the demo's A/B readouts go there
        monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)}))
        monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_SLACK", json.dumps(
            {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": slack.base_url}}))
        yield SimpleNamespace(
            dag=dag_for_test("daily_review"), slack=slack, db=db, waits=waits,
            recover=lambda: monkeypatch.setattr(prometheus, "default_transport", demo_transport))


def test_prometheus_down_posts_unavailable_then_the_recovery_revises_the_same_message(
        prometheus_down):
    """Prometheus unreachable for the whole run (its retries spent): the review still
    posts, the system section says "unavailable: prometheus (…)", the trading figures
    are there, and the run fails at check_sources. Prometheus back, the day re-run:
    the same message is updated in place (one chat.update, one revision note in its
    thread, no second top-level post), the outage is marked recovered and the run succeeds."""
    env = prometheus_down
    slack, dag, db, waits = env.slack, env.dag, env.db, env.waits
    at = cal.ist_datetime(DAY, cal.REVIEW_TIME)

    run = dag.test(logical_date=at, run_after=at)
    states = {ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": str(ti.state)
              for ti in run.get_task_instances()}
    assert "failed" in str(run.state)
    assert sorted(t for t, s in states.items() if s != "success") == [
        "check_sources", f"extract_source[{SOURCES.index('prometheus')}]"]
    assert states["post_daily_review"] == "success"
    assert len(waits) == 4  # 5 attempts by the HTTP client, then the task gave up
    posts = daily(slack.calls_to("chat.postMessage"))
    assert len(posts) == 1
    system = next(b for b in posts[0].body["blocks"] if b.get("block_id") == "system")["text"]["text"]
    assert ":warning: unavailable: prometheus (Prometheus GET /api/v1/query_range still failing after 5" in system
    assert "Uptime (24×7): *unavailable*" in system
    trading = next(b for b in posts[0].body["blocks"] if b.get("block_id") == "trading")["text"]["text"]
    assert "unavailable" not in trading and "Trades: *" in trading
    with sa.create_engine(f"sqlite:///{db}").connect() as c:
        assert c.exec_driver_sql("select source, attempts from source_outages").all() == [("prometheus", 1)]
    ts = posts[0].response["ts"]

    env.recover()  # Prometheus is back
    run = dag.test(logical_date=at, run_after=at)
    assert "success" in str(run.state)
    assert len(daily(slack.top_level_posts())) == 1  # still the one message
    updates = daily(slack.calls_to("chat.update"))
    assert len(updates) == 1 and updates[0].body["ts"] == ts
    system = next(b for b in updates[0].body["blocks"] if b.get("block_id") == "system")["text"]["text"]
    assert "unavailable" not in system and "Uptime (24×7): *100.00 %*" in system
    notes = [c for c in daily(slack.thread_replies()) if c.body["thread_ts"] == ts]
    assert len(notes) == 1 and notes[0].body["text"].startswith("Revised:")
    with sa.create_engine(f"sqlite:///{db}").connect() as c:  # kept as history, recovered
        assert c.exec_driver_sql("select source, attempts, recovered_run_id is not null "
                                 "from source_outages").all() == [("prometheus", 1, 1)]


def test_the_next_days_run_lands_what_prometheus_missed_and_revises_that_days_review(prometheus_down):
    """Prometheus down for Thursday's run: Thursday's review posts with "unavailable".
    Friday's run, Prometheus back, lands Thursday's window too, recomputes Thursday and
    updates Thursday's message in place; Friday's review is its own, new message."""
    from datetime import timedelta

    thursday = DAY - timedelta(days=1)
    env = prometheus_down
    slack, dag, db = env.slack, env.dag, env.db
    at = cal.ist_datetime(thursday, cal.REVIEW_TIME)
    assert "failed" in str(dag.test(logical_date=at, run_after=at).state)
    [thursday_post] = daily(slack.top_level_posts())
    assert "unavailable: prometheus" in json.dumps(thursday_post.body["blocks"])

    env.recover()
    at = cal.ist_datetime(DAY, cal.REVIEW_TIME)
    run = dag.test(logical_date=at, run_after=at)
    assert "success" in str(run.state)
    posts = daily(slack.top_level_posts())
    assert len(posts) == 2 and "27 Nov 2026" in posts[1].body["blocks"][0]["text"]["text"]
    [update] = daily(slack.calls_to("chat.update"))
    assert update.body["ts"] == thursday_post.response["ts"]
    assert "unavailable" not in json.dumps(update.body["blocks"])
    assert "26 Nov 2026" in update.body["blocks"][0]["text"]["text"]
    [note] = daily(slack.thread_replies())
    assert note.body["thread_ts"] == thursday_post.response["ts"] and note.body["text"].startswith("Revised:")
    eng = sa.create_engine(f"sqlite:///{db}")
    with eng.connect() as c:
        assert c.exec_driver_sql("select day, recovered_run_id from source_outages").all() == [
            (thursday.isoformat(), run.run_id)]
        # Thursday's figures are computed from its landed window, as a clean run would
        uptime = c.exec_driver_sql("select value, status from kpi_values where kpi_id = 'uptime_pct' and "
                                   f"grain = 'day' and period_start = '{thursday}'").one()
        assert uptime.value is not None and uptime.status != "stale"
        probes = c.exec_driver_sql("select count(*) from raw_probe_minutes where ts >= '2026-11-25 10:30' "
                                   "and ts < '2026-11-26 10:30'").scalar()
        assert probes == 1440
    eng.dispose()
