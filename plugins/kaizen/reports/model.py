"""What every review is made of — the daily review (:mod:`kaizen.reports.daily`) and the
weekly, monthly and quarterly reviews (:mod:`kaizen.reports.review`) alike: a KPI as a
report shows it (:class:`Figure`, built by :func:`make_figure`), an incident as a report
shows it (:class:`Incident`, read by :func:`read_incidents`), the one table of KPI
labels, value and target formatting, the status texts, and the period tab of the KPI
sheet. Both reviews import this module; neither imports the other.

Figures are never invented: a KPI whose value is NULL shows its status
("n/a (insufficient data)", "no events", "stale"), and a KPI with no row at all shows
"n/a (not computed)" — never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen.reports import render


# ---------------------------------------------------------------- labels
class Label(NamedTuple):
    """A KPI's label in the source document's wording, which differs between the daily
    review and the period reviews for a few KPIs. ``None``: that review does not name
    the KPI, and shows the catalog name (``kpi_definitions.name``) if it shows it."""

    daily: str | None
    review: str | None  # weekly, monthly and quarterly reviews


REPORTS = Label._fields  # the columns of LABELS: "daily", "review"

# The one table of KPI labels; the catalog id is kept on the figure.
LABELS: dict[str, Label] = {
    # trading
    "trades_count": Label("Trades", "Trades"),
    "win_rate_pct": Label("Win Rate", "Win Rate"),
    "net_pnl_inr": Label("P&L", "Net P&L"),
    "avg_daily_pnl_inr": Label(None, "Average Daily P&L"),
    "largest_win_inr": Label("Largest Win", "Largest Win"),
    "largest_loss_inr": Label("Largest Loss", "Largest Loss"),
    "profit_factor": Label(None, "Profit Factor"),
    "sharpe_ratio": Label(None, "Sharpe Ratio"),
    "max_drawdown_pct": Label(None, "Max Drawdown"),
    "execution_success_pct": Label(None, "Trade Execution Success"),
    "avg_execution_ms": Label("Order Execution (avg)", "Avg Execution Time"),
    "p95_execution_ms": Label(None, "P95 Execution Time"),
    # reliability
    "uptime_pct": Label("Uptime (24×7)", "Uptime"),
    "session_uptime_pct": Label("Uptime (NSE session)", "Uptime (NSE session)"),
    "mtbf_days": Label(None, "MTBF (Mean Time Between Failures)"),
    "mttr_minutes": Label(None, "MTTR (Mean Time To Repair)"),
    "mttr_p50_minutes": Label(None, "MTTR (p50)"),
    "mttd_minutes": Label(None, "MTTD (Mean Time To Detect)"),
    "error_budget_remaining_pct": Label(None, "Error Budget remaining"),
    "sli_p95_latency_ms": Label("API Latency (p95)", "SLI (API latency P95)"),
    "downtime_minutes": Label(None, "Downtime"),
    "errors_count": Label("Errors", "Errors"),
    "alerts_per_day": Label("Alerts", "Alert Fatigue (alerts/day)"),
    "alerts_per_day_p0": Label("P0", None),
    "alerts_per_day_p1": Label("P1", None),
    "alerts_per_day_p2": Label("P2", None),
    # delivery
    "deployments_per_day": Label(None, "Deployment Frequency"),
    "lead_time_hours": Label(None, "Lead Time for Changes (p50)"),
    "lead_time_p90_hours": Label(None, "Lead Time for Changes (p90)"),
    "change_failure_rate_pct": Label(None, "Change Failure Rate"),
    "recovery_time_minutes": Label(None, "Recovery Time (deploy → resolved, p50)"),
    "action_items_on_time_pct": Label(None, "Post-mortem Action Items Completed"),
    "postmortems_on_time_pct": Label(None, "Post-mortems within 48 h"),
}


def kpi_label(kpi_id: str, report: str, definition: dict | None = None) -> str:
    """The label ``report`` ("daily" or "review") shows for ``kpi_id``: the table's,
    else the catalog name, else the id."""
    if report not in REPORTS:
        raise ValueError(f"report: {report!r} is not one of {', '.join(REPORTS)}")
    row = LABELS.get(kpi_id)
    label = getattr(row, report) if row else None
    return label or (definition or {}).get("name") or kpi_id


# ---------------------------------------------------------------- status texts
NULL_DISPLAY = {
    "insufficient_data": "n/a (insufficient data)",
    "no_events": "no events",
    "stale": "stale",
    "missing": "n/a (not computed)",
}

# A value that exists but is doubtful keeps its value and says why.
DOUBT_SUFFIX = {"stale": " (stale)", "insufficient_data": " (low sample)"}

COMPARATOR_TEXT = {">": ">", ">=": "≥", "<": "<", "<=": "≤", "≥": "≥", "≤": "≤"}

# Durations print with one decimal and their unit ("42.5 min", "3.0 days").
UNIT_SUFFIX = {"minutes": " min", "hours": " h", "days": " days"}

PRIORITY_ORDER = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}
STATE_ORDER = {"Open": 0, "Acknowledged": 1, "Resolved": 2}


# ---------------------------------------------------------------- model
@dataclass(frozen=True)
class Figure:
    """One KPI of the period as a review shows it."""

    kpi_id: str
    label: str
    name: str
    unit: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    comparator: str | None
    status: str  # kpi_values.status, or "missing" when there is no row
    display: str  # the formatted value, or the status text when there is no value
    target_text: str  # "> 55 %", "< 500 ms", "" when the KPI has no target
    mark: str

    @property
    def has_value(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Incident:
    incident_id: str
    number: int
    title: str  # untrusted: escaped by the templates
    service: str  # untrusted
    priority: str  # P0..P3, or "P?" when PagerDuty has none
    state: str  # Open, Acknowledged, Resolved (as of the window's end)
    triggered_at: datetime
    resolved_at: datetime | None
    triggered_ist: str  # "Fri 27 Nov 10:42 IST"
    resolved_ist: str | None


# ---------------------------------------------------------------- formatting
def format_value(unit: str, value: float) -> str:
    if unit == "inr":
        return render.inr(value)
    if unit == "pct":
        return render.pct(value)
    if unit == "ms":
        return render.ms(value)
    if unit == "count":
        return render.count(value)
    if unit == "per_day":
        return render.number(value, 1) + "/day"
    if unit in UNIT_SUFFIX:
        return render.number(value, 1) + UNIT_SUFFIX[unit]
    return render.number(value)


def format_target(unit: str, comparator: str | None, target: float | None) -> str:
    if target is None or not comparator:
        return ""
    op = COMPARATOR_TEXT.get(comparator, comparator)
    if unit == "inr":
        return f"{op} {render.inr(target)}"
    if unit == "pct":
        return f"{op} {render.number(target)} %"
    if unit == "ms":
        return f"{op} {render.number(target)} ms"
    if unit == "per_day":
        return f"{op} {render.number(target)}/day"
    return f"{op} {render.number(target)}{UNIT_SUFFIX.get(unit, '')}"


def _default_unit(kpi_id: str) -> str:
    for suffix, unit in (("_pct", "pct"), ("_inr", "inr"), ("_ms", "ms"), ("_count", "count")):
        if kpi_id.endswith(suffix):
            return unit
    return "per_day" if kpi_id.startswith("alerts_per_day") else "count"


def make_figure(kpi_id: str, row: dict | None, definition: dict | None, *, report: str = "daily") -> Figure:
    """The figure of ``kpi_id`` from its ``kpi_values`` row (None: not computed) and its
    ``kpi_definitions`` row, labelled for ``report`` ("daily" or "review")."""
    definition = definition or {}
    label = kpi_label(kpi_id, report, definition)
    unit = definition.get("unit") or _default_unit(kpi_id)
    comparator = definition.get("comparator")
    if row is None:
        target = definition.get("target")
        value = numerator = denominator = None
        status = "missing"
    else:
        target = row["target"] if row["target"] is not None else definition.get("target")
        value, numerator, denominator = row["value"], row["numerator"], row["denominator"]
        status = row["status"]
    has_target = target is not None and bool(comparator)
    if value is None:
        display = NULL_DISPLAY.get(status, "n/a")
    else:
        display = format_value(unit, value)
        if status in DOUBT_SUFFIX:
            display += DOUBT_SUFFIX[status]
    # A KPI without a target has nothing to be on or off: its mark is ➖ — unless its
    # data is doubtful, which always shows ⚠️.
    judged = (
        status if (has_target or status in ("stale", "insufficient_data", "missing", "no_events")) else None
    )
    return Figure(
        kpi_id=kpi_id,
        label=label,
        name=definition.get("name") or kpi_id,
        unit=unit,
        value=None if value is None else float(value),
        numerator=None if numerator is None else float(numerator),
        denominator=None if denominator is None else float(denominator),
        target=None if target is None else float(target),
        comparator=comparator,
        status=status,
        display=display,
        target_text=format_target(unit, comparator, target) if has_target else "",
        mark=render.status_mark(judged),
    )


def ist_text(ts: datetime, with_year: bool = False) -> str:
    local = ts.astimezone(cal.IST)
    return local.strftime("%a %d %b %Y %H:%M IST" if with_year else "%a %d %b %H:%M IST")


def as_utc(v) -> datetime | None:
    """A timestamp as the warehouse returns it (aware, naive UTC or ISO text) → aware UTC."""
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    if v.tzinfo is None:  # SQLite text without offset: the warehouse writes UTC
        v = v.replace(tzinfo=cal.UTC)
    return v.astimezone(cal.UTC)


# ---------------------------------------------------------------- reading
def read_incidents(conn: sa.Connection, start: datetime, end: datetime) -> list[Incident]:
    """Incidents open at the window's end (triggered before it, not resolved before
    it) and incidents resolved inside the window. State is as of the window's end,
    from the timestamps, so a backfill shows what was true at 16:00 IST that day."""
    q = sa.text(
        "select incident_id, incident_number, title, service, priority, triggered_at, "
        "acknowledged_at, resolved_at from raw_incidents "
        "where triggered_at < :end and (resolved_at is null or resolved_at >= :start)"
    )
    out = []
    for r in conn.execute(q, {"start": cal.utc_text(start), "end": cal.utc_text(end)}):
        trig, ack, res = as_utc(r.triggered_at), as_utc(r.acknowledged_at), as_utc(r.resolved_at)
        if res is not None and res < end:
            state = "Resolved"
        elif ack is not None and ack < end:
            state = "Acknowledged"
        else:
            state = "Open"
            res = None
        if state != "Resolved":
            res = None
        out.append(
            Incident(
                incident_id=r.incident_id,
                number=int(r.incident_number),
                title=r.title,
                service=r.service,
                priority=r.priority or "P?",
                state=state,
                triggered_at=trig,
                resolved_at=res,
                triggered_ist=ist_text(trig),
                resolved_ist=ist_text(res) if res else None,
            )
        )
    out.sort(
        key=lambda i: (STATE_ORDER[i.state] > 1, PRIORITY_ORDER.get(i.priority, 9), i.triggered_at, i.number)
    )
    return out


def kpi_catalog():
    from kaizen.kpis import catalog as catalog_mod

    return catalog_mod.load_catalog()


# ---------------------------------------------------------------- sheet rows
SHEET_FORMATS = {
    "pct": "pct",
    "inr": "inr",
    "count": "int",
    "ms": "float",
    "minutes": "float",
    "hours": "float",
    "days": "float",
    "ratio": "float",
    "per_day": "float",
}


def sheet_number(v) -> float | None:
    """A sheet cell's number: None (an empty cell) for NULL, NaN and infinities."""
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else v


def period_sheet_tab(grain: str, period_key: str, start, end, is_complete: bool, values: dict) -> dict:
    """One row per period (key ``period_key``), one column per active KPI of the grain;
    a KPI without a value is an empty cell, never 0."""
    active = list(kpi_catalog().active(grain))
    return {
        "header": ["period_key", "period_start", "period_end", "is_complete"] + [k.id for k in active],
        "rows": [
            [period_key, start.isoformat(), end.isoformat(), bool(is_complete)]
            + [sheet_number(values.get(k.id)) for k in active]
        ],
        "key_columns": 1,
        "number_formats": {
            "period_key": "text",
            **{k.id: SHEET_FORMATS.get(k.unit, "float") for k in active},
        },
    }
