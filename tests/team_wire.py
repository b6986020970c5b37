"""Small fixtures of the team sources in their real wire formats, shared by the team
tests: the Google Forms response tab and the hand-kept Team tab (``values.get`` rows
as the Sheets API returns formatted values, day-first as an en_IN spreadsheet writes
them), and PagerDuty ``/oncalls`` entries and ``/log_entries`` assignment entries
(github.com/PagerDuty/api-schema). The expected figures are worked out by hand in the
tests that use them."""

from __future__ import annotations

API = "https://api.pagerduty.com"
WEB = "https://desk.pagerduty.com"
QUESTION = "Satisfaction (1-10)"

FORMS_HEADER = ["Timestamp", QUESTION, "Anything else?"]
FORMS_ROWS = [
    ["02/11/2026 10:00:00", "9", "more pairing"],    # row 2: Nov, 04:30Z
    ["15/11/2026 18:30:00", "7", ""],                # row 3: Nov
    ["28/11/2026 17:04:12", "8", ""],                # row 4: Nov, 11:34:12Z
    ["30/11/2026 23:59:59", "10", ""],               # row 5: Nov in IST (30 Nov 18:29:59Z)
    ["01/12/2026 00:00:01", "6", ""],                # row 6: December in IST
    ["15/10/2026 12:00:00", "5", ""],                # row 7: Oct
    ["20/10/2026 12:00:00", "9", "quiet month"],     # row 8: Oct
    ["31/11/2026 10:00:00", "8", ""],                # row 9: no 31 November
    ["16/11/2026 09:00:00", "11", ""],               # row 10: above 10
    ["16/11/2026 09:00:01", "", "no answer"],        # row 11: blank answer
    ["", "8", ""],                                   # row 12: blank Timestamp
    ["17/11/2026 09:00:00", "7.5", ""],              # row 13: not whole
    ["17/11/2026 09:00:00", "0", ""],                # row 14: below 1
    ["", "", ""],                                    # row 15: blank row, skipped
    ["17/11/2026 09:00:00", "seven", ""],            # row 16: not a number
]
# rows 2-5 are November (IST): 9 + 7 + 8 + 10 = 34 over 4; rows 7-8 October: 5 + 9 over 2
FORMS_BAD = {
    9: "unparseable Timestamp '31/11/2026 10:00:00' (Forms writes D/M/YYYY H:MM:SS in this locale)",
    10: "answer '11' is above 10: the score must be a whole number from 1 to 10",
    11: f"blank answer to {QUESTION!r}",
    12: "blank Timestamp",
    13: "answer '7.5' is not a whole number: the score must be a whole number from 1 to 10",
    14: "answer '0' is below 1: the score must be a whole number from 1 to 10",
    16: "answer 'seven' is not a number: the score must be a whole number from 1 to 10",
}

TEAM_HEADER = ["Month", "Team size", "Documentation coverage %", "Tech talks", "Innovation day participants", "Notes",
               "Owner"]
TEAM_ROWS = [
    ["Oct 2026", "5", "88%", "1", "2", "", "Asha"],           # row 2
    ["2026-11", "6", "91.5", "3", "4", "great month", ""],    # row 3
    ["Sep 2026", "5", "85 %", "2", "", "", ""],               # row 4
    ["Nov 2026", "6", "90", "2", "3", "dup", ""],             # row 5: November again
    ["Foo", "5", "80", "1", "1", "", ""],                     # row 6
    ["Aug 2026", "0", "80", "1", "0", "", ""],                # row 7
    ["Jul 2026", "5", "120%", "1", "1", "", ""],              # row 8
    ["Jun 2026", "5", "80", "-1", "1", "", ""],               # row 9
    ["May 2026", "5", "80", "2", "6", "", ""],                # row 10
    ["Apr 2026", "5", "80", "1.5", "1", "", ""],              # row 11
    ["", "", "", "", "", "", ""],                             # row 12: blank, skipped
]
TEAM_BAD = {
    5: "month 2026-11 is already on row 3; this row is not loaded",
    6: "month 'Foo' is not a month (write 2026-11 or Nov 2026)",
    7: "team_size '0' is below 1",
    8: "documentation_coverage_pct '120%' is outside 0–100 %",
    9: "tech_talks '-1' is below 0",
    10: "innovation_day_participants 6 is more than team_size 5",
    11: "tech_talks '1.5' is not a whole number",
}


def user(uid: str, name: str) -> dict:
    return {"id": uid, "type": "user_reference", "summary": name, "self": f"{API}/users/{uid}",
            "html_url": f"{WEB}/users/{uid}"}


ASHA, DEV, MEERA = user("PUA", "Asha Rao"), user("PUB", "Dev Kapoor"), user("PUC", "Meera Pillai")
POLICY = {"id": "PEP1", "type": "escalation_policy_reference", "summary": "Trading desk on-call",
          "self": f"{API}/escalation_policies/PEP1", "html_url": f"{WEB}/escalation_policies/PEP1"}


def schedule(sid: str, name: str) -> dict:
    return {"id": sid, "type": "schedule_reference", "summary": name, "self": f"{API}/schedules/{sid}",
            "html_url": f"{WEB}/schedules/{sid}"}


def oncall(who: dict, level: int, start: str | None, end: str | None, sched: dict | None = None) -> dict:
    return {"escalation_policy": POLICY, "escalation_level": level,
            "schedule": sched if sched is not None else schedule(f"PS{level}", f"Level {level}"),
            "user": who, "start": start, "end": end}


# Week 48 of 2026 (IST): [22 Nov 18:30Z, 29 Nov 18:30Z)
ONCALLS = [
    oncall(ASHA, 1, "2026-11-23T04:30:00Z", "2026-11-30T04:30:00Z"),  # 158 h of the week
    oncall(DEV, 1, "2026-11-16T04:30:00Z", "2026-11-23T04:30:00Z"),   # 10 h of the week
    oncall(MEERA, 2, "2026-11-16T04:30:00Z", "2026-11-30T04:30:00Z"),  # 168 h of the week
]
ONCALLS_BAD = [
    {**oncall(DEV, 1, "2026-11-25T10:00:00Z", "2026-11-25T12:00:00Z"), "user": {"type": "user_reference"}},
    oncall(MEERA, 1, "2026-11-26T12:00:00Z", "2026-11-26T11:00:00Z"),
]


def incident_ref(iid: str) -> dict:
    return {"id": iid, "type": "incident_reference", "summary": f"[#1] {iid}", "self": f"{API}/incidents/{iid}",
            "html_url": f"{WEB}/incidents/{iid}"}


def entry(lid: str, kind: str, iid: str, at: str, assignees=None, **extra) -> dict:
    out = {"id": lid, "type": kind, "summary": f"{kind} {lid}", "self": f"{API}/log_entries/{lid}",
           "html_url": f"{WEB}/incidents/{iid}/log_entries/{lid}", "created_at": at,
           "agent": {"id": "PSVC", "type": "service_reference", "summary": "trading-api"},
           "channel": {"type": "auto"}, "incident": incident_ref(iid),
           "teams": [{"id": "PT1", "type": "team_reference", "summary": "Trading Platform"}], "contexts": []}
    if assignees is not None:
        out["assignees"] = assignees
    out.update(extra)
    return out


ASSIGNMENTS = [
    entry("L1", "assign_log_entry", "I1", "2026-11-23T06:00:00Z", [ASHA]),
    entry("L2", "escalate_log_entry", "I1", "2026-11-23T06:10:00Z", [MEERA]),
    entry("L3", "assign_log_entry", "I2", "2026-11-22T20:00:00Z", [DEV]),
    entry("L4", "assign_log_entry", "I3", "2026-11-25T10:00:00Z", [ASHA]),
    entry("L5", "assign_log_entry", "I3", "2026-11-25T10:05:00Z", [ASHA]),  # again: the first one counts
    entry("L6", "assign_log_entry", "I4", "2026-11-29T19:00:00Z", [ASHA]),  # the next week
    entry("L7", "assign_log_entry", "I5", "2026-11-20T12:00:00Z", [DEV]),   # week 47
    entry("L8", "assign_log_entry", "I5", "2026-11-23T08:00:00Z", [ASHA]),  # reassigned in week 48
    entry("N1", "notify_log_entry", "I1", "2026-11-23T06:00:01Z", user=ASHA),  # not an assignment
]
ASSIGNMENTS_BAD = {
    "B1": entry("B1", "assign_log_entry", "I6", "2026-11-24T09:00:00Z", []),
    "B2": entry("B2", "escalate_log_entry", "I6", "2026-11-24T09:01:00Z", [{"type": "user_reference"}]),
    "B3": {**entry("B3", "assign_log_entry", "I6", "2026-11-24T09:02:00Z", [ASHA]), "incident": None},
    "B4": entry("B4", "assign_log_entry", "I7", "2026-11-24T09:03:00Z", [DEV, DEV]),
}
ASSIGNMENTS_BAD_REASONS = {
    "B1": "assign_log_entry without assignees",
    "B2": "escalate_log_entry with an assignee without an id",
    "B3": "assign_log_entry without incident.id",
    "B4|PUB": "log entry B4 assigns user PUB twice",
}
