"""The reviews' cost section: the weekly "Cost analysis", the monthly "Cost efficiency"
and the quarterly "ROI analysis" (with the cost figures), and the "Cost" Sheet tab.

Every figure is computed as the cost KPIs compute it (:mod:`kaizen.cost.measures`: the
billed days of the period to date, Tax excluded), for the reviewed period and the one
before it (whole, each observed from the history's start as the KPIs are):

- total, per day, per trade, net P&L of the billed days and ROI (net P&L ÷ cost), and
  net P&L after infrastructure (net P&L − cost);
- the change vs the previous period: of the total, and of the cost per day and per
  trade (a period to date is compared per day, never by its partial total alone);
- the top :data:`TOP_SERVICES` services by cost (share of the total, cost per day and
  its change), the rest summed;
- credits and refunds (counted, ≤ 0) and Tax (not counted), said beside the total.

A section without figures says why: no billing export configured (live mode without
``KAIZEN_CUR_ROOT`` and nothing landed), nothing billed in the period yet, or the
export unavailable on a day of the period (``source_outages``: the figures then are as
last landed, and say so). The review always goes out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from kaizen.cost.measures import CostWindow, window_of
from kaizen.period import Period, range_text
from kaizen.reports import render

log = logging.getLogger(__name__)

TOP_SERVICES = 5
OUTAGE_SOURCE = "aws_cur"  # the cost source's name in source_outages (its module)


@dataclass(frozen=True)
class ServiceLine:
    service: str
    cost_inr: float
    share_pct: float | None
    per_day_inr: float | None
    previous_per_day_inr: float | None
    cost_text: str
    share_text: str
    per_day_text: str
    change_text: str  # cost per day vs the previous period: "−8.4 %", "new", "n/a"


@dataclass(frozen=True)
class CostSection:
    kind: str  # weekly, monthly, quarterly
    period_key: str
    previous_key: str
    available: bool  # figures to show
    note: str  # why there are none, or what the figures cover
    warnings: list[str] = field(default_factory=list)  # unavailable export, stale days
    # the period (billed days)
    days: int = 0
    days_to_date: int = 0
    trades: int = 0
    total_inr: float | None = None
    per_day_inr: float | None = None
    per_trade_inr: float | None = None
    net_pnl_inr: float | None = None
    roi: float | None = None
    credits_inr: float = 0.0
    tax_inr: float = 0.0
    billed_through: date | None = None
    # the previous period
    previous_total_inr: float | None = None
    previous_per_day_inr: float | None = None
    previous_per_trade_inr: float | None = None
    previous_roi: float | None = None
    services: list[ServiceLine] = field(default_factory=list)
    all_services: list[ServiceLine] = field(default_factory=list)  # the Sheet tab's rows
    other: ServiceLine | None = None  # the services below the top ones, summed
    rate_text: str = ""  # "USD at ₹84.00 per $ (KAIZEN_COST_INR_PER_USD)"

    # ------------------------------------------------------------ texts
    @property
    def total_text(self) -> str:
        return _inr(self.total_inr)

    @property
    def per_day_text(self) -> str:
        return _inr(self.per_day_inr)

    @property
    def per_trade_text(self) -> str:
        return _inr(self.per_trade_inr, 2)

    @property
    def net_pnl_text(self) -> str:
        return _inr(self.net_pnl_inr)

    @property
    def net_after_cost_text(self) -> str:
        if self.net_pnl_inr is None or self.total_inr is None or not self.trades:
            return "n/a"
        return render.inr(self.net_pnl_inr - self.total_inr)

    @property
    def roi_text(self) -> str:
        return roi_text(self.roi)

    @property
    def previous_total_text(self) -> str:
        return _inr(self.previous_total_inr)

    @property
    def previous_per_day_text(self) -> str:
        return _inr(self.previous_per_day_inr)

    @property
    def previous_per_trade_text(self) -> str:
        return _inr(self.previous_per_trade_inr, 2)

    @property
    def previous_roi_text(self) -> str:
        return roi_text(self.previous_roi)

    @property
    def change_total_text(self) -> str:
        return change_text(self.total_inr, self.previous_total_inr, money=True)

    @property
    def change_per_day_text(self) -> str:
        return change_text(self.per_day_inr, self.previous_per_day_inr, money=True)

    @property
    def change_per_trade_text(self) -> str:
        return change_text(self.per_trade_inr, self.previous_per_trade_inr, money=True, decimals=2)

    @property
    def change_roi_text(self) -> str:
        if self.roi is None or self.previous_roi is None:
            return "n/a"
        d = self.roi - self.previous_roi
        return render.signed(d, f"{abs(d):.2f}", True) + "×"

    @property
    def credits_text(self) -> str:
        return render.inr(self.credits_inr)

    @property
    def tax_text(self) -> str:
        return render.inr(self.tax_inr)


def _inr(v: float | None, decimals: int = 0) -> str:
    return "n/a" if v is None else render.inr(v, decimals)


def roi_text(v: float | None) -> str:
    """ROI as a multiple: '2.25×' (₹2.25 of net P&L per ₹1 of infrastructure)."""
    if v is None:
        return "n/a"
    return render.signed(v, f"{abs(v):.2f}", False) + "×"


def change_text(cur: float | None, prev: float | None, *, money: bool = False, decimals: int = 0) -> str:
    """'+₹1,234 (+5.2 %)', '−3.1 %', 'n/a' (either side missing), 'new' (nothing before)."""
    if cur is None or prev is None:
        return "n/a"
    if prev == 0:
        return "new" if cur else "±0"
    pct = 100.0 * (cur - prev) / abs(prev)
    pct_text = ("+" if pct > 0 else "") + render.number(pct, 1) + " %"
    if money:
        return f"{render.inr(cur - prev, decimals, plus=True)} ({pct_text})"
    return pct_text


# ---------------------------------------------------------------- reading
def _configured() -> str | None:
    """The export the source reads, or None when none is configured."""
    from kaizen.sources.aws_cur import cur_root

    try:
        root = cur_root()
    except Exception as exc:  # a bad setting: the section says so, the review goes out
        return f"(misconfigured: {' '.join(str(exc).split())})"
    return root[0] if root else None


def _rate_text(conn) -> str:
    rates = sorted({float(r[0]) for r in conn.execute(sa.text(
        "select distinct inr_per_usd from cost_exports where inr_per_usd is not null"))})
    if not rates:
        return "billed in INR"
    return "USD converted at " + ", ".join(f"₹{r:,.2f}" for r in rates) + " per $ (KAIZEN_COST_INR_PER_USD)"


def _outages(conn, first: date, last: date) -> list[str]:
    if not sa.inspect(conn).has_table("source_outages"):
        return []
    rows = conn.execute(sa.text(
        "select day, reason from source_outages where source = :s and recovered_at is null "
        "and day >= :first and day <= :last order by day"), {"s": OUTAGE_SOURCE, "first": first.isoformat(),
                                                             "last": last.isoformat()}).all()
    return [f"unavailable: {OUTAGE_SOURCE} since {str(d)[:10]} ({reason}) — figures as last landed" for d, reason in rows[:1]]


def _observed_window(conn, period: Period, as_of: datetime | None) -> CostWindow | None:
    """The period's cost window as its KPIs see it: to ``as_of``, from the history's start."""
    from kaizen.kpis import periods

    scope = periods.observed(periods.scope_of(period, as_of), periods.history_start(conn))
    return window_of(conn, scope.start, scope.end)


def _service_lines(cur: CostWindow, prev: CostWindow | None) -> list[ServiceLine]:
    total = cur.cost_inr
    days = len(cur.billed)
    pdays = len(prev.billed) if prev else 0
    out = []
    for service, cost in sorted(cur.services.items(), key=lambda kv: (-kv[1], kv[0])):
        per_day = cost / days if days else None
        prev_cost = prev.services.get(service) if prev else None
        prev_day = (prev_cost / pdays) if prev_cost is not None and pdays else None
        change = change_text(per_day, prev_day) if prev_day is not None else ("new" if prev and pdays else "n/a")
        out.append(ServiceLine(
            service=service, cost_inr=cost, share_pct=100.0 * cost / total if total > 0 else None,
            per_day_inr=per_day, previous_per_day_inr=prev_day, cost_text=render.inr(cost),
            share_text=render.pct(100.0 * cost / total, 1) if total > 0 else "n/a",
            per_day_text=_inr(per_day), change_text=change))
    return out


def build_cost_section(engine: sa.Engine, kind: str, period: Period, as_of: datetime) -> CostSection:
    """The cost section of the ``kind`` review of ``period`` as of ``as_of`` (reads only)."""
    previous = period.previous()[0]
    key, prev_key = period.key, previous.key
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("cost_exports"):
                return CostSection(kind, key, prev_key, False, "No cost data yet: the warehouse has no billing tables.")
            cur = _observed_window(conn, period, as_of)
            prev = _observed_window(conn, previous, None)
            warnings = _outages(conn, period.start, period.end)
            rate = _rate_text(conn) if cur is not None and cur.has_export else ""
    except Exception as exc:  # the review goes out without its cost figures
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log.exception("review %s: the cost section could not be read", key)
        return CostSection(kind, key, prev_key, False, f"Cost figures unavailable: {reason}")
    if cur is None or not cur.has_export:
        root = _configured()
        if root is None:
            note = ("No cost data: no billing export is configured. Set KAIZEN_CUR_ROOT to the AWS Data Exports "
                    "(CUR 2.0) folder, s3://<bucket>/<prefix>/<export-name>.")
        else:
            note = f"No cost data yet: nothing has landed from the billing export {root}."
        return CostSection(kind, key, prev_key, False, note, warnings=warnings)
    through = cur.billed_through
    if not cur.billed:
        where = f"the export is billed through {through.day} {through:%b %Y}" if through else "no day billed yet"
        return CostSection(kind, key, prev_key, False, f"No day of {key} billed yet ({where}).",
                           warnings=warnings, days_to_date=len(cur.days), billed_through=through)
    if cur.stale:
        d0, d1 = cur.stale_days[0], cur.stale_days[-1]
        warnings = warnings + [f"the bill lags: {range_text(d0, d1) if d0 != d1 else d0.strftime('%d %b %Y')} "
                               "not billed yet (stale)"]
    days = len(cur.billed)
    pdays = len(prev.billed) if prev is not None else 0
    lines = _service_lines(cur, prev)
    top, rest = lines[:TOP_SERVICES], lines[TOP_SERVICES:]
    other = None
    if rest:
        cost = sum(s.cost_inr for s in rest)
        prev_rest = sum(prev.services.get(s.service, 0.0) for s in rest) if prev is not None and pdays else None
        per_day, prev_day = cost / days, (prev_rest / pdays if prev_rest is not None else None)
        other = ServiceLine(f"{len(rest)} other service{'s' if len(rest) > 1 else ''}", cost,
                            100.0 * cost / cur.cost_inr if cur.cost_inr > 0 else None, per_day, prev_day,
                            render.inr(cost), render.pct(100.0 * cost / cur.cost_inr, 1) if cur.cost_inr > 0 else "n/a",
                            render.inr(per_day), change_text(per_day, prev_day))
    has_prev = prev is not None and pdays > 0
    section = CostSection(
        kind=kind, period_key=key, previous_key=prev_key, available=True,
        note=f"{range_text(cur.billed[0], cur.billed[-1])}: {days} of {len(cur.days)} day"
             f"{'' if len(cur.days) == 1 else 's'} to date billed",
        warnings=warnings, days=days, days_to_date=len(cur.days), trades=cur.trades, total_inr=cur.cost_inr,
        per_day_inr=cur.cost_inr / days, per_trade_inr=cur.cost_inr / cur.trades if cur.trades else None,
        net_pnl_inr=cur.net_pnl_inr if cur.trades else None,
        roi=cur.net_pnl_inr / cur.cost_inr if cur.trades and cur.cost_inr > 0 else None,
        credits_inr=cur.credits_inr, tax_inr=cur.tax_inr, billed_through=cur.billed[-1],
        previous_total_inr=prev.cost_inr if has_prev else None,
        previous_per_day_inr=prev.cost_inr / pdays if has_prev else None,
        previous_per_trade_inr=prev.cost_inr / prev.trades if has_prev and prev.trades else None,
        previous_roi=prev.net_pnl_inr / prev.cost_inr if has_prev and prev.trades and prev.cost_inr > 0 else None,
        services=top, all_services=lines, other=other, rate_text=rate,
    )
    return section


# ---------------------------------------------------------------- sheet tab
SHEET_TAB = "Cost"


def sheet_tab(section: CostSection | None, grain: str) -> dict | None:
    """The "Cost" tab's rows of one review: a row per service and a total row (service
    ``(total)``) per period, keyed by period and service; None without figures."""
    if section is None or not section.available:
        return None
    from kaizen.reports.model import sheet_number

    def row(service, cost, share, per_day, prev_day, change_pct, **total):
        return [section.period_key, grain, render.sheet_text(service), sheet_number(cost), sheet_number(share),
                sheet_number(per_day), sheet_number(prev_day), sheet_number(change_pct),
                total.get("days"), total.get("trades"), sheet_number(total.get("per_trade")),
                sheet_number(total.get("net_pnl")), sheet_number(total.get("roi")),
                total.get("through")]

    def pct_change(cur, prev):
        return 100.0 * (cur - prev) / abs(prev) if cur is not None and prev else None

    rows = [row("(total)", section.total_inr, 100.0, section.per_day_inr, section.previous_per_day_inr,
                pct_change(section.per_day_inr, section.previous_per_day_inr), days=section.days,
                trades=section.trades, per_trade=section.per_trade_inr, net_pnl=section.net_pnl_inr,
                roi=section.roi, through=section.billed_through.isoformat() if section.billed_through else None)]
    rows += [row(s.service, s.cost_inr, s.share_pct, s.per_day_inr, s.previous_per_day_inr,
                 pct_change(s.per_day_inr, s.previous_per_day_inr)) for s in section.all_services]
    return {
        "header": ["period_key", "grain", "service", "cost_inr", "share_pct", "cost_per_day_inr",
                   "previous_cost_per_day_inr", "change_per_day_pct", "billed_days", "trades", "cost_per_trade_inr",
                   "net_pnl_inr", "roi", "billed_through"],
        "rows": rows,
        "key_columns": 3,
        "number_formats": {"period_key": "text", "grain": "text", "service": "text", "cost_inr": "inr",
                           "share_pct": "pct", "cost_per_day_inr": "inr", "previous_cost_per_day_inr": "inr",
                           "change_per_day_pct": "pct", "billed_days": "int", "trades": "int",
                           "cost_per_trade_inr": "inr", "net_pnl_inr": "inr", "roi": "float",
                           "billed_through": "text"},
    }
