"""Post-mortem action items and published post-mortems from the GitHub REST API
(``GET /repos/{owner}/{repo}/issues``), into ``raw_action_items``.

Conventions (docs/contracts.md, "Action items"):
- An **action item** is an issue labelled ``postmortem-action`` with exactly one
  priority label ``P0``..``P3`` and a body line ``Incident: <PagerDuty incident id>``.
  Its SLA due time is created + 7 days (P0), 30 days (P1), 90 days (P2); P3 is best
  effort (``due_at`` NULL). It is completed when the issue is closed.
- A **post-mortem** is an issue labelled ``postmortem`` with the same ``Incident:``
  line; its ``created_at`` is the publication time.
- Pull requests (the issues endpoint lists them too, with a ``pull_request`` key) are
  not issues of this source and are skipped.

Day slice. Issues change after they are created (closed, re-labelled, re-assigned),
so the table holds each issue's *latest known state*. The extract of trading day D
takes every labelled issue whose ``updated_at`` falls in D's review window
[previous trading day 16:00 IST, D 16:00 IST) — the API is asked for
``since=<window start>`` and issues updated after the window end are left to the
later window's extract — and replaces the rows of exactly those issue numbers
(valid ones loaded, invalid ones removed and quarantined). Every update of an issue
is therefore processed by exactly one daily extract; re-extracting a day is
idempotent, and re-extracting an old day never rolls an issue back to an older state
(an issue updated since is not in that day's slice any more). An issue whose
label is removed keeps its last loaded row. An issue without a readable
``updated_at`` is in every window (and quarantined by each extract).

A range of trading days (:func:`extract_range`) is one listing and one load that leave
exactly what extracting the days one at a time in order leaves: each window is parsed
as its own extract would, then a later window's copy of an issue replaces an earlier
window's (the replaced copy is neither loaded nor quarantined, nor counted as
extracted).

Quarantined: missing or conflicting priority label on an action item, closed before
created, no ``Incident:`` line or a reference that is not a PagerDuty incident id,
both labels at once, unreadable number/timestamps/state.
"""

from __future__ import annotations

import heapq
import json
import logging
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config
from kaizen.period import window_day, windows_utc
from kaizen.sources import github
from kaizen.sources.base import ExtractResult, Reject, SourceError, TableLoad, iso_z, load, parse_ts

log = logging.getLogger(__name__)

SOURCE = "action_items"
TABLE = "raw_action_items"
ACTION_LABEL = "postmortem-action"
POSTMORTEM_LABEL = "postmortem"
LABELS = (ACTION_LABEL, POSTMORTEM_LABEL)
PRIORITIES = ("P0", "P1", "P2", "P3")
SLA_DAYS = {"P0": 7, "P1": 30, "P2": 90, "P3": None}  # P3: best effort, no due date
INCIDENT_LINE = re.compile(r"^[ \t>*_-]*incident[*_ \t]*:[*_ \t]*(\S*)", re.IGNORECASE | re.MULTILINE)
INCIDENT_ID = re.compile(r"^[A-Z0-9]{4,20}$")  # PagerDuty object ids: P1234AB, Q0ABC…

# A transport returns the raw issue objects (both labels, pull requests included as
# the API lists them) updated at or after ``since``, as they stand when it is asked.
Transport = Callable[[datetime], list[dict]]


def due_at(priority: str | None, created: datetime) -> datetime | None:
    """SLA due time of an action item (P0 +7 d, P1 +30 d, P2 +90 d; P3 None)."""
    days = SLA_DAYS.get(priority or "")
    return created + timedelta(days=days) if days else None


def _updated(issue: dict) -> datetime | None:
    try:
        return parse_ts(issue.get("updated_at"))
    except ValueError:
        return None


def label_names(issue: dict) -> list[str]:
    """An issue's label names (also :mod:`kaizen.goals.backlog`'s)."""
    out = []
    for lab in issue.get("labels") or []:
        name = lab.get("name") if isinstance(lab, dict) else lab  # objects, or bare names
        if isinstance(name, str):
            out.append(name.strip())
    return out


# ---------------------------------------------------------------- transports


def http_transport(api_url: str, token: str, repo: str, *, per_page: int = 100, **client_kw) -> Transport:
    client = github.client_for(api_url, token, **client_kw)

    def fetch(since: datetime) -> list[dict]:
        out: list[dict] = []
        for label in LABELS:  # GitHub ANDs comma-separated labels: one listing per label
            params = {"labels": label, "state": "all", "since": iso_z(since), "per_page": per_page}
            for page in github._paged(client, f"/repos/{repo}/issues", params):
                out.extend(page)
        return out

    return fetch


def demo_transport(demo_dir: Path | None = None) -> Transport:
    path = Path(demo_dir or config.demo_dir()) / "github" / "issues.json"

    def fetch(since: datetime) -> list[dict]:
        if not path.exists():
            raise SourceError(f"demo file {path} is missing: run `python -m kaizen demo-data`.")
        issues = json.loads(path.read_text())
        now = config.demo_now()  # as the API would answer then (a rehearsal's clock)
        if now is not None:
            issues = [a for a in (issue_as_of(i, now) for i in issues) if a is not None]
        out = []
        for label in LABELS:  # what the two API listings return
            for i in issues:
                upd = _updated(i)
                if label in label_names(i) and (upd is None or upd >= since):
                    out.append(i)
        return out

    return fetch


def issue_as_of(issue: dict, at: datetime, *, rewind_updated_at: bool = True) -> dict | None:
    """A demo issue as the API would have answered at ``at``: not yet created → None;
    closed later → still open (the demo's issues have two events, created and closed),
    with ``updated_at`` its creation unless ``rewind_updated_at`` is false (the backlog's
    demo keeps it). A record whose times cannot be read is left as it is (the parse
    quarantines it). Also :mod:`kaizen.goals.backlog`'s."""
    try:
        created = parse_ts(issue.get("created_at"))
        closed = parse_ts(issue.get("closed_at"))
    except ValueError:
        return issue
    if created is not None and created >= at:
        return None
    if closed is not None and closed >= at:
        reopened = {**issue, "state": "open", "closed_at": None, "state_reason": None}
        return {**reopened, "updated_at": issue["created_at"]} if rewind_updated_at else reopened
    return issue


def live_transport() -> Transport:
    host, token, repo = github.connection_settings()
    return http_transport(host, token, repo)


def default_transport() -> Transport:
    return demo_transport() if config.sources_mode() == "demo" else live_transport()


# ---------------------------------------------------------------- parsing


def _incident_ref(body) -> tuple[str | None, str | None]:
    m = INCIDENT_LINE.search(body or "") if isinstance(body, str) else None
    if m is None:
        return None, "no 'Incident: <PagerDuty incident id>' line in the issue body"
    ref = m.group(1).strip("*_`.,;()[]")
    if not INCIDENT_ID.match(ref):
        return None, f"incident reference {ref!r} is not a PagerDuty incident id (e.g. 'Incident: P1A2B3C')"
    return ref, None


def _check(issue: dict):
    num = issue.get("number")
    if not isinstance(num, int) or isinstance(num, bool):
        return None, f"issue number {num!r} is not an integer"
    labels = label_names(issue)
    kinds = [
        k for k, lab in (("action_item", ACTION_LABEL), ("postmortem", POSTMORTEM_LABEL)) if lab in labels
    ]
    if len(kinds) != 1:
        return None, f"labelled both {POSTMORTEM_LABEL!r} and {ACTION_LABEL!r}" if kinds else "no known label"
    kind = kinds[0]
    try:
        created = parse_ts(issue.get("created_at"))
        closed = parse_ts(issue.get("closed_at")) if issue.get("closed_at") else None
    except ValueError as exc:
        return None, f"unparseable timestamp ({exc})"
    updated = _updated(issue)
    if created is None:
        return None, "missing created_at"
    if updated is None:
        return None, f"missing or unparseable updated_at {issue.get('updated_at')!r}"
    state = issue.get("state")
    if state not in ("open", "closed"):
        return None, f"unknown state {state!r}"
    if state == "closed" and closed is None:
        return None, "state closed without closed_at"
    if closed is not None and closed < created:
        return None, f"closed {closed.isoformat()} before created {created.isoformat()}"
    incident_id, reason = _incident_ref(issue.get("body"))
    if reason:
        return None, reason
    priority = None
    if kind == "action_item":
        prios = sorted({lab.upper() for lab in labels if lab.upper() in PRIORITIES})
        if not prios:
            return None, "missing priority label (one of P0, P1, P2, P3)"
        if len(prios) > 1:
            return None, f"conflicting priority labels {', '.join(prios)}"
        priority = prios[0]
    assignees = [a for a in issue.get("assignees") or [] if isinstance(a, dict) and a.get("login")]
    owner = assignees[0]["login"] if assignees else ((issue.get("assignee") or {}).get("login") or None)
    return {
        "issue_number": num,
        "kind": kind,
        "title": issue.get("title") or "",
        "priority": priority,
        "incident_id": incident_id,
        "owner": owner,
        "state": state,
        "state_reason": issue.get("state_reason"),
        "created_at": created,
        "updated_at": updated,
        "closed_at": closed if state == "closed" else None,  # a reopened issue is not completed
        "due_at": due_at(priority, created) if kind == "action_item" else None,
        "html_url": issue.get("html_url"),
    }, None


def _parse_window(inside: list[dict], day: date | None = None):
    """(extracted, rows, rejects, issue numbers of the slice) of one review window's
    issues, in listing order."""
    kept: list[dict] = []
    seen: dict = {}
    for i in inside:
        key = i.get("number")
        if key in seen and isinstance(key, int) and seen[key] == i:
            continue  # the same issue from the other label's listing (or a page shift)
        seen.setdefault(key, i)
        kept.append(i)
    rows, rejects, loaded, numbers = [], [], set(), set()
    for i in kept:
        num = i.get("number")
        if isinstance(num, int) and not isinstance(num, bool):
            numbers.add(num)
        row, reason = _check(i)
        if row is None:
            rejects.append(Reject(SOURCE, str(num), reason, i, day=day))
        elif row["issue_number"] in loaded:
            rejects.append(
                Reject(SOURCE, str(num), f"duplicate issue number {num} (the first was loaded)", i, day=day)
            )
        else:
            loaded.add(row["issue_number"])
            rows.append(row)
    return len(kept), rows, rejects, numbers


def parse(issues: list[dict], start: datetime, end: datetime):
    """(extracted, rows, rejects, issue numbers of the slice) of the issues updated in
    [start, end) (the review windows of one or more trading days).

    Each trading day's window is parsed as its own extract would (an issue without a
    readable ``updated_at`` is in every window, and quarantined by each), then the days
    are played in order: a later window's issue replaces the row an earlier window
    loaded under the same number. The slice numbers are those of all the windows."""
    per_day: dict[date, list[tuple[int, dict]]] = {}
    undated: list[tuple[int, dict]] = []
    for n, i in enumerate(issues):
        if "pull_request" in i:
            continue  # a pull request, not an issue
        upd = _updated(i)
        if upd is None:
            undated.append((n, i))
        elif start <= upd < end:
            per_day.setdefault(window_day(upd), []).append((n, i))
        # else: updated in another window: that window's extract owns it
    days = sorted(per_day)
    if undated:  # every window of [start, end)
        days = cal.trading_days(window_day(start), window_day(end - timedelta(microseconds=1)))
    replay = github.DayReplay(SOURCE, TABLE, "issue_number")
    extracted, rejects, numbers = 0, [], set()
    for day in days:
        inside = [i for _, i in heapq.merge(per_day.get(day, []), undated, key=lambda p: p[0])]
        n, rows, rej, nums = _parse_window(inside, day)
        replay.day(day, rows, drop_keys=nums)
        extracted += n
        rejects += rej
        numbers |= nums
    if replay.superseded:
        log.info("%s: %d issue(s) loaded by one window of the range were replaced by a later window's "
                 "copy (as extracting the days one at a time would)", SOURCE, replay.superseded)
    return extracted - replay.superseded, replay.rows(), rejects + replay.rejects, sorted(numbers)


def prepare_range(first: date, last: date, transport: Transport | None = None) -> list[TableLoad]:
    """The trading days ``first``..``last`` in one fetch, validated: the same rows and
    quarantine as extracting them one at a time in order."""
    return prepare_window(*windows_utc(first, last), transport)


def prepare_window(start: datetime, end: datetime, transport: Transport | None = None) -> list[TableLoad]:
    """The instants [start, end) in one fetch, validated: what to load."""
    raw = (transport or default_transport())(start)
    n, rows, rejects, numbers = parse(raw, start, end)
    params = {f"n{k}": v for k, v in enumerate(numbers)}
    where = f"issue_number in ({', '.join(':' + p for p in params)})" if params else "1 = 0"
    return [TableLoad(SOURCE, TABLE, where, params, n, rows, rejects, covers=(start, end))]


def extract_range(
    first: date, last: date, engine: sa.Engine, run_id: str, transport: Transport | None = None
) -> list[ExtractResult]:
    """The trading days ``first``..``last`` in one fetch and one load."""
    return load(engine, (first, last), run_id, prepare_range(first, last, transport))


def extract(
    day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None
) -> list[ExtractResult]:
    return extract_range(day, day, engine, run_id, transport)
