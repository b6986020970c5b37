"""Post-mortem drafts for resolved P0/P1 incidents (the source document's "Blameless
Post-Mortems": after every P0 and P1 incident, within 48 hours of resolution).

``draft_postmortems(engine, first_day, last_day, out_dir)`` writes one Markdown draft
per P0/P1 incident resolved in [first_day 00:00 IST, last_day + 1 00:00 IST) to
``<out_dir>/post-mortems/YYYYMMDD_incident_name.md`` from
``include/templates/postmortem.md.j2``, pre-filled from the warehouse:

- Date = IST date of the trigger; Incident ID = ``INC-<IST year of trigger>-<PagerDuty
  incident number, ≥ 3 digits>``; Duration = resolved − triggered;
- the incident window = [impact start (PagerDuty custom field) or, without one, the
  trigger, resolution]; Downtime = probe minutes down whose sample interval
  (ts − 60 s, ts] overlaps the window (a minute counts down when any instance was
  down, as for uptime); Trades Affected = trades with entry or exit inside the window,
  Revenue Impact = their net P&L;
- Timeline = the incident's PagerDuty log entries in IST (notification entries left
  out), plus the impact start; without log entries, the incident's own trigger,
  acknowledgement and resolution times;
- Action Items = the incident's ``postmortem-action`` issues (raw_action_items);
- Due = resolution + 48 h; Review Date = IST trigger date + 1 calendar month.

File names: ``YYYYMMDD`` (IST trigger date) + ``_`` + the title slugified (ASCII,
lower case, ``_`` between words, ≤ 60 characters). When two P0/P1 incidents of the same
date have the same slug, the later-triggered ones get ``_<incident number>`` appended.

:func:`drafts` renders the same drafts without writing them: the hook through which
:mod:`kaizen.delivery.github_prs` opens one pull request per incident (when
``KAIZEN_POSTMORTEM_REPO`` is set), and :func:`drafts_for_period` gives the weekly
review each draft's pull request recorded in ``postmortem_prs``.

Idempotent and safe for human edits: the first line of a draft is
``<!-- kaizen:draft incident=<id> sha256=<hash of the rest of the file> -->``. A
re-run rewrites a file only while that hash still matches (untouched draft), and
writes nothing when the bytes would not change; a file whose marker is missing or whose
body no longer matches was edited by a person and is left alone (status ``skipped``).
"""

from __future__ import annotations

import calendar as pycal
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.kpis.measures import POSTMORTEM_DUE  # the 48 h rule the KPI postmortems_on_time_pct measures
from kaizen.period import midnight_utc
from kaizen.reports import render

TEMPLATE = "postmortem.md.j2"
DIR_NAME = "post-mortems"
PRIORITIES = ("P0", "P1")
SLUG_MAX = 60
MARKER = re.compile(r"^<!-- kaizen:draft incident=(\S+) sha256=([0-9a-f]{64}) -->$")
LOG_LABELS = {
    "trigger_log_entry": "Alert fired",
    "acknowledge_log_entry": "Acknowledged",
    "annotate_log_entry": "Note",
    "escalate_log_entry": "Escalated",
    "assign_log_entry": "Assigned",
    "delegate_log_entry": "Reassigned",
    "snooze_log_entry": "Snoozed",
    "unacknowledge_log_entry": "Acknowledgement timed out",
    "priority_change_log_entry": "Priority changed",
    "urgency_change_log_entry": "Urgency changed",
    "resolve_log_entry": "Resolved",
}
SKIP_LOG_TYPES = {"notify_log_entry"}  # one per page/SMS/push: noise in a timeline


def slugify(text: str, limit: int = SLUG_MAX) -> str:
    """ASCII, lower case, words joined by ``_``, at most ``limit`` characters."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    slug = slug[:limit].rstrip("_")
    return slug or "incident"


def incident_ref(number: int, triggered: datetime) -> str:
    """``INC-YYYY-###``: IST year of the trigger and the PagerDuty incident number."""
    return f"INC-{cal.ist_date(triggered).year}-{int(number):03d}"


def add_month(d: date) -> date:
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return date(y, m, min(d.day, pycal.monthrange(y, m)[1]))


def _ist(ts: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return ts.astimezone(cal.IST).strftime(fmt)


def _py(ts) -> datetime | None:
    """A pandas/DB timestamp → aware UTC datetime (None for NaT/NULL)."""
    if ts is None:
        return None
    try:
        import pandas as pd

        if pd.isna(ts):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(ts, "to_pydatetime"):
        ts = ts.to_pydatetime()
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def marker_line(incident_id: str, body: str) -> str:
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return f"<!-- kaizen:draft incident={incident_id} sha256={digest} -->"


def is_untouched_draft(text: str) -> bool:
    """True when ``text`` is a draft this module wrote and nobody has edited since."""
    first, sep, body = text.partition("\n")
    m = MARKER.match(first)
    return bool(m and sep and hashlib.sha256(body.encode("utf-8")).hexdigest() == m.group(2))


# ---------------------------------------------------------------- reading
def _incidents(conn, start: datetime, end: datetime):
    return warehouse.read_frame(
        conn,
        "select incident_id, incident_number, title, service, priority, triggered_at, acknowledged_at, "
        "resolved_at, impact_start_at, caused_by_deployment_id from raw_incidents "
        "where priority in ('P0', 'P1') and resolved_at >= :start and resolved_at < :end "
        "order by resolved_at, incident_id",
        {"start": start, "end": end},
        ts_cols=("triggered_at", "acknowledged_at", "resolved_at", "impact_start_at"),
    ).to_dict("records")


def _file_name(conn, inc: dict) -> str:
    """``YYYYMMDD_slug.md``; same-date same-slug P0/P1 incidents after the first get
    ``_<number>`` (decided from every such incident in the warehouse, so stable)."""
    trig = _py(inc["triggered_at"])
    day = cal.ist_date(trig)
    slug = slugify(inc["title"])
    lo, hi = midnight_utc(day), midnight_utc(day + timedelta(days=1))
    same = warehouse.read_frame(
        conn,
        "select incident_id, title, triggered_at from raw_incidents where priority in ('P0', 'P1') "
        "and triggered_at >= :lo and triggered_at < :hi order by triggered_at, incident_id",
        {"lo": lo, "hi": hi},
    ).to_dict("records")
    firsts = [r["incident_id"] for r in same if slugify(r["title"]) == slug]
    name = f"{day:%Y%m%d}_{slug}"
    if firsts and firsts[0] != inc["incident_id"]:
        name += f"_{int(inc['incident_number'])}"
    return name + ".md"


def _timeline(conn, inc: dict, trig_day: date) -> list[dict]:
    def when(ts: datetime) -> str:
        return _ist(ts, "%H:%M") if cal.ist_date(ts) == trig_day else _ist(ts)

    entries = warehouse.read_frame(
        conn,
        "select log_entry_id, type, created_at, summary from raw_incident_log_entries "
        "where incident_id = :id order by created_at, log_entry_id",
        {"id": inc["incident_id"]},
        ts_cols=("created_at",),
    ).to_dict("records")
    events: list[tuple[datetime, int, str, str, str | None]] = []
    impact = _py(inc["impact_start_at"])
    if impact is not None:
        events.append((impact, 0, "", "Customer impact began", None))
    entries = [e for e in entries if e["type"] not in SKIP_LOG_TYPES]
    if entries:
        for e in entries:
            label = (
                LOG_LABELS.get(e["type"])
                or str(e["type"]).removesuffix("_log_entry").replace("_", " ").capitalize()
            )
            summary = e["summary"] if isinstance(e["summary"], str) and e["summary"].strip() else None
            events.append((_py(e["created_at"]), 1, str(e["log_entry_id"]), label, summary))
    else:  # no log entries landed: the incident's own times
        for i, (col, label) in enumerate(
            (
                ("triggered_at", "Alert fired"),
                ("acknowledged_at", "Acknowledged"),
                ("resolved_at", "Resolved"),
            )
        ):
            ts = _py(inc[col])
            if ts is not None:
                events.append((ts, 1, str(i), label, None))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return [{"time": when(ts), "label": label, "text": text} for ts, _o, _k, label, text in events]


def _impact(conn, start: datetime, resolved: datetime) -> tuple[int | None, int, float]:
    probe = warehouse.read_frame(
        conn,
        "select ts, min(is_up) as is_up from raw_probe_minutes where ts > :start and ts < :end group by ts",
        {"start": start, "end": resolved + timedelta(seconds=60)},
    )
    down = int(sum(1 for v in probe["is_up"] if int(v) == 0)) if len(probe) else None
    trades = warehouse.read_frame(
        conn,
        "select trade_id, net_pnl_inr from raw_trades where (entry_time >= :start and entry_time <= :end) "
        "or (exit_time >= :start and exit_time <= :end) order by trade_id",
        {"start": start, "end": resolved},
    )
    import math

    pnl = math.fsum(float(v) for v in trades["net_pnl_inr"]) if len(trades) else 0.0
    return down, len(trades), pnl


def _action_items(conn, incident_id: str) -> list[dict]:
    rows = warehouse.read_frame(
        conn,
        "select issue_number, title, priority, owner, state, due_at from raw_action_items "
        "where kind = 'action_item' and incident_id = :id order by priority, issue_number",
        {"id": incident_id},
        ts_cols=("due_at",),
    ).to_dict("records")
    out = []
    for r in rows:
        due = _py(r["due_at"])
        out.append(
            {
                "number": int(r["issue_number"]),
                "title": r["title"],
                "owner": r["owner"] if isinstance(r["owner"], str) and r["owner"] else None,
                "due": cal.ist_date(due).isoformat() if due is not None else "best effort",
                "priority": r["priority"],
                "status": "Completed" if r["state"] == "closed" else "Open",
            }
        )
    return out


def build_context(conn, inc: dict) -> dict:
    trig, resolved = _py(inc["triggered_at"]), _py(inc["resolved_at"])
    impact = _py(inc["impact_start_at"])
    start = impact if impact is not None else trig
    trig_day = cal.ist_date(trig)
    down, n_trades, pnl = _impact(conn, start, resolved)
    window = f"{_ist(start)} – {_ist(resolved, '%H:%M') if cal.ist_date(resolved) == cal.ist_date(start) else _ist(resolved)}"
    caused = inc["caused_by_deployment_id"]
    return {
        "incident_id": inc["incident_id"],
        "incident_number": int(inc["incident_number"]),
        "incident_ref": incident_ref(inc["incident_number"], trig),
        "title": inc["title"],
        "service": inc["service"],
        "severity": inc["priority"],
        "date": trig_day.isoformat(),
        "triggered_ist": _ist(trig),
        "resolved_ist": _ist(resolved),
        "duration_minutes": (resolved - trig).total_seconds() / 60.0,
        "due_at": resolved + POSTMORTEM_DUE,
        "due_ist": _ist(resolved + POSTMORTEM_DUE),
        "window_ist": window,
        "downtime_minutes": down,
        "trades_affected": n_trades,
        "revenue_inr": pnl,
        "caused_by_deployment": caused if isinstance(caused, str) and caused else None,
        "timeline": _timeline(conn, inc, trig_day),
        "action_items": _action_items(conn, inc["incident_id"]),
        "review_date": add_month(trig_day).isoformat(),
    }


def render_draft(pm: dict) -> str:
    """The whole file: marker line + the rendered template."""
    body = render.render_text(TEMPLATE, pm=pm)
    return marker_line(pm["incident_id"], body) + "\n" + body


# ---------------------------------------------------------------- writing
@dataclass(frozen=True)
class Draft:
    """One incident's draft as Kaizen renders it now: what the local file and the
    pull request of :mod:`kaizen.delivery.github_prs` are written from."""

    incident_id: str  # PagerDuty incident id (the marker's ``incident=``)
    incident_ref: str  # INC-YYYY-###
    incident_number: int
    title: str  # untrusted text, as written in PagerDuty
    priority: str
    service: str
    file: str  # post-mortems/YYYYMMDD_incident_name.md (relative: the same in out_dir and in a repository)
    text: str  # the whole file: marker line + body
    resolved_at: datetime
    due_at: datetime  # resolution + 48 h

    @property
    def due_text(self) -> str:
        return _ist(self.due_at, "%a %d %b %Y %H:%M IST")


def _range(first_day: date, last_day: date) -> tuple[datetime, datetime]:
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    start = datetime.combine(first_day, time(0), tzinfo=cal.IST).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=cal.IST).astimezone(UTC)
    return start, end


def _drafts(conn, start: datetime, end: datetime):
    for inc in _incidents(conn, start, end):
        pm = build_context(conn, inc)
        yield Draft(
            incident_id=pm["incident_id"],
            incident_ref=pm["incident_ref"],
            incident_number=pm["incident_number"],
            title=str(pm["title"]),
            priority=str(pm["severity"]),
            service=str(pm["service"]),
            file=f"{DIR_NAME}/{_file_name(conn, inc)}",
            text=render_draft(pm),
            resolved_at=_py(inc["resolved_at"]),
            due_at=pm["due_at"],
        )


def drafts(engine, first_day: date, last_day: date) -> list[Draft]:
    """The draft of every P0/P1 incident resolved in [first_day 00:00 IST,
    last_day + 1 00:00 IST), rendered from the warehouse (nothing written): the hook
    the pull-request flow (:mod:`kaizen.delivery.github_prs`) publishes from."""
    start, end = _range(first_day, last_day)
    with engine.connect() as conn:
        return list(_drafts(conn, start, end))


def draft_postmortems(engine, first_day: date, last_day: date, out_dir) -> list[dict]:
    """Write (or leave alone) the draft of every P0/P1 incident resolved in
    [first_day 00:00 IST, last_day + 1 00:00 IST). Returns one dict per incident:
    ``incident_id``, ``path``, ``due_at`` (ISO UTC), ``status`` (``written``,
    ``unchanged`` or ``skipped`` — edited by hand) and, when skipped, ``reason``."""
    start, end = _range(first_day, last_day)
    folder = Path(out_dir) / DIR_NAME
    out: list[dict] = []
    with engine.connect() as conn:
        for d in _drafts(conn, start, end):
            path = Path(out_dir) / d.file
            text = d.text
            result = {
                "incident_id": d.incident_id,
                "path": str(path),
                "due_at": d.due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            if path.exists():
                old = path.read_text(encoding="utf-8")
                if old == text:
                    out.append({**result, "status": "unchanged"})
                    continue
                if not is_untouched_draft(old):
                    out.append(
                        {
                            **result,
                            "status": "skipped",
                            "reason": "edited by hand (draft marker missing or body changed); not overwritten",
                        }
                    )
                    continue
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".md.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            out.append({**result, "status": "written"})
    return out


def drafts_for_period(conn, start: datetime, end: datetime) -> list[dict]:
    """P0/P1 incidents resolved in [start, end) with their draft's file name, the 48 h
    due time and whether a post-mortem was published (GitHub issue labelled
    ``postmortem``) and on time — what the weekly review announces. With a pull
    request recorded in ``postmortem_prs`` (:mod:`kaizen.delivery.github_prs`):
    ``pr_number``, ``pr_url`` and ``pr_state`` (``open``, ``closed``, ``merged``);
    without one, None (the review then names the local file)."""
    prs = _recorded_prs(conn)
    published: dict[str, datetime] = {}
    try:
        for r in warehouse.read_frame(
            conn,
            "select incident_id, min(created_at) as published_at from raw_action_items "
            "where kind = 'postmortem' and incident_id is not null group by incident_id",
            ts_cols=("published_at",),
        ).to_dict("records"):
            published[r["incident_id"]] = _py(r["published_at"])
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # a warehouse without raw_action_items
        conn.rollback()
    out = []
    for inc in _incidents(conn, start, end):
        resolved = _py(inc["resolved_at"])
        due = resolved + POSTMORTEM_DUE
        pub = published.get(inc["incident_id"])
        out.append(
            {
                "incident_id": inc["incident_id"],
                "number": int(inc["incident_number"]),
                "priority": inc["priority"],
                "title": inc["title"],
                "file": f"{DIR_NAME}/{_file_name(conn, inc)}",
                "due_text": _ist(due, "%a %d %b %H:%M IST"),
                "published": pub is not None,
                "on_time": pub is not None and pub <= due,
                **prs.get(inc["incident_id"], {"pr_number": None, "pr_url": None, "pr_state": None}),
            }
        )
    return out


def _recorded_prs(conn) -> dict[str, dict]:
    """incident id → the pull request last recorded for it (any repository; the most
    recently updated row wins)."""
    try:
        rows = warehouse.read_frame(
            conn,
            "select incident_id, pr_number, pr_url, pr_state from postmortem_prs order by updated_at, repo",
        ).to_dict("records")
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # a warehouse from before postmortem_prs
        conn.rollback()
        return {}
    return {
        r["incident_id"]: {"pr_number": int(r["pr_number"]), "pr_url": r["pr_url"], "pr_state": r["pr_state"]}
        for r in rows
    }
