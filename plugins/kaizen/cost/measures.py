"""The cost KPIs of a week, month or quarter, from ``raw_cost_daily`` and
``cost_exports`` (:mod:`kaizen.sources.aws_cur`) and the trading day facts.

A period's cost days are its calendar dates to date (the IST dates of its window; a
cost day is a UTC date of the bill, taken as the same calendar date) that the billing
export has *billed*: on or before a billing period's ``billed_through``. Every figure
is taken over those billed days only, so a bill that lags the trades never divides
two days of cost by three days of trades:

- ``infra_cost_inr``: Σ ``cost_inr`` of the counted line items (every type but Tax:
  see the cost rule in :mod:`kaizen.sources.aws_cur`) of the billed days (₹);
- ``infra_cost_per_day_inr``: that ÷ billed days (numerator ₹, denominator days);
- ``infra_cost_per_trade_inr``: that ÷ trades closed on the billed days (numerator ₹,
  denominator trades); no trade on them → NULL, ``no_events``;
- ``roi``: net P&L of the trades closed on the billed days ÷ their cost (numerator
  net P&L ₹, denominator cost ₹): rupees earned per rupee of infrastructure; no trade
  → NULL, ``no_events``; a cost ≤ 0 (credits above usage) → NULL, ``no_events``.

Stale: a day of the period whose end (UTC) is at least :data:`BILL_LAG` before the
period's end (to date) is not billed — the export is behind by more than AWS's usual
refresh lag, or it began after the period did. No export ever landed → every figure
NULL with no sample (``insufficient_data``). Sums are exact (``math.fsum``), so
SQLite and PostgreSQL give the same figures to the last bit.

:func:`cost_figures` returns plain dicts (the fields of
:class:`kaizen.kpis.measures.Measure`): this module is imported by the KPI measures,
so it cannot import them back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from kaizen import calendar as cal
from kaizen import warehouse
from kaizen.warehouse import facts

KPI_IDS = ("infra_cost_inr", "infra_cost_per_day_inr", "infra_cost_per_trade_inr", "roi")
GRAINS = ("week", "month", "quarter")
BILL_LAG = timedelta(days=1)  # AWS refreshes the export at least daily
CREDIT_TYPES = ("Credit", "Refund")


@dataclass(frozen=True)
class CostWindow:
    """The cost of a span of calendar dates, over the days the export has billed."""

    first: date
    last: date
    days: tuple[date, ...]  # every calendar date of the span
    billed: tuple[date, ...]  # those the export has billed
    has_export: bool  # any billing period landed at all
    billed_through: date | None  # the latest billed day (any billing period)
    cost_inr: float  # counted cost of the billed days
    credits_inr: float  # of which credits and refunds (≤ 0)
    tax_inr: float  # Tax of the billed days (not counted)
    trades: int  # trades closed on the billed days
    net_pnl_inr: float  # their net P&L
    services: dict[str, float] = field(default_factory=dict)  # service → counted cost of the billed days
    stale_days: tuple[date, ...] = ()  # due but not billed

    @property
    def stale(self) -> bool:
        return bool(self.stale_days)


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)] if last >= first else []


def scope_dates(start: datetime, end: datetime) -> tuple[date, date] | None:
    """(first, last) IST calendar date of the window [start, end), or None when empty."""
    if end <= start:
        return None
    return cal.ist_date(start), cal.ist_date(end - timedelta(microseconds=1))


def _billed_spans(conn) -> list[tuple[date, date | None]]:
    """(billing period start, billed through) of every landed billing period."""
    rows = warehouse.fetch_rows(conn, "select billing_period, billed_through from cost_exports order by billing_period")
    return [(warehouse.as_date(a), None if b is None else warehouse.as_date(b)) for a, b in rows]


def read_window(conn, first: date, last: date, *, end: datetime | None = None) -> CostWindow:
    """The cost of the calendar dates [first, last]; ``end`` (aware: the window's end,
    to date) decides which days are due (:data:`BILL_LAG`); None: none is."""
    days = _dates(first, last)
    spans = _billed_spans(conn)
    billed_set = {d for d in days for a, b in spans if b is not None and a <= d <= b}
    billed = tuple(d for d in days if d in billed_set)
    through = max((b for _, b in spans if b is not None), default=None)
    cost, credits, tax = [], [], []
    services: dict[str, list[float]] = {}
    if billed:
        for usage_date, service, kind, counted, cost_inr in warehouse.fetch_rows(
            conn,
            "select usage_date, service, line_item_type, is_counted, cost_inr from raw_cost_daily "
            "where usage_date >= :first and usage_date <= :last "
            "order by usage_date, service, line_item_type, currency, billing_period",
            {"first": billed[0], "last": billed[-1]},
        ):
            if warehouse.as_date(usage_date) not in billed_set:
                continue
            value = float(cost_inr)
            if bool(counted):
                cost.append(value)
                services.setdefault(str(service), []).append(value)
                if kind in CREDIT_TYPES:
                    credits.append(value)
            else:
                tax.append(value)
    trades, pnl = 0, []
    if billed:
        for day, n, net, rest in warehouse.fetch_rows(
            conn,
            "select trading_day, trades, net_pnl_inr, net_pnl_rest_inr from fct_trading_day "
            "where trading_day >= :first and trading_day <= :last order by trading_day",
            {"first": billed[0], "last": billed[-1]},
        ):
            if warehouse.as_date(day) in billed_set:
                trades += int(n)
                pnl.append((net, rest))
    stale_days: tuple[date, ...] = ()
    if end is not None and spans:
        due = [d for d in days if datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
               + BILL_LAG <= end]
        stale_days = tuple(d for d in due if d not in billed_set)
    return CostWindow(
        first=first, last=last, days=tuple(days), billed=billed, has_export=bool(spans), billed_through=through,
        cost_inr=math.fsum(cost), credits_inr=math.fsum(credits), tax_inr=math.fsum(tax), trades=trades,
        net_pnl_inr=facts.compose(pnl) if pnl else 0.0,
        services={k: math.fsum(v) for k, v in services.items()}, stale_days=stale_days,
    )


def window_of(conn, start: datetime, end: datetime) -> CostWindow | None:
    """The cost of the UTC window [start, end) of a scope (its IST dates), or None when
    the window is empty."""
    span = scope_dates(start, end)
    return read_window(conn, *span, end=end) if span else None


def figures(w: CostWindow | None) -> dict[str, dict]:
    """The four cost KPIs of a :class:`CostWindow` as Measure fields."""
    if w is None or not w.has_export:
        return {k: {"value": None, "sample_size": 0} for k in KPI_IDS}
    days, cost, trades, stale = len(w.billed), w.cost_inr, w.trades, w.stale
    has = days > 0
    return {
        "infra_cost_inr": {"value": cost if has else None, "sample_size": days, "stale": stale},
        "infra_cost_per_day_inr": {"value": cost / days if has else None, "numerator": cost if has else None,
                                   "denominator": float(days), "sample_size": days, "stale": stale},
        "infra_cost_per_trade_inr": {"value": cost / trades if has and trades else None,
                                     "numerator": cost if has else None, "denominator": float(trades),
                                     "sample_size": trades, "stale": stale, "no_events": has and not trades},
        "roi": {"value": w.net_pnl_inr / cost if has and trades and cost > 0 else None,
                "numerator": w.net_pnl_inr if has and trades else None, "denominator": cost if has else None,
                "sample_size": days, "stale": stale, "no_events": has and (not trades or cost <= 0)},
    }


def cost_figures(src, scope) -> dict[str, dict]:
    """The cost KPIs of a week, month or quarter ``scope`` (a
    :class:`kaizen.kpis.measures.Scope`) as Measure fields; nothing at day grain.
    ``src`` is a connection or the measures' batch ``Data`` (its ``conn`` is read)."""
    if scope.grain not in GRAINS:
        return {}
    conn = getattr(src, "conn", None) or src
    return figures(window_of(conn, scope.start, scope.end))
