"""The demo team's own data, in the real wire formats:

* ``pagerduty/oncalls.json`` — the body of ``GET /oncalls`` over the demo span: a weekly
  rotation of the five demo responders (hand-off Monday 10:00 IST) on the "Trading desk
  primary" schedule (escalation level 1) and "Trading desk secondary" (level 2), with
  one day's override.
* ``pagerduty/log_entries.json`` — the body of ``GET /log_entries`` holding the
  assignments of every demo incident: an ``assign_log_entry`` to the primary on call
  when it triggers; when someone else acknowledged it, an ``escalate_log_entry`` to the
  secondary (who then acknowledged) or a reassignment to the acknowledger. (A real
  account-wide listing also holds triggers, notes, resolutions…: the parser skips
  every other type, so the demo writes only these.)
* ``sheets/spreadsheet.json`` (``spreadsheets.get``: locale en_US, time zone
  Asia/Kolkata), ``sheets/form_responses_1.json`` and ``sheets/team.json``
  (``values.get`` bodies, formatted values as the API returns them): the monthly
  satisfaction survey as Google Forms writes it (``11/28/2026 17:04:12``), and the
  Team tab kept by hand.

Deliberately bad records, all in the last trading day's review window except the Team
tab's (a tab has no time): an on-call entry ending before it starts, an assignment
whose assignee has no id, a survey answer of 11, a blank answer, and a Team row
repeating a month. Its own random stream (a spawn key of its own), so every other demo
file is unchanged by this one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from kaizen.demo import pagerduty as pd
from kaizen.demo.scenario import DAY, IST_OFFSET, Period, dump_json, iso_z, rand_id

SPAWN_KEY = (0x7EA3,)  # the team stream: independent of the other demo streams
WEEK = 7 * DAY
HANDOFF = 10 * 3600 - IST_OFFSET  # Monday 10:00 IST, seconds after Monday 00:00 UTC
TEAM_SIZE = 6  # the five responders and the desk lead, who is not on call
SCHEDULES = {1: ("PSCHPRI", "Trading desk primary"), 2: ("PSCHSEC", "Trading desk secondary")}
QUESTION = "Satisfaction (1-10)"
COMMENT = "What is one thing that would make your work better?"
COMMENTS = ("Fewer noisy alerts at night", "More pairing on the order router", "Clearer runbooks",
            "Quieter on-call weeks", "", "", "")
LOCALE, TIME_ZONE = "en_US", "Asia/Kolkata"


def stream(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=SPAWN_KEY))


def _schedule_ref(level: int) -> dict:
    sid, name = SCHEDULES[level]
    return {"id": sid, "type": "schedule_reference", "summary": name, "self": f"{pd.API}/schedules/{sid}",
            "html_url": f"{pd.WEB}/schedules/{sid}"}


def _oncall(user: tuple, level: int, start: int, end: int) -> dict:
    return {"escalation_policy": pd.ESCALATION_POLICY, "escalation_level": level, "schedule": _schedule_ref(level),
            "user": pd.user_ref(user), "start": iso_z(start), "end": iso_z(end)}


def rotation(period: Period) -> list[tuple[int, int, int, tuple]]:
    """(level, start, end, user) of the weekly shifts covering the demo span."""
    first = period.cov_start - (period.cov_start - HANDOFF - 4 * DAY) % WEEK  # the Monday hand-off before
    out = []
    k = (first // WEEK) % len(pd.USERS)
    t = first
    while t < period.cov_end + WEEK:
        for level in (1, 2):
            out.append((level, t, t + WEEK, pd.USERS[(k + level - 1) % len(pd.USERS)]))
        t, k = t + WEEK, (k + 1) % len(pd.USERS)
    return out


def oncalls(period: Period, rng: np.random.Generator) -> tuple[list[dict], list[tuple], dict]:
    """The /oncalls entries (with one override), the shifts as (level, start, end, user),
    and the bad entry."""
    shifts = rotation(period)
    primary = [(a, b, u) for lv, a, b, u in shifts if lv == 1]
    # an override: in a week near the middle, Wednesday 10:00 – Thursday 10:00 IST is
    # taken by the next responder (the schedule's final layer splits the shift in three)
    mid = primary[len(primary) // 2]
    o_start, o_end = mid[0] + 2 * DAY, mid[0] + 3 * DAY
    stand_in = pd.USERS[(pd.USERS.index(mid[2]) + 2) % len(pd.USERS)]
    entries, final = [], []
    for lv, a, b, u in shifts:
        parts = [(a, b, u)]
        if lv == 1 and (a, b, u) == mid:
            parts = [(a, o_start, u), (o_start, o_end, stand_in), (o_end, b, u)]
        for pa, pb, pu in parts:
            entries.append(_oncall(pu, lv, pa, pb))
            final.append((lv, pa, pb, pu))
    lw = period.last_window
    b_start = lw.start + 3 * 3600 + int(rng.integers(0, 3600))
    bad = _oncall(pd.USERS[0], 1, b_start, b_start - 3600)  # ends an hour before it starts
    entries.append(bad)
    entries.sort(key=lambda e: (e["start"], e["escalation_level"], e["user"]["id"]))
    return entries, final, {"source": "oncall_spans", "reason": "on-call entry ending before it starts",
                            "day": lw.day.isoformat()}


def _on_call(final: list[tuple], level: int, t: int) -> tuple:
    for lv, a, b, u in final:
        if lv == level and a <= t < b:
            return u
    return pd.USERS[level - 1]


def assignments(period: Period, incidents: list, final: list[tuple], rng: np.random.Generator
                ) -> tuple[list[dict], dict]:
    """The assign/escalate log entries of every incident, and the bad one."""
    out = []
    for inc in incidents:
        primary, secondary = _on_call(final, 1, inc.created), _on_call(final, 2, inc.created)
        auto = {"type": "auto"}
        out.append(pd._log(inc, rand_id(rng, "R", 25), "assign", inc.created, f"Assigned to {primary[1]}.",
                           pd.service_ref(inc.service), auto, assignees=[pd.user_ref(primary)]))
        if inc.ack is None or inc.acknowledger == primary:
            continue
        if inc.acknowledger == secondary:
            t = inc.created + max(1, (inc.ack - inc.created) // 2)
            out.append(pd._log(inc, rand_id(rng, "R", 25), "escalate", t,
                               f"Escalated to {secondary[1]} (level 2).", pd.service_ref(inc.service), auto,
                               assignees=[pd.user_ref(secondary)]))
        else:
            u = inc.acknowledger
            out.append(pd._log(inc, rand_id(rng, "R", 25), "assign", max(inc.created + 1, inc.ack - 5),
                               f"Reassigned to {u[1]} by {u[1]}.", pd.user_ref(u), {"type": "web_ui"},
                               assignees=[pd.user_ref(u)]))
    lw = period.last_window
    mine = [i for i in incidents if lw.start <= i.created < lw.end] or incidents[-1:]
    inc = mine[0]
    lid = rand_id(rng, "R", 25)
    ghost = {"type": "user_reference", "summary": "Former contractor"}  # a deleted user: no id
    out.append(pd._log(inc, lid, "assign", inc.created + 30, "Assigned to Former contractor.",
                       pd.service_ref(inc.service), {"type": "auto"}, assignees=[ghost]))
    out.sort(key=lambda e: (e["created_at"], e["id"]), reverse=True)  # newest first, as PagerDuty lists
    return out, {"source": "assignments", "key": lid, "reason": "assignee without an id", "day": lw.day.isoformat()}


# ---------------------------------------------------------------- Google Sheets
def _forms_stamp(t: int) -> str:
    """Forms' Timestamp in an en_US spreadsheet: M/D/YYYY H:MM:SS, in the sheet's time zone (IST)."""
    local = datetime.fromtimestamp(t + IST_OFFSET, UTC)
    return f"{local.month}/{local.day}/{local.year} {local.hour}:{local:%M:%S}"


def _months(period: Period) -> list[date]:
    d = date(period.start.year, period.start.month, 1)
    out = []
    while d <= period.end:
        out.append(d)
        d = (d + timedelta(days=32)).replace(day=1)
    return out


def survey(period: Period, rng: np.random.Generator) -> tuple[list[list[str]], list[dict]]:
    """The response tab: the pulse survey goes out on the 25th, answers come over the
    following days (the first month's round is thin); two bad rows in the last window."""
    rows: list[tuple[int, str, str]] = []
    months = _months(period)
    for i, m in enumerate(months):
        sent = int(datetime(m.year, m.month, 25, 9, 30, tzinfo=UTC).timestamp()) - IST_OFFSET + 5 * 3600
        people = 2 if i == 0 else TEAM_SIZE
        for _ in range(people):
            if i and rng.random() < 0.2:
                continue  # not everyone answers
            t = sent + int(rng.integers(0, 5 * DAY))
            if t >= period.cov_end:
                continue  # not yet
            score = int(np.clip(round(rng.normal(8.2 if i % 2 else 7.6, 1.1)), 1, 10))
            rows.append((t, str(score), COMMENTS[int(rng.integers(0, len(COMMENTS)))]))
    lw = period.last_window
    bad = []
    for value, reason in (("11", "answer above 10"), ("", "blank answer")):
        t = lw.start + 3600 + int(rng.integers(0, max(1, lw.end - lw.start - 7200)))
        rows.append((t, value, ""))
        bad.append({"source": "satisfaction", "key": _forms_stamp(t), "reason": reason, "day": lw.day.isoformat()})
    rows.sort()
    values = [["Timestamp", QUESTION, COMMENT]]
    values += [[_forms_stamp(t), score, comment] for t, score, comment in rows]
    return values, bad


def team_tab(period: Period) -> tuple[list[list[str]], dict]:
    """The Team tab as the desk keeps it: a row a month (the current month as entered so
    far), and a row repeating a month by mistake."""
    months = _months(period)
    coverage = ["84%", "86%", "88.5%", "91%", "92%", "93%"]
    talks = ["2", "1", "2", "2", "3", "2"]
    joined = ["3", "4", "2", "4", "3", "5"]
    notes = ["", "One talk moved to next month", "", "Innovation day on the 27th", "", ""]
    values = [["Month", "Team size", "Documentation coverage %", "Tech talks", "Innovation day participants",
               "Notes"]]
    for i, m in enumerate(months):
        k = i % len(coverage)
        values.append([f"{m:%b %Y}", str(TEAM_SIZE), coverage[k], talks[k], joined[k], notes[k]])
    dup = months[-2] if len(months) > 1 else months[-1]
    values.append([f"{dup:%b %Y}", str(TEAM_SIZE), "80%", "5", "6", "entered twice by mistake"])
    return values, {"source": "team_months", "key": f"Team!row {len(values)}",
                    "reason": f"month {dup:%Y-%m} is already on an earlier row", "day": None}


def _values_body(title: str, values: list[list[str]]) -> dict:
    width = max(len(r) for r in values)
    last_col = chr(ord("A") + width - 1)
    return {"range": f"'{title}'!A1:{last_col}{len(values)}", "majorDimension": "ROWS", "values": values}


def write(period: Period, incidents: list, seed: int, out: Path) -> dict:
    rng = stream(seed)
    entries, final, bad_oncall = oncalls(period, rng)
    dump_json(out / "pagerduty" / "oncalls.json",
              {"oncalls": entries, "limit": len(entries), "offset": 0, "more": False, "total": None})
    logs, bad_assign = assignments(period, incidents, final, rng)
    dump_json(out / "pagerduty" / "log_entries.json",
              {"log_entries": logs, "limit": len(logs), "offset": 0, "more": False, "total": None})
    responses, bad_survey = survey(period, rng)
    team, bad_team = team_tab(period)
    sheets = out / "sheets"
    dump_json(sheets / "spreadsheet.json", {
        "spreadsheetId": "1KzNdEmOtEaMsHeEt0kAiZeNdEsK",
        "properties": {"title": "Kaizen — trading desk", "locale": LOCALE, "autoRecalc": "ON_CHANGE",
                       "timeZone": TIME_ZONE},
        "sheets": [{"properties": {"sheetId": sid, "title": title, "index": i, "sheetType": "GRID",
                                   "gridProperties": {"rowCount": 1000, "columnCount": 26}}}
                   for i, (sid, title) in enumerate(((1130528001, "Form Responses 1"), (1130528002, "Team")))],
    })
    dump_json(sheets / "form_responses_1.json", _values_body("Form Responses 1", responses))
    dump_json(sheets / "team.json", _values_body("Team", team))
    return {"oncall_entries": len(entries), "assignment_log_entries": len(logs),
            "survey_responses": len(responses) - 1, "team_months": len(team) - 1, "team_size": TEAM_SIZE,
            "bad_records": [bad_oncall, bad_assign, *bad_survey, bad_team]}
