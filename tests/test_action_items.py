"""Post-mortem action items and post-mortems (GitHub issues → raw_action_items): the
live transport against a fake GitHub (Link pagination, two label listings, pull
requests skipped), the demo transport, validation → quarantine, SLA due dates, the
review-window slice, and the two practice KPIs by hand — SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fakes.github import FakeGitHub
from kaizen import warehouse
from kaizen.kpis import measures, periods
from kaizen.period import Period
from kaizen.sources import github_issues
from source_wire import (
    ACTION,
    DAY,
    ISSUE_REASONS,
    REPO,
    issue,
    issues_data,
    quarantine,
    rows,
    snapshot,
    write_issues_demo,
)

TOKEN = "ghp_issues_token"


@pytest.fixture
def fake():
    with FakeGitHub(REPO, token=TOKEN, issues=issues_data()) as f:
        yield f


def transport(fake, per_page=2):
    return github_issues.http_transport(fake.url, TOKEN, REPO, per_page=per_page)


def items(engine):
    return {r["issue_number"]: r for r in rows(engine, "select * from raw_action_items")}


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_http_extract_rows_pagination_and_pull_requests(engine, fake, waits):
    (res,) = github_issues.extract(DAY, engine, "r1", transport(fake))
    # #11–#18 updated in D's window (#19 a PR, #20 updated after the window, #21 before it)
    assert (res.source, res.table, res.extracted, res.loaded, res.quarantined) == (
        "action_items",
        "raw_action_items",
        8,
        5,
        3,
    )
    got = items(engine)
    assert set(got) == {11, 12, 13, 14, 15}
    a = got[11]
    assert (a["kind"], a["priority"], a["incident_id"], a["owner"], a["state"]) == (
        "action_item",
        "P0",
        "PI01",
        "asha",
        "closed",
    )
    assert str(a["closed_at"])[:19] == "2026-11-26 09:00:00"
    assert got[12]["owner"] is None and got[12]["closed_at"] is None and got[12]["state"] == "open"
    assert got[14]["incident_id"] == "PI07"  # "**Incident:** PI07" (bold) is read too
    pm = got[15]
    assert (pm["kind"], pm["priority"], pm["due_at"], pm["incident_id"]) == ("postmortem", None, None, "PI01")
    # one listing per label, each following Link rel="next", asking for every state since the window start
    listing = [r for r in fake.requests if r["path"] == f"/repos/{REPO}/issues"]
    labels = [(r["query"]["labels"][0], r["query"].get("page", ["1"])[0]) for r in listing]
    # postmortem-action matches #11–#20 less #15 = 9 items since the window start → 5 pages of 2
    assert labels == [
        (ACTION, "1"),
        (ACTION, "2"),
        (ACTION, "3"),
        (ACTION, "4"),
        (ACTION, "5"),
        ("postmortem", "1"),
    ]
    first = listing[0]["query"]
    assert (first["state"], first["since"], first["per_page"]) == (["all"], ["2026-11-25T10:30:00Z"], ["2"])
    assert listing[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert listing[0]["headers"]["x-github-api-version"] == "2022-11-28"
    assert 19 not in got and "19" not in quarantine(engine, "action_items")
    assert waits == []


def test_validation_reasons(engine, fake, waits):
    github_issues.extract(DAY, engine, "r1", transport(fake))
    q = {k: v[0]["reason"] for k, v in quarantine(engine, "action_items").items()}
    assert q == ISSUE_REASONS


@pytest.mark.parametrize(
    "labels, body, reason",
    [
        ([ACTION, "P1", "P2"], "Incident: PI01", "conflicting priority labels P1, P2"),
        (
            [ACTION, "P1"],
            "no reference here",
            "no 'Incident: <PagerDuty incident id>' line in the issue body",
        ),
        (
            [ACTION, "postmortem", "P1"],
            "Incident: PI01",
            "labelled both 'postmortem' and 'postmortem-action'",
        ),
        ([ACTION, "P1"], "Incident: #123", "incident reference '#123' is not a PagerDuty incident id"),
    ],
)
def test_more_validation_rules(engine, tmp_path, labels, body, reason):
    write_issues_demo(tmp_path, [issue(31, labels, "2026-11-26T01:00:00Z", body=body)])
    (res,) = github_issues.extract(DAY, engine, "r1", github_issues.demo_transport(tmp_path))
    assert (res.extracted, res.loaded, res.quarantined) == (1, 0, 1)
    assert quarantine(engine, "action_items")["31"][0]["reason"].startswith(reason)


@pytest.mark.parametrize(
    "prio, due",
    [
        ("P0", "2026-12-02T12:00:00Z"),
        ("P1", "2026-12-25T12:00:00Z"),
        ("P2", "2027-02-23T12:00:00Z"),
        ("P3", None),
    ],
)
def test_sla_due_dates(engine, tmp_path, prio, due):
    created = "2026-11-25T12:00:00Z"
    assert github_issues.due_at(prio, ts(created)) == (ts(due) if due else None)
    write_issues_demo(tmp_path, [issue(41, [ACTION, prio], created)])
    github_issues.extract(DAY, engine, "r1", github_issues.demo_transport(tmp_path))
    got = items(engine)[41]["due_at"]
    assert (str(got)[:19] if got is not None else None) == (due.replace("T", " ")[:19] if due else None)


def test_demo_transport_equals_http_and_reextract_is_idempotent(engine, fake, waits, tmp_path):
    write_issues_demo(tmp_path)
    demo = github_issues.extract(DAY, engine, "r1", github_issues.demo_transport(tmp_path))
    first = snapshot(engine)
    live = github_issues.extract(DAY, engine, "r2", transport(fake))
    assert demo == live
    again = snapshot(engine)
    assert {t: len(v) for t, v in again.items()} == {t: len(v) for t, v in first.items()}
    github_issues.extract(DAY, engine, "r2", transport(fake))
    assert snapshot(engine) == again


def test_issue_state_changes_are_upserted_by_the_later_window(engine, tmp_path):
    prev = DAY - timedelta(days=1)  # 2026-11-25: window [2026-11-23 10:30Z, 2026-11-25 10:30Z)
    opened = issue(51, [ACTION, "P1"], "2026-11-24T08:00:00Z")
    write_issues_demo(tmp_path, [opened])
    github_issues.extract(prev, engine, "r1", github_issues.demo_transport(tmp_path))
    assert items(engine)[51]["state"] == "open"
    closed = issue(51, [ACTION, "P1"], "2026-11-24T08:00:00Z", closed="2026-11-26T02:00:00Z")
    write_issues_demo(tmp_path, [closed])
    github_issues.extract(DAY, engine, "r2", github_issues.demo_transport(tmp_path))
    assert items(engine)[51]["state"] == "closed"
    # re-extracting the earlier day leaves the newer state alone (no longer in that slice)
    (res,) = github_issues.extract(prev, engine, "r3", github_issues.demo_transport(tmp_path))
    assert (res.extracted, res.loaded) == (0, 0)
    assert items(engine)[51]["state"] == "closed"
    # an issue that turns invalid is removed from the table and quarantined
    broken = issue(51, [ACTION], "2026-11-24T08:00:00Z", updated="2026-11-26T03:00:00Z")
    write_issues_demo(tmp_path, [broken])
    github_issues.extract(DAY, engine, "r4", github_issues.demo_transport(tmp_path))
    assert 51 not in items(engine)
    assert "51" in quarantine(engine, "action_items")


@pytest.mark.parametrize(("now", "expected"), [
    (None, "closed"),                          # as of the end of the demo data
    ("2026-11-25T10:30:00+00:00", "open"),     # closed later: still open then
    ("2026-11-24T07:59:00+00:00", None),       # not yet created
])
def test_the_demo_answers_as_the_api_would_at_its_clock(tmp_path, monkeypatch, now, expected):
    """``KAIZEN_DEMO_NOW`` (a rehearsal's clock): the demo issues as they stood then."""
    write_issues_demo(tmp_path, [issue(51, [ACTION, "P1"], "2026-11-24T08:00:00Z", closed="2026-11-26T02:00:00Z")])
    if now:
        monkeypatch.setenv("KAIZEN_DEMO_NOW", now)
    else:
        monkeypatch.delenv("KAIZEN_DEMO_NOW", raising=False)
    got = github_issues.demo_transport(tmp_path)(datetime(2026, 11, 20, tzinfo=UTC))
    assert sorted({i["state"] for i in got}) == ([expected] if expected else [])
    if expected == "open":
        assert {i["closed_at"] for i in got} == {None}


def test_a_demo_clock_without_an_offset_is_refused(monkeypatch):
    from kaizen import config

    monkeypatch.setenv("KAIZEN_DEMO_NOW", "2026-11-25T10:30:00")
    with pytest.raises(ValueError, match="KAIZEN_DEMO_NOW='2026-11-25T10:30:00' has no time zone offset"):
        config.demo_now()


def test_missing_demo_file_says_what_to_do(engine, tmp_path):
    from kaizen.sources import SourceError

    with pytest.raises(SourceError, match="kaizen demo-data"):
        github_issues.extract(DAY, engine, "r1", github_issues.demo_transport(tmp_path))


# ------------------------------------------------------------------ KPIs by hand (week grain)


def _utc(*a):
    return datetime(*a, tzinfo=UTC)


def _seed_kpi(engine):
    loaded = _utc(2026, 3, 20)

    def item(num, prio, created, closed, incident="I1", kind="action_item", state=None):
        sla = github_issues.SLA_DAYS.get(prio or "")
        return {
            "issue_number": num,
            "kind": kind,
            "title": f"t{num}",
            "priority": prio,
            "incident_id": incident,
            "owner": None,
            "state": state or ("closed" if closed else "open"),
            "state_reason": None,
            "created_at": created,
            "updated_at": closed or created,
            "closed_at": closed,
            "due_at": created + timedelta(days=sla) if sla and kind == "action_item" else None,
            "html_url": None,
            "run_id": "seed",
            "loaded_at": loaded,
        }

    def inc(iid, prio, resolved):
        return {
            "incident_id": iid,
            "incident_number": 1,
            "title": iid,
            "service": "trading-api",
            "priority": prio,
            "urgency": "high",
            "status": "resolved",
            "triggered_at": resolved - timedelta(hours=1),
            "acknowledged_at": None,
            "resolved_at": resolved,
            "impact_start_at": None,
            "caused_by_deployment_id": None,
            "run_id": "seed",
            "loaded_at": loaded,
        }

    # ISO week Mon 9 – Sun 15 Mar 2026 = [8 Mar 18:30Z, 15 Mar 18:30Z) in UTC.
    action_items = [
        item(
            1, "P0", _utc(2026, 3, 3, 12), _utc(2026, 3, 10, 11)
        ),  # due 10 Mar 12:00Z, closed 1 h before: on time
        item(2, "P1", _utc(2026, 2, 10, 12), _utc(2026, 3, 13, 12)),  # due 12 Mar 12:00Z, closed a day late
        item(3, "P2", _utc(2025, 12, 12, 0), None),  # due 12 Mar 00:00Z, open: not done
        item(4, "P0", _utc(2026, 3, 2, 0), _utc(2026, 3, 8, 0)),  # due 9 Mar 00:00Z, on time
        item(5, "P3", _utc(2026, 3, 2, 0), None),  # best effort: excluded
        item(6, "P0", _utc(2026, 3, 1, 12), _utc(2026, 3, 2, 0)),  # due 8 Mar 12:00Z: the week before
        item(7, "P1", _utc(2026, 2, 10, 0), _utc(2026, 3, 1, 0), state="open"),  # reopened: not completed
        item(8, None, _utc(2026, 3, 10, 0), None, "I1", "postmortem"),  # I1: 46 h after resolution
        item(9, None, _utc(2026, 3, 14, 0), None, "I2", "postmortem"),  # I2: 72 h after: late
    ]
    # item 7 due 12 Mar 00:00Z; its closed_at is kept though the issue is open again
    incidents = [
        inc("I1", "P0", _utc(2026, 3, 8, 2)),  # deadline 10 Mar 02:00Z (in the week)
        inc("I2", "P1", _utc(2026, 3, 11, 0)),  # deadline 13 Mar 00:00Z
        inc("I3", "P1", _utc(2026, 3, 12, 0)),  # deadline 14 Mar 00:00Z, no post-mortem
        inc("I4", "P2", _utc(2026, 3, 11, 0)),  # P2: no post-mortem required
        inc("I5", "P0", _utc(2026, 3, 14, 0)),  # deadline 16 Mar 00:00Z: next week
    ]
    with engine.begin() as conn:
        warehouse.replace_slice(conn, "raw_action_items", "1 = 1", {}, action_items)
        warehouse.replace_slice(conn, "raw_incidents", "1 = 1", {}, incidents)


def test_practice_kpis_by_hand(engine):
    _seed_kpi(engine)
    scope = periods.scope_of(Period.of("week", date(2026, 3, 11)), _utc(2026, 3, 20))
    with engine.connect() as conn:
        m = measures.practice_measures(conn, scope)
    a = m["action_items_on_time_pct"]
    # due in the week: 1 (on time), 2 (late), 3 (open), 4 (on time), 7 (reopened) → 2 ÷ 5
    assert (a.value, a.numerator, a.denominator, a.sample_size, a.no_events) == (40.0, 2, 5, 5, False)
    p = m["postmortems_on_time_pct"]
    # deadlines in the week: I1 (on time), I2 (late), I3 (none) → 1 ÷ 3
    assert (p.numerator, p.denominator, p.sample_size) == (1, 3, 3)
    assert p.value == pytest.approx(100 / 3)


def test_practice_kpis_without_anything_due_are_no_events(engine):
    _seed_kpi(engine)
    scope = periods.scope_of(Period.of("week", date(2026, 4, 1)), _utc(2026, 4, 10))
    with engine.connect() as conn:
        m = measures.practice_measures(conn, scope)
    for k in ("action_items_on_time_pct", "postmortems_on_time_pct"):
        assert m[k].value is None and m[k].no_events and m[k].denominator == 0, k
