"""The A/B readout report (kaizen.experiments.report) and the reviews' "Experiments"
section (kaizen.reports.review): a readout computed from planted trades rendered to the
source document's table (exact rows, ✅/❌, the Improvement column), the statistics per
metric, Block Kit limits with hostile registry text, the "Experiment results" Sheet
rows; delivered over the real wire to the local fake Slack — posted once at the end, a
re-run posting nothing, a late trade revising the message in place, a running
experiment never posted; and the section in the weekly and monthly reviews with a
running experiment, an ended one, a refused registry row and an unreadable registry."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from fakes.slack import FakeSlack, block_kit_problems
from kaizen import warehouse
from kaizen.delivery import outbox
from kaizen.experiments import readout, report, stats
from kaizen.experiments.registry import ENV_EXPERIMENTS_FILE, Experiment
from kaizen.reports import render, review

START, END = date(2026, 11, 2), date(2026, 11, 13)  # Mon 2 – Fri 13 Nov 2026
CAPITAL = 100_000.0
CHANNEL = "C0REVIEW1"
RULE = "roll out if win_rate better and max_drawdown not worse"
DAYS = [START + timedelta(days=d) for d in range(12) if (START + timedelta(days=d)).weekday() < 5]


def experiments_reply(out: dict) -> dict:
    """The review thread's one "Experiments" reply (other sections' replies come after it)."""
    [reply] = [p for p in out["thread"] if p["text"].startswith("Experiments — ")]
    return reply


def experiment(**kw) -> Experiment:
    base = dict(id="sl-2pct", hypothesis="Increasing the stop-loss from 1.5 % to 2.0 % improves the win rate",
                scope="mean_reversion", control_arm="sl-1.5pct", test_arm="sl-2.0pct", planned_start=START,
                planned_end=END, owner="Priya", decision_rule=RULE)
    return Experiment(**{**base, **kw})


def trade(i: int, arm: str, pnl: float, day: date, strategy: str = "mean_reversion") -> dict:
    at = datetime(day.year, day.month, day.day, 5, 0, tzinfo=UTC) + timedelta(seconds=i)
    return {"trade_id": f"T{i:05d}", "trading_day": day, "symbol": "INFY", "side": "BUY", "quantity": 1,
            "entry_time": at, "exit_time": at, "entry_price_inr": 100.0, "exit_price_inr": 100.0, "fees_inr": 0.0,
            "net_pnl_inr": pnl, "strategy": strategy, "ab_arm": arm, "run_id": "t", "loaded_at": at}


def arm_trades(arm: str, pnl: list[float], first_id: int) -> list[dict]:
    """The arm's trades in this order, spread over the experiment's trading days."""
    return [trade(first_id + k, arm, p, DAYS[k * len(DAYS) // len(pnl)]) for k, p in enumerate(pnl)]


# Control: 70 wins of ₹700 and 50 losses of ₹392, a loss after each of the first 50
# wins → win rate 58.33 %, ₹245 a trade, drawdown one loss deep: 392 ÷ 1,00,700.
CONTROL = [p for _ in range(50) for p in (700.0, -392.0)] + [700.0] * 20
# Test: 72 wins of ₹700 and 48 losses of ₹275, the losses first → 60.00 %, ₹310 a
# trade, drawdown 48 × 275 = 13,200 below the capital base of 1,00,000: 13.2 %.
TEST = [-275.0] * 48 + [700.0] * 72


def load(engine, rows) -> None:
    with warehouse.writing(engine) as c:
        warehouse.insert_rows(c, "raw_trades", rows)


def plant(engine, control=CONTROL, test=TEST) -> None:
    load(engine, arm_trades("sl-1.5pct", control, 1) + arm_trades("sl-2.0pct", test, 10_001))


def read(engine, e: Experiment, day: date) -> readout.Readout:
    with engine.connect() as c:
        return readout.read_out(c, e, day, capital=CAPITAL)


def payloads(rendered) -> list[dict]:
    return [rendered["headline"], *rendered["thread"]]


def texts(payload: dict) -> str:
    """Every mrkdwn / plain text of a payload, in order."""
    out = []
    for b in payload["blocks"]:
        if isinstance(b.get("text"), dict):
            out.append(b["text"]["text"])
        out += [f["text"] for f in b.get("fields") or []]
        out += [el.get("text", "") for el in b.get("elements") or []]
    return "\n".join(out)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No Sheet, live sources (no demo registry), the outbox in tmp."""
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_GSHEETS", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_SLACK", raising=False)
    monkeypatch.delenv(ENV_EXPERIMENTS_FILE, raising=False)
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))


# ---------------------------------------------------------------------------- render
def test_the_final_readout_renders_the_documents_table_and_statistics(engine):
    plant(engine)
    r = read(engine, experiment(), END + timedelta(days=1))
    out = report.render(r, "scheduled__2026-11-14T02:30:00+00:00")

    assert (out["report"], out["period_key"], out["charts"]) == ("experiment_readout", "sl-2pct", {})
    # the source document's table, exactly: the Improvement of win rate and drawdown in
    # points (signed so better is positive), of the average profit relative to the control
    md = out["markdown"]
    assert (
        "| Metric | Control | Test | Improvement |\n"
        "|--------|---------|------|-------------|\n"
        "| Win Rate | 58.3 % | 60.0 % | +1.7 % ✅ |\n"
        "| Avg Profit | ₹245 | ₹310 | +26.5 % ✅ |\n"
        "| Max Drawdown | 0.4 % | 13.2 % | −12.8 % ❌ |\n"
    ) in md
    assert [m.improvement for m in r.metrics] == [
        pytest.approx(60 - 70 / 1.2), pytest.approx(65 / 245 * 100), pytest.approx(392 / 100_700 * 100 - 13.2)]

    # Slack: the same rows as monospace lines in the first reply
    table = out["thread"][0]["blocks"][1]["text"]["text"]
    assert table.splitlines() == [
        "```",
        "Metric        Control  Test    Improvement",
        "Win Rate      58.3 %   60.0 %  +1.7 % ✅",
        "Avg Profit    ₹245     ₹310    +26.5 % ✅",
        "Max Drawdown  0.4 %    13.2 %  −12.8 % ❌",
        "```",
    ]

    # the headline: verdict, hypothesis, owner, dates, trades per arm, the suggestion as such
    head = out["headline"]
    assert head["blocks"][0]["text"]["text"] == "🧪 A/B readout — sl-2pct: no significant difference in win rate"
    h = texts(head)
    assert "*Hypothesis:* Increasing the stop-loss from 1.5 % to 2.0 % improves the win rate" in h
    assert "*Owner:* Priya · *Scope:* mean_reversion · *Planned:* 2–13 Nov 2026 (ended 13 Nov 2026)" in h
    assert "*Control* `sl-1.5pct`\n120 trades (minimum 100) ✔" in h and "*Test* `sl-2.0pct`\n120 trades (minimum 100) ✔" in h
    assert ("💡 Suggestion for Priya: roll back — no significant difference in win rate; max drawdown "
            "significantly worse. _A suggestion for the owner to decide on: Kaizen decides nothing._") in h
    assert "Interim" not in h and "⚠️" not in h

    # the statistics, per metric, against the statistics module on the same trades
    wr = stats.win_rate(70, 120, 72, 120)
    welch = r.metrics[1].comparison
    assert welch == stats.avg_profit(CONTROL, TEST, seed=readout._seed("sl-2pct"), resamples=readout.RESAMPLES)
    detail = texts(out["thread"][1])
    assert (f"*Win Rate* (primary) — no significant difference\ndifference +1.67 pp, 95 % CI "
            f"{report.diff_text('win_rate', wr.ci_low)} to +{wr.ci_high:.2f} pp (Wald (unpooled SE)), "
            f"p = {wr.p_value:.3f}; two-proportion z-test") in detail
    # by hand: pooled 142/240, SE √(0.5917 × 0.4083 × 2/120) = 0.06346, z = 0.01667/0.06346 = 0.2627
    assert f"p = {wr.p_value:.3f}" == "p = 0.793"
    assert (f"difference +₹65, 95 % CI {render.inr(welch.ci_low, plus=True)} to +₹{welch.ci_high:,.0f} "
            f"(Welch–Satterthwaite t), p = {welch.p_value:.3f}; Welch's t-test") in detail
    assert (f"bootstrap (10,000 resamples, percentile): 95 % CI {render.inr(welch.boot_ci_low, plus=True)} to "
            f"+₹{welch.boot_ci_high:,.0f} (P&amp;L is heavy-tailed)") in detail
    dd = r.metrics[2].comparison
    assert dd.ci_low > 0 and r.metrics[2].outcome == "worse"
    assert "*Max Drawdown* — significant deterioration\ndifference +12.81 pp" in detail
    assert "on each arm's own equity path" in detail
    assert "*control* `sl-1.5pct`: 120 trades, 70 won (58.3 %), average ₹245 a trade, net P&amp;L ₹29,400" in detail
    assert "*test* `sl-2.0pct`: 120 trades, 72 won (60.0 %), average ₹310 a trade, net P&amp;L ₹37,200" in detail

    # the document says the same
    assert "**Suggestion:** Suggestion for Priya: roll back" in md
    assert "| control | `sl-1.5pct` | 120 | 70 | 58.3 % | ₹245 | ₹29,400 | 0.4 % | — |" in md
    assert "| test | `sl-2.0pct` | 120 | 72 | 60.0 % | ₹310 | ₹37,200 | 13.2 % | — |" in md
    assert "Minimum 100 trades per arm: reached." in md
    assert "<td>+26.5 % ✅</td>" in out["html"] and "<th>Improvement</th>" in out["html"]

    # the one-line summary the revision note compares
    assert out["summary"] == ("verdict no significant difference in win rate; trades: control 120, test 120; "
                              "win rate: control 58.3 %, test 60.0 %; average profit per trade: control ₹245, "
                              "test ₹310; max drawdown: control 0.4 %, test 13.2 %; suggestion roll back")


def test_sheet_rows_one_per_experiment_and_metric_keyed_by_both(engine):
    plant(engine)
    r = read(engine, experiment(), END + timedelta(days=1))
    rows = report.render(r, "run")["sheet_rows"]
    assert list(rows) == ["Experiment results"]  # never "Experiments": the registry tab people edit
    tab = rows["Experiment results"]
    assert tab["header"] == ["experiment_id", "metric", "status", "as_of", "control", "test", "difference", "ci_low",
                             "ci_high", "p_value", "improvement", "verdict", "unit"]
    assert tab["key_columns"] == 2 and set(tab["number_formats"]) <= set(tab["header"])
    wr, avg, dd = tab["rows"]
    expected = stats.win_rate(70, 120, 72, 120)
    assert wr[:4] == ["sl-2pct", "win_rate", "ended", "2026-11-13"] and wr[11:] == ["no significant difference", "pct"]
    assert wr[4:11] == [pytest.approx(70 / 1.2), pytest.approx(60.0), pytest.approx(expected.diff),
                        pytest.approx(expected.ci_low), pytest.approx(expected.ci_high),
                        pytest.approx(expected.p_value), pytest.approx(60 - 70 / 1.2)]
    assert avg[:2] == ["sl-2pct", "avg_profit"] and avg[4:7] == [245.0, 310.0, pytest.approx(65.0)]
    assert avg[10] == pytest.approx(26.5306, abs=1e-4) and avg[12] == "inr"
    assert dd[:2] == ["sl-2pct", "max_drawdown"] and dd[9] is None  # the bootstrap gives no p-value
    assert dd[4:6] == [pytest.approx(392 / 100_700 * 100), pytest.approx(13.2)]
    assert dd[11] == "significant deterioration"
    # the delivery's Sheet tab accepts it as is
    from kaizen.delivery import reviews

    [sheet_tab] = reviews.sheet_tabs(rows)
    assert (sheet_tab.name, sheet_tab.key_columns, len(sheet_tab.rows)) == ("Experiment results", 2, 3)


# an arm whose trades so far are all the same loss: scipy warns its variance is ~0
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_insufficient_sample_and_interim_readouts(engine):
    plant(engine, control=CONTROL[:40], test=TEST[:55])
    final = read(engine, experiment(), END + timedelta(days=1))
    out = report.render(final, "run")
    assert out["headline"]["blocks"][0]["text"]["text"] == "🧪 A/B readout — sl-2pct: insufficient sample"
    h = texts(out["headline"])
    assert ("⏳ *insufficient sample: control (sl-1.5pct) needs 60 more trades; test (sl-2.0pct) needs 45 more "
            "trades to reach the minimum of 100 per arm*") in h
    assert "No suggestion for Priya yet: insufficient sample for win rate and max drawdown." in h
    assert "*Control* `sl-1.5pct`\n40 trades (minimum 100) · needs 60 more" in h
    assert "no verdict: insufficient sample" in texts(out["thread"][1])
    assert "| Win Rate | 50.0 % | 12.7 % | −37.3 % ❌ |" in out["markdown"]  # 20/40 and 7/55: figures, no verdict
    assert [row[11] for row in out["sheet_rows"]["Experiment results"]["rows"]] == ["insufficient sample"] * 3

    running = read(engine, experiment(), date(2026, 11, 6))
    out = report.render(running, "run")
    assert running.status == "running" and out["headline"]["blocks"][0]["text"]["text"].endswith("(interim)")
    warning = ("⚠️ Interim figures: the verdict is final only at the planned end (13 Nov 2026). Stopping early on "
               "a significant peek inflates the false-positive rate well above 5%.")
    assert warning in texts(out["headline"]) and warning in texts(out["thread"][1])
    assert "> ⚠️ Interim figures: the verdict is final only at the planned end (13 Nov 2026)." in out["markdown"]
    assert "_Interim readout · running to 13 Nov 2026 ·" in out["markdown"] and "Suggestion" not in out["markdown"]


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_block_kit_limits_hold_and_registry_text_is_escaped(engine):
    evil = "<!channel> & <@U123> "
    e = experiment(hypothesis=evil + "x" * 5000, owner=evil + "y" * 500, control_arm="c" * 300, test_arm="t" * 300,
                   scope="mean_reversion")
    load(engine, arm_trades("c" * 300, CONTROL, 1) + arm_trades("t" * 300, TEST, 10_001))
    for r in (read(engine, e, END + timedelta(days=1)), read(engine, e, date(2026, 11, 4))):
        out = report.render(r, "run-<!here>")
        for p in payloads(out):
            assert render.check_block_kit(p) == [] and block_kit_problems(p["blocks"]) == []
            assert len(p["text"]) <= render.SLACK_MAX_FALLBACK_TEXT
        wire = json.dumps(payloads(out), ensure_ascii=False)
        assert "<!channel>" not in wire and "<@U123>" not in wire and "<!here>" not in wire
        assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in wire
        assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in out["markdown"] and "<!channel>" not in out["html"]


# ---------------------------------------------------------------------------- deliver
@pytest.fixture
def slack(monkeypatch):
    with FakeSlack() as fake:
        monkeypatch.setenv(
            "AIRFLOW_CONN_KAIZEN_SLACK",
            json.dumps({"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": fake.base_url}}),
        )
        monkeypatch.setenv("KAIZEN_SLACK_REVIEWS_CHANNEL", CHANNEL)
        yield fake


def test_posted_once_at_the_end_and_revised_in_place_by_a_late_trade(engine, slack):
    plant(engine)
    ended = experiment()
    running = experiment(id="entry-filter", scope="pairs_stat_arb", control_arm="ef-off", test_arm="ef-on",
                         planned_end=date(2026, 11, 27), decision_rule="roll out if win_rate better")
    day = END + timedelta(days=1)
    readouts = [read(engine, ended, day), read(engine, running, day)]
    assert [r.status for r in readouts] == ["ended", "running"]

    [result] = report.deliver(engine, readouts, "scheduled__2026-11-14")  # the running one is not posted
    assert (result["report"], result["period_key"]) == ("experiment_readout", "sl-2pct")
    assert (result["slack"]["action"], result["slack"]["version"]) == ("posted", 1)
    [top] = slack.top_level_posts()
    head_ts = top.response["ts"]
    assert top.body["channel"] == CHANNEL and top.body["blocks"][0]["text"]["text"].startswith("🧪 A/B readout — sl-2pct")
    assert [c.body["thread_ts"] for c in slack.thread_replies()] == [head_ts, head_ts]
    # the Sheet's stand-in: the "Experiment results" tab, one row per metric
    sheet = json.loads(outbox.sheet_file("Experiment results").read_text(encoding="utf-8"))
    assert [row[:3] for row in sheet["rows"]] == [["sl-2pct", m, "ended"] for m in ("win_rate", "avg_profit",
                                                                                      "max_drawdown")]

    # a re-run (another run id, the same trades): nothing at all reaches Slack
    slack.reset_calls()
    again = report.deliver(engine, [read(engine, ended, day + timedelta(days=3)), readouts[1]], "manual__rerun")
    assert slack.calls == [] and slack.top_level_posts() == []
    assert again[0]["slack"]["action"] == "unchanged" and again[0]["sheets"]["action"] == "unchanged"

    # a late trade of the test arm, closed on the last day, loaded after the end
    load(engine, [trade(99_999, "sl-2.0pct", -5_000.0, END)])
    late = read(engine, ended, day + timedelta(days=4))
    assert late.test.trades == 121
    slack.reset_calls()
    [revised] = report.deliver(engine, [late], "manual__late")
    assert (revised["slack"]["action"], revised["slack"]["version"]) == ("updated", 2)
    assert slack.top_level_posts() == []
    [update] = slack.calls_to("chat.update")
    assert update.body["ts"] == head_ts and update.body["channel"] == CHANNEL
    [note] = slack.thread_replies()
    assert note.body["thread_ts"] == head_ts
    # only what changed: the test arm's figures (121 trades, 73 won, ₹32,200 ÷ 121)
    assert note.body["text"].startswith(
        "Revised: trades: control 120, test 120 → 121; win rate: control 58.3 %, test 60.0 % → 59.5 %; "
        "average profit per trade: control ₹245, test ₹310 → ₹266 (version 2).")
    sheet = json.loads(outbox.sheet_file("Experiment results").read_text(encoding="utf-8"))
    assert len(sheet["rows"]) == 3 and sheet["rows"][1][5] == pytest.approx((37_200 - 5_000) / 121)  # replaced

    slack.reset_calls()
    report.deliver(engine, [late], "manual__again")
    assert slack.calls == []


def test_the_outbox_stands_in_without_slack(engine):
    plant(engine)
    r = read(engine, experiment(), END + timedelta(days=1))
    [result] = report.deliver(engine, [r], "run", sync_sheets=False)
    assert result["slack"] is None and result["outbox"]["action"] == "written" and result["sheets"] is None
    folder = outbox.folder("experiment_readout", "sl-2pct")
    assert "| Avg Profit | ₹245 | ₹310 | +26.5 % ✅ |" in (folder / "review.md").read_text(encoding="utf-8")
    assert report.deliver(engine, [r], "run", sync_sheets=False)[0]["outbox"]["action"] == "unchanged"


# ---------------------------------------------------------------------------- the reviews' section
def write_registry(tmp_path, monkeypatch, entries) -> None:
    path = tmp_path / "experiments.yaml"
    path.write_text(yaml.safe_dump({"experiments": entries}, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv(ENV_EXPERIMENTS_FILE, str(path))


def entry(**kw) -> dict:
    base = {"id": "sl-2pct", "hypothesis": "A wider stop-loss wins more often", "scope": "mean_reversion",
            "control_arm": "sl-1.5pct", "test_arm": "sl-2.0pct", "planned_start": "2026-11-02",
            "planned_end": "2026-11-20", "owner": "Priya", "decision_rule": RULE}
    return {**base, **kw}


def section(markdown: str) -> str:
    start = markdown.index("### Experiments (A/B tests)")
    return markdown[start:markdown.index("\n### ", start + 1)].strip()


def weekly(engine, tmp_path, ps=date(2026, 11, 9), as_of=datetime(2026, 11, 16, 2, 30, tzinfo=UTC)):
    r = review.build_review(engine, "weekly", ps, as_of=as_of)
    return r, review.render_review(r, run_id="run", out_dir=tmp_path / "charts")


def test_weekly_review_lists_a_running_experiment_and_the_refused_rows(engine, tmp_path, monkeypatch):
    plant(engine)
    write_registry(tmp_path, monkeypatch, [
        entry(),  # running to 20 Nov: interim in W46 (9–15 Nov)
        entry(id="later", control_arm="l-c", test_arm="l-t", planned_start="2026-11-23", planned_end="2026-11-27"),
        entry(id="old", control_arm="o-c", test_arm="o-t", planned_start="2026-10-05", planned_end="2026-10-16"),
        entry(id="bad-arms", control_arm="x", test_arm="x"),
    ])
    r, out = weekly(engine, tmp_path)
    assert [ln.experiment_id for ln in r.experiments.lines] == ["sl-2pct"]  # not the later, not the old one
    where = str(tmp_path / "experiments.yaml").replace("_", "\\_")
    assert section(out["markdown"]) == (
        "### Experiments (A/B tests)\n\n"
        f"Running in the period or ended in it, as of 15 Nov 2026 (registry: {where}). Each readout counts the "
        "experiment's trades from its planned start.\n\n"
        "- **sl-2pct** — running to 20 Nov 2026 · owner Priya: A wider stop-loss wins more often\n"
        "  - Trades: control `sl-1.5pct` 120, test `sl-2.0pct` 120 (minimum 100 per arm)\n"
        "  - Win Rate (primary): control 58.3 % vs test 60.0 % (+1.7 % ✅)\n"
        "  - Interim: no significant difference in win rate\n"
        "  - ⚠️ Interim figures: the verdict is final only at the planned end (20 Nov 2026). Stopping early on a "
        "significant peek inflates the false-positive rate well above 5%.\n\n"
        f"**Refused registry rows** (fix them in {where}; the other experiments are read out):\n\n"
        f"- ⛔ {where} experiment 4 (bad-arms): test\\_arm 'x' is the same as control\\_arm"
    )
    reply = experiments_reply(out)
    assert reply["text"] == "Experiments — 2026-W46" and render.check_block_kit(reply) == []
    slack_text = texts(reply)
    assert ("• *sl-2pct* (running to 20 Nov 2026, owner Priya): control `sl-1.5pct` 120 / test `sl-2.0pct` 120 "
            "trades (minimum 100) · Win Rate 58.3 % vs 60.0 % (+1.7 % ✅) · _interim:_ no significant difference "
            "in win rate · ⚠️ Interim figures:") in slack_text
    assert "• ⛔ " in slack_text and "(bad-arms): test_arm 'x' is the same as control_arm" in slack_text


def test_an_ended_experiment_in_the_monthly_review_gives_the_suggestion(engine, tmp_path, monkeypatch):
    plant(engine)
    write_registry(tmp_path, monkeypatch, [entry(planned_end="2026-11-13")])
    r = review.build_review(engine, "monthly", date(2026, 11, 1), as_of=datetime(2026, 12, 1, 2, 30, tzinfo=UTC))
    out = review.render_review(r, run_id="run", out_dir=tmp_path / "charts")
    [line] = r.experiments.lines
    assert (line.status, line.control_trades, line.test_trades) == ("ended", 120, 120)
    text = section(out["markdown"])
    assert "- **sl-2pct** — ended 13 Nov 2026 · owner Priya: A wider stop-loss wins more often" in text
    assert "  - Final: no significant difference in win rate\n" in text
    assert ("  - Suggestion for Priya: roll back — no significant difference in win rate; max drawdown "
            "significantly worse. _(a suggestion for the owner to decide on)_") in text
    assert "Interim" not in text
    assert "*final:* no significant difference in win rate · 💡 Suggestion for Priya: roll back" in texts(experiments_reply(out))


def test_no_experiment_and_an_unreadable_registry(engine, tmp_path, monkeypatch):
    write_registry(tmp_path, monkeypatch, [])
    r, out = weekly(engine, tmp_path)
    assert section(out["markdown"]) == "### Experiments (A/B tests)\n\nNo experiments running."
    assert "No experiments running." in texts(experiments_reply(out))

    monkeypatch.setenv(ENV_EXPERIMENTS_FILE, str(tmp_path / "missing.yaml"))
    r, out = weekly(engine, tmp_path)  # the review is still made
    assert r.experiments.error.startswith(f"KAIZEN_EXPERIMENTS_FILE={tmp_path / 'missing.yaml'}: no such file.")
    assert section(out["markdown"]).startswith(
        "### Experiments (A/B tests)\n\n_experiment registry unavailable: KAIZEN\\_EXPERIMENTS\\_FILE=")
    assert texts(experiments_reply(out)).startswith(
        f"Experiments (A/B tests) — 2026-W46\n⚠️ experiment registry unavailable: KAIZEN_EXPERIMENTS_FILE={tmp_path}")

    (tmp_path / "broken.yaml").write_text("experiments: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv(ENV_EXPERIMENTS_FILE, str(tmp_path / "broken.yaml"))
    r, _ = weekly(engine, tmp_path)
    assert "is not valid YAML" in r.experiments.error


def test_quarterly_review_has_no_experiments_section(engine, tmp_path, monkeypatch):
    plant(engine)
    write_registry(tmp_path, monkeypatch, [entry()])
    r = review.build_review(engine, "quarterly", date(2026, 10, 1), as_of=datetime(2026, 11, 16, 2, 30, tzinfo=UTC))
    out = review.render_review(r, run_id="run", out_dir=tmp_path / "charts")
    assert r.experiments is None and "Experiments" not in out["markdown"]
    assert all("Experiments" not in p["text"] for p in out["thread"])
