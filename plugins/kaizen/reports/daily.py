"""The daily review (the source document's "Daily Reviews" template) for one trading
day: a plain model read from ``kpi_values`` (grain ``day``) × ``kpi_definitions`` and
``raw_incidents``, then rendered to a Slack Block Kit payload and a Markdown document.

Figures are never invented: a KPI whose value is NULL shows its status
("n/a (insufficient data)", "no events", "stale"), and a KPI with no row at all shows
"n/a (not computed)" — never 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen.reports import render

SLACK_TEMPLATE = "daily_review.slack.json.j2"
MARKDOWN_TEMPLATE = "daily_review.md.j2"

TRADING_KPIS = ("trades_count", "win_rate_pct", "net_pnl_inr", "largest_win_inr", "largest_loss_inr")
SYSTEM_KPIS = (
    "uptime_pct",
    "session_uptime_pct",
    "sli_p95_latency_ms",
    "avg_execution_ms",
    "errors_count",
    "alerts_per_day",
    "alerts_per_day_p0",
    "alerts_per_day_p1",
    "alerts_per_day_p2",
)
DAILY_KPIS = TRADING_KPIS + SYSTEM_KPIS

# Labels are the source document's wording; the catalog name is kept on the model.
LABELS = {
    "trades_count": "Trades",
    "win_rate_pct": "Win Rate",
    "net_pnl_inr": "P&L",
    "largest_win_inr": "Largest Win",
    "largest_loss_inr": "Largest Loss",
    "uptime_pct": "Uptime (24×7)",
    "session_uptime_pct": "Uptime (NSE session)",
    "sli_p95_latency_ms": "API Latency (p95)",
    "avg_execution_ms": "Order Execution (avg)",
    "errors_count": "Errors",
    "alerts_per_day": "Alerts",
    "alerts_per_day_p0": "P0",
    "alerts_per_day_p1": "P1",
    "alerts_per_day_p2": "P2",
}

NULL_DISPLAY = {
    "insufficient_data": "n/a (insufficient data)",
    "no_events": "no events",
    "stale": "stale",
    "missing": "n/a (not computed)",
}

PROBABLE_HOLIDAY = "no trades — probable market holiday, not in the calendar"

# A value that exists but is doubtful keeps its value and says why.
DOUBT_SUFFIX = {"stale": " (stale)", "insufficient_data": " (low sample)"}

COMPARATOR_TEXT = {">": ">", ">=": "≥", "<": "<", "<=": "≤", "≥": "≥", "≤": "≤"}

PRIORITY_ORDER = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}
STATE_ORDER = {"Open": 0, "Acknowledged": 1, "Resolved": 2}


@dataclass(frozen=True)
class Figure:
    """One KPI of the day as the review shows it."""

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


@dataclass(frozen=True)
class AlertCounts:
    """Alerts fired in the review window (counts, from the KPIs' numerators)."""

    total: int | None
    p0: int | None
    p1: int | None
    p2: int | None
    days: float | None  # calendar days in the window (the KPI's denominator)
    per_day: Figure

    def text(self, n) -> str:
        return "n/a" if n is None else render.count(n)


@dataclass(frozen=True)
class DailyReport:
    day: date
    title_date: str  # "Fri 27 Nov 2026"
    window_start_utc: datetime
    window_end_utc: datetime
    window_text: str  # "since Thu 26 Nov 16:00 IST"
    cutoff_text: str  # "16:00 IST": the review time that ends the window
    figures: dict[str, Figure]
    alerts: AlertCounts
    incidents: list[Incident] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # calendar warnings, shown under the title

    @property
    def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if i.state != "Resolved"]

    @property
    def resolved_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if i.state == "Resolved"]

    def as_dict(self) -> dict:
        return asdict(self)


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
    return f"{op} {render.number(target)}"


def _default_unit(kpi_id: str) -> str:
    for suffix, unit in (("_pct", "pct"), ("_inr", "inr"), ("_ms", "ms"), ("_count", "count")):
        if kpi_id.endswith(suffix):
            return unit
    return "per_day" if kpi_id.startswith("alerts_per_day") else "count"


def make_figure(kpi_id: str, row: dict | None, definition: dict | None) -> Figure:
    definition = definition or {}
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
        label=LABELS.get(kpi_id, definition.get("name") or kpi_id),
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


def _alert_count(f: Figure) -> int | None:
    """The numerator is the alert count; value × days only if a writer left it out."""
    if f.numerator is not None:
        return int(round(f.numerator))
    if f.value is not None and f.denominator is not None:
        return int(round(f.value * f.denominator))
    return None


def ist_text(ts: datetime, with_year: bool = False) -> str:
    local = ts.astimezone(cal.IST)
    return local.strftime("%a %d %b %Y %H:%M IST" if with_year else "%a %d %b %H:%M IST")


def _as_utc(v) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    if v.tzinfo is None:  # SQLite text without offset: the warehouse writes UTC
        v = v.replace(tzinfo=cal.UTC)
    return v.astimezone(cal.UTC)


# ---------------------------------------------------------------- reading
def read_kpis(conn: sa.Connection, day: date, kpi_ids=DAILY_KPIS) -> tuple[dict, dict]:
    ids = list(kpi_ids)
    q_values = sa.text(
        "select kpi_id, value, numerator, denominator, target, status "
        "from kpi_values where grain = 'day' and period_start = :day and kpi_id in :ids"
    ).bindparams(sa.bindparam("ids", expanding=True))
    q_defs = sa.text(
        "select kpi_id, name, unit, target, comparator from kpi_definitions where kpi_id in :ids"
    ).bindparams(sa.bindparam("ids", expanding=True))
    rows = {r.kpi_id: dict(r._mapping) for r in conn.execute(q_values, {"day": day.isoformat(), "ids": ids})}
    defs = {r.kpi_id: dict(r._mapping) for r in conn.execute(q_defs, {"ids": ids})}
    return rows, defs


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
        trig, ack, res = _as_utc(r.triggered_at), _as_utc(r.acknowledged_at), _as_utc(r.resolved_at)
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


def build_daily(engine: sa.Engine, day: date) -> DailyReport:
    """The daily review model for trading day ``day`` (reads only; no writes)."""
    start, end = cal.review_window_utc(day)
    with engine.connect() as conn:
        rows, defs = read_kpis(conn, day)
        incidents = read_incidents(conn, start, end)
    figures = {k: make_figure(k, rows.get(k), defs.get(k)) for k in DAILY_KPIS}
    notes = cal.provisional_notes(day)
    if cal.is_provisional(day.year) and figures["trades_count"].status == "no_events":
        # the measures call a trade-less, order-less day of a provisional year "no events"
        figures["trades_count"] = replace(figures["trades_count"], display=PROBABLE_HOLIDAY)
        notes.insert(0, f"{PROBABLE_HOLIDAY[0].upper()}{PROBABLE_HOLIDAY[1:]}: no trade and no order on "
                        f"{day:%a %d %b %Y}. If NSE was closed, add the day to 'holidays' in "
                        f"{cal.shown_path(cal.calendar().overrides_file)}.")
    per_day = figures["alerts_per_day"]
    alerts = AlertCounts(
        total=_alert_count(per_day),
        p0=_alert_count(figures["alerts_per_day_p0"]),
        p1=_alert_count(figures["alerts_per_day_p1"]),
        p2=_alert_count(figures["alerts_per_day_p2"]),
        days=per_day.denominator
        if per_day.denominator is not None
        else (end - start).total_seconds() / 86400,
        per_day=per_day,
    )
    return DailyReport(
        day=day,
        title_date=day.strftime("%a %d %b %Y"),
        window_start_utc=start,
        window_end_utc=end,
        window_text="since " + ist_text(start),
        cutoff_text=end.astimezone(cal.IST).strftime("%H:%M IST"),
        figures=figures,
        alerts=alerts,
        incidents=incidents,
        notes=notes,
    )


# ---------------------------------------------------------------- rendering
def render_daily(report: DailyReport, run_id: str | None = None) -> dict:
    """Both artefacts of the review, JSON-able (it travels as an XCom):
    ``{"payload": Block Kit dict, "markdown": str, "content_hash": str, "day": iso}``.
    The payload is checked against Block Kit's limits here, before anything is sent."""
    context = {"r": report, "f": report.figures, "run_id": run_id or "manual"}
    payload = render.render_json(SLACK_TEMPLATE, **context)
    problems = render.check_block_kit(payload)
    if problems:
        raise ValueError(f"daily review for {report.day} breaks Block Kit limits: {'; '.join(problems)}")
    markdown = render.render_text(MARKDOWN_TEMPLATE, **context)
    return {
        "day": report.day.isoformat(),
        "payload": payload,
        "markdown": markdown,
        "content_hash": render.content_hash(payload),
    }


def daily_sheet_rows(engine, day: date) -> dict:
    """The Daily tab's row for ``day``: every day-grain KPI as stored in kpi_values."""
    from kaizen.reports.review import period_sheet_tab

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select kpi_id, value from kpi_values where grain = 'day' and period_start = :d"),
            {"d": day.isoformat()},
        ).all()
    values = {k: v for k, v in rows}
    return {"Daily": period_sheet_tab("day", day.isoformat(), day, day, True, values)}
