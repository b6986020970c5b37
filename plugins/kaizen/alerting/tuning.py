"""The monthly review's deep dive: alert tuning (the source document's first example,
"from 20 alerts/day to 6 by finding the noisy ones"), from the PagerDuty alerts,
incidents and log entries already landed (:mod:`kaizen.sources.pagerduty`).

Every alert fired in the month's window (the ``alerts_per_day`` KPI's window: the
month's IST days to date, from the history's start) falls in exactly one class, in this
order:

1. **led to an incident** — it opened its PagerDuty incident (the incident's earliest
   alert; ties by the smaller alert id) and a responder acknowledged that incident:
   someone acted on it;
2. **noisy** — its incident was never acknowledged and was resolved automatically (the
   latest resolve log entry's agent is not a person: an integration's or PagerDuty's
   own resolve) within N minutes of the alert (``KAIZEN_NOISY_ALERT_MINUTES``, default
   :data:`DEFAULT_NOISY_MINUTES`): it fired and went away with nobody looking;
3. **duplicate** — it was grouped into an incident another alert had opened;
4. **unacknowledged** — the rest: it opened an incident nobody acknowledged that was not
   auto-resolved within N minutes (resolved later, by a person without an ack, or
   still open).

The share of alerts that led to incidents = class 1 ÷ all alerts of the month. An
alert's rule is ``raw_alerts.alert_rule`` (Alertmanager's alertname, the event class,
else the summary): alerts are counted per service and per service × rule.

Trend: alerts per day (alerts ÷ calendar days of the window, as the KPI) and noisy
alerts per day for the month and the :data:`TREND_MONTHS` − 1 before it (those the
history observed), each against the source document's target of < 10 alerts a day.

Candidates to tune (at most :data:`TOP_CANDIDATES`): the service × rule pairs with at
least one alert that did not lead to an incident, ranked by noisy alerts, then by
alerts that did not lead to an incident, then by alerts (most first), then by service
and rule name; each with what its alerts mostly were and the matching remedy.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config, warehouse
from kaizen.period import Period
from kaizen.reports import render
from kaizen.sources.base import parse_ts
from kaizen.sources.pagerduty import alert_rule
from kaizen.warehouse import coverage

log = logging.getLogger(__name__)

ENV_NOISY_MINUTES = "KAIZEN_NOISY_ALERT_MINUTES"
DEFAULT_NOISY_MINUTES = 10.0
TARGET_PER_DAY = 10.0  # the source document's "Alert fatigue: < 10 alerts/day"
TREND_MONTHS = 6
TOP_CANDIDATES = 5
TOP_RULES = 15  # rules listed in the document (the busiest)
PERSON = "user_reference"  # a log entry's agent type when a person made it

LED, NOISY, DUPLICATE, UNACKED = "led", "noisy", "duplicate", "unacknowledged"
CLASSES = (LED, NOISY, DUPLICATE, UNACKED)
REMEDY = {
    NOISY: "auto-resolves within minutes unacknowledged: raise its threshold or add a `for:` duration",
    DUPLICATE: "repeats into an open incident: group or deduplicate it (alert grouping, one dedup key)",
    UNACKED: "nobody acknowledges it: lower its urgency, route it to a ticket queue, or remove it",
}


class TuningError(ValueError):
    """A bad setting; the message names it."""


def noisy_minutes() -> float:
    """``KAIZEN_NOISY_ALERT_MINUTES`` (minutes, > 0), default :data:`DEFAULT_NOISY_MINUTES`."""
    value = config.env_number(ENV_NOISY_MINUTES, valid=lambda v: 0 < v < math.inf, error=TuningError,
                              refusal=" is not a positive number of minutes (e.g. 10)")
    return DEFAULT_NOISY_MINUTES if value is None else value


# ---------------------------------------------------------------- classification
@dataclass(frozen=True)
class Alert:
    alert_id: str
    incident_id: str | None
    created_at: datetime
    service: str
    rule: str
    klass: str


def _ts(v) -> datetime | None:
    return None if v is None else parse_ts(v)


def classify(conn, start: datetime, end: datetime, minutes: float) -> list[Alert]:
    """Every alert created in [start, end), classified (see the module's docstring)."""
    window = {"start": start, "end": end}
    alerts = warehouse.fetch_rows(
        conn, "select alert_id, incident_id, created_at, service, alert_rule, summary from raw_alerts "
              "where created_at >= :start and created_at < :end order by created_at, alert_id", window)
    if not alerts:
        return []
    mine = "select distinct incident_id from raw_alerts where created_at >= :start and created_at < :end"
    opener: dict[str, tuple] = {}
    for aid, iid, created in warehouse.fetch_rows(
            conn, f"select alert_id, incident_id, created_at from raw_alerts where incident_id in ({mine})", window):
        key = (_ts(created), str(aid))
        if iid is not None and (str(iid) not in opener or key < opener[str(iid)]):
            opener[str(iid)] = key
    incidents = {str(r[0]): (_ts(r[1]), _ts(r[2])) for r in warehouse.fetch_rows(
        conn, f"select incident_id, acknowledged_at, resolved_at from raw_incidents where incident_id in ({mine})",
        window)}
    resolver: dict[str, tuple] = {}
    for iid, created, lid, agent in warehouse.fetch_rows(
            conn, "select incident_id, created_at, log_entry_id, agent_type from raw_incident_log_entries "
                  f"where type = 'resolve_log_entry' and incident_id in ({mine})", window):
        key = (_ts(created), str(lid))
        if str(iid) not in resolver or key > resolver[str(iid)][0]:
            resolver[str(iid)] = (key, agent)
    limit = timedelta(minutes=minutes)
    out = []
    for aid, iid, created, service, rule, summary in alerts:
        at = _ts(created)
        iid = None if iid is None else str(iid)
        acked, resolved = incidents.get(iid, (None, None)) if iid else (None, None)
        opens = iid is not None and opener.get(iid, (None, None))[1] == str(aid)
        by_person = iid in resolver and resolver[iid][1] == PERSON
        if opens and acked is not None:
            klass = LED
        elif (iid in incidents and acked is None and resolved is not None and not by_person
              and timedelta(0) <= resolved - at <= limit):
            klass = NOISY
        elif not opens and iid is not None:
            klass = DUPLICATE
        else:
            klass = UNACKED
        name = rule or alert_rule({"summary": summary}) or "(no rule)"
        out.append(Alert(str(aid), iid, at, service or "(no service)", name, klass))
    return out


# ---------------------------------------------------------------- the section
@dataclass(frozen=True)
class RuleLine:
    service: str  # untrusted
    rule: str  # untrusted
    alerts: int
    counts: dict  # class → alerts
    per_day: float

    @property
    def not_led(self) -> int:
        return self.alerts - self.counts.get(LED, 0)

    @property
    def led_pct(self) -> float:
        return 100.0 * self.counts.get(LED, 0) / self.alerts if self.alerts else 0.0

    @property
    def led_text(self) -> str:
        return render.pct(self.led_pct, 0)

    @property
    def per_day_text(self) -> str:
        return render.number(self.per_day, 2) + "/day"

    @property
    def noisy(self) -> int:
        return self.counts.get(NOISY, 0)

    @property
    def duplicate(self) -> int:
        return self.counts.get(DUPLICATE, 0)

    @property
    def unacked(self) -> int:
        return self.counts.get(UNACKED, 0)

    @property
    def mostly(self) -> str:
        """The class most of its alerts that did not lead to an incident fall in."""
        return max((NOISY, DUPLICATE, UNACKED), key=lambda k: (self.counts.get(k, 0), k == NOISY))

    @property
    def remedy(self) -> str:
        return REMEDY[self.mostly]


@dataclass(frozen=True)
class TrendPoint:
    period_key: str
    label: str  # "Nov 2026"
    alerts: int
    days: float
    noisy: int
    observed_from: str = ""  # "27 Aug": the month starts before the history

    @property
    def per_day(self) -> float:
        return self.alerts / self.days if self.days else 0.0

    @property
    def noisy_per_day(self) -> float:
        return self.noisy / self.days if self.days else 0.0

    @property
    def on_target(self) -> bool:
        return self.per_day < TARGET_PER_DAY

    @property
    def mark(self) -> str:
        return render.status_mark("on_target" if self.on_target else "off_target")

    @property
    def per_day_text(self) -> str:
        return render.number(self.per_day, 1) + "/day"

    @property
    def noisy_per_day_text(self) -> str:
        return render.number(self.noisy_per_day, 1) + "/day"


@dataclass(frozen=True)
class AlertTuningSection:
    period_key: str
    minutes: float
    available: bool
    note: str = ""
    warnings: list[str] = field(default_factory=list)
    alerts: int = 0
    days: float = 0.0
    counts: dict = field(default_factory=dict)  # class → alerts
    services: list[RuleLine] = field(default_factory=list)  # rule "(all)"
    rules: list[RuleLine] = field(default_factory=list)  # the busiest first
    trend: list[TrendPoint] = field(default_factory=list)  # oldest first
    candidates: list[RuleLine] = field(default_factory=list)

    @property
    def minutes_text(self) -> str:
        return render.number(self.minutes, 1) + " min"

    @property
    def per_day(self) -> float:
        return self.alerts / self.days if self.days else 0.0

    @property
    def per_day_text(self) -> str:
        return render.number(self.per_day, 1) + "/day"

    @property
    def target_text(self) -> str:
        return f"< {render.number(TARGET_PER_DAY)}/day"

    @property
    def mark(self) -> str:
        return render.status_mark("on_target" if self.per_day < TARGET_PER_DAY else "off_target")

    def share_text(self, klass: str) -> str:
        n = self.counts.get(klass, 0)
        return f"{n} ({render.pct(100.0 * n / self.alerts, 1)})" if self.alerts else "0"

    @property
    def led_share_text(self) -> str:
        return render.pct(100.0 * self.counts.get(LED, 0) / self.alerts, 1) if self.alerts else "n/a"

    @property
    def trend_text(self) -> str:
        """'from 20.1/day (Jun 2026) to 6.2/day (Nov 2026): −69.2 %' over the observed months."""
        if len(self.trend) < 2:
            return ""
        a, b = self.trend[0], self.trend[-1]
        if not a.per_day:
            return f"from {a.per_day_text} ({a.label}) to {b.per_day_text} ({b.label})"
        change = 100.0 * (b.per_day - a.per_day) / a.per_day
        return (f"from {a.per_day_text} ({a.label}) to {b.per_day_text} ({b.label}): "
                f"{'+' if change > 0 else ''}{render.number(change, 1)} %")


def _lines(alerts: list[Alert], key, days: float) -> list[RuleLine]:
    groups: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    for a in alerts:
        groups[key(a)][a.klass] += 1
    out = [RuleLine(s, r, sum(c.values()), dict(c), sum(c.values()) / days if days else 0.0)
           for (s, r), c in groups.items()]
    return sorted(out, key=lambda ln: (-ln.alerts, ln.service, ln.rule))


def candidates(rules: list[RuleLine], n: int = TOP_CANDIDATES) -> list[RuleLine]:
    """The rank rule of the module's docstring."""
    pool = [r for r in rules if r.not_led > 0]
    return sorted(pool, key=lambda r: (-r.noisy, -r.not_led, -r.alerts, r.service, r.rule))[:n]


def _window(conn, period: Period, as_of: datetime | None):
    from kaizen.kpis import periods

    return periods.observed(periods.scope_of(period, as_of), periods.history_start(conn))


def _trend(conn, period: Period, as_of: datetime, minutes: float) -> list[TrendPoint]:
    months = [period] + period.previous(TREND_MONTHS - 1)
    out = []
    for m in reversed(months):
        scope = _window(conn, m, as_of if m == period else None)
        if scope.end <= scope.start:
            continue  # before the history: nothing observed
        days = (scope.end - scope.start).total_seconds() / 86400.0
        alerts = classify(conn, scope.start, scope.end, minutes)
        first = cal.ist_date(scope.start)
        out.append(TrendPoint(m.key, f"{m.start:%b %Y}", len(alerts), days, sum(a.klass == NOISY for a in alerts),
                              observed_from=f"{first.day} {first:%b}" if first > m.start else ""))
    return out


def _outages(conn, first, last) -> list[str]:
    if not sa.inspect(conn).has_table("source_outages"):
        return []
    rows = conn.execute(sa.text(
        "select day, reason from source_outages where source = 'pagerduty' and recovered_at is null "
        "and day >= :first and day <= :last order by day"), {"first": first.isoformat(), "last": last.isoformat()}
    ).all()
    return [f"unavailable: pagerduty since {str(d)[:10]} ({r}) — alerts as last landed" for d, r in rows[:1]]


def build_alert_tuning(engine: sa.Engine, period: Period, as_of: datetime) -> AlertTuningSection:
    """The deep dive of the month ``period`` as of ``as_of`` (reads only). Never raises
    for its own sake: a failure becomes the section's note (logged)."""
    try:
        minutes = noisy_minutes()
    except TuningError as exc:
        return AlertTuningSection(period.key, DEFAULT_NOISY_MINUTES, False, f"Alert tuning unavailable: {exc}")
    try:
        with engine.connect() as conn:
            scope = _window(conn, period, as_of)
            warnings = _outages(conn, period.start, period.end)
            if scope.end <= scope.start:
                return AlertTuningSection(period.key, minutes, False, "The month is before the history begins.")
            if not coverage.spans(conn).get("incidents"):
                return AlertTuningSection(period.key, minutes, False,
                                          "No PagerDuty data in the warehouse: alert tuning needs the incidents and "
                                          "alerts of the kaizen_pagerduty source.")
            days = (scope.end - scope.start).total_seconds() / 86400.0
            alerts = classify(conn, scope.start, scope.end, minutes)
            trend = _trend(conn, period, as_of, minutes)
    except Exception as exc:  # the review goes out without its deep dive
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log.exception("review %s: the alert-tuning deep dive could not be read", period.key)
        return AlertTuningSection(period.key, DEFAULT_NOISY_MINUTES, False, f"Alert tuning unavailable: {reason}")
    counts = {k: sum(a.klass == k for a in alerts) for k in CLASSES}
    rules = _lines(alerts, lambda a: (a.service, a.rule), days)
    services = _lines(alerts, lambda a: (a.service, "(all)"), days)
    note = "" if alerts else "No alert fired in the month: nothing to tune."
    return AlertTuningSection(
        period_key=period.key, minutes=minutes, available=True, note=note, warnings=warnings,
        alerts=len(alerts), days=days, counts=counts, services=services, rules=rules[:TOP_RULES], trend=trend,
        candidates=candidates(rules),
    )
