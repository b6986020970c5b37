"""The daily review (the source document's "Daily Reviews" template) for one trading
day: a plain model read from ``kpi_values`` (grain ``day``) × ``kpi_definitions`` and
``raw_incidents``, then rendered to a Slack Block Kit payload and a Markdown document.

Figures and incidents are built as in every review (:mod:`kaizen.reports.model`):
a KPI whose value is NULL shows its status ("n/a (insufficient data)", "no events",
"stale"), and a KPI with no row at all shows "n/a (not computed)" — never 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen.period import Period
from kaizen.reports import render
from kaizen.reports.model import Figure, Incident, ist_text, make_figure, period_sheet_tab, read_incidents
from kaizen.warehouse import outages

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

# What each source feeds: the figures it makes and the sections they sit in. A source
# that could not deliver the window (kaizen.warehouse.outages) shows its figures as
# "unavailable" and its sections say why; a source with no section gets a note.
SOURCE_FIGURES = {
    "trading": TRADING_KPIS + ("avg_execution_ms",),
    "prometheus": ("uptime_pct", "session_uptime_pct", "sli_p95_latency_ms", "errors_count"),
    "pagerduty": ("alerts_per_day", "alerts_per_day_p0", "alerts_per_day_p1", "alerts_per_day_p2"),
}
SOURCE_SECTIONS = {"trading": ("trading", "system"), "prometheus": ("system",), "pagerduty": ("system", "issues")}
UNAVAILABLE = "unavailable"

PROBABLE_HOLIDAY = "no trades — probable market holiday, not in the calendar"


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
    # section (trading, system, issues) -> "unavailable: <source> (<reason>)" lines
    unavailable: dict[str, list[str]] = field(default_factory=dict)

    @property
    def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if i.state != "Resolved"]

    @property
    def resolved_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if i.state == "Resolved"]

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- alerts
def _alert_count(f: Figure) -> int | None:
    """The numerator is the alert count; value × days only if a writer left it out."""
    if f.numerator is not None:
        return int(round(f.numerator))
    if f.value is not None and f.denominator is not None:
        return int(round(f.value * f.denominator))
    return None


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


def build_daily(engine: sa.Engine, day: date) -> DailyReport:
    """The daily review model for trading day ``day`` (reads only; no writes)."""
    start, end = Period.day(day).window_utc()
    with engine.connect() as conn:
        rows, defs = read_kpis(conn, day)
        incidents = read_incidents(conn, start, end)
        down = outages.of_day(conn, day)
    figures = {k: make_figure(k, rows.get(k), defs.get(k)) for k in DAILY_KPIS}
    notes = cal.provisional_notes(day)
    unavailable: dict[str, list[str]] = {}
    for source, outage in down.items():
        for kpi_id in SOURCE_FIGURES.get(source, ()):
            figures[kpi_id] = replace(figures[kpi_id], display=UNAVAILABLE, mark=render.status_mark("stale"))
        for section in SOURCE_SECTIONS.get(source, ()):
            unavailable.setdefault(section, []).append(outage.text)
        if source not in SOURCE_SECTIONS:
            notes.append(outage.text[0].upper() + outage.text[1:])
    if "pagerduty" in down:
        incidents = []  # what is stored may be stale: no list (and never "No incidents")
    if cal.is_provisional(day.year) and figures["trades_count"].status == "no_events":
        # the measures call a trade-less, order-less day of a provisional year "no events"
        figures["trades_count"] = replace(figures["trades_count"], display=PROBABLE_HOLIDAY)
        notes.insert(0, f"{PROBABLE_HOLIDAY[0].upper()}{PROBABLE_HOLIDAY[1:]}: no trade and no order on "
                        f"{day:%a %d %b %Y}. If NSE was closed, add the day to 'holidays' in "
                        f"{cal.shown_path(cal.calendar().overrides_file)}.")
    per_day = figures["alerts_per_day"]

    def count(f: Figure) -> int | None:
        return None if "pagerduty" in down else _alert_count(f)

    alerts = AlertCounts(
        total=count(per_day),
        p0=count(figures["alerts_per_day_p0"]),
        p1=count(figures["alerts_per_day_p1"]),
        p2=count(figures["alerts_per_day_p2"]),
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
        unavailable=unavailable,
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
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select kpi_id, value from kpi_values where grain = 'day' and period_start = :d"),
            {"d": day.isoformat()},
        ).all()
    values = {k: v for k, v in rows}
    return {"Daily": period_sheet_tab("day", day.isoformat(), day, day, True, values)}
