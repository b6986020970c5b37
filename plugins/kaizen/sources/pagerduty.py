"""Incidents, their alerts and log entries from the PagerDuty REST API v2 for the review
window of a trading day, into ``raw_incidents``, ``raw_alerts`` and
``raw_incident_log_entries`` (the timeline of post-mortem drafts; the log entries of
every incident triggered in the window, quarantined ones included, as for alerts).

Decisions (see the module's tests):
- Incidents triggered (``created_at``) in the window are the day's; their alerts are
  the day's alerts whatever the alert's own time, each with the incident's priority.
- ``acknowledged_at`` = earliest ``acknowledgements[].at``, else the earliest
  ``acknowledge_log_entry``; ``resolved_at`` = the incident's ``resolved_at``, else the
  newest ``resolve_log_entry``, else ``last_status_change_at`` of a resolved incident.
- Each alert keeps its rule (:func:`alert_rule`) and each log entry its agent's type
  (``agent.type``: a person or PagerDuty / an integration), for the alert-tuning
  deep dive (:mod:`kaizen.alerting.tuning`: noisy = auto-resolved, never acknowledged).
- A priority outside P0..P3 is loaded as NULL (the incident still counts for MTTR,
  alerts and uptime) and logged as a warning; no priority at all is NULL too.
- ``impact_start`` after the trigger (detected before impact, e.g. a predictive alert)
  is loaded as recorded; MTTD consumers should clamp negative detection times to 0.
- Quarantined: resolved or acknowledged before triggered, missing service or
  created_at, an unparseable time (created_at, acknowledgements, resolved_at,
  last_status_change_at when it is the resolution, the impact_start custom field).
  Alerts of a quarantined incident are still loaded (they fired), with the incident's
  priority when readable.
- As-of: the instant the extraction runs as of (``as_of`` of :func:`prepare_window`;
  by default the extraction's clock, :func:`kaizen.sources.base.extraction_clock`:
  now, or the demo clock of a rehearsal). An incident triggered, acknowledged,
  resolved or impacted more than :data:`~kaizen.sources.base.FUTURE_TOLERANCE` after
  it is quarantined (an incident "resolved in 2031" is not an open one); so are an
  alert or a log entry created after it. A resolution after the window's end but
  before the as-of is real: the review shows the incident as open at its cut-off.
- An incident without a readable created_at belongs to no window: it is in every
  window of the extract, quarantined by each (with its alerts and log entries, as
  any quarantined incident's), as :mod:`kaizen.sources.github_issues` does with an
  issue without ``updated_at``.
- A range of trading days (:func:`extract_range`, e.g. a year's rebuild) is one fetch
  and one load that leave exactly what extracting the days one at a time in order
  leaves: each day's window is parsed as its own extract would, then the days are
  played in order in memory (a later window's alerts / log-entries slice replaces what
  an earlier one loaded there; an incident id loaded by an earlier window is
  quarantined by a later one). A record that one window loaded and a later window's
  slice replaced is neither loaded nor quarantined by the range, and not counted in
  its ``extracted``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from kaizen import config
from kaizen.period import windows_utc
from kaizen.sources.base import (
    ExtractResult,
    Reject,
    SourceError,
    TableLoad,
    extraction_clock,
    future_reason,
    iso_z,
    load,
    parse_ts,
    read_ts,
)
from kaizen.sources.github import DayReplay, by_window_day, with_undated
from kaizen.sources.http import JsonClient

log = logging.getLogger(__name__)

DEFAULT_API = "https://api.pagerduty.com"
PRIORITIES = {"P0", "P1", "P2", "P3"}
PAGE_LIMIT = 100
# since..until of one incident listing: the API refuses more than six months, and
# classic offset pagination stops at 10,000 records
MAX_SPAN = timedelta(days=90)

# A transport returns {"incidents": [...], "alerts": {id: [...]},
# "custom_fields": {id: [...]}, "log_entries": {id: [...]}} for the window.
Transport = Callable[[datetime, datetime], dict]


def _created(rec: dict) -> datetime | None:
    try:
        return parse_ts(rec.get("created_at"))
    except ValueError:
        return None


def _unwrap(doc, key: str) -> list:
    """Demo files may hold the bare list or the whole response body."""
    if doc is None:
        return []
    if isinstance(doc, dict):
        return list(doc.get(key) or [])
    return list(doc)


def spans(start: datetime, end: datetime, size: timedelta | None = None) -> list[tuple[datetime, datetime]]:
    """[start, end) in consecutive listings of at most ``size`` (default :data:`MAX_SPAN`:
    a range rebuild asks for a year; the API takes at most six months per since/until)."""
    size = size or MAX_SPAN
    out = []
    while start < end:
        out.append((start, min(start + size, end)))
        start = out[-1][1]
    return out


def client_for(api_url: str, token: str, **client_kw) -> JsonClient:
    """A client of the PagerDuty REST API v2 (:mod:`kaizen.sources.oncall` uses it too)."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token token={token}"
    return JsonClient("PagerDuty", config.PAGERDUTY_CONN_ID, api_url, headers, **client_kw)


def paged(client: JsonClient, path: str, key: str, params: dict | None = None, *,
          page_limit: int = PAGE_LIMIT) -> list[dict]:
    """Every ``key`` item of a listing, page by page (classic ``limit``/``offset``
    pagination, until ``more`` is false)."""
    out, offset = [], 0
    while True:
        body = client.get_json(path, {**(params or {}), "limit": page_limit, "offset": offset})
        items = body.get(key) or []
        out.extend(items)
        if not body.get("more") or not items:
            return out
        offset += len(items)


def http_transport(api_url: str, token: str, *, page_limit: int = PAGE_LIMIT, **client_kw) -> Transport:
    client = client_for(api_url, token, **client_kw)

    def listing(path: str, key: str, params: dict | None = None) -> list[dict]:
        return paged(client, path, key, params, page_limit=page_limit)

    def fetch(start: datetime, end: datetime) -> dict:
        listings = spans(start, end)
        incidents = []
        for since, until in listings:
            listed = listing("/incidents", "incidents", {
                "since": iso_z(since), "until": iso_z(until), "time_zone": "UTC",
                "statuses[]": ["triggered", "acknowledged", "resolved"], "include[]": ["priorities"],
            })
            if len(listings) > 1:  # each incident once, from the span that holds it
                listed = [i for i in listed if (c := _created(i)) is not None and since <= c < until]
            incidents.extend(listed)
        inside = [i for i in incidents if (_created(i) or start) >= start and (_created(i) or start) < end]
        alerts, fields, logs = {}, {}, {}
        for inc in inside:
            iid = inc.get("id")
            alerts[iid] = listing(f"/incidents/{iid}/alerts", "alerts")
            fields[iid] = client.get_json(f"/incidents/{iid}/custom_fields/values").get("custom_fields") or []
            if inc.get("status") != "triggered":
                logs[iid] = listing(f"/incidents/{iid}/log_entries", "log_entries", {"time_zone": "UTC"})
        return {"incidents": incidents, "alerts": alerts, "custom_fields": fields, "log_entries": logs}
    return fetch


def demo_transport(demo_dir: Path | None = None) -> Transport:
    root = Path(demo_dir or config.demo_dir()) / "pagerduty"

    def read(path: Path):
        return json.loads(path.read_text()) if path.exists() else None

    def fetch(start: datetime, end: datetime) -> dict:
        doc = read(root / "incidents.json")
        if doc is None:
            raise SourceError(f"demo file {root / 'incidents.json'} is missing: run `python -m kaizen demo-data`.")
        incidents = _unwrap(doc, "incidents")
        inside = [i for i in incidents if (c := _created(i)) is not None and start <= c < end]
        alerts, fields, logs = {}, {}, {}
        for inc in inside:
            iid = inc.get("id")
            alerts[iid] = _unwrap(read(root / "alerts" / f"{iid}.json"), "alerts")
            fields[iid] = _unwrap(read(root / "custom_fields" / f"{iid}.json"), "custom_fields")
            logs[iid] = _unwrap(read(root / "log_entries" / f"{iid}.json"), "log_entries")
        return {"incidents": incidents, "alerts": alerts, "custom_fields": fields, "log_entries": logs}
    return fetch


def connection_settings() -> tuple[str, str]:
    """(API base URL, token) from the ``kaizen_pagerduty`` connection."""
    conn = config.require_connection(config.PAGERDUTY_CONN_ID, "PagerDuty REST API")
    host = conn.host or DEFAULT_API
    if not host.startswith(("http://", "https://")):
        host = f"https://{host}"
    return host, conn.password or ""


def live_transport() -> Transport:
    return http_transport(*connection_settings())


def default_transport() -> Transport:
    return demo_transport() if config.sources_mode() == "demo" else live_transport()


# ---------------------------------------------------------------- parsing

def _priority(inc: dict) -> str | None:
    p = inc.get("priority")
    summary = (p or {}).get("summary") if isinstance(p, dict) else None
    if summary is None:
        return None
    if summary not in PRIORITIES:
        log.warning("PagerDuty incident %s has priority %r outside P0..P3: loaded with NULL priority",
                    inc.get("id"), summary)
        return None
    return summary


def _log_times(entries: list[dict], kind: str) -> list[datetime]:
    out = []
    for e in entries:
        if e.get("type") == kind:
            at = _created(e)
            if at:
                out.append(at)
    return sorted(out)


def _field(fields: list[dict], name: str):
    for f in fields:
        if f.get("name") == name:
            return f.get("value")
    return None


def _check_incident(inc: dict, fields: list[dict], entries: list[dict], as_of: datetime | None = None):
    """(row, None) or (None, reason); times after ``as_of`` (the extraction's as-of,
    with its tolerance; None: not checked) are in the future."""
    if not inc.get("id"):
        return None, "missing incident id"
    triggered, reason = read_ts(inc.get("created_at"), "created_at")
    if reason or triggered is None:
        return None, reason or "missing created_at"
    service = (inc.get("service") or {}).get("summary")
    if not service:
        return None, "missing service"
    status = inc.get("status")
    if status not in {"triggered", "acknowledged", "resolved"}:
        return None, f"unknown status {status!r}"
    acks = []
    for a in inc.get("acknowledgements") or []:
        at, reason = read_ts(a.get("at"), "acknowledgements[].at") if a.get("at") else (None, None)
        if reason:
            return None, reason
        if at is not None:
            acks.append(at)
    acked = min(acks) if acks else (_log_times(entries, "acknowledge_log_entry") or [None])[0]
    resolved, reason = read_ts(inc.get("resolved_at") or None, "resolved_at")
    if reason:
        return None, reason
    if resolved is None and status == "resolved":
        resolves = _log_times(entries, "resolve_log_entry")
        if resolves:
            resolved = resolves[-1]
        elif inc.get("last_status_change_at"):
            resolved, reason = read_ts(inc["last_status_change_at"], "last_status_change_at")
            if reason:
                return None, reason
    if status != "resolved":
        resolved = None  # re-opened incidents: the old resolution no longer holds
    if resolved is not None and resolved < triggered:
        return None, f"resolved {resolved.isoformat()} before triggered {triggered.isoformat()}"
    if acked is not None and acked < triggered:
        return None, f"acknowledged {acked.isoformat()} before triggered {triggered.isoformat()}"
    raw_impact = _field(fields, "impact_start")
    impact, reason = read_ts(raw_impact if raw_impact != "" else None, "custom field impact_start")
    if reason:
        return None, reason
    future = (future_reason("created_at", triggered, as_of, "an incident triggered")
              or future_reason("acknowledged_at", acked, as_of, "an acknowledgement")
              or future_reason("resolved_at", resolved, as_of, "a resolution")
              or future_reason("custom field impact_start", impact, as_of, "an impact"))
    if future:
        return None, future
    caused = _field(fields, "caused_by_deployment")
    num = inc.get("incident_number")
    if not isinstance(num, int):
        return None, f"incident_number {num!r} is not an integer"
    return {
        "incident_id": str(inc["id"]),
        "incident_number": num,
        "title": inc.get("title") or inc.get("summary") or "",
        "service": service,
        "priority": _priority(inc),
        "urgency": inc.get("urgency"),
        "status": status,
        "triggered_at": triggered,
        "acknowledged_at": acked,
        "resolved_at": resolved,
        "impact_start_at": impact,
        "caused_by_deployment_id": str(caused) if caused not in (None, "") else None,
    }, None


def _check_alert(alert: dict, incident: dict, as_of: datetime | None = None):
    if not alert.get("id"):
        return None, "missing alert id"
    created, reason = read_ts(alert.get("created_at"), "created_at")
    if reason or created is None:
        return None, reason or "missing created_at"
    future = future_reason("created_at", created, as_of, "an alert")
    if future:
        return None, future
    return {
        "alert_id": str(alert["id"]),
        "incident_id": str((alert.get("incident") or {}).get("id") or incident.get("id")),
        "priority": _priority(incident),
        "severity": alert.get("severity"),
        "service": (alert.get("service") or {}).get("summary") or (incident.get("service") or {}).get("summary"),
        "summary": alert.get("summary"),
        "alert_rule": alert_rule(alert),
        "created_at": created,
    }, None


_FIRING = re.compile(r"^\s*\[(?:FIRING|RESOLVED)(?::\d+)?\]\s*")


def alert_rule(alert: dict) -> str | None:
    """The rule that raised an alert (what alert tuning groups by): the
    ``body.details.alertname`` an Alertmanager receiver passes on, else the Events API
    v2 ``class`` (``body.cef_details.event_class``), else the alert's summary without
    Alertmanager's ``[FIRING:n]`` prefix; None when the alert has none of them."""
    body = alert.get("body") if isinstance(alert.get("body"), dict) else {}
    for part, key in (("details", "alertname"), ("cef_details", "event_class")):
        section = body.get(part)
        value = section.get(key) if isinstance(section, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    summary = alert.get("summary")
    if isinstance(summary, str) and summary.strip():
        return _FIRING.sub("", summary).strip() or None
    return None


def _check_log_entry(entry: dict, incident_id: str, as_of: datetime | None = None):
    if not entry.get("id"):
        return None, "missing log entry id"
    created, reason = read_ts(entry.get("created_at"), "created_at")
    if reason or created is None:
        return None, reason or "missing created_at"
    if not entry.get("type"):
        return None, "missing log entry type"
    future = future_reason("created_at", created, as_of, "a log entry")
    if future:
        return None, future
    summary = entry.get("summary")
    note = (entry.get("channel") or {}).get("summary") if isinstance(entry.get("channel"), dict) else None
    if entry.get("type") == "annotate_log_entry" and note:
        summary = f"{summary}: {note}" if summary else note  # the note's text lives in channel.summary
    return {
        "log_entry_id": str(entry["id"]),
        "incident_id": str((entry.get("incident") or {}).get("id") or incident_id),
        "type": str(entry["type"]),
        "created_at": created,
        "summary": summary,
        # who made the entry: a person (user_reference) or PagerDuty / a monitoring tool
        "agent_type": (entry.get("agent") or {}).get("type") if isinstance(entry.get("agent"), dict) else None,
    }, None


def _log_entries_of(raw: dict, inside: list[dict], day: date, as_of: datetime | None = None):
    """(extracted, rows, rejects) of the log entries of one window's incidents."""
    rows, rejects, seen, n = [], [], set(), 0
    loaded: set[str] = set()  # per window: an entry listed under two incidents is a duplicate
    for inc in inside:
        if str(inc.get("id")) in seen:
            continue
        seen.add(str(inc.get("id")))
        for entry in raw.get("log_entries", {}).get(inc.get("id"), []):
            n += 1
            row, reason = _check_log_entry(entry, str(inc.get("id")), as_of)
            if row is None:
                rejects.append(Reject("log_entries", str(entry.get("id")), reason, entry, day=day))
            elif row["log_entry_id"] in loaded:
                rejects.append(Reject("log_entries", row["log_entry_id"],
                                      f"duplicate log entry id {row['log_entry_id']}", entry, day=day))
            else:
                loaded.add(row["log_entry_id"])
                rows.append(row)
    return n, rows, rejects


def _inside(raw: dict, start: datetime, end: datetime) -> list[dict]:
    return [i for i in raw["incidents"] if (c := _created(i)) is not None and start <= c < end]


def _parse_window(raw: dict, inside: list[dict], day: date, as_of: datetime | None = None):
    """Incidents and alerts of one review window's incidents, as its extract parses them."""
    inc_rows, inc_rej, al_rows, al_rej = [], [], [], []
    seen_i, seen_a = set(), set()
    n_alerts = 0
    for inc in inside:
        iid = str(inc.get("id"))
        row, reason = _check_incident(inc, raw["custom_fields"].get(inc.get("id"), []),
                                      raw["log_entries"].get(inc.get("id"), []), as_of)
        if row is None:
            inc_rej.append(Reject("incidents", iid, reason, inc, day=day))
        elif iid in seen_i:
            inc_rej.append(Reject("incidents", iid, f"duplicate incident id {iid} (the first was loaded)", inc,
                                  day=day))
            continue  # its alerts were taken with the first copy
        else:
            seen_i.add(iid)
            inc_rows.append(row)
        for alert in raw["alerts"].get(inc.get("id"), []):
            n_alerts += 1
            aid = str(alert.get("id"))
            arow, areason = _check_alert(alert, inc, as_of)
            if arow is None:
                al_rej.append(Reject("alerts", aid, areason, alert, day=day))
            elif aid in seen_a:
                al_rej.append(Reject("alerts", aid, f"duplicate alert id {aid} (the first was loaded)", alert,
                                     day=day))
            else:
                seen_a.add(aid)
                al_rows.append(arow)
    return (len(inside), inc_rows, inc_rej), (n_alerts, al_rows, al_rej)


def parse(raw: dict, start: datetime, end: datetime, *, as_of: datetime | None = None):
    """(incidents, alerts, log entries, incident ids, alert ids of the slice) of the
    incidents triggered in [start, end), each an (extracted, rows, rejects) triple,
    validated as of ``as_of`` (None: the extraction's clock). An incident without a
    readable created_at is in every window, and quarantined by each.

    Each trading day's window is parsed as its own extract would, then the days are
    played in order (:class:`~kaizen.sources.github.DayReplay`): a later window's
    slice of alerts (its incidents' alerts and the alerts it loads) and of log entries
    (its incidents') replaces what an earlier window loaded there, and an id loaded by
    an earlier window is quarantined by a later one. The slice ids are those of all
    the windows."""
    as_of = as_of or extraction_clock()
    undated = [i for i in raw["incidents"] if _created(i) is None]
    if undated:
        log.warning("PagerDuty incidents without a readable created_at are on no day: quarantined by every "
                    "window: %s", [i.get("id") for i in undated])
    incidents = DayReplay("incidents", "raw_incidents", "incident_id")
    alerts = DayReplay("alerts", "raw_alerts", "alert_id", column="incident_id")
    entries = DayReplay("log_entries", "raw_incident_log_entries", "log_entry_id", column="incident_id")
    n_i = n_a = n_l = 0
    rej_i, rej_a, rej_l = [], [], []
    inc_ids: set[str] = set()
    alert_ids: set[str] = set()
    for day, inside in with_undated(by_window_day(_inside(raw, start, end), _created), undated, start, end):
        (ni, inc_rows, inc_rej), (na, al_rows, al_rej) = _parse_window(raw, inside, day, as_of)
        nl, le_rows, le_rej = _log_entries_of(raw, inside, day, as_of)
        ids = {str(i.get("id")) for i in inside}
        incidents.day(day, inc_rows)
        alerts.day(day, al_rows, drop_keys=[r["alert_id"] for r in al_rows], drop_values=ids)
        entries.day(day, le_rows, drop_values=ids)
        n_i, n_a, n_l = n_i + ni, n_a + na, n_l + nl
        rej_i += inc_rej
        rej_a += al_rej
        rej_l += le_rej
        inc_ids |= ids
        alert_ids.update(r["alert_id"] for r in al_rows)
    for replay in (alerts, entries):
        if replay.superseded:
            log.info("PagerDuty %s: %d record(s) loaded by one window of the range were replaced by a later "
                     "window's (as extracting the days one at a time would)", replay.table, replay.superseded)
    return ((n_i - incidents.superseded, incidents.rows(), rej_i + incidents.rejects),
            (n_a - alerts.superseded, alerts.rows(), rej_a + alerts.rejects),
            (n_l - entries.superseded, entries.rows(), rej_l + entries.rejects),
            sorted(inc_ids), sorted(alert_ids))


def _in_list(column: str, prefix: str, values: list[str]) -> tuple[str, dict]:
    params = {f"{prefix}{n}": v for n, v in enumerate(values)}
    return f"{column} in ({', '.join(':' + p for p in params)})", params


def prepare_range(first: date, last: date, transport: Transport | None = None, *,
                  as_of: datetime | None = None) -> list[TableLoad]:
    """The trading days ``first``..``last`` in one fetch, validated: the same rows and
    quarantine as extracting them one at a time in order (``as_of``: see :func:`parse`)."""
    return prepare_window(*windows_utc(first, last), transport, as_of=as_of)


def prepare_window(start: datetime, end: datetime, transport: Transport | None = None, *,
                   as_of: datetime | None = None) -> list[TableLoad]:
    """The instants [start, end) in one fetch, validated as of ``as_of`` (None: the
    extraction's clock): what to load."""
    raw = (transport or default_transport())(start, end)
    incidents, alerts, entries, inc_ids, alert_ids = parse(raw, start, end, as_of=as_of)
    # The alerts slice: the alerts of the windows' incidents (an alert can be grouped
    # into an incident after the window) plus every alert these extracts load.
    inc_where, inc_params = _in_list("incident_id", "i", inc_ids) if inc_ids else ("1 = 0", {})
    parts, params = [], dict(inc_params)
    if inc_ids:
        parts.append(inc_where)
    if alert_ids:
        al_where, al_params = _in_list("alert_id", "a", alert_ids)
        parts.append(al_where)
        params.update(al_params)
    alert_where = " or ".join(parts) or "1 = 0"
    return [
        TableLoad("incidents", "raw_incidents", "triggered_at >= :start and triggered_at < :end",
                  {"start": start, "end": end}, *incidents, key="incident_id"),
        TableLoad("alerts", "raw_alerts", alert_where, params, *alerts, key="alert_id"),
        # the log entries of the windows' incidents (incident timelines for post-mortems)
        TableLoad("log_entries", "raw_incident_log_entries", inc_where, inc_params, *entries,
                  key="log_entry_id"),
    ]


def extract_range(first: date, last: date, engine: sa.Engine, run_id: str,
                  transport: Transport | None = None, *, as_of: datetime | None = None) -> list[ExtractResult]:
    """The trading days ``first``..``last`` in one fetch and one load."""
    return load(engine, (first, last), run_id, prepare_range(first, last, transport, as_of=as_of))


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None, *,
            as_of: datetime | None = None) -> list[ExtractResult]:
    return extract_range(day, day, engine, run_id, transport, as_of=as_of)
