"""The daily review: model from kpi_values/raw_incidents on SQLite and PostgreSQL,
rendered to Block Kit and Markdown; formatting filters table-driven."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from fakes.slack import block_kit_problems
from kaizen import warehouse
from kaizen.reports import daily, render

DAY = date(2026, 11, 27)  # a Friday; window [Thu 26 Nov 16:00 IST, Fri 27 Nov 16:00 IST)
WINDOW_START = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 10, 45, tzinfo=UTC)

# kpi_id: (name, unit, target, comparator)
DEFINITIONS = {
    "trades_count": ("Closed trades", "count", None, None),
    "win_rate_pct": ("Win rate", "pct", 55, ">"),
    "net_pnl_inr": ("Net P&L", "inr", None, None),
    "largest_win_inr": ("Largest win", "inr", None, None),
    "largest_loss_inr": ("Largest loss", "inr", None, None),
    "uptime_pct": ("Uptime", "pct", 99.9, ">="),
    "session_uptime_pct": ("Session uptime", "pct", 99.9, ">="),
    "sli_p95_latency_ms": ("API p95 latency", "ms", 500, "<"),
    "avg_execution_ms": ("Average execution time", "ms", 500, "<"),
    "errors_count": ("Errors", "count", None, None),
    "alerts_per_day": ("Alerts per day", "per_day", 10, "<"),
    "alerts_per_day_p0": ("P0 alerts per day", "per_day", None, None),
    "alerts_per_day_p1": ("P1 alerts per day", "per_day", None, None),
    "alerts_per_day_p2": ("P2 alerts per day", "per_day", None, None),
}

# kpi_id: (value, numerator, denominator, status)
VALUES = {
    "trades_count": (42, 42, None, "on_target"),
    "win_rate_pct": (58.333333, 21, 36, "on_target"),
    "net_pnl_inr": (1234567.4, None, None, "on_target"),
    "largest_win_inr": (45000.0, None, None, "on_target"),
    "largest_loss_inr": (-12345.2, None, None, "on_target"),
    "uptime_pct": (99.95, 1439.28, 1440, "on_target"),
    "session_uptime_pct": (99.8, 374.25, 375, "off_target"),
    "sli_p95_latency_ms": (245.4, None, None, "on_target"),
    "avg_execution_ms": (612.0, 22032, 36, "off_target"),
    "errors_count": (3, 3, None, "on_target"),
    "alerts_per_day": (15.0, 15, 1, "off_target"),
    "alerts_per_day_p0": (1.0, 1, 1, "on_target"),
    "alerts_per_day_p1": (4.0, 4, 1, "on_target"),
    "alerts_per_day_p2": (10.0, 10, 1, "on_target"),
}


def load_kpis(engine, values=VALUES, day=DAY):
    defs = [
        dict(
            kpi_id=k,
            name=n,
            domain="x",
            unit=u,
            better="higher",
            target=t,
            comparator=c,
            neutral_band_pct=5,
            min_sample=1,
            formula="…",
            conventions=None,
            version=1,
            loaded_at=NOW,
        )
        for k, (n, u, t, c) in DEFINITIONS.items()
    ]
    rows = [
        dict(
            kpi_id=k,
            grain="day",
            period_start=day,
            period_end=day,
            value=v,
            numerator=num,
            denominator=den,
            sample_size=None,
            target=DEFINITIONS[k][2],
            status=s,
            trend="n/a",
            is_complete=True,
            computed_at=NOW,
            run_id="t",
        )
        for k, (v, num, den, s) in values.items()
    ]
    with engine.begin() as c:
        warehouse.upsert(c, "kpi_definitions", defs, ["kpi_id"])
        warehouse.upsert(c, "kpi_values", rows, ["kpi_id", "grain", "period_start"])


def incident(iid, title, triggered, *, ack=None, resolved=None, priority="P1", service="trading-api", n=None):
    return dict(
        incident_id=iid,
        incident_number=n or int(iid.strip("I") or 0),
        title=title,
        service=service,
        priority=priority,
        urgency="high",
        status="resolved" if resolved else "triggered",
        triggered_at=triggered,
        acknowledged_at=ack,
        resolved_at=resolved,
        impact_start_at=None,
        caused_by_deployment_id=None,
        run_id="t",
        loaded_at=NOW,
    )


def load_incidents(engine, rows):
    with engine.begin() as c:
        warehouse.upsert(c, "raw_incidents", rows, ["incident_id"])


def section(payload, block_id):
    return next(b for b in payload["blocks"] if b.get("block_id") == block_id)["text"]["text"]


def test_figures_targets_and_marks(engine):
    load_kpis(engine)
    out = daily.render_daily(daily.build_daily(engine, DAY), run_id="scheduled__2026-11-27")
    p = out["payload"]
    assert p["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "📊 Daily Trading Review — Fri 27 Nov 2026", "emoji": True},
    }
    assert section(p, "trading").splitlines() == [
        "*Trading Performance*",
        "• Trades: *42* ➖",
        "• Win Rate: *58.33 %* (target &gt; 55 %) ✅",
        "• P&amp;L: *₹12,34,567* ➖",
        "• Largest Win: *₹45,000* ➖",
        "• Largest Loss: *−₹12,345* ➖",
    ]
    assert section(p, "system").splitlines() == [
        "*System Performance* (since Thu 26 Nov 16:00 IST)",
        "• Uptime (24×7): *99.95 %* (target ≥ 99.9 %) ✅",
        "• Uptime (NSE session): *99.80 %* (target ≥ 99.9 %) ❌",
        "• API Latency (p95): *245 ms* (target &lt; 500 ms) ✅",
        "• Order Execution (avg): *612 ms* (target &lt; 500 ms) ❌",
        "• Errors: *3* ➖",
        "• Alerts: *15* (P0: 1, P1: 4, P2: 10) — 15/day (target &lt; 10/day) ❌",
    ]
    assert "Kaizen" in json.dumps(p["blocks"][-1], ensure_ascii=False)
    assert "scheduled__2026-11-27" in p["blocks"][-1]["elements"][0]["text"]
    assert p["text"].startswith(
        "📊 Daily Trading Review — Fri 27 Nov 2026: 42 trades, win rate 58.33 %, P&amp;L ₹12,34,567"
    )
    md = out["markdown"]
    assert md.startswith("# 📊 Daily Trading Review — Fri 27 Nov 2026\n")
    for line in (
        "**Trading Performance:**",
        "- Win Rate: **58.33 %** (target > 55 %) ✅",
        "- P&L: **₹12,34,567** ➖",
        "- Largest Loss: **−₹12,345** ➖",
        "**System Performance** (since Thu 26 Nov 16:00 IST)**:**",
        "- API Latency (p95): **245 ms** (target < 500 ms) ✅",
        "- Order Execution (avg): **612 ms** (target < 500 ms) ❌",
        "- Alerts: **15** (P0: 1, P1: 4, P2: 10) — 15/day (target < 10/day) ❌",
        "- No incidents ✅",
        "**Tomorrow's Focus:**",
    ):
        assert line in md.splitlines(), line
    assert block_kit_problems(p["blocks"]) == []


def test_alert_counts_over_a_weekend_window(engine):
    monday = date(2026, 11, 30)  # window from Fri 27 Nov 16:00 IST: 3 calendar days
    values = dict(VALUES)
    values["alerts_per_day"] = (5.0, 15, 3, "on_target")
    values["alerts_per_day_p0"] = (0.0, 0, 3, "on_target")
    values["alerts_per_day_p1"] = (1.0, 3, 3, "on_target")
    values["alerts_per_day_p2"] = (4.0, None, 3, "on_target")  # no numerator: value × days
    load_kpis(engine, values, day=monday)
    report = daily.build_daily(engine, monday)
    assert (report.alerts.total, report.alerts.p0, report.alerts.p1, report.alerts.p2) == (15, 0, 3, 12)
    assert report.window_text == "since Fri 27 Nov 16:00 IST"
    system = section(daily.render_daily(report)["payload"], "system")
    assert "• Alerts: *15* (P0: 0, P1: 3, P2: 12) — 5/day (target &lt; 10/day) ✅" in system


def test_null_and_missing_values_are_never_zero(engine):
    values = {k: v for k, v in VALUES.items() if k not in ("errors_count", "largest_win_inr")}
    values["uptime_pct"] = (None, None, None, "insufficient_data")
    values["sli_p95_latency_ms"] = (None, None, None, "stale")
    values["alerts_per_day_p0"] = (None, None, None, "no_events")
    values["win_rate_pct"] = (58.333333, 21, 36, "insufficient_data")
    load_kpis(engine, values)
    out = daily.render_daily(daily.build_daily(engine, DAY))
    system = section(out["payload"], "system")
    trading = section(out["payload"], "trading")
    assert "• Uptime (24×7): *n/a (insufficient data)* (target ≥ 99.9 %) ⚠️" in system
    assert "• API Latency (p95): *stale* (target &lt; 500 ms) ⚠️" in system
    assert "• Errors: *n/a (not computed)* ⚠️" in system
    assert "P0: n/a" in system
    assert "• Largest Win: *n/a (not computed)* ⚠️" in trading
    assert "• Win Rate: *58.33 % (low sample)* (target &gt; 55 %) ⚠️" in trading
    assert "- Errors: **n/a (not computed)** ⚠️" in out["markdown"]
    assert "*0*" not in system and "*0 ms*" not in system


def test_empty_warehouse_renders_all_missing(engine):
    out = daily.render_daily(daily.build_daily(engine, DAY))
    for block_id in ("trading", "system"):
        text = section(out["payload"], block_id)
        assert "n/a (not computed)" in text
        assert "✅" not in text and "❌" not in text


def test_incident_selection_and_state(engine):
    load_kpis(engine)
    h = timedelta(hours=1)
    load_incidents(
        engine,
        [
            incident("I1", "open since yesterday", WINDOW_START - 20 * h, priority="P2"),
            incident("I2", "acknowledged", WINDOW_START + h, ack=WINDOW_START + 2 * h, priority="P0"),
            incident("I3", "resolved in window", WINDOW_START - h, resolved=WINDOW_START + 3 * h),
            incident("I4", "resolved before window", WINDOW_START - 5 * h, resolved=WINDOW_START - h),
            incident("I5", "triggered after window", WINDOW_END + h),
            incident(
                "I6",
                "resolved after window end",
                WINDOW_END - h,
                ack=WINDOW_END + h,
                resolved=WINDOW_END + 2 * h,
            ),
        ],
    )
    report = daily.build_daily(engine, DAY)
    got = [(i.incident_id, i.state) for i in report.incidents]
    assert got == [("I2", "Acknowledged"), ("I6", "Open"), ("I1", "Open"), ("I3", "Resolved")]
    issues = section(daily.render_daily(report)["payload"], "issues")
    assert issues.splitlines()[0] == "*Issues* — 3 open at 16:00 IST, 1 resolved since Thu 26 Nov 16:00 IST"
    assert "• P0 · acknowledged (trading-api) — Acknowledged since Thu 26 Nov 17:00 IST" in issues
    assert "• P1 · resolved in window (trading-api) — Resolved Thu 26 Nov 19:00 IST" in issues


def test_user_text_is_escaped(engine):
    load_kpis(engine)
    load_incidents(
        engine,
        [
            incident(
                "I1",
                "<!channel> deploy & <@U123> rollback",
                WINDOW_START + timedelta(hours=1),
                service="api <prod>",
            )
        ],
    )
    out = daily.render_daily(daily.build_daily(engine, DAY))
    issues = section(out["payload"], "issues")
    assert "&lt;!channel&gt; deploy &amp; &lt;@U123&gt; rollback (api &lt;prod&gt;)" in issues
    raw = json.dumps(out["payload"], ensure_ascii=False)
    assert "<!channel>" not in raw and "<@U123>" not in raw
    assert "&lt;!channel&gt; deploy &amp; &lt;@U123&gt; rollback" in out["markdown"]


def test_limits_hold_with_200_incidents(engine):
    load_kpis(engine)
    long_title = "Order router & risk gateway <timeout> " * 20
    load_incidents(
        engine,
        [
            incident(f"I{n}", f"{n}: {long_title}", WINDOW_START + timedelta(minutes=n), n=n)
            for n in range(1, 201)
        ],
    )
    out = daily.render_daily(daily.build_daily(engine, DAY))
    p = out["payload"]
    assert len(p["blocks"]) <= 50
    assert block_kit_problems(p["blocks"]) == []
    issues = section(p, "issues")
    assert len(issues) <= 3000
    shown = [ln for ln in issues.splitlines() if ln.startswith("• ")]
    assert 1 <= len(shown) < 200
    assert issues.splitlines()[-1] == f"…and {200 - len(shown)} more"
    assert len(p["text"]) <= 3000
    assert sum(1 for ln in out["markdown"].splitlines() if ln.startswith("- P1 · ")) == 200


def test_content_hash_ignores_run_id(engine):
    load_kpis(engine)
    report = daily.build_daily(engine, DAY)
    a, b = daily.render_daily(report, run_id="run-a"), daily.render_daily(report, run_id="run-b")
    assert a["payload"] != b["payload"]
    assert a["content_hash"] == b["content_hash"] == render.content_hash(b["payload"])
    load_kpis(engine, {**VALUES, "trades_count": (43, 43, None, "on_target")})
    c = daily.render_daily(daily.build_daily(engine, DAY), run_id="run-a")
    assert c["content_hash"] != a["content_hash"]


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        (1234567, {}, "₹12,34,567"),
        (-1234, {}, "−₹1,234"),
        (0, {}, "₹0"),
        (-0.4, {}, "₹0"),
        (999.5, {}, "₹1,000"),
        (123456789.123, {}, "₹12,34,56,789"),
        (1234.5, {"decimals": 2}, "₹1,234.50"),
        (12500, {"plus": True}, "+₹12,500"),
    ],
)
def test_inr(value, kwargs, expected):
    assert render.inr(value, **kwargs) == expected


@pytest.mark.parametrize(
    "fn, value, expected",
    [
        (render.pct, 58.33333, "58.33 %"),
        (render.pct, 100, "100.00 %"),
        (render.pct, 99.9996, "99.99 %"),
        (render.pct, 0, "0.00 %"),
        (render.ms, 245.4, "245 ms"),
        (render.ms, 1204.0, "1,204 ms"),
        (render.ms, 3.44, "3.4 ms"),
        (render.count, 123456, "1,23,456"),
        (render.number, 99.9, "99.9"),
        (render.number, 55.0, "55"),
        (render.slack_escape, "<!here> a&b > c", "&lt;!here&gt; a&amp;b &gt; c"),
        (render.slack_escape, "&amp;", "&amp;amp;"),
        (render.json_str, 'say "<hi>"', '"say \\"&lt;hi&gt;\\""'),
        (render.md_escape, "a_b *c* <d>", "a\\_b \\*c\\* &lt;d&gt;"),
        (render.status_mark, "on_target", "✅"),
        (render.status_mark, "off_target", "❌"),
        (render.status_mark, "insufficient_data", "⚠️"),
        (render.status_mark, "stale", "⚠️"),
        (render.status_mark, "no_events", "➖"),
        (render.status_mark, None, "➖"),
    ],
)
def test_filters(fn, value, expected):
    assert fn(value) == expected


def test_environment_is_strict_and_filters_registered():
    import jinja2

    env = render.environment()
    assert env is render.environment()
    assert set(render.FILTERS) <= set(env.filters)
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()


def test_fit_lines_counts_what_is_left_out():
    text = render.fit_lines(range(100), lambda n: f"line {n:03d}", limit=60, prefix="head\n")
    lines = text.splitlines()
    assert len(text) <= 60
    assert lines[0] == "head" and lines[1] == "line 000"
    assert lines[-1] == f"…and {100 - (len(lines) - 2)} more"
    assert render.fit_lines([1, 2], str, limit=100) == "1\n2"


def test_an_unavailable_source_marks_its_sections_and_hides_nothing_else(engine):
    """Prometheus down and PagerDuty refusing: their figures say "unavailable", their
    sections name the source and the reason, the trading section keeps its values,
    and the issues section never claims "No incidents"."""
    from kaizen.sources.base import SourceError
    from kaizen.warehouse import outages

    load_kpis(engine)
    load_incidents(engine, [incident("I1", "Order gateway down", WINDOW_START + timedelta(hours=2))])
    outages.record(engine, "prometheus", DAY, SourceError(
        "Prometheus GET /api/v1/query_range still failing after 5 attempts (last: ConnectionError)", transient=True),
        "r1", at=NOW)
    outages.record(engine, "prometheus", DAY, SourceError("Prometheus down again", transient=True), "r1", at=NOW)
    outages.record(engine, "pagerduty", DAY, RuntimeError("boom"), "r1", at=NOW)
    outages.record(engine, "github", DAY, SourceError("GitHub 401", transient=False), "r1", at=NOW)
    with engine.connect() as c:
        rows = {r.source: r for r in c.exec_driver_sql(
            "select source, attempts, transient, reason from source_outages").all()}
    assert {s: (r.attempts, bool(r.transient)) for s, r in rows.items()} == {
        "prometheus": (2, True), "pagerduty": (1, True), "github": (1, False)}
    assert rows["pagerduty"].reason == "RuntimeError: boom"

    report = daily.build_daily(engine, DAY)
    assert report.figures["uptime_pct"].display == "unavailable"
    assert report.figures["alerts_per_day"].display == "unavailable"
    assert report.figures["win_rate_pct"].display == "58.33 %"  # trading is unaffected
    assert report.unavailable == {
        "system": ["unavailable: pagerduty (RuntimeError: boom)", "unavailable: prometheus (Prometheus down again)"],
        "issues": ["unavailable: pagerduty (RuntimeError: boom)"],
    }
    assert report.notes[-1] == "Unavailable: github (GitHub 401)"
    out = daily.render_daily(report, run_id="r1")
    system = section(out["payload"], "system")
    assert ":warning: unavailable: prometheus (Prometheus down again)" in system
    assert "• Uptime (24×7): *unavailable* (target ≥ 99.9 %) ⚠️" in system and "Alerts: *n/a*" in system
    issues = section(out["payload"], "issues")
    assert issues == "*Issues*\n:warning: unavailable: pagerduty (RuntimeError: boom)"
    assert "No incidents" not in out["markdown"] and "Order gateway down" not in out["markdown"]
    assert "> ⚠️ unavailable: prometheus (Prometheus down again)" in out["markdown"]
    assert "incidents unavailable" in out["payload"]["text"]
    assert block_kit_problems(out["payload"]["blocks"]) == []

    # the sources land: the outages clear and the review is what it was without them
    for source in ("prometheus", "pagerduty", "github"):
        assert outages.clear(engine, source, DAY, "r2")
    assert not outages.clear(engine, "prometheus", DAY, "r3")
    assert outages.recovered_by(engine, "r2") == [DAY] and outages.recovered_by(engine, "r3") == []
    again = daily.render_daily(daily.build_daily(engine, DAY), run_id="r2")
    assert "unavailable" not in again["markdown"] and "Order gateway down" in again["markdown"]
    assert again["content_hash"] != out["content_hash"]
