"""The weekly, monthly and quarterly reviews (the source document's "Performance Review
Cycles"): a plain model read from ``kpi_values`` of the review's grain × ``kpi_definitions``
and the landing tables for the period's IST bounds, then rendered to the
``RenderedReview`` of docs/contracts.md ("Review reports").

- :func:`build_review` reads only; :func:`render_review` is pure apart from writing its
  artefacts (the chart PNGs, ``review.md``, ``review.html``) to the artefact store
  (:mod:`kaizen.artifacts`); the RenderedReview names them by URL, never by local path.
- Figures are never invented: a KPI without a value shows its status ("n/a (insufficient
  data)", "no events", "n/a (not computed)"), never 0: every figure is built by
  :func:`kaizen.reports.model.make_figure`, as the daily review's.
- Everything the hash covers (headline, thread, Markdown, sheet rows) is free of run ids
  and generation times, so a re-run over the same data hashes the same.
- Weekly and monthly reviews have an "Experiments" section (:func:`read_experiments`):
  the A/B experiments of the registry running in the period or ended in it, read out
  as of the period's last day. A registry that cannot be read is said in the section
  (and logged), never a failed review; refused registry rows are listed there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config
from kaizen.alerting import tuning as alert_tuning_section
from kaizen.cost import section as cost_section
from kaizen.goals import section as goals_section
from kaizen.kpis.maths import drawdown_series
from kaizen.period import Period, range_text, window_day
from kaizen.reports import model, render
from kaizen.reports.model import (
    UNIT_SUFFIX,
    Figure,
    Incident,
    ist_text,
    kpi_catalog,
    period_sheet_tab,
    sheet_number,
)
from kaizen.reports.postmortem import drafts_for_period
from kaizen.team import section as team_section
from kaizen.warehouse import coverage

log = logging.getLogger(__name__)

KINDS = {"weekly": "week", "monthly": "month", "quarterly": "quarter"}
TABS = {"weekly": "Weekly", "monthly": "Monthly", "quarterly": "Quarterly"}
TITLES = {"weekly": "📈 Weekly Review", "monthly": "📅 Monthly Review", "quarterly": "🗓️ Quarterly Review"}
SLACK_TEMPLATE = "review.slack.json.j2"
MARKDOWN_TEMPLATE = "review.md.j2"
HTML_TEMPLATE = "review.html.j2"

# The handful of KPIs the Slack headline shows, in order.
HEADLINE_KPIS = (
    "win_rate_pct",
    "net_pnl_inr",
    "avg_daily_pnl_inr",
    "uptime_pct",
    "sli_p95_latency_ms",
    "mttr_minutes",
    "change_failure_rate_pct",
    "deployments_per_day",
)

# The source document's KPI tables ("Metrics and KPIs"), in its order and wording.
# Active KPIs of the grain not named here are appended to their domain's table.
DOMAIN_TABLES = (
    (
        "reliability",
        "System Reliability (SRE Metrics)",
        (
            "uptime_pct",
            "session_uptime_pct",
            "mtbf_days",
            "mttr_minutes",
            "mttd_minutes",
            "error_budget_remaining_pct",
            "sli_p95_latency_ms",
            "downtime_minutes",
            "errors_count",
        ),
    ),
    (
        "trading",
        "Trading Performance",
        (
            "win_rate_pct",
            "avg_daily_pnl_inr",
            "sharpe_ratio",
            "max_drawdown_pct",
            "execution_success_pct",
            "avg_execution_ms",
            "p95_execution_ms",
            "trades_count",
            "net_pnl_inr",
            "profit_factor",
            "largest_win_inr",
            "largest_loss_inr",
        ),
    ),
    (
        "delivery",
        "Operational Efficiency",
        (
            "deployments_per_day",
            "lead_time_hours",
            "change_failure_rate_pct",
            "alerts_per_day",
            "action_items_on_time_pct",
            "postmortems_on_time_pct",
            "recovery_time_minutes",
        ),
    ),
    ("team", "Team Metrics", ()),
    ("cost", "Cost", ()),
)
# Shown in their own sections (error budget, DORA, alerts by priority), not in the tables.
SECTION_ONLY = frozenset(
    {
        "error_budget_minutes",
        "error_budget_used_minutes",
        "error_budget_burn_rate",
        "error_budget_runout_days",
        "alerts_per_day_p0",
        "alerts_per_day_p1",
        "alerts_per_day_p2",
        "mttr_p50_minutes",
        "mtta_minutes",
        "mtta_p50_minutes",
        "lead_time_p90_hours",
    }
)

TREND_TEXT = {"improving": "↑ Improving", "declining": "↓ Declining", "stable": "→ Stable"}
PRIORITIES = ("P0", "P1", "P2", "P3")
PATTERN_WEEKS = 4


# ---------------------------------------------------------------- model
@dataclass(frozen=True)
class KpiLine:
    """One KPI row of a review table: the figure, its trend, and the previous period."""

    fig: Figure
    domain: str
    trend: str  # improving, declining, stable, n/a
    trend_text: str  # "↑ Improving", …, "n/a"
    previous: Figure | None = None  # previous period of the grain (monthly/quarterly)
    change_text: str = ""  # "+2.20 pp", "−₹1,200", "n/a"
    planned: bool = False  # catalog status planned: no source yet

    @property
    def judged(self) -> bool:
        """Has a target and a verdict (on or off target)."""
        return bool(self.fig.target_text) and self.fig.status in ("on_target", "off_target")


@dataclass(frozen=True)
class DomainTable:
    domain: str
    title: str
    lines: list[KpiLine]


@dataclass(frozen=True)
class ReviewIncident:
    inc: Incident
    caused_by_deployment: str | None
    duration_minutes: float | None  # resolved − triggered (resolved ones only)
    duration_text: str
    in_period: bool  # triggered inside the period (else carried over, still open or resolved in it)


@dataclass(frozen=True)
class ActionItem:
    issue_number: int
    title: str  # untrusted
    priority: str
    owner: str  # untrusted
    incident_id: str
    status: str  # Overdue, Open, Done, Done (late), Not planned
    due_text: str
    html_url: str | None
    is_overdue: bool


@dataclass(frozen=True)
class Pattern:
    kind: str  # service, title, cause
    key: str  # untrusted (service name, incident title, deployment id)
    count: int
    priorities: str  # "P2 ×3, P3 ×1"
    numbers: list[int]


@dataclass(frozen=True)
class Achievement:
    label: str
    target_text: str
    on: int
    off: int
    other: int

    @property
    def weeks(self) -> int:
        return self.on + self.off + self.other

    @property
    def text(self) -> str:
        judged = self.on + self.off
        s = f"{self.on} of {judged} weeks on target" if judged else "no week judged"
        return s + (f" ({self.other} n/a)" if self.other else "")


@dataclass(frozen=True)
class StrategyRow:
    strategy: str  # untrusted
    trades: int
    wins: int
    net_pnl_inr: float

    @property
    def win_rate_pct(self) -> float | None:
        return 100.0 * self.wins / self.trades if self.trades else None


@dataclass(frozen=True)
class ExperimentLine:
    """One A/B experiment as the review lists it (figures formatted by
    :mod:`kaizen.experiments.report`)."""

    experiment_id: str
    status: str  # running, ended; "failed" when its readout could not be computed
    status_text: str  # "running to 13 Nov 2026", "ended 13 Nov 2026"
    owner: str  # untrusted
    hypothesis: str  # untrusted
    control_arm: str  # untrusted
    test_arm: str  # untrusted
    min_sample: int
    control_trades: int | None = None
    test_trades: int | None = None
    primary_label: str = ""
    primary_control: str = "n/a"
    primary_test: str = "n/a"
    primary_improvement: str = "n/a"  # "+2.9 % ✅"
    verdict: str = ""  # untrusted: names the arms when the sample is short
    warning: str | None = None  # running: the verdict is final only at the planned end
    suggestion: str | None = None  # ended: the registered rule's suggestion; untrusted (owner)
    error: str | None = None  # why the readout failed


@dataclass(frozen=True)
class ExperimentsSection:
    """The "Experiments" section of a weekly or monthly review."""

    as_of: date  # the IST day the readouts are taken on
    location: str = ""  # the registry read (file or Sheet tab)
    lines: list[ExperimentLine] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # refused registry rows, their messages (untrusted)
    error: str | None = None  # the registry could not be read at all


@dataclass(frozen=True)
class ReviewReport:
    kind: str
    grain: str
    report: str  # weekly_review, …
    period_key: str
    period_start: date
    period_end: date
    title: str  # header text
    period_text: str  # "16–22 Nov 2026"
    fiscal_text: str  # "FY27 Q3"
    is_complete: bool
    window_start_utc: datetime
    window_end_utc: datetime
    tables: list[DomainTable]
    figures: dict[str, KpiLine]
    has_previous: bool
    previous_key: str
    incidents: list[ReviewIncident]
    action_items: list[ActionItem] | None  # None: no raw_action_items table (no data)
    patterns: list[Pattern]
    postmortems: list[dict]  # P0/P1 incidents resolved in the period and their drafts
    pattern_since: date
    strategies: list[StrategyRow]
    achievement: list[Achievement]
    series: dict = field(default_factory=dict)  # chart data (plain lists)
    observed_from: date | None = None  # the period starts before the history: its first day observed
    experiments: ExperimentsSection | None = None  # weekly and monthly reviews only
    cost: cost_section.CostSection | None = None  # cost analysis / efficiency, ROI (kaizen.cost.section)
    alert_tuning: alert_tuning_section.AlertTuningSection | None = None  # the monthly deep dive
    goals: object | None = None  # kaizen.goals.section.GoalsSection: monthly and quarterly reviews only
    team: team_section.TeamSection | None = None  # monthly and quarterly reviews only

    @property
    def observed_text(self) -> str:
        """``observed from 21 Sep`` for a period that starts before the history, else ''."""
        d = self.observed_from
        return f"observed from {d.day} {d:%b %Y}" if d else ""

    @property
    def headline_lines(self) -> list[KpiLine]:
        return [self.figures[k] for k in HEADLINE_KPIS if k in self.figures]

    @property
    def all_lines(self) -> list[KpiLine]:
        return [ln for t in self.tables for ln in t.lines]

    @property
    def off_target(self) -> list[KpiLine]:
        return [ln for ln in self.all_lines if ln.fig.status == "off_target" and ln.fig.target_text]

    @property
    def no_data(self) -> list[KpiLine]:
        return [
            ln
            for ln in self.all_lines
            if not ln.planned and ln.fig.status in ("insufficient_data", "stale", "missing")
        ]

    @property
    def wins(self) -> list[KpiLine]:
        """On target and improving (or on target with a target, when none improved)."""
        judged = [ln for ln in self.all_lines if ln.judged and ln.fig.status == "on_target"]
        better = [ln for ln in judged if ln.trend == "improving"]
        return better or judged

    @property
    def challenges(self) -> list[KpiLine]:
        declining = [
            ln
            for ln in self.all_lines
            if ln.judged and ln.fig.status == "on_target" and ln.trend == "declining"
        ]
        return self.off_target + declining

    @property
    def incident_counts(self) -> dict[str, int]:
        c = Counter(i.inc.priority for i in self.incidents if i.in_period)
        return {p: c.get(p, 0) for p in PRIORITIES}

    @property
    def overdue_items(self) -> list[ActionItem]:
        return [a for a in self.action_items or [] if a.is_overdue]

    @property
    def error_budget(self) -> dict:
        return self.series["error_budget"]


# ---------------------------------------------------------------- periods and labels
def period_key(kind: str, period_start: date) -> str:
    grain = _grain(kind)
    if grain == "week":
        y, w, _ = period_start.isocalendar()
        return f"{y}-W{w:02d}"
    if grain == "month":
        return f"{period_start.year}-{period_start.month:02d}"
    return f"{period_start.year}-Q{(period_start.month - 1) // 3 + 1}"


def fiscal_quarter(d: date) -> str:
    """Indian fiscal quarter (April–March, named by the year it ends): Oct 2026 → 'FY27 Q3'."""
    fy = d.year + 1 if d.month >= 4 else d.year
    return f"FY{fy % 100:02d} Q{(d.month - 4) % 12 // 3 + 1}"


def _grain(kind: str) -> str:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(KINDS)}") from None


def _ist_text(ts: datetime) -> str:
    local = ts.astimezone(cal.IST)
    return f"{local.day} {local:%b %H:%M} IST"


def _title(kind: str, ps: date, pe: date, key: str, as_of_day: date, complete: bool,
           observed_from: date | None = None, gaps: list[dict] = ()) -> str:
    if kind == "weekly":
        body = f"W{ps.isocalendar()[1]:02d}, {range_text(ps, pe)}"
    elif kind == "monthly":
        body = f"{ps:%B %Y}"
    else:
        body = f"Q{(ps.month - 1) // 3 + 1} {ps.year} ({fiscal_quarter(ps)}), {range_text(ps, pe)}"
    notes = [f"observed from {observed_from.day} {observed_from:%b}"] if observed_from else []
    if gaps:
        notes.append("awaiting " + ", ".join(f"{r['source']} from {_ist_text(r['missing_from'])}" for r in gaps))
    elif not complete:
        notes.append(f"to {as_of_day.day} {as_of_day:%b}")
    if notes:
        body += f" ({', '.join(notes)})"
    return f"{TITLES[kind]} — {body}"


# ---------------------------------------------------------------- formatting
def format_change(unit: str, cur: float | None, prev: float | None) -> str:
    if cur is None or prev is None:
        return "n/a"
    d = cur - prev
    if unit == "pct":
        return ("+" if d > 0 else "") + render.number(d, 2) + " pp"
    if unit == "inr":
        return render.inr(d, plus=True)
    sign = "+" if d > 0 else ""
    if unit == "ms":
        return sign + render.ms(d)
    if unit == "count":
        return sign + render.count(d)
    if unit == "per_day":
        return sign + render.number(d, 2) + "/day"
    return sign + render.number(d, 2) + UNIT_SUFFIX.get(unit, "")


def make_figure(kpi_id: str, row: dict | None, definition: dict | None) -> Figure:
    """A figure labelled for the period reviews (the "review" column of
    :data:`kaizen.reports.model.LABELS`)."""
    return model.make_figure(kpi_id, row, definition, report="review")


def _trend_text(trend: str | None) -> str:
    return TREND_TEXT.get(trend or "", "n/a")


# ---------------------------------------------------------------- reading
def _read_grain(conn, grain: str, period_start: date) -> dict[str, dict]:
    q = sa.text(
        "select kpi_id, value, numerator, denominator, sample_size, target, status, trend, is_complete "
        "from kpi_values where grain = :grain and period_start = :ps"
    )
    return {
        r.kpi_id: dict(r._mapping) for r in conn.execute(q, {"grain": grain, "ps": period_start.isoformat()})
    }


def _read_definitions(conn) -> dict[str, dict]:
    q = sa.text("select kpi_id, name, domain, unit, better, target, comparator, formula from kpi_definitions")
    return {r.kpi_id: dict(r._mapping) for r in conn.execute(q)}


def _kpi_lines(
    cat, grain, rows, prev_rows, defs, compare: bool
) -> tuple[list[DomainTable], dict[str, KpiLine]]:
    named = {k for _, _, ids in DOMAIN_TABLES for k in ids}
    tables, figures = [], {}
    for domain, title, ids in DOMAIN_TABLES:
        in_grain = [k for k in cat.kpis.values() if grain in k.grains and k.domain == domain]
        order = [k for k in ids if k in cat.kpis and grain in cat[k].grains]
        order += [
            k.id for k in in_grain if k.id not in named and k.id not in SECTION_ONLY and k.id not in order
        ]
        lines = []
        for kid in order:
            planned = not cat[kid].active
            fig = make_figure(kid, rows.get(kid), defs.get(kid))
            if planned:
                fig = replace(fig, display="n/a (not tracked yet)", mark=render.status_mark(None))
            row = rows.get(kid)
            trend = (row or {}).get("trend") or "n/a"
            prev = make_figure(kid, prev_rows.get(kid), defs.get(kid)) if compare and not planned else None
            lines.append(
                KpiLine(
                    fig=fig,
                    domain=domain,
                    trend=trend,
                    trend_text=_trend_text(trend),
                    previous=prev,
                    change_text=format_change(fig.unit, fig.value, prev.value) if prev else "",
                    planned=planned,
                )
            )
        for ln in lines:
            figures[ln.fig.kpi_id] = ln
        if lines:
            tables.append(DomainTable(domain, title, lines))
    for kid in SECTION_ONLY:  # figures of the error budget / DORA sections
        if kid in cat.kpis and grain in cat[kid].grains and kid not in figures:
            row = rows.get(kid)
            figures[kid] = KpiLine(
                fig=make_figure(kid, row, defs.get(kid)),
                domain=cat[kid].domain,
                trend=(row or {}).get("trend") or "n/a",
                trend_text=_trend_text((row or {}).get("trend")),
            )
    return tables, figures


def _duration_text(minutes: float | None) -> str:
    if minutes is None:
        return "—"
    if minutes < 120:
        return render.number(minutes, 0) + " min"
    return render.number(minutes / 60, 1) + " h"


def _read_incidents(conn, start: datetime, end: datetime) -> list[ReviewIncident]:
    """Incidents active in the period (:func:`kaizen.reports.model.read_incidents`:
    triggered before its end and not resolved before its start), state as of the
    period's end; priority order."""
    base = model.read_incidents(conn, start, end)
    ids = [i.incident_id for i in base]
    causes: dict[str, str | None] = {}
    if ids:
        q = sa.text(
            "select incident_id, caused_by_deployment_id from raw_incidents where incident_id in :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        causes = {r.incident_id: r.caused_by_deployment_id for r in conn.execute(q, {"ids": ids})}
    out = []
    for i in base:
        minutes = (i.resolved_at - i.triggered_at).total_seconds() / 60 if i.resolved_at else None
        out.append(
            ReviewIncident(
                inc=i,
                caused_by_deployment=causes.get(i.incident_id),
                duration_minutes=minutes,
                duration_text=_duration_text(minutes),
                in_period=i.triggered_at >= start,
            )
        )
    out.sort(key=lambda r: (model.PRIORITY_ORDER.get(r.inc.priority, 9), r.inc.triggered_at, r.inc.number))
    return out


def read_action_items(conn, start: datetime, end: datetime) -> list[ActionItem] | None:
    """Post-mortem action items open at the period's end or closed inside it, overdue
    first; ``None`` when ``raw_action_items`` does not exist (no data yet). The one
    place the review reads action items."""
    if not sa.inspect(conn).has_table("raw_action_items"):
        return None
    q = sa.text(
        "select issue_number, title, priority, owner, incident_id, state, state_reason, created_at, "
        "closed_at, due_at, html_url from raw_action_items where kind = 'action_item' "
        "and created_at < :end and (closed_at is null or closed_at >= :start)"
    )
    items = []
    for r in conn.execute(q, {"start": cal.utc_text(start), "end": cal.utc_text(end)}):
        closed = model.as_utc(r.closed_at)
        due = model.as_utc(r.due_at)
        is_closed = closed is not None and closed < end
        overdue = False
        if is_closed:
            if r.state_reason == "not_planned":
                status = "Not planned"
            else:
                status = "Done" if due is None or closed <= due else "Done (late)"
        elif due is not None and due < end:
            status, overdue = "Overdue", True
        else:
            status = "Open"
        due_text = f"{cal.ist_date(due).day} {cal.ist_date(due):%b %Y}" if due else "best effort"
        items.append(
            (
                (0 if overdue else 1 if not is_closed else 2, due is None, due or end, int(r.issue_number)),
                ActionItem(
                    issue_number=int(r.issue_number),
                    title=r.title,
                    priority=r.priority or "P?",
                    owner=r.owner or "unassigned",
                    incident_id=r.incident_id,
                    status=status,
                    due_text=due_text,
                    html_url=r.html_url,
                    is_overdue=overdue,
                ),
            )
        )
    items.sort(key=lambda t: t[0])
    return [a for _, a in items]


def _norm_title(title: str) -> str:
    return " ".join(str(title).casefold().split())


def _read_patterns(conn, start: datetime, end: datetime) -> list[Pattern]:
    """Same service, same title or same causing deployment two or more times among the
    incidents triggered in [start, end)."""
    q = sa.text(
        "select incident_number, title, service, priority, caused_by_deployment_id from raw_incidents "
        "where triggered_at >= :start and triggered_at < :end order by triggered_at, incident_number"
    )
    rows = list(conn.execute(q, {"start": cal.utc_text(start), "end": cal.utc_text(end)}))
    groups: dict[tuple[str, str], list] = defaultdict(list)
    titles: dict[str, str] = {}
    for r in rows:
        groups[("service", r.service)].append(r)
        t = _norm_title(r.title)
        titles.setdefault(t, " ".join(str(r.title).split()))
        groups[("title", t)].append(r)
        if r.caused_by_deployment_id:
            groups[("cause", str(r.caused_by_deployment_id))].append(r)
    out = []
    for (kind, key), members in groups.items():
        if len(members) < 2:
            continue
        c = Counter(m.priority or "P?" for m in members)
        out.append(
            Pattern(
                kind=kind,
                key=titles[key] if kind == "title" else key,
                count=len(members),
                priorities=", ".join(f"{p} ×{c[p]}" for p in sorted(c)),
                numbers=[int(m.incident_number) for m in members],
            )
        )
    kind_order = {"cause": 0, "service": 1, "title": 2}
    out.sort(key=lambda p: (kind_order[p.kind], -p.count, p.key))
    return out


def _read_strategies(conn, days: tuple[date, ...]) -> list[StrategyRow]:
    if not days:
        return []
    q = sa.text(
        "select strategy, count(*) as trades, sum(case when net_pnl_inr > 0 then 1 else 0 end) as wins, "
        "sum(net_pnl_inr) as pnl from raw_trades where trading_day >= :a and trading_day <= :b "
        "group by strategy order by strategy"
    )
    res = conn.execute(q, {"a": days[0].isoformat(), "b": days[-1].isoformat()})
    return [
        StrategyRow(r.strategy, int(r.trades), int(r.wins or 0), round(float(r.pnl or 0.0), 2)) for r in res
    ]


def _achievement(conn, cat, ps: date, pe: date, last_day: date, defs) -> list[Achievement]:
    """Per KPI with a target: weeks of the period (ISO weeks overlapping it, started by
    the as-of day) on target, off target, or without a verdict."""
    q = sa.text(
        "select kpi_id, status from kpi_values where grain = 'week' and period_end >= :ps "
        "and period_start <= :pe and period_start <= :last"
    )
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in conn.execute(q, {"ps": ps.isoformat(), "pe": pe.isoformat(), "last": last_day.isoformat()}):
        counts[r.kpi_id][r.status] += 1
    out = []
    for _, _, ids in DOMAIN_TABLES:
        for kid in ids:
            if kid not in counts or kid not in cat.kpis or cat[kid].target is None:
                continue
            fig = make_figure(kid, None, defs.get(kid))
            c = counts[kid]
            on, off = c.get("on_target", 0), c.get("off_target", 0)
            out.append(Achievement(fig.label, fig.target_text, on, off, sum(c.values()) - on - off))
    return out


def _day_rows(conn, kpi_ids, first: date, last: date) -> dict[str, dict[date, dict]]:
    q = sa.text(
        "select kpi_id, period_start, value, numerator from kpi_values where grain = 'day' "
        "and kpi_id in :ids and period_start >= :a and period_start <= :b"
    ).bindparams(sa.bindparam("ids", expanding=True))
    out: dict[str, dict[date, dict]] = defaultdict(dict)
    for r in conn.execute(q, {"ids": list(kpi_ids), "a": first.isoformat(), "b": last.isoformat()}):
        out[r.kpi_id][date.fromisoformat(str(r.period_start)[:10])] = {
            "value": r.value,
            "numerator": r.numerator,
        }
    return out


def _probed_text(uptime, start: datetime, end: datetime) -> str:
    """The minutes probed of the minutes the review covers ("10,080 of 10,080 min"):
    a week that lacks its weekend reads as such, not as a full week at 100 %."""
    minutes = max(0, int((end - start).total_seconds() // 60))
    probed = uptime.fig.denominator if uptime is not None and uptime.fig.denominator is not None else 0
    return f"{render.count(probed)} of {render.count(minutes)} min"


def _series(conn, kind, ps, pe, last_day, start, end, incidents, figures) -> dict:
    """Plain lists for the charts and the error-budget section."""
    first_q = sa.text(
        "select min(period_start) from kpi_values where grain = 'day' and kpi_id = 'net_pnl_inr'"
    )
    first = conn.execute(first_q).scalar()
    history_start = date.fromisoformat(str(first)[:10]) if first is not None else ps
    rows = _day_rows(
        conn,
        ("net_pnl_inr", "uptime_pct", "sli_p95_latency_ms", "deployments_per_day", "change_failure_rate_pct"),
        min(history_start, ps),
        last_day,
    )
    # equity: capital base + cumulative session P&L since history start (a session without
    # a value adds nothing); the capital base is the first peak (the series of the
    # max_drawdown_pct KPI)
    pnl = rows.get("net_pnl_inr", {})
    eq_days = [d for d in sorted(pnl) if d <= last_day]
    points = drawdown_series(config.capital_base_inr(), [float(pnl[d]["value"] or 0.0) for d in eq_days])
    equity = [round(pt.equity, 2) for pt in points]
    drawdown = [round(pt.below_peak_pct, 6) for pt in points]
    days = [d for d in cal.trading_days(ps, pe) if d <= last_day]

    def val(kpi, d, col="value"):
        r = rows.get(kpi, {}).get(d)
        return None if r is None or r[col] is None else float(r[col])

    if kind == "quarterly":
        weeks = []
        d = ps - timedelta(days=ps.weekday())
        while d <= min(pe, last_day):
            weeks.append(d)
            d += timedelta(days=7)
        bucket = {w: f"W{w.isocalendar()[1]:02d}" for w in weeks}
        labels = [bucket[w] for w in weeks]

        def key_of(d):
            return bucket.get(d - timedelta(days=d.weekday()))
    else:
        labels = [f"{d.day} {d:%b}" for d in days]

        def key_of(d):
            return f"{d.day} {d:%b}"

    deployed, failed = Counter(), Counter()
    for d in days:
        k = key_of(d)
        deployed[k] += val("deployments_per_day", d, "numerator") or 0
        failed[k] += val("change_failure_rate_pct", d, "numerator") or 0
    # incidents by the IST day (weekly) or ISO week (monthly, quarterly) of their trigger
    last_cal = cal.ist_date(end - timedelta(microseconds=1)) if end > start else ps
    if kind == "weekly":
        inc_days = [ps + timedelta(days=i) for i in range((min(pe, last_cal) - ps).days + 1)]
        inc_labels = [f"{d:%a} {d.day}" for d in inc_days]
        inc_key = {d: lab for d, lab in zip(inc_days, inc_labels, strict=True)}

        def inc_of(d):
            return inc_key.get(d)
    else:
        wk, d = [], ps - timedelta(days=ps.weekday())
        while d <= min(pe, last_cal):
            wk.append(d)
            d += timedelta(days=7)
        inc_labels = [f"W{w.isocalendar()[1]:02d}" for w in wk]
        inc_key = {w: lab for w, lab in zip(wk, inc_labels, strict=True)}

        def inc_of(d):
            return inc_key.get(d - timedelta(days=d.weekday()))

    inc_counts = {p: [0] * len(inc_labels) for p in PRIORITIES}
    index = {lab: i for i, lab in enumerate(inc_labels)}
    for ri in incidents:
        k = inc_of(cal.ist_date(ri.inc.triggered_at)) if ri.in_period else None
        if k in index and ri.inc.priority in inc_counts:
            inc_counts[ri.inc.priority][index[k]] += 1
    eb = {
        k: figures.get(k)
        for k in (
            "error_budget_minutes",
            "error_budget_used_minutes",
            "error_budget_remaining_pct",
            "error_budget_burn_rate",
            "error_budget_runout_days",
        )
    }
    runout = eb["error_budget_runout_days"]
    if runout is None or runout.fig.value is None:
        runout_text = (
            "no downtime: the budget is not being spent"
            if runout and runout.fig.status == "no_events"
            else "n/a"
        )
    else:
        run_date = ps + timedelta(days=math.floor(runout.fig.value))
        runout_text = f"{run_date.day} {run_date:%b %Y}" + (
            " (after the period ends: the budget lasts)" if run_date > pe else ""
        )
    return {
        "equity_days": eq_days,
        "equity": equity,
        "drawdown_pct": drawdown,
        "days": days,
        "uptime_pct": [val("uptime_pct", d) for d in days],
        "p95_ms": [val("sli_p95_latency_ms", d) for d in days],
        "deploy_labels": labels,
        "deployed": [int(deployed[k]) for k in labels],
        "failed": [int(failed[k]) for k in labels],
        "deploy_per": "week" if kind == "quarterly" else "day",
        "incident_labels": inc_labels,
        "incident_counts": inc_counts,
        "error_budget": {**{k: (v.fig if v else None) for k, v in eb.items()}, "runout_text": runout_text,
                         "probed_text": _probed_text(figures.get("uptime_pct"), start, end)},
        "history_start": history_start,
    }


# ---------------------------------------------------------------- experiments
EXPERIMENT_KINDS = ("weekly", "monthly")  # the reviews with an "Experiments" section


def _experiment_line(r) -> ExperimentLine:
    from kaizen.experiments import report as xr

    e = r.experiment
    primary = r.primary
    cells = xr.table_cells(r, primary)
    return ExperimentLine(
        experiment_id=e.id,
        status=r.status,
        status_text=xr.status_text(r),
        owner=e.owner,
        hypothesis=e.hypothesis,
        control_arm=e.control_arm,
        test_arm=e.test_arm,
        min_sample=e.min_sample_per_arm,
        control_trades=r.control.trades,
        test_trades=r.test.trades,
        primary_label=primary.label,
        primary_control=cells[1],
        primary_test=cells[2],
        primary_improvement=cells[3],
        verdict=r.verdict,
        warning=r.warning,
        suggestion=r.suggestion.text if r.final and r.suggestion is not None else None,
    )


def read_experiments(engine: sa.Engine, period_start: date, day: date, complete: bool,
                     registry=None) -> ExperimentsSection:
    """The experiments of the registry (:func:`kaizen.experiments.registry.load`, or
    ``registry``) running during the period — started by ``day``, the period's last IST
    day covered — or ended in it, each read out as of then: a running one on ``day``
    (interim, with the warning against peeking), one whose planned end has passed
    (``day`` + 1 once the period is ``complete``) as its final readout with the rule's
    suggestion. Running ones first, then ended ones, each by planned start.

    Never raises for the experiments' sake: a registry that cannot be read becomes the
    section's ``error`` (logged), a readout that fails an ``error`` on its line."""
    from kaizen.experiments import readout
    from kaizen.experiments import registry as reg

    status_day = day + timedelta(days=1) if complete else day
    if registry is None:
        try:
            registry = reg.load(today=status_day)
        except Exception as exc:  # the review goes on without the experiments
            reason = " ".join(str(exc).split()) or type(exc).__name__
            log.warning("review %s: experiment registry unavailable: %s", period_start, reason)
            return ExperimentsSection(as_of=day, error=reason)
    chosen = [e for e in registry.experiments if e.planned_start <= day and e.planned_end >= period_start]
    lines = []
    for e in chosen:
        ended = e.status(status_day) == reg.ENDED
        try:
            with engine.connect() as conn:  # one connection each: a failed query spoils no other
                lines.append(_experiment_line(readout.read_out(conn, e, status_day if ended else day)))
        except Exception as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            log.exception("review %s: the readout of experiment %s failed", period_start, e.id)
            lines.append(ExperimentLine(
                experiment_id=e.id, status="failed", status_text="readout failed", owner=e.owner,
                hypothesis=e.hypothesis, control_arm=e.control_arm, test_arm=e.test_arm,
                min_sample=e.min_sample_per_arm, error=reason))
    order = {reg.RUNNING: 0, reg.ENDED: 1}
    starts = {e.id: e.planned_start for e in chosen}
    lines.sort(key=lambda ln: (order.get(ln.status, 2), starts[ln.experiment_id], ln.experiment_id))
    return ExperimentsSection(as_of=day, location=registry.location, lines=lines,
                              refused=[r.message for r in registry.refused])


def build_review(engine: sa.Engine, kind: str, period_start: date, *, as_of: datetime,
                 experiments_registry=None) -> ReviewReport:
    """The review model of the ``kind`` period containing ``period_start`` (reads only).
    ``as_of`` (aware) clips a period still running (quarter to date).
    ``experiments_registry`` (a :class:`kaizen.experiments.registry.Registry`) stands in
    for the registry the weekly and monthly reviews otherwise load."""
    from kaizen.kpis import periods

    grain = _grain(kind)
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware datetime")
    period = Period.of(grain, period_start)
    ps, pe = period.start, period.end
    scope = periods.scope_of(period, as_of)
    start, end = scope.start, scope.end
    complete = period.is_complete(as_of)
    last_day = min(pe, scope.last_day) if scope.last_day >= ps else ps
    prev_start = period.previous()[0].start
    key = period_key(kind, ps)
    cat = kpi_catalog()
    with engine.connect() as conn:
        rows = _read_grain(conn, grain, ps)
        prev_rows = _read_grain(conn, grain, prev_start)
        defs = _read_definitions(conn)
        compare = kind in ("monthly", "quarterly")
        tables, figures = _kpi_lines(cat, grain, rows, prev_rows, defs, compare)
        incidents = _read_incidents(conn, start, end)
        actions = read_action_items(conn, start, end)
        pattern_start = max(end - timedelta(weeks=PATTERN_WEEKS), datetime.min.replace(tzinfo=cal.UTC))
        patterns = _read_patterns(conn, pattern_start, end)
        postmortems = drafts_for_period(conn, start, end)
        strategies = _read_strategies(conn, scope.session_days)
        achievement = _achievement(conn, cat, ps, pe, last_day, defs) if kind != "weekly" else []
        series = _series(conn, kind, ps, pe, last_day, start, end, incidents, figures)
        begins = periods.history_start(conn)
        cov = coverage.period_rows(coverage.spans(conn), period, begins)
    as_of_day = cal.ist_date(end - timedelta(microseconds=1)) if end > start else ps
    experiments = None
    if kind in EXPERIMENT_KINDS:
        experiments = read_experiments(engine, ps, as_of_day, complete, experiments_registry)
    # ended, but a source has not landed all of it (yet): say which, never "complete"
    gaps = [r for r in cov if not r["is_covered"]] if complete else []
    complete = complete and not gaps
    # a period that starts before the history begins: its first days were never observed
    observed_from = window_day(begins) if begins is not None and start < begins else None
    return ReviewReport(
        kind=kind,
        grain=grain,
        report=f"{kind}_review",
        period_key=key,
        period_start=ps,
        period_end=pe,
        title=_title(kind, ps, pe, key, as_of_day, complete, observed_from, gaps),
        period_text=range_text(ps, pe),
        fiscal_text=fiscal_quarter(ps),
        is_complete=complete and observed_from is None,
        observed_from=observed_from,
        window_start_utc=start,
        window_end_utc=end,
        tables=tables,
        figures=figures,
        has_previous=bool(prev_rows),
        previous_key=period_key(kind, prev_start),
        incidents=incidents,
        action_items=actions,
        patterns=patterns,
        postmortems=postmortems,
        pattern_since=cal.ist_date(pattern_start),
        strategies=strategies,
        achievement=achievement,
        series=series,
        experiments=experiments,
        cost=cost_section.build_cost_section(engine, kind, period, as_of),
        alert_tuning=alert_tuning_section.build_alert_tuning(engine, period, as_of) if kind == "monthly" else None,
        goals=goals_section.build(engine, kind, key, ps, pe, [ln for t in tables for ln in t.lines]),
        team=team_section.build(engine, kind, key, ps, start, end),
    )


# ---------------------------------------------------------------- sheet rows
def sheet_rows(r: ReviewReport) -> dict:
    cat = kpi_catalog()
    period_tab = period_sheet_tab(
        r.grain,
        r.period_key,
        r.period_start,
        r.period_end,
        r.is_complete,
        {k: f.fig.value for k, f in r.figures.items()},
    )
    scorecard = {
        "header": ["Metric", "Target", "Current", "Trend", "Status", "Unit", "Grain", "Period"],
        "rows": [
            [
                render.sheet_text(ln.fig.label),
                render.sheet_text(ln.fig.target_text or "—"),
                sheet_number(ln.fig.value),
                ln.trend_text,
                "planned" if ln.planned else ln.fig.status,
                ln.fig.unit,
                r.grain,
                r.period_key,
            ]
            for ln in r.all_lines
        ],
        "key_columns": 0,
        "number_formats": {"Current": "float", "Metric": "text", "Target": "text"},
    }
    incidents = {
        "header": [
            "incident_id",
            "number",
            "priority",
            "title",
            "service",
            "state",
            "triggered_ist",
            "resolved_ist",
            "duration_minutes",
            "caused_by_deployment",
            "period",
        ],
        "rows": [
            [
                render.sheet_text(i.inc.incident_id),
                i.inc.number,
                i.inc.priority,
                render.sheet_text(i.inc.title),
                render.sheet_text(i.inc.service),
                i.inc.state,
                ist_text(i.inc.triggered_at, with_year=True),
                ist_text(i.inc.resolved_at, with_year=True) if i.inc.resolved_at else None,
                None if i.duration_minutes is None else round(i.duration_minutes, 2),
                render.sheet_text(i.caused_by_deployment) if i.caused_by_deployment else None,
                r.period_key,
            ]
            for i in r.incidents
        ],
        "key_columns": 1,
        "number_formats": {
            "incident_id": "text",
            "number": "int",
            "title": "text",
            "service": "text",
            "duration_minutes": "float",
            "caused_by_deployment": "text",
        },
    }
    strategies = {
        "header": ["period_key", "strategy", "trades", "wins", "win_rate_pct", "net_pnl_inr"],
        "rows": [
            [
                r.period_key,
                render.sheet_text(s.strategy),
                s.trades,
                s.wins,
                sheet_number(s.win_rate_pct),
                s.net_pnl_inr,
            ]
            for s in r.strategies
        ],
        "key_columns": 2,
        "number_formats": {
            "period_key": "text",
            "strategy": "text",
            "trades": "int",
            "wins": "int",
            "win_rate_pct": "pct",
            "net_pnl_inr": "inr",
        },
    }
    definitions = {
        "header": ["KPI", "Name", "Domain", "Unit", "Target", "Formula"],
        "rows": [],
        "key_columns": 1,
        "number_formats": {"Target": "text", "Formula": "text"},
    }
    for k in cat.kpis.values():
        fig = make_figure(
            k.id, None, {"name": k.name, "unit": k.unit, "target": k.target, "comparator": k.comparator}
        )
        definitions["rows"].append(
            [
                k.id,
                render.sheet_text(k.name),
                k.domain,
                k.unit,
                render.sheet_text(fig.target_text or "—"),
                render.sheet_text(k.formula),
            ]
        )
    out = {TABS[r.kind]: period_tab, "Scorecard": scorecard, "Incidents": incidents, "Strategies": strategies}
    if r.action_items is not None:
        out["Action items"] = {
            "header": ["issue_number", "title", "priority", "owner", "incident_id", "status", "due", "url"],
            "rows": [
                [
                    a.issue_number,
                    render.sheet_text(a.title),
                    a.priority,
                    render.sheet_text(a.owner),
                    render.sheet_text(a.incident_id),
                    a.status,
                    a.due_text,
                    render.sheet_text(a.html_url) if a.html_url else None,
                ]
                for a in r.action_items
            ],
            "key_columns": 1,
            "number_formats": {"issue_number": "int", "title": "text", "owner": "text"},
        }
    out.update(goals_section.sheet_rows(r.goals, r.period_key))  # OKR scores, Backlog, Backlog impact
    out.update(team_section.sheet_rows(r.team, r.period_key))  # Team metrics (months, on-call per responder)
    out.update({cost_section.SHEET_TAB: tab} if (tab := cost_section.sheet_tab(r.cost, r.grain)) else {})  # Cost
    out["Definitions"] = definitions
    return out


# ---------------------------------------------------------------- rendering
CHARTS = ("equity_drawdown", "uptime_latency", "deployments", "incidents")
CHART_TITLES = {
    "equity_drawdown": "Equity curve and drawdown",
    "uptime_latency": "Uptime and p95 latency per day",
    "deployments": "Deployments and failed changes",
    "incidents": "Incidents by severity",
}


def render_charts(r: ReviewReport) -> dict[str, bytes]:
    """The PNG bytes of each of :data:`CHARTS`, in that order."""
    from kaizen.reports import charts

    s = r.series
    return {
        "equity_drawdown": charts.equity_drawdown(
            s["equity_days"],
            s["equity"],
            s["drawdown_pct"],
            highlight=(r.period_start, min(r.period_end, s["days"][-1] if s["days"] else r.period_end)),
        ),
        "uptime_latency": charts.uptime_latency(s["days"], s["uptime_pct"], s["p95_ms"]),
        "deployments": charts.deployments(s["deploy_labels"], s["deployed"], s["failed"], per=s["deploy_per"]),
        "incidents": charts.incidents_by_severity(s["incident_labels"], s["incident_counts"]),
    }


SUMMARY_KPIS = {
    "win_rate_pct": "win rate",
    "net_pnl_inr": "net P&L",
    "uptime_pct": "uptime",
    "sli_p95_latency_ms": "p95 latency",
    "change_failure_rate_pct": "CFR",
}


def summary_line(r: ReviewReport) -> str:
    """Compact key figures ("win rate 57.3 %, net P&L ₹2,45,000, …"), so the delivery's
    revision note can say 'was X, now Y'."""
    parts = [f"{label} {r.figures[k].fig.display}" for k, label in SUMMARY_KPIS.items() if k in r.figures]
    parts.append(f"incidents {sum(r.incident_counts.values())}")
    parts.append(f"off target {len(r.off_target)}")
    return ", ".join(parts)


def review_hash(headline: dict, thread: list[dict], markdown: str, rows: dict) -> str:
    """sha256 over the headline and replies (metadata blocks left out, as the daily
    review's hash), the Markdown and the sheet rows."""
    canonical = json.dumps(
        {
            "headline": render.content_hash(headline),
            "thread": [render.content_hash(p) for p in thread],
            "markdown": markdown,
            "sheet_rows": rows,
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _html_body(markdown: str, images: dict[str, str]) -> str:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    html = md.render(markdown)
    for name, uri in images.items():
        html = html.replace(f'src="{name}.png"', f'src="{uri}"')
    return html


MARKDOWN_FILE = "review.md"
HTML_FILE = "review.html"


def render_review(report: ReviewReport, *, run_id: str, out_dir=None) -> dict:
    """The ``RenderedReview`` (docs/contracts.md): Slack headline + thread, Markdown and
    self-contained HTML (the charts embedded as data: URIs), sheet rows, content hash
    and summary. The chart PNGs, ``review.md`` and ``review.html`` are written to the
    artefact store (:func:`kaizen.artifacts.put_all`; ``KAIZEN_ARTIFACT_ROOT``, by
    default ``file://<out_dir>/artifacts``): ``charts`` maps each chart to its artefact
    URL and ``documents`` gives ``{"markdown": URL, "html": URL}``, so a deliver task on
    another worker reads them back. The Markdown links the charts as ``<name>.png``,
    the names they have beside it in the outbox and where it is published. Every Slack
    payload is checked against Block Kit's limits here, before anything is sent."""
    import base64

    from kaizen import artifacts

    chart_png = render_charts(report)
    context = {"r": report, "run_id": run_id or "manual", "chart_titles": CHART_TITLES, "charts": CHARTS}
    headline, thread = render.render_thread(SLACK_TEMPLATE, f"{report.report} {report.period_key}", **context)
    markdown = render.render_text(MARKDOWN_TEMPLATE, **context)
    images = {
        name: "data:image/png;base64," + base64.b64encode(data).decode("ascii") for name, data in chart_png.items()
    }
    html = render.render_text(HTML_TEMPLATE, title=report.title, body=_html_body(markdown, images))
    rows = sheet_rows(report)
    urls = artifacts.put_all(
        report.report,
        report.period_key,
        {**{f"{name}.png": data for name, data in chart_png.items()}, MARKDOWN_FILE: markdown, HTML_FILE: html},
        out_dir=out_dir,
    )
    return {
        "report": report.report,
        "period_key": report.period_key,
        "headline": headline,
        "thread": thread,
        "markdown": markdown,
        "html": html,
        "charts": {name: urls[f"{name}.png"] for name in chart_png},
        "documents": {"markdown": urls[MARKDOWN_FILE], "html": urls[HTML_FILE]},
        "sheet_rows": rows,
        "content_hash": review_hash(headline, thread, markdown, rows),
        "summary": summary_line(report),
    }
