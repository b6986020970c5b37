"""The team KPIs (issue 17, Deliver 1), each computed by hand from the small fixtures of
team_wire.py in the sources' real formats, through the real path: extract → load →
``kpi_values`` by :func:`kaizen.kpis.periods.compute_rollups` — on SQLite and PostgreSQL
with the same figures. Too few responses, or no entry, is insufficient_data with no
value, never 0; a source that covers none of the period is stale."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
import sqlalchemy as sa

import team_wire as W
from kaizen import calendar as cal
from kaizen.kpis import periods
from kaizen.sources import oncall, team_sheets
from kaizen.team import measures as tm

TEAM_KPIS = ("team_satisfaction_score", "team_satisfaction_responses_count", "team_satisfaction_response_rate_pct",
             "documentation_coverage_pct", "tech_talks_count", "tech_talks_per_month",
             "innovation_days_participation_pct", "oncall_incidents_per_week")


def sheets_transport():
    tab = {"locale": "en_IN", "time_zone": "Asia/Kolkata"}
    return lambda: {"forms": {**tab, "values": [W.FORMS_HEADER, *W.FORMS_ROWS], "location": "Form Responses 1"},
                    "team": {**tab, "values": [W.TEAM_HEADER, *W.TEAM_ROWS], "location": "Team"}}


def pd_transport(start, end):
    from kaizen.sources.oncall import _overlaps

    oncalls = [o for o in W.ONCALLS + W.ONCALLS_BAD if _overlaps(o, start, end)]
    entries = [e for e in W.ASSIGNMENTS + list(W.ASSIGNMENTS_BAD.values())
               if start <= datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")) < end]
    return {"oncalls": oncalls, "log_entries": entries}


@pytest.fixture
def loaded(engine, monkeypatch):
    monkeypatch.delenv(tm.ENV_TEAM_SIZE, raising=False)
    for name in (team_sheets.ENV_QUESTION, team_sheets.ENV_FORMS_TZ):
        monkeypatch.delenv(name, raising=False)
    team_sheets.extract_range(date(2026, 10, 1), date(2026, 12, 1), engine, "load", sheets_transport())
    oncall.extract_range(date(2026, 11, 23), date(2026, 11, 30), engine, "load", pd_transport)
    return engine


def ist(d: date, hh: int = 0) -> datetime:
    return cal.ist_datetime(d, time(hh, 0))


def kpis(engine, grain: str, start: date, as_of: datetime) -> dict[str, dict]:
    periods.compute_rollups(engine, [grain], start, start, "kpis", as_of=as_of)
    with engine.connect() as c:
        got = c.execute(sa.text(
            "select kpi_id, value, numerator, denominator, sample_size, status from kpi_values "
            "where grain = :g and period_start = :ps"), {"g": grain, "ps": start.isoformat()}).mappings().all()
    return {r["kpi_id"]: dict(r) for r in got if r["kpi_id"] in TEAM_KPIS}


def approx(v):
    return None if v is None else pytest.approx(v, rel=1e-12)


def check(row: dict, value, numerator, denominator, sample, status):
    assert (row["value"], row["numerator"], row["denominator"], row["sample_size"], row["status"]) == (
        approx(value), approx(numerator), approx(denominator), sample, status), row


def test_november_by_hand(loaded):
    k = kpis(loaded, "month", date(2026, 11, 1), ist(date(2026, 12, 1)))
    # rows 2-5 of the response tab: 9 + 7 + 8 + 10 = 34 over 4 → 8.5 (> 8); row 6 is December in IST
    check(k["team_satisfaction_score"], 8.5, 34, 4, 4, "on_target")
    check(k["team_satisfaction_responses_count"], 4, None, None, 4, "on_target")
    check(k["team_satisfaction_response_rate_pct"], 100 * 4 / 6, 4, 6, 4, "on_target")  # team size 6 in Nov
    check(k["documentation_coverage_pct"], 91.5, None, None, 1, "on_target")
    check(k["tech_talks_count"], 3, None, None, 1, "on_target")
    check(k["innovation_days_participation_pct"], 100 * 4 / 6, 4, 6, 1, "on_target")
    # first assignments in November (IST): I5 (20th), I2, I1, I7, I3, I4 (30 Nov 00:30 IST is the 30th)
    check(k["oncall_incidents_per_week"], 6 / (30 / 7), 6, 30 / 7, 6, "on_target")
    assert "tech_talks_per_month" not in k


def test_october_too_few_responses_is_no_score_never_0(loaded):
    k = kpis(loaded, "month", date(2026, 10, 1), ist(date(2026, 11, 1)))
    check(k["team_satisfaction_score"], None, 14, 2, 2, "insufficient_data")  # 5 + 9, fewer than 3
    check(k["team_satisfaction_responses_count"], 2, None, None, 2, "on_target")
    check(k["team_satisfaction_response_rate_pct"], 40.0, 2, 5, 2, "on_target")
    check(k["documentation_coverage_pct"], 88, None, None, 1, "off_target")
    check(k["tech_talks_count"], 1, None, None, 1, "off_target")
    check(k["innovation_days_participation_pct"], 40.0, 2, 5, 1, "off_target")
    check(k["oncall_incidents_per_week"], None, None, None, 0, "stale")  # assignments landed only from 20 Nov


def test_the_quarter_by_hand(loaded, monkeypatch):
    k = kpis(loaded, "quarter", date(2026, 10, 1), ist(date(2026, 12, 1)))
    check(k["team_satisfaction_score"], 48 / 6, 48, 6, 6, "off_target")  # 8.0 is not > 8
    check(k["team_satisfaction_response_rate_pct"], 100 * 6 / 11, 6, 11, 6, "on_target")  # 5 + 6 possible
    check(k["documentation_coverage_pct"], 91.5, None, None, 2, "on_target")  # the latest month's
    check(k["tech_talks_per_month"], 2.0, 4, 2, 2, "on_target")  # (1 + 3) ÷ 2 months
    check(k["innovation_days_participation_pct"], 100 * 6 / 11, 6, 11, 2, "on_target")
    assert "tech_talks_count" not in k
    # to 2 Dec: December's response counts; December has no Team row and no setting: no rate
    k = kpis(loaded, "quarter", date(2026, 10, 1), ist(date(2026, 12, 2), 12))
    check(k["team_satisfaction_score"], 54 / 7, 54, 7, 7, "off_target")
    check(k["team_satisfaction_response_rate_pct"], None, None, None, 7, "insufficient_data")
    monkeypatch.setenv(tm.ENV_TEAM_SIZE, "6")
    k = kpis(loaded, "quarter", date(2026, 10, 1), ist(date(2026, 12, 2), 12))
    check(k["team_satisfaction_response_rate_pct"], 100 * 7 / 17, 7, 17, 7, "on_target")


def test_week_48_oncall_for_the_team_and_per_responder(loaded):
    k = kpis(loaded, "week", date(2026, 11, 23), ist(date(2026, 11, 30)))
    # first assignments in [22 Nov 18:30Z, 29 Nov 18:30Z): I2, I1, I7, I3 (I5 was first assigned in
    # week 47, I4 after the week)
    check(k["oncall_incidents_per_week"], 4.0, 4, 1.0, 4, "on_target")
    assert set(k) == {"oncall_incidents_per_week"}  # the survey and the tab have no week grain
    with loaded.connect() as c:
        load = tm.responder_load(c, ist(date(2026, 11, 23)), ist(date(2026, 11, 30)))
    assert [(r.user_id, r.oncall_hours, r.incidents) for r in load] == [
        ("PUB", 10.0, 2), ("PUA", 158.0, 3), ("PUC", 168.0, 1)]  # most incidents per on-call week first
    assert [r.per_oncall_week for r in load] == [approx(2 * 168 / 10), approx(3 * 168 / 158), approx(1.0)]
    assert [r.on_target for r in load] == [False, True, True]


def test_a_source_that_missed_the_period_is_stale_and_one_never_landed_says_insufficient(engine, loaded):
    k = kpis(loaded, "month", date(2026, 8, 1), ist(date(2026, 9, 1)))
    check(k["team_satisfaction_responses_count"], None, None, None, 0, "stale")
    check(k["oncall_incidents_per_week"], None, None, None, 0, "stale")
    check(k["documentation_coverage_pct"], None, None, None, 0, "insufficient_data")  # row 7 was refused
    with loaded.begin() as c:
        for t in ("raw_satisfaction_responses", "raw_team_months", "raw_oncall_spans", "raw_incident_assignments",
                  "source_coverage", "kpi_values"):
            c.execute(sa.text(f"delete from {t}"))
    k = kpis(loaded, "month", date(2026, 11, 1), ist(date(2026, 12, 1)))
    assert {kid: (r["value"], r["status"]) for kid, r in k.items()} == {
        kid: (None, "insufficient_data") for kid in TEAM_KPIS if kid != "tech_talks_per_month"}


def test_recomputing_changes_nothing_and_no_day_has_a_team_kpi(loaded):
    kpis(loaded, "month", date(2026, 11, 1), ist(date(2026, 12, 1)))
    with loaded.connect() as c:
        before = c.execute(sa.text("select * from kpi_values order by kpi_id, grain, period_start")).all()
    team_sheets.extract_range(date(2026, 10, 1), date(2026, 12, 1), loaded, "again", sheets_transport())
    kpis(loaded, "month", date(2026, 11, 1), ist(date(2026, 12, 1)))
    with loaded.connect() as c:
        assert c.execute(sa.text("select * from kpi_values order by kpi_id, grain, period_start")).all() == before
    from kaizen.kpis.measures import measure_scope

    with loaded.connect() as c:
        day = measure_scope(c, periods.day_scope(date(2026, 11, 26)))
    assert not set(day) & set(TEAM_KPIS)


def test_a_bad_team_size_setting_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv(tm.ENV_TEAM_SIZE, "six")
    with pytest.raises(ValueError, match="KAIZEN_TEAM_SIZE: 'six' is not a whole number"):
        tm.default_team_size()
    monkeypatch.setenv(tm.ENV_TEAM_SIZE, "0")
    with pytest.raises(ValueError, match="must be at least 1"):
        tm.default_team_size()
