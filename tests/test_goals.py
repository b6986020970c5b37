"""Goals: the OKR scoring rule by hand, the OKRs tab read over real HTTP from the fake
Sheets API (formatted values, refused rows naming the column), a KPI-linked and a
manual key result scored from kpi_values and the tab; the improvement backlog from
the fake GitHub API (👍 votes from ``reactions["+1"]``, pagination, pull requests
skipped, malformed issues quarantined), the top 3 with its tie rule, and the
before/after impact of a closed improvement whose KPI moved — SQLite and PostgreSQL
with identical results, re-run safe, and the review sections built from them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from fakes.github import FakeGitHub
from fakes.sheets import FakeSheetsServer
from kaizen import config, warehouse
from kaizen.calendar import IST
from kaizen.goals import backlog, impact, okrs, scoring, section, store

SID = "1kaizenGoalsSheet"
REPO = "desk/trading-api"
TOKEN = "ghp_goals"
NOW = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)  # the review's run (first Monday 14:00 IST)
NOVEMBER = store.Review("monthly", "2026-11", date(2026, 11, 1), date(2026, 11, 30),
                        datetime(2026, 12, 1, tzinfo=IST))


# ---------------------------------------------------------------- the scoring rule
@pytest.mark.parametrize(
    ("value", "target", "baseline", "better", "score"),
    [
        (56.5, 58, 55, "higher", 0.5),  # (56.5 − 55) / (58 − 55) = 1.5 / 3
        (58, 58, 55, "higher", 1.0),
        (60, 58, 55, "higher", 1.0),  # overshoot: clamped
        (54, 58, 55, "higher", 0.0),  # below the baseline: clamped
        (21, 15, 25, "lower", 0.4),  # (25 − 21) / (25 − 15) = 4 / 10
        (12, 15, 25, "lower", 1.0),
        (30, 15, 25, "lower", 0.0),
        (58, 58, None, "higher", 1.0),  # no baseline: met
        (57.99, 58, None, "higher", 0.0),  # not met
        (5, 5, None, "lower", 1.0),
        (5.6, 5, None, "lower", 0.0),
        (-20_000, 10_000, -50_000, "higher", 0.5),  # negative values: 30,000 of 60,000
    ],
)
def test_progress_by_hand(value, target, baseline, better, score):
    assert scoring.progress(value, target, baseline, better) == pytest.approx(score, abs=1e-12)


def test_progress_refuses_a_target_on_the_wrong_side():
    with pytest.raises(ValueError, match="not above baseline"):
        scoring.progress(1, 50, 55, "higher")
    with pytest.raises(ValueError, match="not below baseline"):
        scoring.progress(1, 30, 25, "lower")


def test_objective_mean_and_grades():
    assert scoring.objective_score([0.5, None, 1.0]) == 0.75  # the unscored KR is left out
    assert scoring.objective_score([None, None]) is None
    assert [scoring.grade(s) for s in (0.7, 0.6999, 0.4, 0.3999, None)] == [
        "on track", "behind", "behind", "off track", "not scored"]
    assert scoring.manual_better(10, 0) == "higher" and scoring.manual_better(2, 8) == "lower"


def test_verdict_uses_the_better_direction_and_the_neutral_band():
    assert impact.verdict(10.0, 8.0, "lower", 5) == "improved"
    assert impact.verdict(10.0, 8.0, "higher", 5) == "worsened"
    assert impact.verdict(10.0, 10.4, "higher", 5) == "unchanged"  # +4 % inside ±5 %
    assert impact.verdict(10.0, 10.6, "higher", 5) == "improved"
    assert impact.verdict(0.0, 0.0, "lower", 5) == "unchanged"
    assert impact.verdict(None, 1.0, "lower", 5) == "no data"


def test_windows_leave_the_close_day_out():
    w = impact.windows(datetime(2026, 10, 14, 20, 0, tzinfo=UTC), 28)  # 15 Oct 01:30 IST
    assert w.close_day == date(2026, 10, 15)
    assert w.before == (date(2026, 9, 17), date(2026, 10, 14))
    assert w.after == (date(2026, 10, 16), date(2026, 11, 12))


def test_window_setting_is_checked(monkeypatch):
    monkeypatch.setenv(impact.ENV_WINDOW_DAYS, "14")
    assert impact.window_days() == 14
    monkeypatch.setenv(impact.ENV_WINDOW_DAYS, "four weeks")
    with pytest.raises(Exception, match="KAIZEN_IMPACT_WINDOW_DAYS='four weeks'"):
        impact.window_days()


# ---------------------------------------------------------------- the OKRs tab
HEADER = ["Quarter", "Objective", "Key result", "Owner", "KPI id", "Baseline", "Target", "Value", "Score", "Notes"]
TAB = [
    HEADER,
    ["2026-Q4", "Trade well", "Win rate of 58 %", "Priya", "win_rate_pct", "55%", "58%", "", "", "KPI-linked"],
    ["Q4 2026", "Trade well", "Runbooks for 10 services", "Ravi", "", "0", "10", "7", "", "manual by value"],
    ["2026 q4", "Be reliable", "MTTR under 15 min", "Anil", "mttr_minutes", "25", "15"],
    ["2026-Q4", "Be reliable", "5 alerts a day", "Anil", "alerts_per_day", "", "5"],
    ["2026-Q4", "Be reliable", "Latency p95 under 300 ms", "Anil", "sli_p95_latency_ms", "400", "300"],
    [],
    ["2026-Q4", "Grow", "Two tech talks a month", "Kavya", "", "", "", "", "60%"],
    ["2026-Q4", "Grow", "Docs coverage 95 %", "Kavya", "documentation_coverage", "87%", "95%"],
    ["2026-Q4", "", "Hire an SRE", "Kavya", "", "", "1", "", "1.5"],
    ["2027-Q1", "Ship safely", "Change failure rate below 10 %", "Arjun", "change_failure_rate_pct", "15", "10"],
]
# kpi_values of 2026-Q4: win rate 56.5 %, MTTR 21 min, 5.6 alerts/day, latency without enough data
QUARTER_VALUES = {"win_rate_pct": (56.5, "on_target"), "mttr_minutes": (21.0, "on_target"),
                  "alerts_per_day": (5.6, "on_target"), "sli_p95_latency_ms": (None, "insufficient_data")}


def put_rows(fake: FakeSheetsServer, rows: list[list], tab: str = "OKRs") -> None:
    sheet = fake.sheet(SID, tab)
    with fake.lock:
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value not in ("", None):
                    sheet.cells[(r, c)] = value


@pytest.fixture
def sheet(monkeypatch):
    with FakeSheetsServer() as server:
        server.create_spreadsheet(SID, sheets=(("Scorecard", 1000, 26), ("OKRs", 1000, 26)))
        monkeypatch.setenv("AIRFLOW_CONN_KAIZEN_GSHEETS", json.dumps(
            {"conn_type": "google_sheets", "extra": {"spreadsheet_id": SID, "base_url": server.base_url}}))
        monkeypatch.setenv("KAIZEN_SOURCES", "live")
        assert config.get_connection(config.GSHEETS_CONN_ID).extra["spreadsheet_id"] == SID
        yield server


def test_the_okrs_tab_is_read_over_http_and_bad_rows_name_their_column(sheet):
    put_rows(sheet, TAB)
    tab = okrs.read()
    assert tab.location == f"spreadsheet {SID} tab 'OKRs'"
    assert tab.extracted == 9  # rows 2–11, the blank row 7 skipped
    got = {k.row: (k.quarter, k.kind, k.kpi_id, k.baseline, k.target, k.value, k.score) for k in tab.key_results}
    assert got == {
        2: ("2026-Q4", "kpi", "win_rate_pct", 55.0, 58.0, None, None),
        3: ("2026-Q4", "manual", None, 0.0, 10.0, 7.0, None),
        4: ("2026-Q4", "kpi", "mttr_minutes", 25.0, 15.0, None, None),
        5: ("2026-Q4", "kpi", "alerts_per_day", None, 5.0, None, None),
        6: ("2026-Q4", "kpi", "sli_p95_latency_ms", 400.0, 300.0, None, None),
        8: ("2026-Q4", "manual", None, None, None, None, 0.6),
        11: ("2027-Q1", "kpi", "change_failure_rate_pct", 15.0, 10.0, None, None),
    }
    assert [(r.row, r.column) for r in tab.refused] == [(9, "kpi_id"), (10, "objective"), (10, "score")]
    assert tab.refused[0].message == (
        "OKRs!row 9 (Docs coverage 95 %): kpi_id 'documentation_coverage' is not a KPI of the catalog "
        "(plugins/kaizen/kpis/catalog.yaml; e.g. win_rate_pct, uptime_pct)")
    assert tab.refused[2].message == "OKRs!row 10 (Hire an SRE): score '1.5' is not a score between 0.0 and 1.0 (or 0–100 %)"


def test_a_tab_without_a_required_column_is_refused_whole(sheet):
    put_rows(sheet, [["Quarter", "Objective", "Key result", "Owner", "Target"], TAB[1][:4] + ["58"]])
    tab = okrs.read()
    assert tab.key_results == []
    assert [(r.row, r.column) for r in tab.refused] == [(1, "header")]
    assert "missing column(s) kpi_id" in tab.refused[0].message


@pytest.mark.parametrize(
    ("cells", "column", "text"),
    [
        ({"kpi_id": "win_rate_pct", "target": "58", "value": "57"}, "value", "value is for manual KRs"),
        ({"kpi_id": "win_rate_pct", "baseline": "58", "target": "55"}, "target", "not above baseline 58"),
        ({"kpi_id": "mttr_minutes"}, "target", "target is missing"),
        ({"value": "7", "target": "10"}, "baseline", "needs a baseline to tell which way is better"),
        ({"score": "0.5", "target": "10"}, "target", "target and score are both given"),
        ({}, "kpi_id", "neither kpi_id nor a manual value, score or target"),
        ({"kpi_id": "infra_cost_inr_typo", "target": "1"}, "kpi_id", "is not a KPI of the catalog"),
        ({"quarter": "2026-Q5", "score": "0.5"}, "quarter", "quarter '2026-Q5' is not a quarter"),
        ({"target": "1,00,000", "baseline": "₹abc"}, "baseline", "baseline '₹abc' is not a number"),
    ],
)
def test_each_bad_cell_is_refused_with_its_column(cells, column, text):
    row = {"quarter": "2026-Q4", "objective": "O", "key_result": "K", "owner": "P", **cells}
    values = [list(okrs.COLUMNS), [row.get(c, "") for c in okrs.COLUMNS]]
    tab = okrs.parse_values(values, "OKRs", "test")
    assert tab.key_results == []
    assert column in [r.column for r in tab.refused]
    assert any(text in r.message for r in tab.refused), [r.message for r in tab.refused]


def test_numbers_as_people_type_them():
    assert okrs.number("1,00,000") == 100000.0
    assert okrs.number("₹12,500") == 12500.0
    assert okrs.number("99.95%") == 99.95
    assert okrs.number("−3.5") == -3.5
    assert okrs.score_value("70%") == pytest.approx(0.7)
    assert okrs.parse_quarter("Q1-2027") == "2027-Q1" and okrs.parse_quarter("2027/q2") == "2027-Q2"


# ---------------------------------------------------------------- scoring from kpi_values
def put_quarter_values(engine, values=QUARTER_VALUES, quarter=date(2026, 10, 1)):
    rows = [{"kpi_id": k, "grain": "quarter", "period_start": quarter, "period_end": date(2026, 12, 31),
             "value": v, "numerator": None, "denominator": None, "sample_size": 10, "target": None,
             "status": s, "trend": "n/a", "is_complete": False, "computed_at": NOW, "run_id": "t"}
            for k, (v, s) in values.items()]
    with engine.begin() as conn:
        warehouse.upsert(conn, "kpi_values", rows, key=("kpi_id", "grain", "period_start"))


def scores(engine) -> dict[int, tuple]:
    with engine.connect() as conn:
        got = conn.execute(sa.text("select sheet_row, kind, better, value, value_status, score from okr_scores "
                                   "where review_key = '2026-11' order by sheet_row")).all()
    return {r[0]: (r[1], r[2], None if r[3] is None else float(r[3]), r[4],
                   None if r[5] is None else round(float(r[5]), 12)) for r in got}


def test_okr_scores_kpi_linked_and_manual_on_both_dialects(engine, sheet):
    put_rows(sheet, TAB)
    put_quarter_values(engine)
    result = store.land_okrs(engine, NOVEMBER, "r1", now=NOW)
    assert {k: result[k] for k in ("loaded", "quarantined", "scored")} == {"loaded": 7, "quarantined": 2,
                                                                          "scored": 6}
    assert scores(engine) == {
        2: ("kpi", "higher", 56.5, "on_target", 0.5),  # (56.5 − 55) / (58 − 55)
        3: ("manual", "higher", 7.0, "manual", 0.7),  # (7 − 0) / (10 − 0)
        4: ("kpi", "lower", 21.0, "on_target", 0.4),  # (25 − 21) / (25 − 15)
        5: ("kpi", "lower", 5.6, "on_target", 0.0),  # no baseline: 5.6 is not ≤ 5
        6: ("kpi", "lower", None, "insufficient_data", None),  # no value: no score, never 0
        8: ("manual", None, None, "manual", 0.6),  # the score as entered
    }  # row 11 is next quarter's: listed, not scored
    o = read(engine, section.read_okrs, "2026-11", "2026-Q4", "Progress", catalog())
    assert [(ob.objective, ob.score_text, ob.scored, ob.total) for ob in o.objectives] == [
        ("Trade well", "0.60", 2, 2),  # (0.5 + 0.7) / 2
        ("Be reliable", "0.20", 2, 3),  # (0.4 + 0.0) / 2: the KR without a value is left out
        ("Grow", "0.60", 1, 1),
    ]
    assert o.score == pytest.approx((0.6 + 0.2 + 0.6) / 3)
    assert [kr.note for kr in o.objectives[1].krs] == ["quarter to date", "quarter to date",
                                                       "n/a (insufficient data)"]
    assert len(o.refused) == 2 and o.refused[0].startswith("OKRs!row 9 (Docs coverage 95 %): kpi_id")
    # the analysts' view scores the same, with the objective's mean beside each KR
    with engine.connect() as conn:
        view = conn.execute(sa.text("select key_result, score, objective_score, grade from v_okr_scores "
                                    "order by key_result")).all()
    assert [(k, None if s is None else round(float(s), 9), round(float(m), 9), g) for k, s, m, g in view] == [
        ("5 alerts a day", 0.0, 0.2, "off track"),
        ("Latency p95 under 300 ms", None, 0.2, "not scored"),
        ("MTTR under 15 min", 0.4, 0.2, "behind"),
        ("Runbooks for 10 services", 0.7, 0.6, "on track"),
        ("Two tech talks a month", 0.6, 0.6, "behind"),
        ("Win rate of 58 %", 0.5, 0.6, "behind"),
    ]
    # re-run safe: the same snapshot, quarantine and scores, nothing added
    before = table_counts(engine)
    store.land_okrs(engine, NOVEMBER, "r2", now=NOW + timedelta(hours=1))
    assert table_counts(engine) == before
    assert scores(engine)[2] == ("kpi", "higher", 56.5, "on_target", 0.5)
    nxt = read(engine, section.read_next_okrs, "2026-11", "2027-Q1", catalog())
    assert [(ob.objective, [k.plan for k in ob.krs]) for ob in nxt.objectives] == [
        ("Ship safely", ["Change Failure Rate (`change_failure_rate_pct`) to 10.00 % from 15.00 %"])]


def read(engine, fn, *args):
    with engine.connect() as conn:
        return fn(conn, *args)


def catalog():
    from kaizen.kpis.catalog import load_catalog

    return load_catalog()


def table_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"select count(*) from {t}")).scalar() for t in
                ("raw_okrs", "okr_scores", "raw_improvements", "improvement_impacts", "review_snapshots",
                 "quarantine")}


def test_an_unreadable_tab_is_said_and_a_later_read_recovers(engine, sheet):
    sheet.fail(403, times=None, ops=("values.get",))  # the service account lost access to the tab
    result = store.land_okrs(engine, NOVEMBER, "r1", now=NOW)
    assert "unavailable" in result and "Reading the OKRs" in result["unavailable"]
    o = read(engine, section.read_okrs, "2026-11", "2026-Q4", "Progress", catalog())
    assert o.error.startswith("OKRs unavailable: Reading the OKRs (tab 'OKRs' of connection 'kaizen_gsheets')")
    sheet.clear_faults()
    put_rows(sheet, TAB)
    put_quarter_values(engine)
    store.land_okrs(engine, NOVEMBER, "r2", now=NOW + timedelta(minutes=5))
    o = read(engine, section.read_okrs, "2026-11", "2026-Q4", "Progress", catalog())
    assert o.error is None and o.warning is None and len(o.objectives) == 3


def test_without_the_sheet_connection_live_sources_say_so(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_KAIZEN_GSHEETS", raising=False)
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    config.clear_connection_cache()
    with pytest.raises(okrs.OkrsUnavailable, match="connection 'kaizen_gsheets' .* is not configured"):
        okrs.read()


# ---------------------------------------------------------------- the backlog
def issue(number, title, *, votes=0, priority=None, state="open", closed=None, created="2026-09-01T04:00:00Z",
          body="", labels=("improvement",), reason=None, assignee="asha", pr=False, reactions=True):
    names = list(labels) + ([f"priority: {priority}"] if priority else [])
    out = {
        "url": f"https://api.github.com/repos/{REPO}/issues/{number}", "number": number, "title": title,
        "labels": [{"id": 7000 + i, "name": n, "color": "0e8a16", "default": False} for i, n in enumerate(names)],
        "state": state, "state_reason": reason or ("completed" if state == "closed" else None),
        "assignee": {"login": assignee} if assignee else None,
        "assignees": [{"login": assignee}] if assignee else [],
        "created_at": created, "updated_at": closed or created, "closed_at": closed, "body": body,
        "html_url": f"https://github.com/{REPO}/issues/{number}",
    }
    if reactions:
        out["reactions"] = {"url": f"{out['url']}/reactions", "total_count": votes, "+1": votes, "-1": 0,
                            "laugh": 0, "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}
    if pr:
        out["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/{number}"}
    return out


CLOSED_AT = "2026-10-15T04:30:00Z"  # 15 Oct 10:00 IST: windows 17 Sep–14 Oct and 16 Oct–12 Nov
ISSUES = [
    issue(101, "Trim the alert rules", votes=3, priority="low"),
    issue(102, "Canary deployments", votes=5, priority="medium"),
    issue(103, "Anomaly detection", votes=5, priority="high"),
    issue(104, "Smaller Docker image", votes=5, priority="medium"),
    issue(105, "Tune the noisy alerts", votes=10, priority="high", state="closed", closed=CLOSED_AT,
          body="We mute the flapping rules.\n\n**Target KPIs:** `alerts_per_day`, mttr_minutes\n"),
    issue(106, "Two priorities", votes=1, labels=("improvement", "priority: high", "Priority/Low")),
    issue(107, "Unknown KPI", votes=2, body="Target KPIs: alert_per_day"),
    issue(108, "No reactions", reactions=False),
    issue(109, "A pull request", votes=4, pr=True),
    issue(110, "A post-mortem", labels=("postmortem",)),
    issue(111, "Blue-green deployments", votes=8, state="closed", closed="2026-11-20T06:00:00Z",
          body="Target KPIs: change_failure_rate_pct"),
    issue(112, "Move CI", votes=9, state="closed", closed="2026-11-05T06:00:00Z", reason="not_planned",
          body="Target KPIs: deployments_per_day"),
]


@pytest.fixture
def github():
    with FakeGitHub(REPO, token=TOKEN, issues=list(reversed(ISSUES))) as f:
        yield f


def test_the_backlog_over_http_votes_focus_and_quarantine(github):
    issues = backlog.http_transport(github.url, TOKEN, REPO, per_page=2)()
    pages = [r for r in github.requests if r["path"] == f"/repos/{REPO}/issues"]
    assert len(pages) == 6  # 11 issues labelled improvement (the PR too), 2 a page
    assert all(r["query"]["labels"] == ["improvement"] and r["query"]["state"] == ["all"] for r in pages)
    n, items, rejects = backlog.parse(issues, set(catalog().kpis))
    assert n == 10  # the pull request is skipped
    assert sorted(i.issue_number for i in items) == [101, 102, 103, 104, 105, 111, 112]
    assert {r.record_key: r.reason for r in rejects} == {
        "106": "conflicting priority labels (priority: high, priority: low): keep one",
        "107": "the 'Target KPIs:' line names 'alert_per_day', not a KPI of the catalog "
               "(plugins/kaizen/kpis/catalog.yaml; e.g. alerts_per_day): fix the issue body",
        "108": "no readable 👍 count (reactions['+1'] is None): votes unknown",
    }
    done = next(i for i in items if i.issue_number == 105)
    assert (done.votes, done.priority, done.owner, done.target_kpis) == (10, "high", "asha",
                                                                        ("alerts_per_day", "mttr_minutes"))
    # most 👍 first; 102, 103, 104 tie at 5: high (103) first, then the older medium (102 before 104)
    assert [i.issue_number for i in backlog.focus(items)] == [103, 102, 104]


def history(engine):
    """The least the warehouse needs to know where its history begins (1 Jul 2026)."""
    start = datetime(2026, 6, 30, 18, 30, tzinfo=UTC)  # 1 Jul 00:00 IST
    with engine.begin() as conn:
        warehouse.insert_rows(conn, "fct_trading_day", [
            {"trading_day": date(2026, 6, 30), "trades": 1, "wins": 1, "losses": 0, "net_pnl_inr": 10.0,
             "net_pnl_rest_inr": 0.0, "gross_profit_inr": 10.0, "gross_profit_rest_inr": 0.0,
             "gross_loss_inr": 0.0, "gross_loss_rest_inr": 0.0, "largest_win_inr": 10.0, "largest_loss_inr": None}])
        slot = int(start.timestamp()) // 900
        warehouse.insert_rows(conn, "fct_probe_slot", [
            {"slot": slot, "slot_start": start, "probed_minutes": 15, "up_minutes": 15, "down_minutes": 0}])


def alerts(engine):
    """2 a day in the before window (56), 10 on the close day (left out), one every
    other day in the after window (14), and 5 just outside each window."""
    times = []
    d = date(2026, 9, 17)
    while d <= date(2026, 10, 14):
        times += [datetime(d.year, d.month, d.day, 12, tzinfo=IST)] * 2
        d += timedelta(days=1)
    times += [datetime(2026, 10, 15, 11, tzinfo=IST)] * 10
    d = date(2026, 10, 16)
    while d <= date(2026, 11, 12):
        if (d - date(2026, 10, 16)).days % 2 == 0:
            times.append(datetime(d.year, d.month, d.day, 12, tzinfo=IST))
        d += timedelta(days=1)
    times += [datetime(2026, 9, 16, 23, 59, tzinfo=IST)] * 5 + [datetime(2026, 11, 13, 0, 0, tzinfo=IST)] * 5
    rows = [{"alert_id": f"A{k:04d}", "incident_id": None, "priority": "P3", "severity": "warning",
             "service": "trading-api", "summary": "flapping", "created_at": t.astimezone(UTC), "run_id": "t",
             "loaded_at": NOW} for k, t in enumerate(times)]
    with engine.begin() as conn:
        warehouse.insert_rows(conn, "raw_alerts", rows)
    return len(rows)


def impacts(engine) -> list[tuple]:
    with engine.connect() as conn:
        got = conn.execute(sa.text(
            "select issue_number, kpi_id, before_first, after_last, before_value, after_value, change, change_pct, "
            "verdict, note from improvement_impacts where review_key = '2026-11' order by issue_number, kpi_id")).all()
    return [(r[0], r[1], warehouse.as_date(r[2]), warehouse.as_date(r[3]),
             None if r[4] is None else round(float(r[4]), 9), None if r[5] is None else round(float(r[5]), 9),
             None if r[6] is None else round(float(r[6]), 9), None if r[7] is None else round(float(r[7]), 9),
             r[8], r[9]) for r in got]


def test_impact_of_a_closed_improvement_whose_kpi_moved(engine, github, monkeypatch):
    monkeypatch.delenv(impact.ENV_WINDOW_DAYS, raising=False)
    history(engine)
    assert alerts(engine) == 56 + 10 + 14 + 10
    transport = backlog.http_transport(github.url, TOKEN, REPO)
    result = store.land_improvements(engine, NOVEMBER, "r1", transport=transport, now=NOW)
    assert {k: result[k] for k in ("extracted", "loaded", "quarantined", "impacts")} == {
        "extracted": 10, "loaded": 7, "quarantined": 3, "impacts": 3}
    assert impacts(engine) == [
        # 56 alerts ÷ 28 days before, 14 ÷ 28 after: −1.5 a day, −75 %, alerts are better lower
        (105, "alerts_per_day", date(2026, 9, 17), date(2026, 11, 12), 2.0, 0.5, -1.5, -75.0, "improved", None),
        (105, "mttr_minutes", date(2026, 9, 17), date(2026, 11, 12), None, None, None, None, "no data",
         "before: no events; after: no events"),
        # closed 20 Nov: its after window runs to 18 Dec, past the review's as-of
        (111, "change_failure_rate_pct", date(2026, 10, 23), date(2026, 12, 18), None, None, None, None,
         "pending", "the after window runs to 18 Dec 2026"),
    ]  # #112 was closed as not planned: no impact
    b = read(engine, section.read_backlog, "2026-11", date(2026, 11, 1), date(2026, 11, 30), catalog())
    assert [(i.rank, i.issue_number, i.votes, i.priority) for i in b.focus] == [
        (1, 103, 5, "High"), (2, 102, 5, "Medium"), (3, 104, 5, "Medium")]
    assert b.open_count == 4 and [i.issue_number for i in b.done] == [111]  # completed in November
    assert [(m.issue_number, m.kpi_id, m.before_text, m.after_text, m.change_text, m.verdict)
            for m in b.impacts] == [
        (105, "alerts_per_day", "2/day", "0.5/day", "−1.5/day (−75 %)", "improved"),
        (105, "mttr_minutes", "—", "—", "n/a", "no data")]
    assert [(m.issue_number, m.verdict) for m in b.pending] == [(111, "pending")]
    assert b.refused[0] == "#106: conflicting priority labels (priority: high, priority: low): keep one"
    retro = section.retrospective([], b, None)
    assert retro.went_well == [
        "Improvement paid off: #105 Tune the noisy alerts: Alert Fatigue (alerts/day) 2/day → 0.5/day, "
        "−1.5/day (−75 %)",
        "1 improvement completed: #111 Blue-green deployments"]
    assert retro.try_next == ["#103 Anomaly detection (5 👍, owner asha)", "#102 Canary deployments (5 👍, owner asha)",
                              "#104 Smaller Docker image (5 👍, owner asha)"]
    with engine.connect() as conn:
        q = conn.execute(sa.text("select record_key, reason from quarantine where source = 'improvements' "
                                 "order by record_key")).all()
        view = conn.execute(sa.text("select issue_number, vote_rank, is_focus from v_improvement_backlog "
                                    "where state = 'open' order by vote_rank")).all()
        seen = conn.execute(sa.text("select issue_number, kpi_id, verdict from v_improvement_impact "
                                    "order by issue_number, kpi_id")).all()
    assert [r[0] for r in q] == ["2026-11 #106", "2026-11 #107", "2026-11 #108"]
    assert [(r[0], r[1], int(r[2])) for r in view] == [(103, 1, 1), (102, 2, 1), (104, 3, 1), (101, 4, 0)]
    assert [tuple(r) for r in seen] == [(105, "alerts_per_day", "improved"), (105, "mttr_minutes", "no data"),
                                       (111, "change_failure_rate_pct", "pending")]
    # re-run safe: the same rows, nothing doubled
    before = table_counts(engine)
    store.land_improvements(engine, NOVEMBER, "r2", transport=transport, now=NOW + timedelta(hours=1))
    assert table_counts(engine) == before and impacts(engine)[0][8] == "improved"


def test_a_measure_that_fails_leaves_the_impact_unmeasured_not_the_review(engine, github, monkeypatch):
    from kaizen.kpis import measures

    def broken(*args, **kwargs):
        raise RuntimeError("a KPI family cannot measure this window")

    monkeypatch.setattr(measures, "measure_scope", broken)
    history(engine)
    store.land_improvements(engine, NOVEMBER, "r1", transport=backlog.http_transport(github.url, TOKEN, REPO),
                            now=NOW)
    got = [(m[0], m[1], m[8], m[9]) for m in impacts(engine)]
    assert got[:2] == [(105, "alerts_per_day", "no data", "not measured: a KPI family cannot measure this window"),
                       (105, "mttr_minutes", "no data", "not measured: a KPI family cannot measure this window")]


def test_the_backlog_unavailable_is_said(engine, github):
    github.always = "401"
    result = store.land_improvements(engine, NOVEMBER, "r1", transport=backlog.http_transport(github.url, TOKEN,
                                                                                               REPO), now=NOW)
    assert result["source"] == "improvements" and "401" in result["unavailable"]
    b = read(engine, section.read_backlog, "2026-11", date(2026, 11, 1), date(2026, 11, 30), catalog())
    assert b.error.startswith("improvement issues unavailable: ") and b.focus == []


def test_demo_transport_answers_as_of_the_demo_clock(tmp_path, monkeypatch):
    path = tmp_path / "github" / "improvements.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps([issue(111, "Blue-green", state="closed", closed="2026-11-20T06:00:00Z"),
                                issue(120, "Later", created="2026-12-01T00:00:00Z")]))
    monkeypatch.setenv("KAIZEN_DEMO_NOW", "2026-11-10T00:00:00+05:30")
    got = backlog.demo_transport(tmp_path)()
    assert [(i["number"], i["state"], i["closed_at"]) for i in got] == [(111, "open", None)]


# ---------------------------------------------------------------- the review sections
def rendered(engine, kind, start, as_of, tmp_path):
    from kaizen.reports import review

    report = review.build_review(engine, kind, start, as_of=as_of)
    return review.render_review(report, run_id="t", out_dir=tmp_path / "out")


def test_monthly_and_quarterly_reviews_show_the_goals(engine, sheet, github, tmp_path, monkeypatch):
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv(impact.ENV_WINDOW_DAYS, raising=False)
    put_rows(sheet, TAB)
    put_quarter_values(engine)
    history(engine)
    alerts(engine)
    transport = backlog.http_transport(github.url, TOKEN, REPO)
    q4 = store.Review("quarterly", "2026-Q4", date(2026, 10, 1), date(2026, 12, 31),
                      datetime(2026, 12, 25, 10, tzinfo=IST))
    for review_ in (NOVEMBER, q4):
        store.land(engine, review_, "r1", transport=transport, now=NOW)
    month = rendered(engine, "monthly", date(2026, 11, 1), NOVEMBER.as_of, tmp_path)
    md = month["markdown"]
    for text in ("### Progress on quarterly goals (2026-Q4, quarter to date)",
                 "| **Be reliable** | | | | | | **0.20** ❌ (2 of 3 scored) |",
                 "| Win rate of 58 % | Priya | Win Rate (`win_rate_pct`) | 55.00 % | 58.00 % | 56.50 % (quarter to "
                 "date) | 0.50 🟡 |",
                 "| 1 | [#103](https://github.com/desk/trading-api/issues/103) Anomaly detection | High | asha | 5 |",
                 "| #105 Tune the noisy alerts (closed 15 Oct 2026) | Alert Fatigue (alerts/day) | 2/day | 0.5/day | "
                 "−1.5/day (−75 %) | ✅ improved |",
                 "### What will we try next month?", "1. \\#103 Anomaly detection (5 👍, owner asha)",
                 "- ⛔ \\#106: conflicting priority labels"):
        assert text in md, text
    (goals,) = [p for p in month["thread"] if p["text"] == "Goals and improvements — 2026-11"]
    assert goals["blocks"][0]["text"]["text"] == "Quarterly goals and improvement backlog — 2026-11"
    assert [r[:3] for r in month["sheet_rows"]["Backlog"]["rows"]][:4] == [
        ["2026-11", 103, "Anomaly detection"], ["2026-11", 102, "Canary deployments"],
        ["2026-11", 104, "Smaller Docker image"], ["2026-11", 101, "Trim the alert rules"]]
    impact_rows = month["sheet_rows"]["Backlog impact"]["rows"]
    assert impact_rows[0][:10] == ["2026-11", 105, "alerts_per_day", "Tune the noisy alerts", "15 Oct 2026", 28,
                                   2.0, 0.5, -1.5, -75.0]
    assert [r[9] for r in month["sheet_rows"]["OKR scores"]["rows"]] == [0.5, 0.7, 0.4, 0.0, None, 0.6]
    # a re-run reads the goals again: the same content, so the review is neither revised nor re-posted
    for review_ in (NOVEMBER, q4):
        store.land(engine, review_, "r2", transport=transport, now=NOW + timedelta(hours=2))
    assert rendered(engine, "monthly", date(2026, 11, 1), NOVEMBER.as_of, tmp_path)["content_hash"] == \
        month["content_hash"]
    quarter = rendered(engine, "quarterly", date(2026, 10, 1), q4.as_of, tmp_path)
    md = quarter["markdown"]
    assert "### Goal achievement (2026-Q4 OKRs)" in md and "**2026-Q4: 0.47** 🟡" in md
    assert "### Next quarter's OKRs (2027-Q1, as entered)" in md
    assert ("  - Change failure rate below 10 % — Arjun · Change Failure Rate (`change_failure_rate_pct`) to "
            "10.00 % from 15.00 %") in md
    assert "Backlog" not in quarter["sheet_rows"] and len(quarter["sheet_rows"]["OKR scores"]["rows"]) == 6


def test_a_review_without_its_goals_read_says_so(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("KAIZEN_OUT_DIR", str(tmp_path / "out"))
    md = rendered(engine, "monthly", date(2026, 11, 1), NOVEMBER.as_of, tmp_path)["markdown"]
    assert "_⚠️ OKRs not read for this review (its compute step lands them)_" in md
    assert "_⚠️ improvement issues not read for this review (its compute step lands them)_" in md
