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

pytestmark = pytest.mark.dag

DAY = date(2026, 11, 27)  # a Friday; its review window starts Thu 26 Nov 16:00 IST
CHANNEL = "C0DAILY01"


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
        posts = slack.calls_to("chat.postMessage")
        assert len(posts) == 1
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
        assert len(slack.calls_to("chat.postMessage")) == 1, "a re-run must not post again"
        again = json.loads((demo_env / f"out-{dialect}" / "sheets" / "Daily.json").read_text())
        assert again["rows"] == daily_tab["rows"]
        assert slack.calls_to("chat.update") == []
        assert _snapshot(url) == first
