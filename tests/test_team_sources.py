"""The team sources (issue 17, Deliver 1): the Google Forms response tab and the Team tab
(:mod:`kaizen.sources.team_sheets`, live through the Sheets API fake and from demo
files), and PagerDuty on-calls and incident assignments (:mod:`kaizen.sources.oncall`,
over the PagerDuty fake) — rows as read, every bad row quarantined with its reason,
re-runs changing nothing, a range extract equal to the day-by-day ones; SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import team_wire as W
from fakes.pagerduty import FakePagerDuty
from fakes.sheets import FakeSheetsServer
from kaizen import calendar as cal
from kaizen import config
from kaizen.period import windows_utc
from kaizen.sources import SourceError, oncall, team_sheets
from kaizen.sources.github import window_days
from source_wire import Counted

SID = "1kaizenTeamSheet"
CONN_ENV = "AIRFLOW_CONN_KAIZEN_GSHEETS"
PD_TOKEN = "pd_team_token"
UNSTAMPED = {"run_id", "loaded_at", "quarantined_at"}


def rows(engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.text(sql), params)]


def table(engine, name: str, where: str = "1 = 1") -> list[tuple]:
    with engine.connect() as c:
        res = c.execute(sa.text(f"select * from {name} where {where}"))
        cols = [k for k in res.keys() if k not in UNSTAMPED]
        return sorted(tuple(str(r._mapping[k]) for k in cols) for r in res)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------ Forms timestamps
@pytest.mark.parametrize(("text", "zone", "month_first", "expected"), [
    ("11/28/2026 17:04:12", "Asia/Kolkata", True, "2026-11-28T11:34:12Z"),    # en_US, as in the issue
    ("28/11/2026 17:04:12", "Asia/Calcutta", False, "2026-11-28T11:34:12Z"),  # en_IN, the zone's old name
    ("1/5/2026 9:04:12", "Asia/Kolkata", True, "2026-01-05T03:34:12Z"),       # no zero padding
    ("1/5/2026 9:04:12", "Asia/Kolkata", False, "2026-05-01T03:34:12Z"),
    ("2026-11-28 17:04:12", "America/New_York", True, "2026-11-28T22:04:12Z"),  # ISO locales, EST
    ("7/1/2026 9:00:00", "America/New_York", True, "2026-07-01T13:00:00Z"),     # EDT
])
def test_a_forms_timestamp_is_read_in_the_locale_order_and_the_forms_time_zone(text, zone, month_first, expected):
    got = team_sheets.parse_timestamp(text, ZoneInfo(zone), month_first)
    assert got == utc(expected) and got.tzinfo is not None


@pytest.mark.parametrize("text", ["31/11/2026 10:00:00", "28/11/2026", "yesterday", "13/13/2026 10:00:00"])
def test_a_timestamp_that_is_not_one_raises(text):
    with pytest.raises(ValueError):
        team_sheets.parse_timestamp(text, ZoneInfo("Asia/Kolkata"), False)


@pytest.mark.parametrize(("text", "month_first", "expected"), [
    ("2026-11", False, date(2026, 11, 1)), ("2026-11-15", False, date(2026, 11, 1)),
    ("Nov 2026", False, date(2026, 11, 1)), ("November 2026", True, date(2026, 11, 1)),
    ("Sept 2026", True, date(2026, 9, 1)), ("11/2026", True, date(2026, 11, 1)),
    ("11/1/2026", True, date(2026, 11, 1)), ("1/11/2026", False, date(2026, 11, 1)),
])
def test_team_tab_months(text, month_first, expected):
    assert team_sheets.parse_month(text, month_first) == expected


# ------------------------------------------------------------------ the Sheets, live
def put(fake: FakeSheetsServer, tab: str, values: list[list]) -> None:
    sheet = fake.sheet(SID, tab)
    with fake.lock:
        for r, row in enumerate(values):
            for c, value in enumerate(row):
                if value not in ("", None):
                    sheet.cells[(r, c)] = value


@pytest.fixture
def sheets_fake(monkeypatch):
    for name in (team_sheets.ENV_FORMS_TAB, team_sheets.ENV_TEAM_TAB, team_sheets.ENV_QUESTION,
                 team_sheets.ENV_FORMS_TZ, team_sheets.ENV_FORMS_SPREADSHEET):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    with FakeSheetsServer() as server:
        server.create_spreadsheet(SID, sheets=(("Scorecard", 1000, 26), ("Form Responses 1", 1000, 26),
                                               ("Team", 1000, 26)))
        monkeypatch.setenv(CONN_ENV, json.dumps(
            {"conn_type": "google_sheets", "extra": {"spreadsheet_id": SID, "base_url": server.base_url}}))
        config.clear_connection_cache()
        assert config.get_connection(config.GSHEETS_CONN_ID).extra["spreadsheet_id"] == SID
        put(server, "Form Responses 1", [W.FORMS_HEADER, *W.FORMS_ROWS])
        put(server, "Team", [W.TEAM_HEADER, *W.TEAM_ROWS])
        yield server
    config.clear_connection_cache()


FIRST, LAST = date(2026, 10, 1), date(2026, 12, 1)  # windows from 30 Sep 10:30Z to 1 Dec 10:30Z


def test_the_tabs_are_read_over_http_and_every_bad_row_is_quarantined_with_its_reason(engine, sheets_fake):
    results = team_sheets.extract_range(FIRST, LAST, engine, "r1")
    days = window_days(*windows_utc(FIRST, LAST))
    by = {r.source: r for r in results}
    # survey: rows 2-8 loaded; rows 10, 11, 13, 14, 16 quarantined on their day; rows 9 and 12
    # (no readable time) by every window of the range
    assert (by["satisfaction"].loaded, by["satisfaction"].quarantined) == (7, 5 + 2 * len(days))
    assert by["satisfaction"].extracted == 7 + 5 + 2 * len(days)
    got = rows(engine, "select response_key, submitted_at, survey_month, score, sheet_row "
                       "from raw_satisfaction_responses order by sheet_row")
    assert [(r[0], str(r[2]), r[3], r[4]) for r in got] == [
        ("2026-11-02T04:30:00Z#1", "2026-11", 9, 2), ("2026-11-15T13:00:00Z#1", "2026-11", 7, 3),
        ("2026-11-28T11:34:12Z#1", "2026-11", 8, 4), ("2026-11-30T18:29:59Z#1", "2026-11", 10, 5),
        ("2026-11-30T18:30:01Z#1", "2026-12", 6, 6), ("2026-10-15T06:30:00Z#1", "2026-10", 5, 7),
        ("2026-10-20T06:30:00Z#1", "2026-10", 9, 8)]
    quarantined = rows(engine, "select record_key, reason, extract_day from quarantine where source = 'satisfaction'")
    reasons = {k: r for k, r, _ in quarantined}
    where = f"spreadsheet {SID} tab 'Form Responses 1'!row "
    assert reasons == {f"{where}{n}": reason for n, reason in W.FORMS_BAD.items()}
    assert sorted(str(d)[:10] for k, _, d in quarantined if k == f"{where}12") == [str(d) for d in days]
    assert {str(d)[:10] for k, _, d in quarantined if k == f"{where}10"} == {"2026-11-16"}  # its window's day
    # the Team tab: rows 2-4 loaded whole; each bad row quarantined by every day's extract
    assert (by["team_months"].loaded, by["team_months"].quarantined) == (3, len(W.TEAM_BAD) * len(days))
    assert rows(engine, "select month, team_size, documentation_coverage_pct, tech_talks, "
                        "innovation_day_participants, notes, sheet_row from raw_team_months order by month") == [
        ("2026-09", 5, 85.0, 2, None, None, 4), ("2026-10", 5, 88.0, 1, 2, None, 2),
        ("2026-11", 6, 91.5, 3, 4, "great month", 3)]
    team_q = rows(engine, "select distinct record_key, reason from quarantine where source = 'team_months'")
    assert dict(team_q) == {f"spreadsheet {SID} tab 'Team'!row {n}": r for n, r in W.TEAM_BAD.items()}
    payload = json.loads(rows(engine, "select payload from quarantine where source = 'team_months' "
                                      "and record_key like '%row 8'")[0][0])
    assert payload == {"row": 8, "month": "Jul 2026", "team_size": "5", "documentation_coverage_pct": "120%",
                       "tech_talks": "1", "innovation_day_participants": "1", "notes": ""}
    # re-run safe: the same rows, the same quarantine
    before = (table(engine, "raw_satisfaction_responses"), table(engine, "raw_team_months"),
              table(engine, "quarantine"))
    team_sheets.extract_range(FIRST, LAST, engine, "r2")
    team_sheets.extract(date(2026, 11, 16), engine, "r3")
    assert (table(engine, "raw_satisfaction_responses"), table(engine, "raw_team_months"),
            table(engine, "quarantine")) == before
    # per extract: the spreadsheet's metadata (gspread reads it on opening, Kaizen for the locale and
    # time zone), then both tabs in one batchGet
    assert [c["op"] for c in sheets_fake.calls()] == ["get", "get", "values.batchGet"] * 3


def test_a_tab_without_its_column_fails_naming_the_setting(engine, sheets_fake, monkeypatch):
    monkeypatch.setenv(team_sheets.ENV_QUESTION, "How happy are you? (1-10)")
    with pytest.raises(SourceError) as err:
        team_sheets.extract(date(2026, 11, 16), engine, "r")
    text = str(err.value)
    assert "no column 'How happy are you? (1-10)'" in text and team_sheets.ENV_QUESTION in text
    assert "'Timestamp', 'Satisfaction (1-10)', 'Anything else?'" in text
    assert rows(engine, "select count(*) from raw_satisfaction_responses") == [(0,)]


def test_a_question_set_by_setting_and_a_time_zone_override(engine, sheets_fake, monkeypatch):
    monkeypatch.setenv(team_sheets.ENV_QUESTION, "  satisfaction  (1–10) ")  # spaces, case and an en dash
    monkeypatch.setenv(team_sheets.ENV_FORMS_TZ, "UTC")
    team_sheets.extract_range(date(2026, 11, 2), date(2026, 11, 2), engine, "r")
    assert rows(engine, "select response_key, score from raw_satisfaction_responses") == [
        ("2026-11-02T10:00:00Z#1", 9)]


def test_a_spreadsheet_without_the_tabs_loads_nothing(engine, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    with FakeSheetsServer() as server:
        server.create_spreadsheet(SID, sheets=(("Scorecard", 1000, 26),))
        monkeypatch.setenv(CONN_ENV, json.dumps(
            {"conn_type": "google_sheets", "extra": {"spreadsheet_id": SID, "base_url": server.base_url}}))
        config.clear_connection_cache()
        assert team_sheets.extract(date(2026, 11, 16), engine, "r") == []
    monkeypatch.delenv(CONN_ENV)
    config.clear_connection_cache()
    assert team_sheets.extract(date(2026, 11, 16), engine, "r") == []  # no connection: nothing to read
    assert rows(engine, "select count(*) from source_coverage where source = 'satisfaction'") == [(0,)]


def test_the_forms_tab_may_live_in_its_own_spreadsheet(engine, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    with FakeSheetsServer() as server:
        server.create_spreadsheet(SID, sheets=(("Team", 1000, 26),))
        server.create_spreadsheet("1formsOwnSheet", sheets=(("Form Responses 1", 1000, 26),))
        sheet = server.sheet("1formsOwnSheet", "Form Responses 1")
        for r, row in enumerate([W.FORMS_HEADER, W.FORMS_ROWS[0]]):
            for c, v in enumerate(row):
                sheet.cells[(r, c)] = v
        monkeypatch.setenv(team_sheets.ENV_FORMS_SPREADSHEET, "1formsOwnSheet")
        monkeypatch.setenv(CONN_ENV, json.dumps(
            {"conn_type": "google_sheets", "extra": {"spreadsheet_id": SID, "base_url": server.base_url}}))
        config.clear_connection_cache()
        got = {r.source: (r.loaded, r.quarantined) for r in team_sheets.extract(date(2026, 11, 2), engine, "r")}
    config.clear_connection_cache()
    assert got == {"satisfaction": (1, 0), "team_months": (0, 0)}


# ------------------------------------------------------------------ PagerDuty on-call
@pytest.fixture
def pd_fake(monkeypatch):
    for name in (oncall.ENV_POLICIES, oncall.ENV_TEAMS):
        monkeypatch.delenv(name, raising=False)
    with FakePagerDuty(token=PD_TOKEN, oncalls=W.ONCALLS + W.ONCALLS_BAD,
                       account_log_entries=W.ASSIGNMENTS + list(W.ASSIGNMENTS_BAD.values())) as fake:
        yield fake


PD_FIRST, PD_LAST = date(2026, 11, 23), date(2026, 11, 30)  # windows from 20 Nov 10:30Z to 30 Nov 10:30Z


def transport(fake, **kw):
    return oncall.http_transport(fake.url, PD_TOKEN, page_limit=3, **kw)


def test_oncalls_are_cut_into_pieces_and_assignments_read_from_the_log(engine, pd_fake):
    results = oncall.extract_range(PD_FIRST, PD_LAST, engine, "r", transport(pd_fake))
    by = {r.source: r for r in results}
    spans = rows(engine, "select user_id, escalation_level, schedule_id, start_at, end_at, ist_day, minutes "
                         "from raw_oncall_spans order by user_id, start_at")
    # every piece lies in one IST day and one review window; they add up to the clipped shift
    total = {}
    for uid, _lv, _s, a, b, day, minutes in spans:
        a, b = _aware(a), _aware(b)
        assert cal.ist_date(a) == cal.ist_date(b - timedelta(microseconds=1)) == date.fromisoformat(str(day)[:10])
        assert minutes == (b - a).total_seconds() / 60
        total[uid] = total.get(uid, 0) + minutes
    start, end = windows_utc(PD_FIRST, PD_LAST)
    assert total == {
        "PUA": (utc("2026-11-30T04:30:00Z") - utc("2026-11-23T04:30:00Z")).total_seconds() / 60,
        "PUB": (utc("2026-11-23T04:30:00Z") - start).total_seconds() / 60,
        "PUC": (utc("2026-11-30T04:30:00Z") - start).total_seconds() / 60,
    }
    # Asha's week, cut at IST midnights (18:30Z) and the 16:00 IST window edges (10:30Z)
    cuts = [(str(a)[:16], str(b)[:16]) for uid, lv, _s, a, b, _d, _m in spans if uid == "PUA"][:4]
    assert cuts == [("2026-11-23 04:30", "2026-11-23 10:30"), ("2026-11-23 10:30", "2026-11-23 18:30"),
                    ("2026-11-23 18:30", "2026-11-24 18:30"), ("2026-11-24 18:30", "2026-11-25 10:30")]
    q = rows(engine, "select source, record_key, reason, extract_day from quarantine order by source, extract_day")
    assert [(s, k, r, str(d)[:10]) for s, k, r, d in q if s == "oncall_spans"] == [
        ("oncall_spans", "PEP1|None", "on-call entry without user.id", "2026-11-25"),
        ("oncall_spans", "PEP1|None", "on-call entry without user.id", "2026-11-26"),
        ("oncall_spans", "PEP1|PUC", "on-call ends 2026-11-26T11:00:00Z before it starts 2026-11-26T12:00:00Z",
         "2026-11-27"),
    ]
    assert {k: r for s, k, r, _ in q if s == "assignments"} == W.ASSIGNMENTS_BAD_REASONS
    assert {str(d)[:10] for s, _k, _r, d in q if s == "assignments"} == {"2026-11-25"}  # 24 Nov is a holiday
    got = rows(engine, "select assignment_key, incident_id, user_id, user_name, type, ist_day "
                       "from raw_incident_assignments order by assigned_at")
    assert [(k, i, u, t, str(d)[:10]) for k, i, u, _n, t, d in got] == [
        ("L7|PUB", "I5", "PUB", "assign_log_entry", "2026-11-20"),
        ("L3|PUB", "I2", "PUB", "assign_log_entry", "2026-11-23"),  # 20:00Z is 01:30 IST the next day
        ("L1|PUA", "I1", "PUA", "assign_log_entry", "2026-11-23"),
        ("L2|PUC", "I1", "PUC", "escalate_log_entry", "2026-11-23"),
        ("L8|PUA", "I5", "PUA", "assign_log_entry", "2026-11-23"),
        ("B4|PUB", "I7", "PUB", "assign_log_entry", "2026-11-24"),
        ("L4|PUA", "I3", "PUA", "assign_log_entry", "2026-11-25"),
        ("L5|PUA", "I3", "PUA", "assign_log_entry", "2026-11-25"),
        ("L6|PUA", "I4", "PUA", "assign_log_entry", "2026-11-30"),
    ]
    for r in results:
        assert r.extracted == r.loaded + r.quarantined
    assert (by["assignments"].loaded, by["assignments"].quarantined) == (9, 4)
    # paged (limit 3) and filtered: the fake saw since/until in UTC and time_zone=UTC
    oc = [r for r in pd_fake.requests if r["path"] == "/oncalls"]
    assert oc[0]["query"]["since"] == ["2026-11-20T10:30:00Z"] and oc[0]["query"]["time_zone"] == ["UTC"]
    assert len(oc) == 2  # 5 entries, 3 a page
    assert len([r for r in pd_fake.requests if r["path"] == "/log_entries"]) >= 2


def _aware(v) -> datetime:
    from kaizen.warehouse.coverage import parse_ts

    return parse_ts(v)


def test_an_oncall_extract_is_re_run_safe_and_a_range_equals_the_days(engine, pd_fake):
    days = cal.trading_days(PD_FIRST, PD_LAST)
    for d in days:
        oncall.extract(d, engine, "day", transport(pd_fake))
    expected = {t: table(engine, t) for t in ("raw_oncall_spans", "raw_incident_assignments", "quarantine")}
    with engine.begin() as c:
        for t in expected:
            c.execute(sa.text(f"delete from {t}"))
    t = Counted(transport(pd_fake))
    oncall.extract_range(PD_FIRST, PD_LAST, engine, "range", t)
    assert len(t.calls) == 1
    assert {k: table(engine, k) for k in expected} == expected
    oncall.extract_range(PD_FIRST, PD_LAST, engine, "again", transport(pd_fake))
    oncall.extract(date(2026, 11, 26), engine, "again", transport(pd_fake))
    assert {k: table(engine, k) for k in expected} == expected


def test_the_filters_go_to_pagerduty(engine, pd_fake, monkeypatch):
    monkeypatch.setenv(oncall.ENV_POLICIES, "PEP1, PEP9")
    monkeypatch.setenv(oncall.ENV_TEAMS, "PT2")
    oncall.extract(date(2026, 11, 25), engine, "r", transport(pd_fake))
    oc = next(r for r in pd_fake.requests if r["path"] == "/oncalls")
    assert oc["query"]["escalation_policy_ids[]"] == ["PEP1", "PEP9"]
    le = next(r for r in pd_fake.requests if r["path"] == "/log_entries")
    assert le["query"]["team_ids[]"] == ["PT2"]
    assert rows(engine, "select count(*) from raw_incident_assignments") == [(0,)]  # no entry of team PT2


def test_a_permanent_oncall_covers_the_whole_window(engine):
    entries = [W.oncall(W.ASHA, 1, None, None, sched={})]
    oncall.extract(date(2026, 11, 26), engine, "r", lambda s, e: {"oncalls": entries, "log_entries": []})
    start, end = windows_utc(date(2026, 11, 26), date(2026, 11, 26))
    got = rows(engine, "select sum(minutes), min(schedule_id), count(*) from raw_oncall_spans")
    assert got == [((end - start).total_seconds() / 60, None, 2)]  # cut at the IST midnight


def test_an_assignment_in_the_future_is_quarantined(engine):
    future = W.entry("F1", "assign_log_entry", "I9", "2026-11-26T09:00:00Z", [W.ASHA])
    oncall.extract(date(2026, 11, 26), engine, "r", lambda s, e: {"oncalls": [], "log_entries": [future]},
                   as_of=datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    assert rows(engine, "select reason from quarantine") == [
        ("created_at 2026-11-26T09:00:00Z is after the as-of 2026-11-26T08:00:00Z (the extraction's clock, "
         "5 min tolerance): an assignment in the future",)]


# ------------------------------------------------------------------ the demo files
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from kaizen.demo import generate

    out = tmp_path_factory.mktemp("team-demo")
    manifest = generate(end=date(2026, 11, 27), months=1, seed=42, out_dir=out, trades_per_day=20)
    return out, manifest


def test_the_demo_files_are_in_the_wire_formats_and_load_day_by_day_as_in_one_range(engine, demo):
    out, manifest = demo
    days = cal.trading_days(date(2026, 11, 16), date(2026, 11, 27))
    tables = ("raw_oncall_spans", "raw_incident_assignments", "raw_satisfaction_responses", "raw_team_months",
              "quarantine")
    for d in days:
        oncall.extract(d, engine, "day", oncall.demo_transport(out))
        team_sheets.extract(d, engine, "day", team_sheets.demo_transport(out))
    expected = {t: table(engine, t) for t in tables}
    with engine.begin() as c:
        for t in tables:
            c.execute(sa.text(f"delete from {t}"))
    oncall.extract_range(days[0], days[-1], engine, "range", oncall.demo_transport(out))
    team_sheets.extract_range(days[0], days[-1], engine, "range", team_sheets.demo_transport(out))
    assert {t: table(engine, t) for t in tables} == expected
    assert all(expected[t] for t in tables)
    # each deliberately bad record of the manifest is in quarantine with its reason
    q = rows(engine, "select source, reason, extract_day from quarantine")
    last = manifest["last_trading_day"]
    for bad in manifest["team"]["bad_records"]:
        hits = [(s, r, str(d)[:10]) for s, r, d in q if s == bad["source"]]
        assert hits, bad
        if bad["day"]:
            assert {d for *_, d in hits} == {last}, bad
    assert {s for s, *_ in q} >= {"oncall_spans", "assignments", "satisfaction", "team_months"}
    # every responder of the rotation is on call some of the time; the Forms body as the API returns it
    users = {r[0] for r in rows(engine, "select distinct user_id from raw_oncall_spans")}
    assert len(users) >= 2
    body = json.loads((out / "sheets" / "form_responses_1.json").read_text())
    assert set(body) == {"range", "majorDimension", "values"} and body["values"][0][0] == "Timestamp"
    assert all(isinstance(c, str) for row in body["values"] for c in row)
    oncalls = json.loads((out / "pagerduty" / "oncalls.json").read_text())
    assert set(oncalls) == {"oncalls", "limit", "offset", "more", "total"}
    assert set(oncalls["oncalls"][0]) == {"escalation_policy", "escalation_level", "schedule", "user", "start", "end"}
