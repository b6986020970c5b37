"""Who was on call, and which incidents were assigned to whom, from the PagerDuty REST
API v2, into ``raw_oncall_spans`` and ``raw_incident_assignments`` (the team metric
"on-call incidents per week", per responder and for the team: :mod:`kaizen.team`).

Wire formats (PagerDuty's published OpenAPI, github.com/PagerDuty/api-schema):

- ``GET /oncalls?since&until&time_zone=UTC`` — the on-call entries overlapping the
  window: ``user``, ``escalation_policy``, ``escalation_level``, ``schedule`` (null for a
  permanent on-call), ``start``/``end`` (null: a permanent on-call, on call throughout).
  Classic pagination (``limit``/``offset`` → ``more``). Optional filter: the setting
  ``KAIZEN_ONCALL_ESCALATION_POLICY_IDS`` (comma-separated → ``escalation_policy_ids[]``).
- ``GET /log_entries?since&until&time_zone=UTC`` — the account's log entries; the
  ``assign_log_entry`` (assigned on trigger, or reassigned) and ``escalate_log_entry``
  (escalated to the next level) entries carry ``assignees`` (user references) and
  ``incident``. Entries of other types are not assignments and are skipped (not
  counted). Optional filter: ``KAIZEN_PAGERDUTY_TEAM_IDS`` (→ ``team_ids[]``).
  An incident's own ``assignments`` field is not used: PagerDuty empties it when the
  incident resolves, so only the log keeps every assignment.

Decisions (see tests/test_team_oncall.py):

- An on-call entry is clipped to the extract's window [start, end) and cut at IST
  midnights and at the daily review windows' edges (16:00 IST on trading days): every
  stored piece lies in one IST day and one review window, so a range extract and the
  day-by-day extracts store the same pieces, and each window's load replaces exactly
  its own (slice: ``start_at`` in the window). A null start or end is the window's
  edge. The schedule is a plan: pieces are stored whether the window is past or not.
- Quarantined on-call entries (source ``oncall_spans``): no user id, no escalation
  policy id, an escalation level that is not a whole number ≥ 1, an unparseable start
  or end, an end before the start. Each window the entry overlaps quarantines it (as
  each day's extract meets it); one whose times cannot place it, every window.
- Assignments: one row per (log entry, assignee), placed by the entry's ``created_at``
  (slice: ``assigned_at`` in the window). Quarantined (source ``assignments``): no
  entry id, no incident id, no or unparseable ``created_at`` (every window of the
  extract meets it), no assignee or an assignee without an id, a time after the
  extraction's as-of (:func:`kaizen.sources.base.future_reason`), the same entry and
  user twice.
- ``extracted`` counts the stored pieces and assignment rows plus the quarantined
  records, so extracted = loaded + quarantined as for every source.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config
from kaizen.period import Period, midnight_utc, window_day, windows_utc
from kaizen.sources import pagerduty
from kaizen.sources.base import (
    ExtractResult,
    Reject,
    TableLoad,
    extraction_clock,
    future_reason,
    iso_z,
    load,
    read_ts,
)
from kaizen.sources.github import window_days

log = logging.getLogger(__name__)

ONCALL_SPAN = timedelta(days=90)  # since..until of one /oncalls listing
LOG_SPAN = timedelta(days=7)  # one /log_entries listing: classic pagination stops at 10,000 records
ASSIGNING = ("assign_log_entry", "escalate_log_entry")
ENV_POLICIES = "KAIZEN_ONCALL_ESCALATION_POLICY_IDS"
ENV_TEAMS = "KAIZEN_PAGERDUTY_TEAM_IDS"

SPANS, ASSIGNMENTS = "oncall_spans", "assignments"  # quarantine / coverage source names

# A transport returns {"oncalls": [...], "log_entries": [...]} for the window [start, end).
Transport = Callable[[datetime, datetime], dict]


def _ids(name: str) -> list[str]:
    return [p.strip() for p in os.environ.get(name, "").split(",") if p.strip()]


def _ts(value) -> datetime | None:
    t, reason = read_ts(value, "")
    return None if reason else t


def _overlaps(entry: dict, start: datetime, end: datetime) -> bool:
    """Whether an on-call entry overlaps [start, end), as PagerDuty answers ``since``/``until``
    (null start/end: open-ended). An entry whose times cannot be read is returned."""
    try:
        a, b = _parse_bound(entry.get("start")), _parse_bound(entry.get("end"))
    except ValueError:
        return True
    if a is not None and b is not None and b < a:
        a, b = b, a
    return (a is None or a < end) and (b is None or b > start)


def _parse_bound(value) -> datetime | None:
    if value in (None, ""):
        return None
    t, reason = read_ts(value, "time")
    if reason:
        raise ValueError(reason)
    return t


def _inside(entry: dict, start: datetime, end: datetime) -> bool:
    t = _ts(entry.get("created_at"))
    return t is None or start <= t < end


def http_transport(api_url: str, token: str, *, page_limit: int = pagerduty.PAGE_LIMIT, **client_kw) -> Transport:
    client = pagerduty.client_for(api_url, token, **client_kw)

    def paged(path: str, key: str, params: dict) -> list[dict]:
        return pagerduty.paged(client, path, key, params, page_limit=page_limit)

    def fetch(start: datetime, end: datetime) -> dict:
        oncalls, seen = [], set()
        policies = _ids(ENV_POLICIES)
        for since, until in pagerduty.spans(start, end, ONCALL_SPAN):
            params = {"since": iso_z(since), "until": iso_z(until), "time_zone": "UTC"}
            if policies:
                params["escalation_policy_ids[]"] = policies
            for entry in paged("/oncalls", "oncalls", params):
                key = json.dumps(entry, sort_keys=True)  # an entry overlapping two listings comes twice
                if key not in seen:
                    seen.add(key)
                    oncalls.append(entry)
        entries = []
        teams = _ids(ENV_TEAMS)
        for since, until in pagerduty.spans(start, end, LOG_SPAN):
            params = {"since": iso_z(since), "until": iso_z(until), "time_zone": "UTC"}
            if teams:
                params["team_ids[]"] = teams
            entries += [e for e in paged("/log_entries", "log_entries", params)
                        if e.get("type") in ASSIGNING and (_ts(e.get("created_at")) is None
                                                            or since <= _ts(e.get("created_at")) < until)]
        return {"oncalls": oncalls, "log_entries": entries}

    return fetch


def demo_transport(demo_dir: Path | None = None) -> Transport:
    """The demo's ``pagerduty/oncalls.json`` and ``pagerduty/log_entries.json`` (bodies of
    ``GET /oncalls`` and ``GET /log_entries``), answered for a window as the API would.
    A demo folder without them (written before the team data existed, or by hand for a
    test) has no on-call data: None, and nothing is loaded (not configured)."""
    root = Path(demo_dir or config.demo_dir()) / "pagerduty"

    def read(name: str, key: str) -> list[dict]:
        doc = json.loads((root / name).read_text(encoding="utf-8"))
        return list(doc.get(key) or []) if isinstance(doc, dict) else list(doc)

    def fetch(start: datetime, end: datetime) -> dict | None:
        if not (root / "oncalls.json").exists() or not (root / "log_entries.json").exists():
            log.info("demo folder %s has no pagerduty/oncalls.json and log_entries.json: no on-call data", root.parent)
            return None
        oncalls = [e for e in read("oncalls.json", "oncalls") if _overlaps(e, start, end)]
        entries = [e for e in read("log_entries.json", "log_entries")
                   if e.get("type") in ASSIGNING and _inside(e, start, end)]
        return {"oncalls": oncalls, "log_entries": entries}

    return fetch


def live_transport() -> Transport:
    return http_transport(*pagerduty.connection_settings())


def default_transport() -> Transport:
    return demo_transport() if config.sources_mode() == "demo" else live_transport()


# ---------------------------------------------------------------- on-call pieces
def _cuts(start: datetime, end: datetime) -> list[datetime]:
    """The instants inside (start, end) where a piece ends: IST midnights and the review
    windows' edges."""
    cuts = {Period.day(d).closes_utc for d in window_days(start, end)}
    d = cal.ist_date(start) + timedelta(days=1)
    while midnight_utc(d) < end:
        cuts.add(midnight_utc(d))
        d += timedelta(days=1)
    return sorted(c for c in cuts if start < c < end)


def pieces(a: datetime, b: datetime, cuts: list[datetime]) -> list[tuple[datetime, datetime]]:
    """[a, b) cut at ``cuts`` (sorted)."""
    import bisect

    out, lo = [], a
    for c in cuts[bisect.bisect_right(cuts, a):]:
        if c >= b:
            break
        out.append((lo, c))
        lo = c
    out.append((lo, b))
    return out


def _ref(obj) -> dict:
    return obj if isinstance(obj, dict) else {}


def _check_oncall(entry: dict) -> tuple[dict | None, str | None]:
    """(the entry's fields with parsed bounds, None) or (None, the reason it is refused)."""
    user, policy, schedule = _ref(entry.get("user")), _ref(entry.get("escalation_policy")), entry.get("schedule")
    if not user.get("id"):
        return None, "on-call entry without user.id"
    if not policy.get("id"):
        return None, "on-call entry without escalation_policy.id"
    level = entry.get("escalation_level")
    if isinstance(level, bool) or not isinstance(level, int) or level < 1:
        return None, f"escalation_level {level!r} is not a whole number ≥ 1"
    bounds = []
    for name in ("start", "end"):
        try:
            bounds.append(_parse_bound(entry.get(name)))
        except ValueError:
            return None, f"unparseable {name} {entry.get(name)!r}"
    a, b = bounds
    if a is not None and b is not None and b < a:
        return None, f"on-call ends {iso_z(b)} before it starts {iso_z(a)}"
    schedule = _ref(schedule)
    return {
        "user_id": str(user["id"]),
        "user_name": str(user.get("summary") or user["id"]),
        "escalation_policy_id": str(policy["id"]),
        "escalation_policy": policy.get("summary"),
        "escalation_level": level,
        "schedule_id": str(schedule["id"]) if schedule.get("id") else None,
        "schedule": schedule.get("summary") if schedule.get("id") else None,
        "start": a,
        "end": b,
    }, None


def _reject_days(entry: dict, start: datetime, end: datetime) -> list[date]:
    """The windows of [start, end) whose extract meets a refused on-call entry: those it
    overlaps as far as its readable times say; every window when they say nothing."""
    times = [t for t in (_ts(entry.get("start")), _ts(entry.get("end"))) if t is not None]
    days = window_days(start, end)
    if len(times) == 2:
        a, b = min(times), max(times)
        return [d for d in days if Period.day(d).opens_utc <= b and Period.day(d).closes_utc > a] or days[:1]
    if len(times) == 1 and start <= times[0] < end:
        return [window_day(times[0])]
    return days


def parse_oncalls(entries: list[dict], start: datetime, end: datetime) -> tuple[int, list[dict], list[Reject]]:
    """(extracted, rows, rejects) of the on-call entries overlapping [start, end)."""
    cuts = _cuts(start, end)
    rows, rejects, seen = [], [], set()
    for entry in entries:
        fields, reason = _check_oncall(entry)
        if fields is None:
            key = "|".join(str(_ref(entry.get(k)).get("id")) for k in ("escalation_policy", "user"))
            rejects += [Reject(SPANS, key, reason, entry, day=d) for d in _reject_days(entry, start, end)]
            continue
        a = max(fields.pop("start") or start, start)
        b = min(fields.pop("end") or end, end)
        for lo, hi in pieces(a, b, cuts) if a < b else []:
            key = "|".join([fields["escalation_policy_id"], str(fields["escalation_level"]),
                            fields["schedule_id"] or "-", fields["user_id"], iso_z(lo)])
            if key in seen:  # the same on-call listed twice: one piece
                continue
            seen.add(key)
            rows.append({"span_key": key, **fields, "start_at": lo, "end_at": hi, "ist_day": cal.ist_date(lo),
                         "minutes": (hi - lo).total_seconds() / 60.0})
    return len(rows) + len(rejects), rows, rejects


# ---------------------------------------------------------------- assignments
def parse_assignments(entries: list[dict], start: datetime, end: datetime, *, as_of: datetime | None = None
                      ) -> tuple[int, list[dict], list[Reject]]:
    """(extracted, rows, rejects) of the assign/escalate log entries created in [start, end)
    (an entry without a readable time: every window of the extract)."""
    as_of = as_of or extraction_clock()
    rows, rejects, seen = [], [], set()
    every = window_days(start, end)
    for entry in entries:
        if entry.get("type") not in ASSIGNING:
            continue
        eid = entry.get("id")
        at, reason = read_ts(entry.get("created_at"), "created_at")
        if at is None and reason is None:
            reason = "missing created_at"
        days = every if at is None else [window_day(at)]
        incident = _ref(entry.get("incident")).get("id")
        assignees = entry.get("assignees") if isinstance(entry.get("assignees"), list) else []
        if reason is None and not eid:
            reason = "missing log entry id"
        if reason is None and not incident:
            reason = f"{entry.get('type')} without incident.id"
        if reason is None and not assignees:
            reason = f"{entry.get('type')} without assignees"
        if reason is None and any(not _ref(u).get("id") for u in assignees):
            reason = f"{entry.get('type')} with an assignee without an id"
        if reason is None:
            reason = future_reason("created_at", at, as_of, "an assignment")
        if reason is not None:
            rejects += [Reject(ASSIGNMENTS, str(eid), reason, entry, day=d) for d in days]
            continue
        for user in assignees:
            key = f"{eid}|{user['id']}"
            if key in seen:
                rejects.append(Reject(ASSIGNMENTS, key, f"log entry {eid} assigns user {user['id']} twice",
                                      entry, day=days[0]))
                continue
            seen.add(key)
            rows.append({"assignment_key": key, "log_entry_id": str(eid), "incident_id": str(incident),
                         "user_id": str(user["id"]), "user_name": str(user.get("summary") or user["id"]),
                         "type": entry["type"], "assigned_at": at, "ist_day": cal.ist_date(at)})
    return len(rows) + len(rejects), rows, rejects


# ---------------------------------------------------------------- loads
def prepare_window(start: datetime, end: datetime, transport: Transport | None = None, *,
                   as_of: datetime | None = None) -> list[TableLoad]:
    """The instants [start, end) in one fetch, validated: what to load (nothing when the
    transport has no on-call data at all: a demo folder without it)."""
    raw = (transport or default_transport())(start, end)
    if raw is None:
        return []
    window = {"start": start, "end": end}
    return [
        TableLoad(SPANS, "raw_oncall_spans", "start_at >= :start and start_at < :end", window,
                  *parse_oncalls(raw.get("oncalls") or [], start, end), key="span_key"),
        TableLoad(ASSIGNMENTS, "raw_incident_assignments", "assigned_at >= :start and assigned_at < :end", window,
                  *parse_assignments(raw.get("log_entries") or [], start, end, as_of=as_of), key="assignment_key"),
    ]


def prepare_range(first: date, last: date, transport: Transport | None = None, *,
                  as_of: datetime | None = None) -> list[TableLoad]:
    """The trading days ``first``..``last`` in one fetch: the same rows and quarantine as
    extracting them one at a time."""
    return prepare_window(*windows_utc(first, last), transport, as_of=as_of)


def extract_range(first: date, last: date, engine: sa.Engine, run_id: str,
                  transport: Transport | None = None, *, as_of: datetime | None = None) -> list[ExtractResult]:
    return load(engine, (first, last), run_id, prepare_range(first, last, transport, as_of=as_of))


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None, *,
            as_of: datetime | None = None) -> list[ExtractResult]:
    return extract_range(day, day, engine, run_id, transport, as_of=as_of)
