"""The "Team" section of the monthly and quarterly reviews (the agenda's "team
productivity"; the KPI table itself is the review's "Team Metrics" domain table) and
the Sheet's "Team metrics" tab.

The section adds what one number per KPI cannot say: each month of the period as the
survey and the Team tab give it (responses, response rate, mean score, documentation
coverage, tech talks, innovation-day participation), the on-call load per responder
(:func:`kaizen.team.measures.responder_load`) against the < 5 incidents per week target,
what is missing and what to do about it, and the rows of the team's sources that were
quarantined. Never raises for the team's sake: a read that fails becomes the section's
``error`` and the review still goes out.

The output tab is "Team metrics", not "Team": "Team" is the tab the team keeps by hand
(:mod:`kaizen.sources.team_sheets`), which Kaizen reads and never writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.team import measures as tm

log = logging.getLogger(__name__)

KINDS = ("monthly", "quarterly")  # the reviews with a Team section
SHEET_TAB = "Team metrics"
MIN_RESPONSES = 3  # the catalog's min_sample of team_satisfaction_score, said in the text
SOURCES = ("satisfaction", "team_months", "oncall_spans", "assignments")
MAX_REFUSED = 10


@dataclass(frozen=True)
class MonthLine:
    """One month of the period, as the survey and the Team tab give it."""

    month: str  # YYYY-MM
    label: str  # "Nov 2026"
    team_size: int | None
    responses: int
    mean_score: float | None  # None below MIN_RESPONSES
    response_rate_pct: float | None
    documentation_coverage_pct: float | None
    tech_talks: int | None
    participants: int | None
    participation_pct: float | None
    has_row: bool  # the Team tab has a row for the month

    @property
    def cells(self) -> dict[str, str]:
        return month_cells(self)


@dataclass(frozen=True)
class ResponderLine:
    user_id: str
    name: str  # untrusted
    oncall_hours: float
    incidents: int
    per_oncall_week: float | None
    on_target: bool | None

    @property
    def cells(self) -> dict[str, str]:
        return responder_cells(self)


@dataclass(frozen=True)
class TeamSection:
    period_key: str
    months: list[MonthLine] = field(default_factory=list)
    responders: list[ResponderLine] = field(default_factory=list)
    team_incidents: int = 0
    weeks: float = 0.0
    notes: list[str] = field(default_factory=list)  # what is missing, and where to fix it
    refused: list[str] = field(default_factory=list)  # quarantined rows (untrusted text)
    error: str | None = None

    @property
    def per_week(self) -> float | None:
        return self.team_incidents / self.weeks if self.weeks > 0 else None


def _fmt(v: float | None, decimals: int = 1, suffix: str = "") -> str:
    if v is None:
        return "n/a"
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{v:.0f}"
    return s + suffix


def _month_lines(conn, first: date, last: date, start: datetime, end: datetime) -> list[MonthLine]:
    rows = {m.month_start: m for m in tm.team_months(conn, first, last)}
    fallback = tm.default_team_size()
    got = tm.responses(conn, start, end)
    out = []
    for m in tm.months_of(first, last):
        scores = [s for t, s in got if cal.ist_date(t).replace(day=1) == m]
        row = rows.get(m)
        size = row.team_size if row is not None and row.team_size is not None else fallback
        part = row.innovation_day_participants if row is not None else None
        out.append(MonthLine(
            month=f"{m:%Y-%m}", label=f"{m:%b %Y}", team_size=size, responses=len(scores),
            mean_score=sum(scores) / len(scores) if len(scores) >= MIN_RESPONSES else None,
            response_rate_pct=100.0 * len(scores) / size if size and scores else None,  # as the KPI: never 0
            documentation_coverage_pct=row.documentation_coverage_pct if row is not None else None,
            tech_talks=row.tech_talks if row is not None else None,
            participants=part,
            participation_pct=100.0 * part / size if part is not None and size else None,
            has_row=row is not None,
        ))
    return out


def _refused(conn, first: date, last: date) -> list[str]:
    rows = warehouse.fetch_rows(
        conn,
        "select distinct source, record_key, reason from quarantine where source in "
        f"({', '.join(repr(s) for s in SOURCES)}) and extract_day >= :first and extract_day <= :last "
        "order by source, record_key, reason", {"first": first, "last": last})
    return [f"{source}: {key}: {reason}" for source, key, reason in rows]


def build(engine: sa.Engine, kind: str, period_key: str, period_start: date, start: datetime, end: datetime
          ) -> TeamSection | None:
    """The section of a ``kind`` review (None for a weekly one) over the window [start, end)."""
    if kind not in KINDS:
        return None
    try:
        with engine.connect() as conn:
            first = max(period_start, cal.ist_date(start))
            last = cal.ist_date(end - timedelta(microseconds=1)) if end > start else first
            months = _month_lines(conn, first, last, start, end)
            load = tm.responder_load(conn, start, end)
            team = tm.team_incidents(conn, start, end)
            notes = []
            survey = tm.landed(conn, "satisfaction", start, end)
            if survey is None:
                notes.append("Satisfaction survey: no responses landed — configure the form's response tab "
                             "(README, 'Team metrics').")
            elif survey is False:
                notes.append("Satisfaction survey: the responses of this period have not landed (stale).")
            for m in months:
                if m.responses and m.responses < MIN_RESPONSES:
                    notes.append(f"{m.label}: {m.responses} survey response{'s' if m.responses != 1 else ''}, "
                                 f"fewer than {MIN_RESPONSES}: no satisfaction score.")
                if not m.has_row:
                    notes.append(f"{m.label}: no row in the Team tab — add one (month, team size, documentation "
                                 "coverage, tech talks, innovation-day participants).")
            if tm.landed(conn, "assignments", start, end) is None:
                notes.append("On-call: no PagerDuty assignments landed — the on-call load is not known.")
            refused = _refused(conn, first, last)
        return TeamSection(
            period_key=period_key,
            months=months,
            responders=[ResponderLine(r.user_id, r.name, r.oncall_hours, r.incidents, r.per_oncall_week,
                                      r.on_target) for r in load],
            team_incidents=team,
            weeks=(end - start).total_seconds() / (tm.HOURS_PER_WEEK * 3600.0),
            notes=notes,
            refused=refused,
        )
    except Exception as exc:  # the review goes on without the team's figures
        from kaizen.warehouse.outages import reason_of

        log.exception("review %s: the Team section could not be read", period_key)
        return TeamSection(period_key=period_key, error=reason_of(exc))


# ---------------------------------------------------------------- texts for the templates
def month_cells(m: MonthLine) -> dict[str, str]:
    """The month's figures as the review shows them."""
    score = (_fmt(m.mean_score, 2) + "/10" if m.mean_score is not None
             else (f"n/a ({m.responses} of {MIN_RESPONSES} needed)" if m.responses else "n/a (no responses)"))
    return {
        "team_size": "—" if m.team_size is None else str(m.team_size),
        "responses": str(m.responses),
        "rate": _fmt(m.response_rate_pct, 0, " %"),
        "score": score,
        "documentation": _fmt(m.documentation_coverage_pct, 1, " %") if m.has_row else "n/a",
        "talks": "n/a" if m.tech_talks is None else str(m.tech_talks),
        "participation": ("n/a" if m.participation_pct is None
                          else f"{m.participants} of {m.team_size} ({_fmt(m.participation_pct, 0, ' %')})"),
    }


def responder_cells(r: ResponderLine) -> dict[str, str]:
    mark = "➖" if r.on_target is None else ("✅" if r.on_target else "❌")
    return {"hours": _fmt(r.oncall_hours, 0, " h"), "incidents": str(r.incidents),
            "per_week": "n/a (not on call)" if r.per_oncall_week is None else _fmt(r.per_oncall_week, 1),
            "mark": mark}


# ---------------------------------------------------------------- the Sheet
def sheet_rows(s: TeamSection | None, period_key: str) -> dict:
    """``{"Team metrics": tab}``: a row per month and per responder of the period, keyed by
    (period, row); empty when the review has no Team section."""
    if s is None or s.error:
        return {}
    header = ["period_key", "row", "team_size", "survey_responses", "survey_response_rate_pct",
              "satisfaction_mean_score", "documentation_coverage_pct", "tech_talks",
              "innovation_days_participation_pct", "oncall_hours", "incidents_assigned",
              "incidents_per_oncall_week"]
    from kaizen.reports import render

    rows = []
    for m in s.months:
        rows.append([period_key, f"month {m.month}", m.team_size, m.responses, _r(m.response_rate_pct),
                     _r(m.mean_score), _r(m.documentation_coverage_pct), m.tech_talks, _r(m.participation_pct),
                     None, None, None])
    for r in s.responders:
        rows.append([period_key, render.sheet_text(f"on-call {r.name} ({r.user_id})"), None, None, None, None,
                     None, None, None, _r(r.oncall_hours), r.incidents, _r(r.per_oncall_week)])
    rows.append([period_key, "team on-call", None, None, None, None, None, None, None, None, s.team_incidents,
                 _r(s.per_week)])
    return {SHEET_TAB: {
        "header": header, "rows": rows, "key_columns": 2,
        "number_formats": {"period_key": "text", "row": "text", "team_size": "int", "survey_responses": "int",
                           "survey_response_rate_pct": "pct", "satisfaction_mean_score": "float",
                           "documentation_coverage_pct": "pct", "tech_talks": "int",
                           "innovation_days_participation_pct": "pct", "oncall_hours": "float",
                           "incidents_assigned": "int", "incidents_per_oncall_week": "float"},
    }}


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)
