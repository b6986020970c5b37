"""Range extracts of the review-window sources (GitHub deployments, PagerDuty incidents /
alerts / log entries, GitHub issues → action items): ONE transport call and ONE load for
the trading days first..last leave the raw tables and the quarantine exactly as
extracting the days one at a time in order does — on the demo data and on hand-made
records where the windows interact (an id in two windows, a rollback of an earlier
deployment, an alert grouped into a later window's incident, an issue updated in two
windows, an issue without a readable updated_at) — SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from fakes.github import FakeGitHub
from fakes.pagerduty import FakePagerDuty
from kaizen import calendar as cal
from kaizen.period import review_window_utc
from kaizen.sources import github, github_issues, pagerduty
from source_wire import (
    ACTION,
    PREV_DAY,
    REPO,
    Counted,
    alert,
    deployment,
    github_data,
    incident,
    issue,
    log_entry,
    pagerduty_data,
    status,
    write_github_demo,
    write_issues_demo,
    write_pagerduty_demo,
)

DEMO_END = date(2026, 11, 27)
DEMO_DAYS = cal.trading_days(date(2026, 11, 13), DEMO_END)  # ten trading days (24 Nov is a holiday)
TABLES = {
    "github": ("raw_deployments",),
    "pagerduty": ("raw_incidents", "raw_alerts", "raw_incident_log_entries"),
    "github_issues": ("raw_action_items",),
}
MODULES = {"github": github, "pagerduty": pagerduty, "github_issues": github_issues}
UNSTAMPED = {"run_id", "loaded_at", "quarantined_at"}
TOKEN = "tok_range"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from kaizen.demo import generate

    out = tmp_path_factory.mktemp("demo")
    generate(end=DEMO_END, months=1, seed=42, out_dir=out, trades_per_day=20)
    return out


def state(engine, name: str) -> dict[str, list[tuple]]:
    """Every row of the source's raw tables and of quarantine, without run_id and the
    write-time stamps, sorted."""
    out = {}
    with engine.connect() as c:
        for t in (*TABLES[name], "quarantine"):
            res = c.execute(sa.text(f"select * from {t}"))
            cols = [k for k in res.keys() if k not in UNSTAMPED]
            out[t] = sorted(tuple(str(r._mapping[k]) for k in cols) for r in res)
    return out


def clear(engine, name: str) -> None:
    with engine.begin() as c:
        for t in (*TABLES[name], "quarantine"):
            c.execute(sa.text(f"delete from {t}"))


def totals(results) -> dict[str, tuple[int, int, int]]:
    out: dict[str, tuple[int, int, int]] = {}
    for r in results:
        e, lo, q = out.get(r.source, (0, 0, 0))
        out[r.source] = (e + r.extracted, lo + r.loaded, q + r.quarantined)
    return out


def compare_range_with_days(engine, name, make_transport, days, before=(), then=None):
    """Extract ``days`` one at a time, then (from the same start) as one range; returns
    (day-by-day results, range results, range transport) after asserting the two leave
    the same tables. ``before``: days extracted first in both runs (earlier history),
    followed by ``then(engine)``."""
    module = MODULES[name]

    def history():
        for d in before:
            module.extract(d, engine, "before", make_transport())
        if then:
            then(engine)

    history()
    per_day_transport = Counted(make_transport())
    per_day = [r for d in days for r in module.extract(d, engine, "day", per_day_transport)]
    assert len(per_day_transport.calls) == len(days)
    expected = state(engine, name)

    clear(engine, name)
    history()
    t = Counted(make_transport())
    ranged = module.extract_range(days[0], days[-1], engine, "range", t)
    assert len(t.calls) == 1  # one fetch for the whole range
    assert state(engine, name) == expected
    for r in ranged:
        assert r.extracted == r.loaded + r.quarantined, r
    assert [(r.source, r.table) for r in ranged] == [(r.source, r.table) for r in per_day[: len(ranged)]]

    # re-extracting the range over itself, and a day over the range, change nothing
    module.extract_range(days[0], days[-1], engine, "again", make_transport())
    assert state(engine, name) == expected
    for d in days:
        module.extract(d, engine, "day-again", make_transport())
    assert state(engine, name) == expected
    return per_day, ranged, t


# ------------------------------------------------------------------ the demo data


DEMO_TRANSPORTS = {
    "github": github.demo_transport,
    "pagerduty": pagerduty.demo_transport,
    "github_issues": github_issues.demo_transport,
}


@pytest.mark.parametrize("name", list(MODULES))
def test_range_equals_day_by_day_on_demo_data(engine, demo, name):
    per_day, ranged, t = compare_range_with_days(
        engine, name, lambda: DEMO_TRANSPORTS[name](demo), DEMO_DAYS
    )
    start, end = review_window_utc(DEMO_DAYS[0])[0], review_window_utc(DEMO_DAYS[-1])[1]
    assert t.calls == ([(start,)] if name == "github_issues" else [(start, end)])
    assert totals(ranged) == totals(per_day)  # no window interacts with another here
    assert all(loaded for _, loaded, _ in totals(ranged).values())  # the range holds data


def test_demo_bad_records_are_quarantined_on_their_day(engine, demo):
    github.extract_range(DEMO_DAYS[0], DEMO_DAYS[-1], engine, "r", github.demo_transport(demo))
    pagerduty.extract_range(DEMO_DAYS[0], DEMO_DAYS[-1], engine, "r", pagerduty.demo_transport(demo))
    with engine.connect() as c:
        got = {
            (r.source, str(r.extract_day)[:10])
            for r in c.execute(sa.text("select source, extract_day from quarantine"))
        }
    assert ("deployments", "2026-11-27") in got and ("incidents", "2026-11-27") in got


# ------------------------------------------------------------------ windows that interact

# 2026-11-23 (window from 20 Nov 10:30Z), 25 (from 23 Nov, 24 Nov is a holiday), 26, 27
DAYS = cal.trading_days(date(2026, 11, 23), date(2026, 11, 27))


def github_history():
    deps, statuses, compares = github_data()
    extra = [
        # 112 in 26 Nov's window and again in 27 Nov's: quarantined there (already loaded)
        deployment(112, "s112", "2026-11-25T20:00:00Z"),
        deployment(112, "s212", "2026-11-26T20:00:00Z"),
        # a rollback on 27 Nov of deployment 93 (20 Nov, before the range)
        deployment(110, "s03", "2026-11-27T05:00:00Z", {"rollback_of": 93}, "deploy:rollback"),
        deployment(111, "s111", "2026-11-27T06:00:00Z"),
    ]
    statuses = {
        **statuses,
        "110": [status(1100, 110, "success", "2026-11-27T05:02:00Z")],
        "111": [status(1110, 111, "success", "2026-11-27T06:02:00Z")],
    }
    deps = sorted(deps + extra, key=lambda d: d["created_at"], reverse=True)
    return deps, statuses, compares


def forget_rollbacks(engine):
    """The loaded deployments as they were before any rollback existed."""
    with engine.begin() as c:
        c.execute(sa.text("update raw_deployments set rolled_back = false"))


def test_github_windows_that_interact(engine, tmp_path):
    write_github_demo(tmp_path, github_history())
    compare_range_with_days(
        engine, "github", lambda: github.demo_transport(tmp_path), DAYS,
        before=[date(2026, 11, 20)], then=forget_rollbacks,  # 90..94 are 20 Nov's
    )
    with engine.connect() as c:
        flags = dict(c.execute(sa.text("select deployment_id, rolled_back from raw_deployments")).all())
        q = c.execute(sa.text("select record_key, extract_day, reason from quarantine")).all()
    assert bool(flags["93"]) and bool(flags["100"]) and bool(flags["101"])  # 110, 107, 104
    assert not bool(flags["92"]) and not bool(flags["112"])
    clash = [r for r in q if r.record_key == "112"]
    assert len(clash) == 1 and str(clash[0].extract_day)[:10] == "2026-11-27"
    assert clash[0].reason == (
        "deployment_id 112 is already loaded in raw_deployments for another day; this copy was not loaded"
    )


def test_github_http_range_equals_day_by_day(engine, waits):
    deps, statuses, compares = github_history()
    with FakeGitHub(REPO, deps, statuses, compares, token=TOKEN) as f:
        compare_range_with_days(
            engine, "github", lambda: github.http_transport(f.url, TOKEN, REPO, per_page=3), DAYS
        )


def pagerduty_history():
    incs, alerts, fields, logs = pagerduty_data()
    incs = [i for i in incs if i["id"] != "PI08"]
    incs += [
        # 25 Nov's window: its alert PA50 was grouped into PY1 (27 Nov's window), whose
        # slice deletes it; PY1 does not list it → it is gone after 27 Nov
        incident("PZ1", 201, "2026-11-24T12:00:00Z"),
        # 27 Nov's window
        incident("PY1", 202, "2026-11-26T12:00:00Z"),
        # PI02 again (27 Nov): quarantined there; its alerts are 27 Nov's slice now
        incident("PI02", 203, "2026-11-26T13:00:00Z", status="acknowledged", priority="P2",
                 acks=["2026-11-26T13:05:00Z"]),
        # PV1 (27 Nov) lists PA1, PI01's alert of 26 Nov: the later window's row wins
        incident("PV1", 204, "2026-11-26T14:00:00Z"),
    ]
    alerts = {
        **alerts,
        "PZ1": [alert("PA50", "PY1", "2026-11-24T12:00:00Z")],
        "PY1": [alert("PA51", "PY1", "2026-11-26T12:00:00Z")],
        "PV1": [alert("PA1", "PV1", "2026-11-26T14:00:00Z", severity="warning")],
    }
    logs = {
        **logs,
        # LE2 again, under PV1 but naming PI01: already loaded (26 Nov) → quarantined on 27 Nov
        "PV1": [log_entry("LE2", "PI01", "acknowledge_log_entry", "2026-11-26T14:01:00Z"),
                log_entry("LE9", "PV1", "resolve_log_entry", "2026-11-26T14:30:00Z")],
        # the same entry id under two incidents of one window: the second is a duplicate
        "PI07": [log_entry("LE3", "PI07", "resolve_log_entry", "2026-11-26T09:30:00Z")],
        "PZ1": [log_entry("LE5", "PY1", "trigger_log_entry", "2026-11-24T12:00:00Z")],
    }
    return incs, alerts, fields, logs


def test_pagerduty_windows_that_interact(engine, tmp_path):
    write_pagerduty_demo(tmp_path, pagerduty_history())
    per_day, ranged, _ = compare_range_with_days(
        engine, "pagerduty", lambda: pagerduty.demo_transport(tmp_path), DAYS
    )
    day_totals, range_totals = totals(per_day), totals(ranged)
    # PA50 and PI02's first alerts (PA3), PA1 and LE5 were loaded by one window and
    # replaced (or deleted) by a later one: the range neither loads nor quarantines them
    assert day_totals["alerts"][0] - range_totals["alerts"][0] == 3
    assert day_totals["log_entries"][0] - range_totals["log_entries"][0] == 1
    assert range_totals["incidents"] == day_totals["incidents"]
    with engine.connect() as c:
        al = dict(c.execute(sa.text("select alert_id, incident_id from raw_alerts")).all())
        pri = dict(c.execute(sa.text("select alert_id, priority from raw_alerts")).all())
        q = {(r.source, r.record_key, str(r.extract_day)[:10])
             for r in c.execute(sa.text("select source, record_key, extract_day from quarantine"))}
    assert "PA50" not in al and al["PA1"] == "PV1" and al["PA51"] == "PY1"
    assert pri["PA3"] == "P2"  # from 27 Nov's copy of PI02
    assert {("incidents", "PI02", "2026-11-27"), ("log_entries", "LE2", "2026-11-27"),
            ("log_entries", "LE3", "2026-11-26")} <= q


def test_pagerduty_http_range_in_several_listings(engine, waits, monkeypatch):
    incs, alerts, fields, logs = pagerduty_history()
    monkeypatch.setattr(pagerduty, "MAX_SPAN", pagerduty.MAX_SPAN / 90)  # one day per listing
    with FakePagerDuty(incs, alerts, fields, logs, token=TOKEN) as f:
        compare_range_with_days(
            engine, "pagerduty", lambda: pagerduty.http_transport(f.url, TOKEN, page_limit=2), DAYS
        )
        f.requests.clear()
        pagerduty.extract_range(DAYS[0], DAYS[-1], engine, "r", pagerduty.http_transport(f.url, TOKEN))
        listings = [r["query"] for r in f.requests if r["path"] == "/incidents"]
    start, end = review_window_utc(DAYS[0])[0], review_window_utc(DAYS[-1])[1]
    assert len(listings) == -(-(end - start) // pagerduty.MAX_SPAN)
    assert listings[0]["since"] == [pagerduty.iso_z(start)] and listings[-1]["until"] == [pagerduty.iso_z(end)]
    assert all(a["until"] == b["since"] for a, b in zip(listings, listings[1:], strict=False))


def test_pagerduty_spans_tile_the_window():
    start, end = review_window_utc(DAYS[0])[0], review_window_utc(DAYS[-1])[1]
    assert pagerduty.spans(start, end) == [(start, end)]
    far = review_window_utc(date(2025, 11, 27))[0]
    spans = pagerduty.spans(far, end)
    assert spans[0][0] == far and spans[-1][1] == end
    assert all(b - a <= pagerduty.MAX_SPAN for a, b in spans)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


def issues_history():
    p1 = [ACTION, "P1"]
    return [
        # #31 updated in 26 Nov's window, then (another copy) in 27 Nov's: the later wins
        issue(31, p1, "2026-11-25T12:00:00Z", title="first look"),
        issue(31, p1, "2026-11-25T12:00:00Z", updated="2026-11-26T12:00:00Z", title="second look"),
        # #32 without a readable updated_at: in every window, quarantined by each
        {**issue(32, p1, "2026-11-25T12:00:00Z"), "updated_at": "soon"},
        # #33 listed by both label listings (the same object twice): met once per window
        issue(33, [ACTION, "postmortem", "P1"], "2026-11-26T11:00:00Z"),
        # #34: A (26 Nov), B (27 Nov), A again (26 Nov): one copy per window
        issue(34, p1, "2026-11-25T13:00:00Z", title="A"),
        issue(34, p1, "2026-11-25T13:00:00Z", updated="2026-11-27T01:00:00Z", title="B"),
        issue(34, p1, "2026-11-25T13:00:00Z", title="A"),
        # #35 invalid on 25 Nov (no priority), valid on 26 Nov
        issue(35, [ACTION], "2026-11-21T12:00:00Z", updated="2026-11-24T12:00:00Z"),
        issue(35, p1, "2026-11-21T12:00:00Z", updated="2026-11-25T18:00:00Z"),
        # #36 in 23 Nov's window only; #37 updated after the range
        issue(36, p1, "2026-11-21T12:00:00Z"),
        issue(37, p1, "2026-11-21T12:00:00Z", updated="2026-11-28T12:00:00Z"),
    ]


def test_issues_windows_that_interact(engine, tmp_path):
    write_issues_demo(tmp_path, issues_history())
    per_day, ranged, _ = compare_range_with_days(
        engine, "github_issues", lambda: github_issues.demo_transport(tmp_path), DAYS
    )
    (e_day, _, _), (e_range, loaded, quarantined) = totals(per_day)["action_items"], totals(ranged)["action_items"]
    assert e_day - e_range == 2  # #31's and #34's first copies, replaced by a later window's
    with engine.connect() as c:
        got = dict(c.execute(sa.text("select issue_number, title from raw_action_items")).all())
        q = c.execute(sa.text("select record_key, extract_day from quarantine")).all()
    assert got == {31: "second look", 34: "B", 35: "Action 35", 36: "Action 36"}
    assert sorted(str(r.extract_day)[:10] for r in q if r.record_key == "32") == [str(d) for d in DAYS]
    assert sum(r.record_key == "33" for r in q) == 1 and sum(r.record_key == "35" for r in q) == 1
    assert (loaded, quarantined) == (4, len(DAYS) + 2)


def test_issues_http_range_equals_day_by_day(engine, waits):
    items = [i for i in issues_history() if i["number"] != 32]  # the fake needs readable times
    with FakeGitHub(REPO, token=TOKEN, issues=items) as f:
        compare_range_with_days(
            engine, "github_issues",
            lambda: github_issues.http_transport(f.url, TOKEN, REPO, per_page=2), DAYS,
        )


def test_single_day_extract_is_the_range_of_one_day(engine, tmp_path):
    write_issues_demo(tmp_path, issues_history())
    (res,) = github_issues.extract_range(PREV_DAY, PREV_DAY, engine, "r", github_issues.demo_transport(tmp_path))
    first = state(engine, "github_issues")
    (again,) = github_issues.extract(PREV_DAY, engine, "r", github_issues.demo_transport(tmp_path))
    assert res == again and state(engine, "github_issues") == first
