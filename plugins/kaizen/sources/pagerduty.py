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
- A priority outside P0..P3 is loaded as NULL (the incident still counts for MTTR,
  alerts and uptime) and logged as a warning; no priority at all is NULL too.
- ``impact_start`` after the trigger (detected before impact, e.g. a predictive alert)
  is loaded as recorded; MTTD consumers should clamp negative detection times to 0.
- Quarantined: resolved or acknowledged before triggered, missing service or
  created_at, unparseable custom-field datetime. Alerts of a quarantined incident are
  still loaded (they fired), with the incident's priority when readable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config
from kaizen.sources.base import ExtractResult, Reject, SourceError, TableLoad, iso_z, load, parse_ts
from kaizen.sources.http import JsonClient

log = logging.getLogger(__name__)

DEFAULT_API = "https://api.pagerduty.com"
PRIORITIES = {"P0", "P1", "P2", "P3"}
PAGE_LIMIT = 100

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


def http_transport(api_url: str, token: str, *, page_limit: int = PAGE_LIMIT, **client_kw) -> Transport:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token token={token}"
    client = JsonClient("PagerDuty", config.PAGERDUTY_CONN_ID, api_url, headers, **client_kw)

    def paged(path: str, key: str, params: dict | None = None) -> list[dict]:
        out, offset = [], 0
        while True:
            body = client.get_json(path, {**(params or {}), "limit": page_limit, "offset": offset})
            items = body.get(key) or []
            out.extend(items)
            if not body.get("more") or not items:
                return out
            offset += len(items)

    def fetch(start: datetime, end: datetime) -> dict:
        incidents = paged("/incidents", "incidents", {
            "since": iso_z(start), "until": iso_z(end), "time_zone": "UTC",
            "statuses[]": ["triggered", "acknowledged", "resolved"], "include[]": ["priorities"],
        })
        inside = [i for i in incidents if (_created(i) or start) >= start and (_created(i) or start) < end]
        alerts, fields, logs = {}, {}, {}
        for inc in inside:
            iid = inc.get("id")
            alerts[iid] = paged(f"/incidents/{iid}/alerts", "alerts")
            fields[iid] = client.get_json(f"/incidents/{iid}/custom_fields/values").get("custom_fields") or []
            if inc.get("status") != "triggered":
                logs[iid] = paged(f"/incidents/{iid}/log_entries", "log_entries", {"time_zone": "UTC"})
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


def live_transport() -> Transport:
    conn = config.require_connection(config.PAGERDUTY_CONN_ID, "PagerDuty REST API")
    host = conn.host or DEFAULT_API
    if not host.startswith(("http://", "https://")):
        host = f"https://{host}"
    return http_transport(host, conn.password or "")


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


def _check_incident(inc: dict, fields: list[dict], entries: list[dict]):
    if not inc.get("id"):
        return None, "missing incident id"
    triggered = _created(inc)
    if triggered is None:
        return None, f"missing or unparseable created_at {inc.get('created_at')!r}"
    service = (inc.get("service") or {}).get("summary")
    if not service:
        return None, "missing service"
    status = inc.get("status")
    if status not in {"triggered", "acknowledged", "resolved"}:
        return None, f"unknown status {status!r}"
    try:
        acks = sorted(parse_ts(a.get("at")) for a in inc.get("acknowledgements") or [] if a.get("at"))
        acked = acks[0] if acks else (_log_times(entries, "acknowledge_log_entry") or [None])[0]
        resolved = parse_ts(inc.get("resolved_at")) if inc.get("resolved_at") else None
    except ValueError as exc:
        return None, f"unparseable timestamp ({exc})"
    if resolved is None and status == "resolved":
        resolves = _log_times(entries, "resolve_log_entry")
        if resolves:
            resolved = resolves[-1]
        elif inc.get("last_status_change_at"):
            resolved = parse_ts(inc["last_status_change_at"])
    if status != "resolved":
        resolved = None  # re-opened incidents: the old resolution no longer holds
    if resolved is not None and resolved < triggered:
        return None, f"resolved {resolved.isoformat()} before triggered {triggered.isoformat()}"
    if acked is not None and acked < triggered:
        return None, f"acknowledged {acked.isoformat()} before triggered {triggered.isoformat()}"
    raw_impact = _field(fields, "impact_start")
    try:
        impact = parse_ts(raw_impact) if raw_impact not in (None, "") else None
    except ValueError:
        return None, f"unparseable custom field impact_start {raw_impact!r}"
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


def _check_alert(alert: dict, incident: dict):
    if not alert.get("id"):
        return None, "missing alert id"
    created = _created(alert)
    if created is None:
        return None, f"missing or unparseable created_at {alert.get('created_at')!r}"
    return {
        "alert_id": str(alert["id"]),
        "incident_id": str((alert.get("incident") or {}).get("id") or incident.get("id")),
        "priority": _priority(incident),
        "severity": alert.get("severity"),
        "service": (alert.get("service") or {}).get("summary") or (incident.get("service") or {}).get("summary"),
        "summary": alert.get("summary"),
        "created_at": created,
    }, None


def _check_log_entry(entry: dict, incident_id: str):
    if not entry.get("id"):
        return None, "missing log entry id"
    created = _created(entry)
    if created is None:
        return None, f"missing or unparseable created_at {entry.get('created_at')!r}"
    if not entry.get("type"):
        return None, "missing log entry type"
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
    }, None


def parse_log_entries(raw: dict, start: datetime, end: datetime):
    """(extracted, rows, rejects) of the log entries of the window's incidents."""
    rows, rejects, seen, n = [], [], set(), 0
    for inc in raw["incidents"]:
        c = _created(inc)
        if c is None or not start <= c < end or str(inc.get("id")) in seen:
            continue
        seen.add(str(inc.get("id")))
        loaded: set[str] = set()
        for entry in raw.get("log_entries", {}).get(inc.get("id"), []):
            n += 1
            row, reason = _check_log_entry(entry, str(inc.get("id")))
            if row is None:
                rejects.append(Reject("log_entries", str(entry.get("id")), reason, entry))
            elif row["log_entry_id"] in loaded:
                rejects.append(Reject("log_entries", row["log_entry_id"],
                                      f"duplicate log entry id {row['log_entry_id']}", entry))
            else:
                loaded.add(row["log_entry_id"])
                rows.append(row)
    return n, rows, rejects


def parse(raw: dict, start: datetime, end: datetime):
    inside = [i for i in raw["incidents"] if (c := _created(i)) is not None and start <= c < end]
    undated = [i.get("id") for i in raw["incidents"] if _created(i) is None]
    if undated:
        log.warning("PagerDuty incidents without a readable created_at belong to no day: %s", undated)
    inc_rows, inc_rej, al_rows, al_rej = [], [], [], []
    seen_i, seen_a = set(), set()
    n_alerts = 0
    for inc in inside:
        iid = str(inc.get("id"))
        row, reason = _check_incident(inc, raw["custom_fields"].get(inc.get("id"), []),
                                      raw["log_entries"].get(inc.get("id"), []))
        if row is None:
            inc_rej.append(Reject("incidents", iid, reason, inc))
        elif iid in seen_i:
            inc_rej.append(Reject("incidents", iid, f"duplicate incident id {iid} (the first was loaded)", inc))
            continue  # its alerts were taken with the first copy
        else:
            seen_i.add(iid)
            inc_rows.append(row)
        for alert in raw["alerts"].get(inc.get("id"), []):
            n_alerts += 1
            aid = str(alert.get("id"))
            arow, areason = _check_alert(alert, inc)
            if arow is None:
                al_rej.append(Reject("alerts", aid, areason, alert))
            elif aid in seen_a:
                al_rej.append(Reject("alerts", aid, f"duplicate alert id {aid} (the first was loaded)", alert))
            else:
                seen_a.add(aid)
                al_rows.append(arow)
    return (len(inside), inc_rows, inc_rej), (n_alerts, al_rows, al_rej)


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None) -> list[ExtractResult]:
    start, end = cal.review_window_utc(day)
    raw = (transport or default_transport())(start, end)
    (n_i, inc_rows, inc_rej), (n_a, al_rows, al_rej) = parse(raw, start, end)
    # The alerts slice of the day: the alerts of the window's incidents (an alert can be
    # grouped into an incident after the window) plus every alert this extract loads.
    inc_ids = sorted({str(i.get("id")) for i in raw["incidents"]
                      if (c := _created(i)) is not None and start <= c < end})
    params = {f"i{n}": v for n, v in enumerate(inc_ids)}
    params.update({f"a{n}": r["alert_id"] for n, r in enumerate(al_rows)})
    parts = []
    if inc_ids:
        parts.append(f"incident_id in ({', '.join(':i' + str(n) for n in range(len(inc_ids)))})")
    if al_rows:
        parts.append(f"alert_id in ({', '.join(':a' + str(n) for n in range(len(al_rows)))})")
    alert_where = " or ".join(parts) or "1 = 0"
    n_l, le_rows, le_rej = parse_log_entries(raw, start, end)
    inc_params = {f"i{n}": v for n, v in enumerate(inc_ids)}
    inc_where = (f"incident_id in ({', '.join(':i' + str(n) for n in range(len(inc_ids)))})"
                 if inc_ids else "1 = 0")
    return load(engine, day, run_id, [
        TableLoad("incidents", "raw_incidents", "triggered_at >= :start and triggered_at < :end",
                  {"start": start, "end": end}, n_i, inc_rows, inc_rej, key="incident_id"),
        TableLoad("alerts", "raw_alerts", alert_where, params,
                  n_a, al_rows, al_rej, key="alert_id"),
        # the log entries of the window's incidents (incident timelines for post-mortems)
        TableLoad("log_entries", "raw_incident_log_entries", inc_where, inc_params,
                  n_l, le_rows, le_rej, key="log_entry_id"),
    ])
