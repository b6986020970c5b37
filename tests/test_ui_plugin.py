"""Kaizen in the Airflow UI (kaizen_plugin, kaizen.ui), tested inside Airflow's real API
server app (``create_app("core")``: its auth middlewares, the plugin's app, middleware,
external view and extra link as Airflow registers them) with real JWTs, over a
warehouse seeded by hand on SQLite and PostgreSQL:

- the page and its JSON show the scorecard, the latest review of each cadence with its
  document links, the quarantine count per day and coverage per source — values
  worked out by hand;
- only authenticated Airflow users see them (401/403 otherwise);
- a review run's tasks link to its report (checked through Airflow's extra-links
  endpoint on a real weekly_review run);
- every DAG has a one-line description; grains is a multi-select the schema still checks;
- importing the plugin stays light.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_auth import simple_auth

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = "https://docs.example.test/kaizen/weekly_review/2026-W47/review.html"
LOADED = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """Airflow's API server app, in process, with the test auth."""
    with simple_auth(tmp_path_factory.mktemp("auth")) as tokens:
        from airflow.api_fastapi.app import create_app
        from starlette.testclient import TestClient

        yield TestClient(create_app("core")), tokens


def call(api, path, who=None, via="cookie", method="GET", **kw):
    client, tokens = api
    headers = {}
    if who and via == "cookie":
        headers["Cookie"] = f"_token={tokens[who]}"
    elif who:
        headers["Authorization"] = f"Bearer {tokens[who]}"
    client.cookies.clear()
    return client.request(method, path, headers=headers, **kw)


# ------------------------------------------------------------------ the warehouse, by hand
def _definition(kpi_id, name, domain, unit, better, target, comparator):
    return {"kpi_id": kpi_id, "name": name, "domain": domain, "unit": unit, "better": better, "target": target,
            "comparator": comparator, "neutral_band_pct": 5.0, "min_sample": 1, "formula": "-",
            "conventions": None, "version": 1, "loaded_at": LOADED}


def _value(kpi_id, grain, start, end, value, target, status, trend, complete):
    return {"kpi_id": kpi_id, "grain": grain, "period_start": date.fromisoformat(start),
            "period_end": date.fromisoformat(end), "value": value, "numerator": None, "denominator": None,
            "sample_size": 10, "target": target, "status": status, "trend": trend, "is_complete": complete,
            "computed_at": LOADED, "run_id": "seed"}


def _delivery(report, key, sink, target, status="delivered", version=1, at=LOADED, **where):
    return {"report": report, "period_key": key, "sink": sink, "target": target, "content_hash": "h",
            "channel_id": where.get("channel_id"), "message_ts": where.get("message_ts"), "sheet_range": None,
            "version": version, "status": status, "error": where.get("error"), "first_delivered_at": at,
            "updated_at": at}


def seed(engine) -> None:
    import sqlalchemy as sa

    from kaizen import warehouse

    with engine.begin() as c:
        warehouse.upsert(c, "kpi_definitions", [
            _definition("win_rate_pct", "Win rate", "trading", "pct", "higher", 55.0, ">"),
            _definition("net_pnl_inr", "Net P&L", "trading", "inr", "higher", None, None),
            _definition("sharpe_ratio", "Sharpe", "trading", "ratio", "higher", 1.5, ">"),
            _definition("sli_p95_latency_ms", "p95 latency", "reliability", "ms", "lower", 500.0, "<"),
        ], ["kpi_id"])
        warehouse.upsert(c, "kpi_values", [
            _value("win_rate_pct", "day", "2026-11-26", "2026-11-26", 40.0, 55.0, "off_target", "declining", True),
            _value("win_rate_pct", "day", "2026-11-27", "2026-11-27", 57.49, 55.0, "on_target", "stable", True),
            _value("net_pnl_inr", "day", "2026-11-27", "2026-11-27", 42994.4, None, "on_target", "stable", True),
            _value("sharpe_ratio", "day", "2026-11-27", "2026-11-27", None, 1.5, "insufficient_data", "n/a", True),
            _value("sli_p95_latency_ms", "day", "2026-11-27", "2026-11-27", 269.4, 500.0, "on_target", "improving",
                   True),
            _value("win_rate_pct", "week", "2026-11-23", "2026-11-29", 52.5, 55.0, "off_target", "declining", False),
            _value("net_pnl_inr", "week", "2026-11-23", "2026-11-29", -53134.2, None, "on_target", "declining",
                   False),
            _value("sharpe_ratio", "week", "2026-11-23", "2026-11-29", 2.11, 1.5, "on_target", "improving", False),
            _value("sli_p95_latency_ms", "week", "2026-11-23", "2026-11-29", 270.0, 500.0, "on_target", "stable",
                   False),
        ], ["kpi_id", "grain", "period_start"])
        earlier = datetime(2026, 11, 16, 5, 0, tzinfo=UTC)
        warehouse.upsert(c, "report_deliveries", [
            _delivery("weekly_review", "2026-W46", "outbox", "weekly_review/2026-W46", at=earlier),
            _delivery("weekly_review", "2026-W47", "publish", PUBLISHED, version=2),
            _delivery("weekly_review", "2026-W47", "slack", "C0REVIEWS", version=2, channel_id="C0REVIEWS",
                      message_ts="1763874000.000100"),
            _delivery("weekly_review", "2026-W47", "outbox", "weekly_review/2026-W47"),
            _delivery("weekly_review", "2026-W47", "sheets", "1SheetId", status="failed", error="HTTP 429 quota"),
            _delivery("daily_review", "2026-11-27", "outbox", "daily_review/2026-11-27"),
            _delivery("quarterly_review", "2026-Q4", "slack", "C0REVIEWS", status="failed", error="ratelimited",
                      channel_id="C0REVIEWS"),
        ], ["report", "period_key", "sink", "target"])
        quarantined = [("trades", "2026-11-27")] * 2 + [("incidents", "2026-11-27"), ("orders", "2026-11-20")] + [
            ("trades", "2026-10-01")] * 5
        for i, (source, day) in enumerate(quarantined):
            c.execute(sa.text(
                "insert into quarantine (source, extract_day, record_key, reason, payload, run_id, quarantined_at)"
                " values (:s, :d, :k, 'bad', '{}', 'seed', :at)"),
                {"s": source, "d": warehouse.bind_value(date.fromisoformat(day)), "k": f"r{i}",
                 "at": warehouse.bind_value(LOADED)})
        warehouse.upsert(c, "source_coverage", [
            {"source": "trades", "covered_from": datetime(2026, 8, 26, 10, 30, tzinfo=UTC),
             "covered_to": datetime(2026, 11, 19, 10, 30, tzinfo=UTC), "run_id": "seed", "loaded_at": LOADED},
            {"source": "trades", "covered_from": datetime(2026, 11, 20, 10, 30, tzinfo=UTC),
             "covered_to": LOADED, "run_id": "seed", "loaded_at": LOADED},
            {"source": "probes", "covered_from": datetime(2026, 11, 1, tzinfo=UTC), "covered_to": LOADED,
             "run_id": "seed", "loaded_at": LOADED},
        ], ["source", "covered_from"])
        warehouse.upsert(c, "period_coverage", [
            {"grain": "day", "period_start": date(2026, 11, 27), "source": "trades", "first_landed": LOADED,
             "last_landed": LOADED, "missing_from": None, "is_covered": True},
            {"grain": "day", "period_start": date(2026, 11, 27), "source": "probes", "first_landed": LOADED,
             "last_landed": LOADED, "missing_from": None, "is_covered": True},
            {"grain": "week", "period_start": date(2026, 11, 23), "source": "trades", "first_landed": LOADED,
             "last_landed": LOADED, "missing_from": LOADED, "is_covered": False},
        ], ["grain", "period_start", "source"])


@pytest.fixture
def seeded(engine, monkeypatch, tmp_path):
    """The hand-made warehouse behind kaizen.warehouse.get_engine(), and an outbox with
    the weekly review's HTML and the daily review's Markdown."""
    from kaizen import warehouse

    seed(engine)
    monkeypatch.setattr(warehouse, "get_engine", lambda *a, **k: engine)
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path))
    weekly = tmp_path / "weekly_review" / "2026-W47"
    weekly.mkdir(parents=True)
    (weekly / "review.html").write_text("<html><body><h1>Weekly Review — W47</h1></body></html>", "utf-8")
    daily = tmp_path / "daily_review" / "2026-11-27"
    daily.mkdir(parents=True)
    (daily / "daily_review.md").write_text("# Daily review 27 Nov\n\n| KPI | Value |\n|---|---|\n| Win rate | 57.49 % |\n"
                                           "\n<script>alert(1)</script>\n", "utf-8")
    return engine


# ------------------------------------------------------------------ who may see it
@pytest.mark.parametrize(("who", "via", "status", "detail"), [
    (None, "cookie", 401, "Not authenticated"),
    ("forged", "cookie", 403, "Invalid JWT token"),
    ("expired", "bearer", 401, "Token Expired"),
])
def test_only_authenticated_airflow_users_get_the_page_or_its_json(api, who, via, status, detail):
    r = call(api, "/kaizen/api/page", who, via)
    assert (r.status_code, r.json()) == (status, {"detail": detail})
    r = call(api, "/kaizen/", who, via)
    assert r.status_code == status and "text/html" in r.headers["content-type"]
    assert f'data-status="{status}"' in r.text and 'id="scorecard"' not in r.text
    assert 'href="/api/v2/auth/login?next=http%3A%2F%2Ftestserver%2Fkaizen%2F"' in r.text


def test_the_ui_cookie_and_a_bearer_token_both_open_it_for_any_role(api, seeded):
    for who, via in (("viewer", "cookie"), ("admin", "bearer")):
        assert call(api, "/kaizen/", who, via).status_code == 200
        assert call(api, "/kaizen/api/scorecard", who, via).status_code == 200


def test_the_plugin_registers_the_app_the_nav_entry_the_link_and_the_guard(api):
    plugins = call(api, "/api/v2/plugins", "admin").json()["plugins"]
    [kaizen] = [p for p in plugins if p["name"] == "kaizen"]
    assert kaizen["fastapi_apps"] == [{"app": "kaizen.ui.app.LazyApp", "url_prefix": "/kaizen", "name": "Kaizen"}]
    [view] = kaizen["external_views"]
    assert {k: view[k] for k in ("name", "href", "url_route", "destination")} == {
        "name": "Kaizen", "href": "kaizen/", "url_route": "kaizen", "destination": "nav"}
    assert kaizen["global_operator_extra_links"] == ["<kaizen.ui.links.KaizenReportLink object>"]
    assert [m["middleware"] for m in kaizen["fastapi_root_middlewares"]] == ["kaizen.params_guard.BackfillParamsGuard"]


def test_in_the_api_server_the_guard_answers_after_airflows_cookie_middleware(api):
    bad = {"logical_date": None, "conf": {"start": "2026-11-20", "end": "2026-11-02"}}
    path = "/api/v2/dags/kaizen_backfill/dagRuns"
    assert call(api, path, None, method="POST", json=bad).status_code == 401
    assert call(api, path, "viewer", method="POST", json=bad).status_code == 403
    reason = {"detail": "Invalid kaizen_backfill form: end: 2026-11-02 is before start 2026-11-20"}
    r = call(api, path, "admin", "cookie", method="POST", json=bad)
    assert (r.status_code, r.json()) == (432, reason)
    r = call(api, path, "admin", "bearer", method="POST", json=bad)
    assert (r.status_code, r.json()) == (400, reason)


# ------------------------------------------------------------------ what it shows
def test_the_scorecard_shows_each_grains_latest_period_as_the_reviews_print_it(api, seeded):
    cards = call(api, "/kaizen/api/scorecard", "admin").json()
    assert [(c["grain"], c["period_key"], c["range_text"], c["is_complete"]) for c in cards] == [
        ("day", "2026-11-27", "Fri 27 Nov 2026", True), ("week", "2026-W48", "23–29 Nov 2026", False)]
    shown = {c["grain"]: [(k["metric"], k["target_text"], k["value_text"], k["status"], k["trend_text"])
                          for k in c["kpis"]] for c in cards}
    assert shown == {
        "day": [
            ("SLI (API latency P95)", "< 500 ms", "269 ms", "on_target", "↑ improving"),
            ("Net P&L", "", "₹42,994", "on_target", "→ stable"),
            ("Sharpe Ratio", "> 1.5", "n/a (insufficient data)", "insufficient_data", "n/a"),
            ("Win Rate", "> 55 %", "57.49 %", "on_target", "→ stable"),
        ],
        "week": [
            ("SLI (API latency P95)", "< 500 ms", "270 ms", "on_target", "→ stable"),
            ("Net P&L", "", "−₹53,134", "on_target", "↓ declining"),
            ("Sharpe Ratio", "> 1.5", "2.11", "on_target", "↑ improving"),
            ("Win Rate", "> 55 %", "52.50 %", "off_target", "↓ declining"),
        ],
    }
    win = cards[0]["kpis"][3]
    assert (win["kpi_id"], win["value"], win["target"], win["comparator"]) == ("win_rate_pct", 57.49, 55.0, ">")


def test_the_latest_review_of_each_cadence_links_its_documents_best_first(api, seeded):
    reports = {r["report"]: r for r in call(api, "/kaizen/api/reports", "admin").json()}
    assert list(reports) == ["daily_review", "weekly_review", "monthly_review", "quarterly_review"]
    weekly = reports["weekly_review"]
    assert (weekly["period_key"], weekly["range_text"], weekly["version"], weekly["updated_at"]) == (
        "2026-W47", "16–22 Nov 2026", 2, "27 Nov 2026 16:00 IST")
    assert weekly["links"] == [
        {"kind": "document", "label": "Published document", "href": PUBLISHED, "external": True},
        {"kind": "slack", "label": "Slack channel", "href": "https://slack.com/app_redirect?channel=C0REVIEWS",
         "external": True, "title": "message ts 1763874000.000100 in channel C0REVIEWS"},
        {"kind": "outbox", "label": "Outbox copy", "href": "/kaizen/reports/weekly_review/2026-W47/",
         "external": False},
    ]
    sheets = [s for s in weekly["sinks"] if s["sink"] == "sheets"]
    assert sheets == [{"sink": "sheets", "target": "1SheetId", "status": "failed", "error": "HTTP 429 quota",
                       "version": 1, "updated_at": "27 Nov 2026 16:00 IST"}]
    assert reports["daily_review"]["links"] == [
        {"kind": "outbox", "label": "Outbox copy", "href": "/kaizen/reports/daily_review/2026-11-27/",
         "external": False}]
    # never delivered, and only failed attempts: nothing to open
    assert reports["monthly_review"] == {"report": "monthly_review", "grain": "month", "period_key": None,
                                         "links": [], "sinks": []}
    assert reports["quarterly_review"]["period_key"] is None


def test_quarantine_per_day_counts_every_trading_day_of_the_last_30_days(api, seeded):
    q = call(api, "/kaizen/api/quarantine", "admin").json()
    # 29 Oct … 27 Nov 2026: 20 sessions (10 and 24 Nov are NSE holidays); the 5 records of
    # 1 Oct are older than the window
    assert (q["first"], q["last"], q["total"], len(q["days"])) == ("2026-10-29", "2026-11-27", 4, 20)
    days = {d["day"]: (d["records"], d["by_source"]) for d in q["days"]}
    assert days["2026-11-27"] == (3, {"incidents": 1, "trades": 2})
    assert days["2026-11-20"] == (1, {"orders": 1})
    assert days["2026-11-26"] == (0, {}) and "2026-11-24" not in days
    assert q["days"][0]["day"] == "2026-11-27" and q["days"][-1]["day"] == "2026-10-29"
    assert call(api, "/kaizen/api/quarantine?days=400", "admin").status_code == 422


def test_coverage_per_source_shows_landed_spans_gaps_and_the_scorecard_periods(api, seeded):
    assert call(api, "/kaizen/api/coverage", "admin").json() == [
        {"source": "probes", "landed_from": "01 Nov 2026 05:30 IST", "landed_to": "27 Nov 2026 16:00 IST",
         "gaps": [], "periods": {"day": {"is_covered": True, "missing_from": None}, "week": None}},
        {"source": "trades", "landed_from": "26 Aug 2026 16:00 IST", "landed_to": "27 Nov 2026 16:00 IST",
         "gaps": [{"from": "19 Nov 2026 16:00 IST", "to": "20 Nov 2026 16:00 IST"}],
         "periods": {"day": {"is_covered": True, "missing_from": None},
                     "week": {"is_covered": False, "missing_from": "27 Nov 2026 16:00 IST"}}},
    ]


def test_the_page_renders_it_all_escaped(api, seeded):
    html = call(api, "/kaizen/", "admin").text
    assert '<section id="scorecard-day" data-grain="day" data-period="2026-11-27">' in html
    assert '<tr data-kpi="win_rate_pct" data-status="on_target" data-value="57.49">' in html
    assert '<td class="num value">57.49 %</td>' in html and '<td class="num value">−₹53,134</td>' in html
    assert "Net P&amp;L" in html and "Net P&L" not in html
    assert f'<a class="doc document" href="{PUBLISHED}" target="_blank" rel="noopener noreferrer" data-external>' in html
    assert '<a class="doc outbox" href="/kaizen/reports/daily_review/2026-11-27/">Outbox copy</a>' in html
    assert '<tr data-day="2026-11-27" data-records="3">' in html
    assert "missing from 27 Nov 2026 16:00 IST" in html


def test_the_json_of_the_whole_page_is_its_four_sections(api, seeded):
    whole = call(api, "/kaizen/api/page", "admin").json()
    assert whole == {part: call(api, f"/kaizen/api/{part}", "admin").json()
                     for part in ("scorecard", "reports", "quarantine", "coverage")}
    assert whole["scorecard"] and whole["reports"] and whole["quarantine"]["days"] and whole["coverage"]


def test_an_unreadable_warehouse_is_a_503_saying_why(api, monkeypatch, tmp_path):
    import sqlalchemy as sa

    from kaizen import warehouse

    empty = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setattr(warehouse, "get_engine", lambda *a, **k: empty)
    r = call(api, "/kaizen/api/page", "admin")
    assert r.status_code == 503 and "no such table: v_scorecard" in r.json()["detail"]
    r = call(api, "/kaizen/", "admin")
    assert r.status_code == 503 and 'id="unavailable"' in r.text and "run a Kaizen DAG first" in r.text


def test_outbox_copies_are_served_sandboxed_and_nothing_else(api, seeded):
    r = call(api, "/kaizen/reports/weekly_review/2026-W47/", "admin")
    assert (r.status_code, r.text) == (200, "<html><body><h1>Weekly Review — W47</h1></body></html>")
    assert r.headers["content-security-policy"].startswith("sandbox;")
    r = call(api, "/kaizen/reports/daily_review/2026-11-27/", "admin")
    assert r.status_code == 200 and "<td>57.49 %</td>" in r.text
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text  # the Markdown's raw HTML stays text
    for path, status in (("/kaizen/reports/weekly_review/2026-W46/", 404),  # delivered, no copy here
                         ("/kaizen/reports/daily_review/2026-W47/", 404),  # a week is no daily period
                         ("/kaizen/reports/experiments/2026-11-27/", 404),
                         ("/kaizen/reports/weekly_review/..%2F..%2Fetc/", 404)):
        assert call(api, path, "admin").status_code == status, path
    assert call(api, "/kaizen/reports/weekly_review/2026-W47/").status_code == 401


# ------------------------------------------------------------------ a review run links to its report
def test_the_report_link_prefers_the_published_document_then_slack_then_the_outbox(seeded):
    import sqlalchemy as sa

    from kaizen.ui.links import KaizenReportLink, report_link

    assert report_link("weekly_review", "2026-W47") == PUBLISHED
    with seeded.begin() as c:
        c.execute(sa.text("update report_deliveries set status = 'failed' where sink = 'publish'"))
    assert report_link("weekly_review", "2026-W47") == "https://slack.com/app_redirect?channel=C0REVIEWS"
    assert report_link("daily_review", "2026-11-27") == "/kaizen/reports/daily_review/2026-11-27/"
    assert report_link("monthly_review", "2026-10") == ""
    other = SimpleNamespace(dag_id="kaizen_backfill", run_id="r", task_id="validate_form", map_index=-1)
    assert KaizenReportLink().get_link(None, ti_key=other) == ""


@pytest.mark.dag
def test_every_task_of_a_review_run_links_to_its_report_in_airflow(api, seeded):
    """A real weekly_review run (its period resolved, the other tasks marked success),
    then Airflow's own extra-links endpoint, which evaluates the plugin's global link."""
    from kaizen import calendar as cal
    from kaizen.cli import dag_for_test

    at = cal.ist_datetime(date(2026, 11, 23), cal.REVIEW_TIME).replace(minute=7)
    run = dag_for_test("weekly_review").test(logical_date=at, run_after=at, run_conf={"period_start": "2026-11-18"},
                                             mark_success_pattern=r"(?!resolve_period$).*")
    for task in ("resolve_period", "deliver_review"):
        r = call(api, f"/api/v2/dags/weekly_review/dagRuns/{run.run_id}/taskInstances/{task}/links", "admin",
                 "bearer")
        assert r.json() == {"extra_links": {"Kaizen report": PUBLISHED}, "total_entries": 1}, task


# ------------------------------------------------------------------ the DAGs in the UI
@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_every_dag_has_a_one_line_description(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.description and "\n" not in dag.description and len(dag.description) <= 120, dag_id


def test_grains_is_a_multi_select_that_the_schema_still_checks(dagbag):
    from airflow.sdk.definitions.param import Param, ParamValidationError

    param = dagbag.get_dag("kaizen_backfill").params.get_param("grains")
    schema = param.schema
    # the UI's FieldSelector renders a multi-select for type array + an examples list
    assert schema["type"] == "array" and schema["examples"] == ["day", "week", "month", "quarter"]
    assert schema["items"]["enum"] == schema["examples"]
    assert Param(["week", "day"], **schema).resolve() == ["week", "day"]
    for wrong in (["day", "year"], [], None, ["day", "day"]):
        with pytest.raises(ParamValidationError):
            Param(wrong, **schema).resolve()


def test_importing_the_plugin_stays_light():
    code = ("import sys, time; import airflow.plugins_manager; t = time.perf_counter(); import kaizen_plugin; "
            "print(time.perf_counter() - t); "
            "print([m for m in ('pandas', 'fastapi', 'kaizen.ui.queries', 'airflow.api_fastapi.core_api.security')"
            " if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "plugins")})
    seconds, loaded = out.stdout.strip().splitlines()[-2:]
    assert json.loads(loaded.replace("'", '"')) == []
    assert float(seconds) < 1.0
