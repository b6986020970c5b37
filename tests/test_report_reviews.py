"""Weekly, monthly and quarterly reviews over a warehouse built by the real pipeline
from demo data (3 months to Fri 27 Nov 2026): every period renders within Block Kit's
limits, user text is escaped (Slack) and inert (Sheets), the Markdown matches golden
files, the content hash is stable, missing KPIs read "n/a" (never 0), charts are
deterministic PNGs.

Golden files: ``KAIZEN_UPDATE_GOLDEN=1 pytest tests/test_report_reviews.py`` rewrites
``tests/golden/*.md``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from kaizen import artifacts
from kaizen import calendar as cal
from kaizen.period import Period
from kaizen.reports import charts, render, review
from kaizen.warehouse import facts

END = date(2026, 11, 27)
AS_OF = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)  # Fri 27 Nov 16:00 IST, the last cut-off
GOLDEN = Path(__file__).resolve().parent / "golden"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\n")

EVIL_TITLE = "<!channel> deploy & <@U123> rollback"
EVIL_TITLE_SLACK = "&lt;!channel&gt; deploy &amp; &lt;@U123&gt; rollback"
EVIL_STRATEGY = '=HYPERLINK("http://x","y")'
EVIL_WEEK = date(2026, 11, 23)  # W48; W47 and October stay as generated (golden files)


@pytest.fixture(scope="module")
def warehouse_db(tmp_path_factory):
    """The real pipeline over demo data, once per module; then one hostile incident and
    one hostile strategy name in W48."""
    from kaizen import pipeline
    from kaizen.demo import generate

    base = tmp_path_factory.mktemp("reviews")
    db = base / "w.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAIZEN_SOURCES", "demo")
        mp.setenv("KAIZEN_DEMO_DIR", str(base / "demo"))
        mp.setenv("AIRFLOW_CONN_KAIZEN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)}))
        mp.delenv("KAIZEN_CAPITAL_BASE_INR", raising=False)
        manifest = generate(end=END, months=3, seed=42, out_dir=base / "demo", trades_per_day=80)
        pipeline.rebuild(
            date.fromisoformat(manifest["first_trading_day"]), END, "fixture", progress=lambda i: None
        )
        from kaizen.goals.store import land_for_review  # the goals, as each review's compute step lands them

        for kind in ("monthly", "quarterly"):
            for p in Period.between(review.KINDS[kind], date.fromisoformat(manifest["first_trading_day"]), END):
                period = pipeline.resolve_review_period(kind, param_period_start=p.start.isoformat(), run_after=AS_OF)
                land_for_review(period, "fixture")
    engine = sa.create_engine(f"sqlite:///{db}")
    t0 = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    t1 = datetime(2026, 11, 24, 5, 25, tzinfo=UTC)
    with engine.begin() as c:
        c.execute(
            sa.text(
                "insert into raw_incidents (incident_id, incident_number, title, service, priority, urgency, "
                "status, triggered_at, acknowledged_at, resolved_at, impact_start_at, caused_by_deployment_id, "
                "run_id, loaded_at) values ('QEVIL1', 99001, :title, :service, 'P1', 'high', 'resolved', "
                ":t0, :t0, :t1, :t0, null, 'fixture', :t1)"
            ),
            {"title": EVIL_TITLE, "service": "@ops-svc", "t0": cal.utc_text(t0), "t1": cal.utc_text(t1)},
        )
        c.execute(
            sa.text(
                "insert into raw_trades (trade_id, trading_day, symbol, side, quantity, entry_time, exit_time, "
                "entry_price_inr, exit_price_inr, fees_inr, net_pnl_inr, strategy, ab_arm, run_id, loaded_at) "
                "values ('TEVIL1', '2026-11-24', 'INFY', 'BUY', 1, :t0, :t1, 100, 101, 0, 1, :strategy, null, "
                "'fixture', :t1)"
            ),
            {"strategy": EVIL_STRATEGY, "t0": cal.utc_text(t0), "t1": cal.utc_text(t1)},
        )
        facts.rebuild(c)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def experiment_registry(monkeypatch, tmp_path):
    """An empty experiment registry unless a test writes one: the golden documents'
    "Experiments" section depends neither on include/experiments.yaml nor on a demo one."""
    path = tmp_path / "experiments.yaml"
    path.write_text("experiments: []\n", encoding="utf-8")
    monkeypatch.setenv("KAIZEN_EXPERIMENTS_FILE", str(path))
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_GSHEETS", raising=False)
    return path


def _periods() -> list[tuple[str, date]]:
    first = date(2026, 8, 27)
    out = []
    for kind, grain in review.KINDS.items():
        d = Period.of(grain, first).start
        while d <= END:
            out.append((kind, d))
            d = Period.of(grain, d).next().start
    return out


def _render(engine, kind, ps, out_dir, run_id="manual__test"):
    report = review.build_review(engine, kind, ps, as_of=AS_OF)
    return report, review.render_review(report, run_id=run_id, out_dir=out_dir)


def _payloads(rendered) -> list[dict]:
    return [rendered["headline"], *rendered["thread"]]


def _text_cells(rendered):
    for tab, spec in rendered["sheet_rows"].items():
        for row in spec["rows"]:
            for cell in row:
                if isinstance(cell, str):
                    yield tab, cell


# ---------------------------------------------------------------- pure helpers
@pytest.mark.parametrize(
    ("kind", "start", "key"),
    [
        ("weekly", date(2026, 11, 23), "2026-W48"),
        ("weekly", date(2026, 12, 28), "2026-W53"),
        ("weekly", date(2027, 1, 4), "2027-W01"),
        ("monthly", date(2026, 11, 1), "2026-11"),
        ("quarterly", date(2026, 10, 1), "2026-Q4"),
        ("quarterly", date(2026, 1, 1), "2026-Q1"),
    ],
)
def test_period_key(kind, start, key):
    assert review.period_key(kind, start) == key


@pytest.mark.parametrize(
    ("d", "label"),
    [
        (date(2026, 10, 1), "FY27 Q3"),
        (date(2026, 4, 1), "FY27 Q1"),
        (date(2027, 3, 31), "FY27 Q4"),
        (date(2026, 7, 15), "FY27 Q2"),
        (date(2026, 1, 2), "FY26 Q4"),
    ],
)
def test_fiscal_quarter(d, label):
    assert review.fiscal_quarter(d) == label


@pytest.mark.parametrize(
    ("a", "b", "text"),
    [
        (date(2026, 11, 23), date(2026, 11, 29), "23–29 Nov 2026"),
        (date(2026, 11, 30), date(2026, 12, 6), "30 Nov – 6 Dec 2026"),
        (date(2026, 12, 28), date(2027, 1, 3), "28 Dec 2026 – 3 Jan 2027"),
    ],
)
def test_range_text(a, b, text):
    assert review.range_text(a, b) == text


def test_chunk_lines_fits_and_counts_the_rest():
    lines = [f"line {i:03d} " + "x" * 90 for i in range(200)]
    chunks = render.chunk_lines(lines, limit=1000, max_chunks=3)
    assert len(chunks) == 3 and all(len(c) <= 1000 for c in chunks)
    shown = sum(c.count("\n") + 1 for c in chunks) - 1
    assert chunks[-1].endswith(f"…and {200 - shown} more")
    assert render.chunk_lines([], limit=100) == []
    assert render.chunk_lines(["a", "b"], limit=100) == ["a\nb"]


@pytest.mark.parametrize(
    ("text", "inert"),
    [
        ("=1+1", "'=1+1"),
        ("+91", "'+91"),
        ("-x", "'-x"),
        ("@here", "'@here"),
        ("ok", "ok"),
        ("'=x", "'=x"),
        ("", ""),
    ],
)
def test_sheet_text(text, inert):
    assert render.sheet_text(text) == inert
    from kaizen.delivery.sheets import inert_text

    assert inert_text(render.sheet_text(text)) == render.sheet_text(text)  # the sink adds nothing


# ---------------------------------------------------------------- every period
def test_every_period_renders_within_limits(warehouse_db, tmp_path):
    periods = _periods()
    assert len([p for p in periods if p[0] == "weekly"]) == 14 and len(periods) == 14 + 4 + 2
    problems = []
    for kind, ps in periods:
        name = f"{kind} {ps}"
        try:
            _, out = _render(warehouse_db, kind, ps, tmp_path)
        except Exception as exc:  # name the failing period, keep checking the others
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        for i, p in enumerate(_payloads(out)):
            if not p.get("text"):
                problems.append(f"{name} payload {i}: no fallback text")
            for msg in render.check_block_kit(p):
                problems.append(f"{name} payload {i}: {msg}")
            if len(p.get("text", "")) > render.SLACK_MAX_FALLBACK_TEXT:
                problems.append(f"{name} payload {i}: fallback text too long")
        for tab, spec in out["sheet_rows"].items():
            width = len(spec["header"])
            if any(len(row) != width for row in spec["rows"]):
                problems.append(f"{name} tab {tab}: ragged rows")
            if set(spec["number_formats"]) - set(spec["header"]):
                problems.append(f"{name} tab {tab}: number format for an unknown column")
        for tab, cell in _text_cells(out):
            if cell.startswith(FORMULA_LEADS):
                problems.append(f"{name} tab {tab}: live formula lead in {cell!r}")
        json.dumps(out)  # JSON-able (it travels as an XCom)
        assert out["period_key"] == review.period_key(kind, ps)
    assert not problems, "\n".join(problems)


def test_headline_names_the_period_and_key_kpis(warehouse_db, tmp_path):
    _, out = _render(warehouse_db, "weekly", EVIL_WEEK, tmp_path)
    header = out["headline"]["blocks"][0]["text"]["text"]
    assert header == "📈 Weekly Review — W48, 23–29 Nov 2026 (to 27 Nov)"
    fields = " ".join(f["text"] for f in out["headline"]["blocks"][1]["fields"])
    for label in (
        "Win Rate",
        "Net P&amp;L",
        "Average Daily P&amp;L",
        "Uptime",
        "SLI",
        "MTTR",
        "Change Failure Rate",
        "Deployment Frequency",
    ):
        assert label in fields
    counts = out["headline"]["blocks"][2]["text"]["text"]
    assert "off target" in counts and "insufficient data" in counts
    assert out["report"] == "weekly_review" and out["period_key"] == "2026-W48"
    _, q = _render(warehouse_db, "quarterly", date(2026, 10, 1), tmp_path)
    assert q["headline"]["blocks"][0]["text"]["text"].startswith("🗓️ Quarterly Review — Q4 2026 (FY27 Q3)")
    assert set(q["sheet_rows"]) >= {"Quarterly", "Scorecard", "Incidents", "Definitions"}
    # the delivery accepts it as is (docs/contracts.md "Review reports")
    from kaizen.delivery import reviews

    reviews._Review.from_rendered(q)
    assert {t.name for t in reviews.sheet_tabs(q["sheet_rows"])} == set(q["sheet_rows"])


# ---------------------------------------------------------------- hostile text
def test_incident_title_is_escaped_in_slack(warehouse_db, tmp_path):
    for kind, ps in (("weekly", EVIL_WEEK), ("monthly", date(2026, 11, 1)), ("quarterly", date(2026, 10, 1))):
        _, out = _render(warehouse_db, kind, ps, tmp_path)
        slack = json.dumps(_payloads(out), ensure_ascii=False)
        assert EVIL_TITLE_SLACK in slack, kind
        assert "<!channel>" not in slack and "<@U123>" not in slack and "& <@" not in slack
        assert "&lt;!channel&gt;" in out["markdown"] and "<!channel>" not in out["html"]


def test_user_text_is_inert_in_sheet_rows(warehouse_db, tmp_path):
    _, out = _render(warehouse_db, "weekly", EVIL_WEEK, tmp_path)
    tab = out["sheet_rows"]["Incidents"]
    h = tab["header"]
    row = next(r for r in tab["rows"] if r[0] == "QEVIL1")
    assert row[h.index("title")] == EVIL_TITLE  # starts with "<": harmless, kept as is
    assert row[h.index("service")] == "'@ops-svc"
    assert tab["number_formats"]["title"] == "text"
    strategies = out["sheet_rows"]["Strategies"]
    cells = [r[1] for r in strategies["rows"]]
    assert "'" + EVIL_STRATEGY in cells and EVIL_STRATEGY not in cells
    for tab_name, cell in _text_cells(out):
        assert not cell.startswith(FORMULA_LEADS), (tab_name, cell)
    assert EVIL_STRATEGY.replace('"', "") not in out["markdown"]  # Markdown has it escaped


# ---------------------------------------------------------------- golden documents
@pytest.mark.parametrize(
    ("kind", "ps", "golden"),
    [
        ("weekly", date(2026, 11, 16), "weekly_review_2026-W47.md"),
        ("monthly", date(2026, 10, 1), "monthly_review_2026-10.md"),
    ],
)
def test_markdown_matches_golden(warehouse_db, tmp_path, kind, ps, golden):
    _, out = _render(warehouse_db, kind, ps, tmp_path, run_id="scheduled__2026-11-30T04:30:00+00:00")
    md = out["markdown"]
    assert "scheduled__" not in md and str(tmp_path) not in md and "/tmp" not in md
    path = GOLDEN / golden
    if os.environ.get("KAIZEN_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(md, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with KAIZEN_UPDATE_GOLDEN=1"
    assert md == path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- stability
def test_content_hash_and_charts_are_stable(warehouse_db, tmp_path):
    _, a = _render(warehouse_db, "monthly", date(2026, 11, 1), tmp_path / "a", run_id="run_a")
    _, b = _render(warehouse_db, "monthly", date(2026, 11, 1), tmp_path / "b", run_id="run_b")
    assert a["content_hash"] == b["content_hash"] and len(a["content_hash"]) == 64
    assert a["summary"] == b["summary"] and a["summary"].startswith("win rate ")
    assert a["headline"] != b["headline"]  # the run id differs, in the metadata block only
    assert set(a["charts"]) == set(review.CHARTS)
    # artefact URLs, content-addressed: the same content under the same key in each root
    folder = (tmp_path / "a" / "artifacts" / "monthly_review" / "2026-11").as_uri()
    digest = a["documents"]["html"].removeprefix(folder + "/").split("/")[0]
    assert len(digest) == artifacts.DIGEST_CHARS and b["documents"]["html"].endswith(f"/{digest}/review.html")
    for name, url in a["charts"].items():
        assert url == f"{folder}/{digest}/{name}.png"
        data = artifacts.get(url, what=name)
        assert data.startswith(PNG_SIGNATURE), name
        assert data == artifacts.get(b["charts"][name], what=name), f"chart {name} is not deterministic"
        assert f"]({name}.png)" in a["markdown"]
        assert "data:image/png;base64," in a["html"]
    assert 'src="equity_drawdown.png"' not in a["html"]
    assert artifacts.get_text(a["documents"]["markdown"], what="md") == a["markdown"]
    assert artifacts.get_text(a["documents"]["html"], what="html") == a["html"]


def test_empty_chart_says_no_data(tmp_path):
    paths = [
        charts.equity_drawdown([], [], [], tmp_path / "e.png"),
        charts.uptime_latency([], [], [], tmp_path / "u.png"),
        charts.deployments([], [], [], tmp_path / "d.png"),
        charts.incidents_by_severity([], {"P0": []}, tmp_path / "i.png"),
    ]
    for p in paths:
        assert Path(p).read_bytes().startswith(PNG_SIGNATURE)
    assert charts.uptime_latency([], [], [], tmp_path / "u2.png").read_bytes() == Path(paths[1]).read_bytes()
    assert charts.uptime_latency([], [], []) == Path(paths[1]).read_bytes()  # no path: the same bytes


# ---------------------------------------------------------------- missing data
def test_missing_kpi_reads_na_never_zero(warehouse_db, tmp_path):
    ps = date(2026, 11, 9)
    key = {"kpi_id": "win_rate_pct", "grain": "week", "ps": ps.isoformat()}
    where = "kpi_id = :kpi_id and grain = :grain and period_start = :ps"
    with warehouse_db.begin() as c:
        saved = dict(c.execute(sa.text(f"select * from kpi_values where {where}"), key).mappings().one())
        c.execute(sa.text(f"delete from kpi_values where {where}"), key)
    try:
        report, out = _render(warehouse_db, "weekly", ps, tmp_path)
    finally:
        with warehouse_db.begin() as c:
            cols = ", ".join(saved)
            c.execute(
                sa.text(f"insert into kpi_values ({cols}) values ({', '.join(':' + k for k in saved)})"),
                saved,
            )
    line = report.figures["win_rate_pct"]
    assert line.fig.value is None and line.fig.display == "n/a (not computed)"
    field = next(f["text"] for f in out["headline"]["blocks"][1]["fields"] if "Win Rate" in f["text"])
    assert "n/a" in field and "0.00 %" not in field
    assert "| **Win Rate** | > 55 % | n/a (not computed) ⚠️ |" in out["markdown"]
    weekly = out["sheet_rows"]["Weekly"]
    assert weekly["rows"][0][weekly["header"].index("win_rate_pct")] is None
    score = next(r for r in out["sheet_rows"]["Scorecard"]["rows"] if r[0] == "Win Rate")
    assert score[2] is None and score[4] == "missing"
    assert "win rate n/a" in out["summary"]


def test_empty_warehouse_without_action_items_table(tmp_path):
    """No KPI rows, no incidents, no raw_action_items: everything n/a, charts say no data."""
    from kaizen import warehouse

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    warehouse.apply_ddl(engine)
    with engine.begin() as c:
        c.exec_driver_sql("drop table raw_action_items")
    try:
        for kind, ps in (
            ("weekly", date(2026, 11, 16)),
            ("monthly", date(2026, 10, 1)),
            ("quarterly", date(2026, 10, 1)),
        ):
            report, out = _render(engine, kind, ps, tmp_path / "out")
            assert report.action_items is None
            assert "No data yet" in out["markdown"] and "Action items" not in out["sheet_rows"]
            for ln in report.all_lines:
                assert ln.fig.value is None and not ln.fig.display[:1].isdigit(), ln.fig.kpi_id
            for p in _payloads(out):
                assert not render.check_block_kit(p)
            for name, url in out["charts"].items():
                assert artifacts.get(url, what=name).startswith(PNG_SIGNATURE)
            row = out["sheet_rows"][review.TABS[kind]]["rows"][0]
            assert all(v is None for v in row[4:])
    finally:
        engine.dispose()


def test_late_trade_revises_the_weekly_review_in_place(warehouse_db, tmp_path, monkeypatch):
    """The real weekly review, delivered to a fake Slack; a late trade lands in that week;
    the re-run sends exactly one chat.update (the headline), one thread note, and no new
    top-level message; a further re-run sends nothing."""
    from fakes.slack import FakeSlack
    from kaizen.delivery import reviews
    from kaizen.kpis import periods

    ps = date(2026, 11, 9)  # W46: not the golden file's week
    with FakeSlack() as slack:
        monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
        monkeypatch.setenv("KAIZEN_SLACK_REVIEWS_CHANNEL", "C0REVIEW1")
        monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_GSHEETS", raising=False)
        monkeypatch.setenv(
            "AIRFLOW_CONN_KAIZEN_SLACK",
            json.dumps({"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": slack.base_url}}),
        )
        _, first = _render(warehouse_db, "weekly", ps, tmp_path / "charts")
        reviews.deliver_review(first, warehouse_db, sync_sheets=False)
        assert len(slack.top_level_posts()) == 1
        slack.reset_calls()

        at = datetime(2026, 11, 13, 9, 0, tzinfo=UTC)  # Fri 13 Nov 14:30 IST
        with warehouse_db.begin() as c:
            c.execute(
                sa.text(
                    "insert into raw_trades (trade_id, trading_day, symbol, side, quantity, entry_time, exit_time, "
                    "entry_price_inr, exit_price_inr, fees_inr, net_pnl_inr, strategy, ab_arm, run_id, loaded_at) "
                    "values ('TLATE1', '2026-11-13', 'TCS', 'BUY', 100, :t, :t, 3000, 3500, 20, 49980, "
                    "'momentum_breakout', null, 'late', :t)"
                ),
                {"t": cal.utc_text(at)},
            )
            facts.rebuild(c)
        periods.compute_rollups(warehouse_db, ["week"], ps, ps, "late", as_of=AS_OF)
        _, second = _render(warehouse_db, "weekly", ps, tmp_path / "charts")
        assert second["content_hash"] != first["content_hash"]
        result = reviews.deliver_review(second, warehouse_db, sync_sheets=False)
        assert result["slack"]["action"] == "updated"
        assert len(slack.calls_to("chat.update")) == 1
        assert slack.top_level_posts() == []
        [note] = slack.thread_replies()
        assert note.body["text"].startswith("Revised: ") and "net P&amp;L" in note.body["text"]

        slack.reset_calls()
        _, third = _render(warehouse_db, "weekly", ps, tmp_path / "charts", run_id="manual__again")
        reviews.deliver_review(third, warehouse_db, sync_sheets=False)
        assert slack.calls == []


# ---------------------------------------------------------------- experiments
def test_experiments_section_in_weekly_and_monthly_reviews(warehouse_db, tmp_path, experiment_registry):
    """A registered experiment whose arms no trade carries yet: listed as running with
    what its sample lacks, in the weekly and monthly reviews; the quarterly has none."""
    import yaml

    experiment_registry.write_text(yaml.safe_dump({"experiments": [{
        "id": "kz-check", "hypothesis": "A tighter entry filter raises the win rate", "scope": "momentum_breakout",
        "control_arm": "kz-c", "test_arm": "kz-t", "planned_start": "2026-11-16", "planned_end": "2026-12-04",
        "owner": "Desk"}]}), encoding="utf-8")
    expected = (
        "- **kz-check** — running to 4 Dec 2026 · owner Desk: A tighter entry filter raises the win rate\n"
        "  - Trades: control `kz-c` 0, test `kz-t` 0 (minimum 100 per arm)\n"
        "  - Win Rate (primary): control n/a vs test n/a (n/a ➖)\n"
        "  - Interim: insufficient sample: control (kz-c) needs 100 more trades; test (kz-t) needs 100 more "
        "trades to reach the minimum of 100 per arm\n"
        "  - ⚠️ Interim figures: the verdict is final only at the planned end (04 Dec 2026)."
    )
    for kind, ps, as_of_text in (("weekly", date(2026, 11, 16), "22 Nov 2026"),
                                 ("monthly", date(2026, 11, 1), "27 Nov 2026")):
        report, out = _render(warehouse_db, kind, ps, tmp_path)
        assert [ln.experiment_id for ln in report.experiments.lines] == ["kz-check"]
        assert expected in out["markdown"], kind
        assert f"Running in the period or ended in it, as of {as_of_text}" in out["markdown"]
        reply = next(p for p in out["thread"] if p["text"].startswith("Experiments"))  # other sections follow it
        assert reply["text"] == f"Experiments — {out['period_key']}" and not render.check_block_kit(reply)
    report, out = _render(warehouse_db, "quarterly", date(2026, 10, 1), tmp_path)
    assert report.experiments is None and "### Experiments" not in out["markdown"]
