"""The team metrics of the source document ("Team Metrics" table) over one KPI scope,
from the team's own landing tables (:mod:`kaizen.sources.team_sheets`,
:mod:`kaizen.sources.oncall`). Reads only.

Definitions (the catalog states them too; tests/test_team_measures.py computes each by
hand on small fixtures in the sources' formats):

- **Satisfaction** (month, quarter): the survey's responses whose Timestamp falls in the
  scope's window [start, end) (IST period bounds). ``team_satisfaction_score`` = mean
  score (numerator Σ scores, denominator responses); fewer than the catalog's
  ``min_sample`` (3) responses → no value, insufficient_data — never 0.
  ``team_satisfaction_responses_count`` = responses. ``team_satisfaction_response_rate_pct``
  = 100 × responses ÷ possible responses, where the survey runs once a month and each
  member answers at most once: the possible responses of a period are the sum, over
  its months (to date), of each month's team size — the Team tab's ``team_size``, else
  the setting ``KAIZEN_TEAM_SIZE``; a month without either leaves the rate without a
  value.
- **The Team tab** (month, quarter): the rows of the months of the period up to the
  scope's last day. ``documentation_coverage_pct`` = the latest month's entry (a level,
  not a flow); ``tech_talks_count`` (month) = talks held; ``tech_talks_per_month``
  (quarter) = talks ÷ months with an entry; ``innovation_days_participation_pct`` =
  100 × Σ participants ÷ Σ team sizes over the months with both. A month without an
  entry has no value (insufficient_data), never 0.
- **On-call incidents per week** (week, month, quarter): incidents whose first
  assignment to a responder (PagerDuty assign/escalate log entries, whenever loaded)
  falls in [start, end), ÷ the window's length in weeks (numerator incidents,
  denominator weeks). Per responder (:func:`responder_load`): the incidents first
  assigned to that responder in the window (an incident reassigned or escalated counts
  once for each responder it reached), over the responder's hours on call in the window
  (the union of their on-call pieces at any escalation level) — incidents per on-call
  week = incidents ÷ (hours ÷ 168).

A source that has landed before but covers none of the scope's window (source
coverage) makes its KPIs ``stale``; a source that never landed (not configured) leaves
them without a value. Day scopes have no team KPI.

Returns plain keyword dicts of :class:`kaizen.kpis.measures.Measure` (value, numerator,
denominator, sample_size, stale, no_events), which ``measure_scope`` wraps: importing
``Measure`` here would tie this module and ``kaizen.kpis.measures`` in an import cycle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from kaizen import calendar as cal
from kaizen import warehouse

ENV_TEAM_SIZE = "KAIZEN_TEAM_SIZE"
HOURS_PER_WEEK = 168.0
ONCALL_TARGET_PER_WEEK = 5.0  # the source document: on-call incidents per week < 5
SURVEY_GRAINS = ("month", "quarter")
ONCALL_GRAINS = ("week", "month", "quarter")


def default_team_size() -> int | None:
    """``KAIZEN_TEAM_SIZE``: the team size of a month the Team tab does not give."""
    text = os.environ.get(ENV_TEAM_SIZE, "").strip()
    if not text:
        return None
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"{ENV_TEAM_SIZE}: {text!r} is not a whole number of people") from None
    if n < 1:
        raise ValueError(f"{ENV_TEAM_SIZE}: {n} must be at least 1")
    return n


def _conn(src):
    """A connection, or the batch ``Data`` of :mod:`kaizen.kpis.measures` holding one."""
    return src if hasattr(src, "execute") else src.conn


def _m(value=None, numerator=None, denominator=None, sample_size=None, *, stale=False, no_events=False) -> dict:
    return {"value": value, "numerator": numerator, "denominator": denominator, "sample_size": sample_size,
            "stale": stale, "no_events": no_events}


def _ts(v) -> datetime:
    from kaizen.warehouse.coverage import parse_ts

    return parse_ts(v)


def landed(conn, source: str, start: datetime, end: datetime) -> bool | None:
    """Whether ``source`` covers any of [start, end): True; False when it has landed
    elsewhere but not here (stale); None when it never landed (not configured)."""
    rows = warehouse.fetch_rows(conn, "select covered_from, covered_to from source_coverage where source = :s",
                                {"s": source})
    if not rows:
        return None
    return any(_ts(a) < end and _ts(b) > start for a, b in rows)


def months_of(period_start: date, last_day: date) -> list[date]:
    """First days of the months from ``period_start``'s to ``last_day``'s."""
    out, d = [], period_start.replace(day=1)
    while d <= last_day:
        out.append(d)
        d = (d + timedelta(days=32)).replace(day=1)
    return out


def _first_day(scope) -> date:
    """The IST day the scope's window starts on: the period's first day, or the first day
    observed when the period starts before the warehouse's history."""
    return max(scope.period_start, cal.ist_date(scope.start))


def _last_day(scope) -> date:
    """The IST day the scope reaches (its window's last instant), within the period."""
    return min(scope.period_end, cal.ist_date(scope.end - timedelta(microseconds=1)))


@dataclass(frozen=True)
class TeamMonth:
    month: str  # YYYY-MM
    month_start: date
    team_size: int | None
    documentation_coverage_pct: float | None
    tech_talks: int | None
    innovation_day_participants: int | None
    notes: str | None


def team_months(conn, first: date, last: date) -> list[TeamMonth]:
    """The Team tab's rows of the months starting in [first, last], in month order."""
    rows = warehouse.fetch_rows(
        conn,
        "select month, month_start, team_size, documentation_coverage_pct, tech_talks, "
        "innovation_day_participants, notes from raw_team_months "
        "where month_start >= :first and month_start <= :last order by month_start",
        {"first": first.replace(day=1), "last": last},
    )
    return [TeamMonth(r[0], warehouse.as_date(r[1]), None if r[2] is None else int(r[2]),
                      None if r[3] is None else float(r[3]), None if r[4] is None else int(r[4]),
                      None if r[5] is None else int(r[5]), r[6]) for r in rows]


def responses(conn, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    return [(_ts(t), int(s)) for t, s in warehouse.fetch_rows(
        conn, "select submitted_at, score from raw_satisfaction_responses "
        "where submitted_at >= :start and submitted_at < :end order by submitted_at", {"start": start, "end": end})]


def survey_measures(conn, scope) -> dict[str, dict]:
    start, end = scope.start, scope.end
    got = responses(conn, start, end)
    n, total = len(got), sum(s for _, s in got)
    where = landed(conn, "satisfaction", start, end)
    stale = where is False
    last = _last_day(scope)
    by_month = {m.month_start: m for m in team_months(conn, _first_day(scope), last)}
    fallback = default_team_size()
    sizes = [(by_month[m].team_size if m in by_month and by_month[m].team_size is not None else fallback)
             for m in months_of(_first_day(scope), last)]
    possible = sum(sizes) if sizes and None not in sizes else None
    counted = where is True  # the form's responses of this window have landed (else no figure, never 0)
    return {
        "team_satisfaction_score": _m(total / n if n else None, float(total) if n else None, n, n, stale=stale),
        "team_satisfaction_responses_count": _m(float(n) if counted else None, sample_size=n, stale=stale),
        "team_satisfaction_response_rate_pct": _m(100.0 * n / possible if counted and possible else None,
                                                  float(n) if counted and possible else None,
                                                  possible if counted else None, n, stale=stale),
    }


def tab_measures(conn, scope) -> dict[str, dict]:
    months = team_months(conn, _first_day(scope), _last_day(scope))
    docs = [m for m in months if m.documentation_coverage_pct is not None]
    talks = [m for m in months if m.tech_talks is not None]
    fallback = default_team_size()
    joined = [(m.innovation_day_participants, m.team_size if m.team_size is not None else fallback)
              for m in months if m.innovation_day_participants is not None]
    joined = [(p, s) for p, s in joined if s is not None]
    n_talks = sum(m.tech_talks for m in talks)
    people, sizes = sum(p for p, _ in joined), sum(s for _, s in joined)
    out = {
        "documentation_coverage_pct": _m(docs[-1].documentation_coverage_pct if docs else None,
                                         sample_size=len(docs)),
        "innovation_days_participation_pct": _m(100.0 * people / sizes if joined else None,
                                                float(people) if joined else None,
                                                float(sizes) if joined else None, len(joined)),
    }
    if scope.grain == "month":
        out["tech_talks_count"] = _m(float(n_talks) if talks else None, sample_size=len(talks))
    else:
        out["tech_talks_per_month"] = _m(n_talks / len(talks) if talks else None,
                                         float(n_talks) if talks else None, len(talks) or None, len(talks))
    return out


def first_assignments(conn, start: datetime, end: datetime) -> list[tuple[str, str, str, datetime]]:
    """(incident, user id, user name, first time the incident was assigned to that user),
    for the pairs whose first assignment falls in [start, end)."""
    rows = warehouse.fetch_rows(
        conn,
        "select incident_id, user_id, max(user_name), min(assigned_at) from raw_incident_assignments "
        "group by incident_id, user_id having min(assigned_at) >= :start and min(assigned_at) < :end "
        "order by incident_id, user_id", {"start": start, "end": end})
    return [(r[0], r[1], r[2], _ts(r[3])) for r in rows]


def team_incidents(conn, start: datetime, end: datetime) -> int:
    """Incidents whose first assignment to anyone falls in [start, end)."""
    return len(warehouse.fetch_rows(
        conn,
        "select incident_id from raw_incident_assignments group by incident_id "
        "having min(assigned_at) >= :start and min(assigned_at) < :end", {"start": start, "end": end}))


def oncall_measures(conn, scope) -> dict[str, dict]:
    start, end = scope.start, scope.end
    n = team_incidents(conn, start, end)
    weeks = (end - start).total_seconds() / (HOURS_PER_WEEK * 3600.0)
    where = landed(conn, "assignments", start, end)
    ok = where is True and weeks > 0
    return {"oncall_incidents_per_week": _m(n / weeks if ok else None, float(n) if ok else None,
                                            weeks if ok else None, n, stale=where is False)}


@dataclass(frozen=True)
class ResponderLoad:
    """One responder's on-call load over a window."""

    user_id: str
    name: str  # untrusted (PagerDuty user name)
    oncall_hours: float
    incidents: int

    @property
    def per_oncall_week(self) -> float | None:
        return self.incidents / (self.oncall_hours / HOURS_PER_WEEK) if self.oncall_hours > 0 else None

    @property
    def on_target(self) -> bool | None:
        p = self.per_oncall_week
        return None if p is None else p < ONCALL_TARGET_PER_WEEK


def _union_hours(spans: list[tuple[datetime, datetime]]) -> float:
    total, cur_a, cur_b = 0.0, None, None
    for a, b in sorted(spans):
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += (cur_b - cur_a).total_seconds()
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += (cur_b - cur_a).total_seconds()
    return total / 3600.0


def responder_load(conn, start: datetime, end: datetime) -> list[ResponderLoad]:
    """Every responder on call or assigned an incident in [start, end): most incidents
    per on-call week first (then most incidents, then name)."""
    spans: dict[str, list] = {}
    names: dict[str, str] = {}
    for uid, name, a, b in warehouse.fetch_rows(
            conn, "select user_id, user_name, start_at, end_at from raw_oncall_spans "
            "where start_at < :end and end_at > :start", {"start": start, "end": end}):
        a, b = max(_ts(a), start), min(_ts(b), end)
        if a < b:
            spans.setdefault(uid, []).append((a, b))
            names[uid] = name
    counts: dict[str, int] = {}
    for _iid, uid, name, _at in first_assignments(conn, start, end):
        counts[uid] = counts.get(uid, 0) + 1
        names.setdefault(uid, name)
    out = [ResponderLoad(uid, names[uid], _union_hours(spans.get(uid, [])), counts.get(uid, 0))
           for uid in sorted(set(spans) | set(counts))]
    return sorted(out, key=lambda r: (r.per_oncall_week is None, -(r.per_oncall_week or 0.0), -r.incidents,
                                      r.name, r.user_id))


def team_measures(src, scope) -> dict[str, dict]:
    """The team KPIs of ``scope`` (a :class:`kaizen.kpis.measures.Scope`); ``src`` is a
    connection or the batch ``Data`` holding one. Keyword dicts of ``Measure``."""
    if scope.grain not in ONCALL_GRAINS:
        return {}
    conn = _conn(src)
    out = oncall_measures(conn, scope)
    if scope.grain in SURVEY_GRAINS:
        out.update(survey_measures(conn, scope))
        out.update(tab_measures(conn, scope))
    return out
