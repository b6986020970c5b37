"""PagerDuty REST v2 wire records: incidents, their alerts, log entries and custom
field values.

* Every outage of the probe data is one P0/P1 incident on ``trading-api``:
  impact_start = outage start, triggered 1–3 min later, resolved a few minutes
  after the outage ended.
* Noisy alerts (≈6 a day, 2–10) group into P2/P3 incidents on the other services.
* Acknowledgement time is in the ``acknowledge_log_entry`` log entries (as in the
  real API, ``acknowledgements`` is only filled while an incident is acknowledged).
* Custom fields ``impact_start`` (datetime) and ``caused_by_deployment`` (string:
  the GitHub deployment id) come as the ``custom_fields`` list of
  ``GET /incidents/{id}/custom_fields/values``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kaizen.demo.scenario import DAY, IST_OFFSET, Outage, Period, dump_json, iso_z, rand_hex, rand_id

API = "https://api.pagerduty.com"
WEB = "https://kaizen-desk.pagerduty.com"

SERVICES = {  # summary -> id
    "trading-api": "PTRDAPI",
    "order-router": "PORDRTR",
    "market-data": "PMKTDAT",
    "risk-engine": "PRSKENG",
}
PRIORITIES = {  # summary -> (id, colour, order)
    "P0": ("PQ0CRIT", "a8171c", 512),
    "P1": ("PQ1HIGH", "eb6016", 256),
    "P2": ("PQ2MEDM", "f9b406", 128),
    "P3": ("PQ3LOWW", "b0b0b0", 64),
}
USERS = [
    ("PU1ASHA", "Asha Rao"), ("PU2DEVK", "Dev Kapoor"), ("PU3MEER", "Meera Pillai"),
    ("PU4NIKH", "Nikhil Joshi"), ("PU5TARA", "Tara Menon"),
]
ESCALATION_POLICY = {"id": "PEPTRDR", "type": "escalation_policy_reference", "summary": "Trading desk on-call",
                     "self": f"{API}/escalation_policies/PEPTRDR", "html_url": f"{WEB}/escalation_policies/PEPTRDR"}
TEAM = {"id": "PTMDESK", "type": "team_reference", "summary": "Trading Platform",
        "self": f"{API}/teams/PTMDESK", "html_url": f"{WEB}/teams/PTMDESK"}
INTEGRATION = {"id": "PINTPROM", "type": "events_api_v2_inbound_integration_reference",
               "summary": "Prometheus Alertmanager", "self": f"{API}/services/PTRDAPI/integrations/PINTPROM",
               "html_url": f"{WEB}/services/PTRDAPI/integrations/PINTPROM"}
FIELD_IMPACT = ("PCFIMPS", "impact_start", "Impact start", "When customer impact began", "datetime")
FIELD_CAUSE = ("PCFCDEP", "caused_by_deployment", "Caused by deployment",
               "GitHub deployment id of the change that caused the incident", "string")
NOISY_TITLES = {
    "order-router": ["Order reject rate above 0.5% for 5m", "Order-router gateway reconnects > 3 in 10m",
                     "Exchange ack latency p99 above 800 ms"],
    "market-data": ["Tick feed lag above 2 s on NSE cash", "Market-data websocket heartbeat missed",
                    "Stale quotes for more than 10 symbols"],
    "risk-engine": ["Risk limit check queue depth above 500", "Position reconciliation drift detected",
                    "Margin snapshot older than 5 minutes"],
    "trading-api": ["trading-api 5xx ratio above 1% for 5m", "trading-api p95 latency above 450 ms",
                    "trading-api pod restarts > 2 in 15m"],
}


@dataclass
class Incident:
    id: str
    number: int
    title: str
    service: str
    priority: str
    urgency: str
    created: int
    ack: int | None
    resolved: int | None  # None while open
    impact_start: int | None
    caused_by: int | None
    key: str
    acknowledger: tuple
    resolver: tuple | None  # None: auto-resolved through the API
    alert_times: list[int] = field(default_factory=list)
    alert_ids: list[str] = field(default_factory=list)
    log_ids: list[str] = field(default_factory=list)
    note: str | None = None
    outage: Outage | None = None


def _ref(kind: str, ident: str, summary: str, path: str) -> dict:
    return {"id": ident, "type": f"{kind}_reference", "summary": summary, "self": f"{API}/{path}/{ident}",
            "html_url": f"{WEB}/{path}/{ident}"}


def service_ref(name: str) -> dict:
    sid = SERVICES[name]
    return {"id": sid, "type": "service_reference", "summary": name, "self": f"{API}/services/{sid}",
            "html_url": f"{WEB}/service-directory/{sid}"}


def user_ref(u: tuple) -> dict:
    return _ref("user", u[0], u[1], "users")


def priority_obj(p: str) -> dict:
    pid, colour, order = PRIORITIES[p]
    return {"id": pid, "type": "priority", "summary": p, "self": f"{API}/priorities/{pid}", "html_url": None,
            "account_id": "PKZNDSK", "color": colour, "created_at": "2024-04-02T06:12:40Z",
            "description": "", "name": p, "order": order, "schema_version": 0,
            "updated_at": "2024-04-02T06:12:40Z"}


class IncidentPlan:
    def __init__(self):
        self.incidents: list[Incident] = []
        self.bad: dict | None = None


def plan(period: Period, outages: list[Outage], deps_by_id: dict, forced_dep, rng: np.random.Generator
         ) -> IncidentPlan:
    p = IncidentPlan()
    incs = p.incidents
    user = lambda: USERS[int(rng.integers(0, len(USERS)))]  # noqa: E731

    def new(created, title, service, prio, resolve_after, impact, caused_by, n_alerts, alert_span):
        ack = created + int(rng.integers(40, 420))
        resolved = created + int(resolve_after)
        resolved = max(resolved, ack + 30)
        auto = prio in ("P2", "P3") and rng.random() < 0.5
        inc = Incident(
            id=rand_id(rng, "Q", 13), number=0, title=title, service=service, priority=prio,
            urgency="high" if prio in ("P0", "P1") else "low", created=created, ack=ack, resolved=resolved,
            impact_start=impact, caused_by=caused_by, key=rand_hex(rng, 16), acknowledger=user(),
            resolver=None if auto else user(),
        )
        inc.alert_times = sorted([created] + [min(resolved - 1, created + int(rng.integers(0, max(1, alert_span))))
                                              for _ in range(n_alerts - 1)])
        inc.alert_ids = [rand_id(rng, "Q", 13) for _ in range(n_alerts)]
        inc.log_ids = [rand_id(rng, "R", 25) for _ in range(4)]
        incs.append(inc)
        return inc

    # 1. one P0/P1 per outage
    for o in outages:
        created = o.start + int(rng.integers(60, 151))
        resolved_at = o.end + int(rng.integers(60, 361))
        title = f"trading-api blackbox probe failing: probe_success == 0 ({o.priority})"
        inc = new(created, title, "trading-api", o.priority, resolved_at - created, o.start, o.deployment_id,
                  2 + int(rng.integers(0, 3)), max(60, o.end - created))
        inc.ack = min(inc.ack, created + int(rng.integers(30, 150)))
        inc.outage = o
        inc.note = "Customer-facing: order entry unavailable. Investigating; status page updated."
    # 2. the forced deployment also degrades the order-router: a second, P2 incident
    if forced_dep is not None:
        created = forced_dep.finished + int(rng.integers(1800, 5400))
        new(created, "Order reject rate above 0.5% for 5m after release", "order-router", "P2",
            rng.lognormal(np.log(16 * 60), 0.5), created - int(rng.integers(60, 240)), forced_dep.id,
            2, 600)
    # a few other deployment-caused P2s (≈2 a quarter)
    span_days = (period.cov_end - period.cov_start) / DAY
    cands = [d for d in deps_by_id.values() if d.caused_ok(period) and d is not forced_dep]
    for i in rng.permutation(len(cands))[: int(rng.poisson(2 / 91 * span_days))]:
        d = cands[int(i)]
        created = d.finished + int(rng.integers(900, 7200))
        new(created, "trading-api 5xx ratio above 1% for 5m after release", "trading-api", "P2",
            rng.lognormal(np.log(16 * 60), 0.5), created - int(rng.integers(60, 240)), d.id, 1 + int(rng.integers(0, 3)),
            900)
    # 3. noisy alerts: 2–10 a calendar day (IST), grouped into P2/P3 incidents of 1–3 alerts
    first = (period.cov_start + IST_OFFSET) // DAY
    last = (period.cov_end - 1 + IST_OFFSET) // DAY
    busy_alerts: dict[int, int] = {}
    for inc in incs:
        for t in inc.alert_times:
            k = (t + IST_OFFSET) // DAY
            busy_alerts[k] = busy_alerts.get(k, 0) + 1
    services = ["order-router", "market-data", "risk-engine", "trading-api"]
    for k in range(first, last + 1):
        target = int(np.clip(rng.poisson(6.0), 2, 10))
        remaining = max(0, target - busy_alerts.get(k, 0))
        day_lo = max(period.cov_start, k * DAY - IST_OFFSET)
        day_hi = min(period.cov_end - 600, (k + 1) * DAY - IST_OFFSET)
        while remaining > 0 and day_hi > day_lo:
            size = min(remaining, 1 + int(rng.integers(0, 3)))
            remaining -= size
            # more alerts during the session (09:15–15:30 IST) than at night
            if rng.random() < 0.6:
                tod = 9 * 3600 + 900 + int(rng.integers(0, 22500))
            else:
                tod = int(rng.integers(0, DAY))
            created = k * DAY - IST_OFFSET + tod
            if not day_lo <= created < day_hi:
                created = day_lo + int(rng.integers(0, day_hi - day_lo))
            svc = services[int(rng.integers(0, len(services)))]
            title = NOISY_TITLES[svc][int(rng.integers(0, 3))]
            prio = "P3" if rng.random() < 0.65 else "P2"
            impact = created - int(rng.integers(60, 180)) if prio == "P2" else None
            new(created, title, svc, prio, rng.lognormal(np.log(15 * 60), 0.55), impact, None, size, 300)
    # 4. one incident still open (acknowledged) at the end of the last window
    lw = period.last_window
    created = lw.end - 2400 - int(rng.integers(0, 600))
    inc = new(created, "Market-data websocket heartbeat missed", "market-data", "P2", 6 * 3600,
              created - 120, None, 2, 300)
    # anything resolving after the coverage end is still open
    for inc in incs:
        if inc.resolved is not None and inc.resolved >= period.cov_end:
            inc.resolved = None
        if inc.ack is not None and inc.ack >= period.cov_end:
            inc.ack = None
        inc.alert_times = [t for t in inc.alert_times if t < period.cov_end] or [inc.created]
        inc.alert_ids = inc.alert_ids[: len(inc.alert_times)]
    # 5. the bad record: an incident in the last window resolved before it was triggered
    bad_created = lw.start + (lw.end - lw.start) // 2 + int(rng.integers(0, 3600))
    bad = new(bad_created, "Risk limit check queue depth above 500", "risk-engine", "P3", 600, None, None,
              1, 60)
    bad.ack = None
    bad.resolved = bad_created - 1260
    p.bad = {"source": "incidents", "key": bad.id, "reason": "incident resolved before it was triggered",
             "day": lw.day.isoformat()}
    incs.sort(key=lambda i: (i.created, i.id))
    base = 4100 + int(rng.integers(0, 400))
    for n, inc in enumerate(incs):
        inc.number = base + n
    return p


def status_of(inc: Incident) -> str:
    if inc.resolved is not None:
        return "resolved"
    return "acknowledged" if inc.ack is not None else "triggered"


def incident_json(inc: Incident) -> dict:
    status = status_of(inc)
    events = [inc.created] + [t for t in (inc.ack, inc.resolved) if t is not None]
    last_change = inc.resolved if inc.resolved is not None else (inc.ack or inc.created)
    last_by = user_ref(inc.resolver) if (inc.resolved is not None and inc.resolver) else (
        user_ref(inc.acknowledger) if status == "acknowledged" else service_ref(inc.service))
    n_alerts = len(inc.alert_times)
    return {
        "id": inc.id,
        "type": "incident",
        "summary": f"[#{inc.number}] {inc.title}",
        "self": f"{API}/incidents/{inc.id}",
        "html_url": f"{WEB}/incidents/{inc.id}",
        "incident_number": inc.number,
        "title": inc.title,
        "description": inc.title,
        "created_at": iso_z(inc.created),
        "updated_at": iso_z(max(events)),
        "status": status,
        "incident_key": inc.key,
        "service": service_ref(inc.service),
        "assignments": [] if status == "resolved" else [
            {"at": iso_z(inc.created), "assignee": user_ref(inc.acknowledger)}],
        "assigned_via": "escalation_policy",
        "last_status_change_at": iso_z(last_change),
        "resolved_at": iso_z(inc.resolved) if inc.resolved is not None else None,
        "first_trigger_log_entry": {
            "id": inc.log_ids[0], "type": "trigger_log_entry_reference",
            "summary": "Triggered through the API.",
            "self": f"{API}/log_entries/{inc.log_ids[0]}?incident_id={inc.id}",
            "html_url": f"{WEB}/incidents/{inc.id}/log_entries/{inc.log_ids[0]}",
        },
        "alert_counts": {"all": n_alerts, "triggered": 0 if status == "resolved" else n_alerts,
                         "resolved": n_alerts if status == "resolved" else 0},
        "is_mergeable": True,
        "escalation_policy": ESCALATION_POLICY,
        "teams": [TEAM],
        "pending_actions": [],
        "acknowledgements": [{"at": iso_z(inc.ack), "acknowledger": user_ref(inc.acknowledger)}]
        if status == "acknowledged" else [],
        "alert_grouping": None,
        "last_status_change_by": last_by,
        "priority": priority_obj(inc.priority),
        "resolve_reason": None,
        "incidents_responders": [],
        "responder_requests": [],
        "subscriber_requests": [],
        "urgency": inc.urgency,
    }


def alert_json(inc: Incident, i: int) -> dict:
    aid, t = inc.alert_ids[i], inc.alert_times[i]
    severity = {"P0": "critical", "P1": "critical", "P2": "error", "P3": "warning"}[inc.priority]
    resolved = inc.resolved is not None
    return {
        "id": aid,
        "type": "alert",
        "summary": inc.title,
        "self": f"{API}/alerts/{aid}",
        "html_url": f"{WEB}/alerts/{aid}",
        "created_at": iso_z(t),
        "status": "resolved" if resolved else "triggered",
        "alert_key": f"{inc.key}-{i}",
        "service": service_ref(inc.service),
        "first_trigger_log_entry": {
            "id": inc.log_ids[0], "type": "trigger_log_entry_reference", "summary": "Triggered through the API.",
            "self": f"{API}/log_entries/{inc.log_ids[0]}", "html_url": f"{WEB}/incidents/{inc.id}/log_entries/"
            f"{inc.log_ids[0]}"},
        "incident": {"id": inc.id, "type": "incident_reference", "summary": f"[#{inc.number}] {inc.title}",
                     "self": f"{API}/incidents/{inc.id}", "html_url": f"{WEB}/incidents/{inc.id}"},
        "suppressed": False,
        "severity": severity,
        "integration": INTEGRATION,
        "body": {"type": "alert_body", "contexts": [],
                 "details": {"alertname": inc.title, "service": inc.service, "severity": severity,
                             "source": "prometheus"}},
    }


def _log(inc: Incident, lid: str, kind: str, ts: int, summary: str, agent: dict, channel: dict, **extra) -> dict:
    entry = {
        "id": lid, "type": f"{kind}_log_entry", "summary": summary,
        "self": f"{API}/log_entries/{lid}", "html_url": f"{WEB}/incidents/{inc.id}/log_entries/{lid}",
        "created_at": iso_z(ts), "agent": agent, "channel": channel,
        "service": service_ref(inc.service),
        "incident": {"id": inc.id, "type": "incident_reference", "summary": f"[#{inc.number}] {inc.title}",
                     "self": f"{API}/incidents/{inc.id}", "html_url": f"{WEB}/incidents/{inc.id}"},
        "teams": [TEAM], "contexts": [],
    }
    entry.update(extra)
    return entry


def log_entries_json(inc: Incident) -> list[dict]:
    """Newest first, as ``GET /incidents/{id}/log_entries`` lists them."""
    out = [_log(inc, inc.log_ids[0], "trigger", inc.created, "Triggered through the API.", INTEGRATION,
                {"type": "api", "summary": inc.title, "details": {"service": inc.service}},
                event_details={"description": inc.title})]
    if inc.ack is not None:
        u = inc.acknowledger
        out.append(_log(inc, inc.log_ids[1], "acknowledge", inc.ack, f"Acknowledged by {u[1]}.", user_ref(u),
                        {"type": "mobile"}, acknowledgement_timeout=1800))
    if inc.note is not None and inc.ack is not None:
        u = inc.acknowledger
        out.append(_log(inc, inc.log_ids[2], "annotate", inc.ack + 60, "Note added", user_ref(u),
                        {"type": "note", "summary": inc.note}))
    if inc.resolved is not None:
        if inc.resolver is None:
            out.append(_log(inc, inc.log_ids[3], "resolve", inc.resolved, "Resolved through the API.",
                            INTEGRATION, {"type": "api", "summary": inc.title}))
        else:
            u = inc.resolver
            out.append(_log(inc, inc.log_ids[3], "resolve", inc.resolved, f"Resolved by {u[1]}.", user_ref(u),
                            {"type": "web_ui"}))
    out.sort(key=lambda e: (e["created_at"], e["id"]), reverse=True)
    return out


def custom_fields_json(inc: Incident) -> list[dict]:
    """The ``custom_fields`` array of ``GET /incidents/{id}/custom_fields/values``."""
    def fv(spec, value):
        fid, name, display, desc, dtype = spec
        return {"id": fid, "name": name, "type": "field_value", "display_name": display,
                "field_type": "single_value", "data_type": dtype, "description": desc, "value": value}

    return [
        fv(FIELD_IMPACT, iso_z(inc.impact_start) if inc.impact_start is not None else None),
        fv(FIELD_CAUSE, str(inc.caused_by) if inc.caused_by is not None else None),
    ]


def write(p: IncidentPlan, out: Path) -> dict:
    pd_dir = out / "pagerduty"
    dump_json(pd_dir / "incidents.json", [incident_json(i) for i in p.incidents])
    n_alerts = 0
    for inc in p.incidents:
        alerts = [alert_json(inc, i) for i in range(len(inc.alert_times))]
        n_alerts += len(alerts)
        dump_json(pd_dir / "alerts" / f"{inc.id}.json", alerts)
        dump_json(pd_dir / "custom_fields" / f"{inc.id}.json", custom_fields_json(inc))
        dump_json(pd_dir / "log_entries" / f"{inc.id}.json", log_entries_json(inc))
    return {"incidents": len(p.incidents), "alerts": n_alerts}
