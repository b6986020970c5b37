"""Facts: aggregates of the landing tables per trading day, composable by sum, min,
max or count, between landing (``raw_*``) and ``kpi_values``. One SQL file each in
``sql/facts/`` (its first comment states the grain).

A fact slice is written from the very rows of the landing slice it comes from, in the
same transaction (:func:`write`, called by :func:`kaizen.sources.base.load`), so the
two can never disagree; :func:`rebuild` recomputes a range of facts from the landing
tables (``python -m kaizen facts``) after someone edited them by hand.

Float sums are exact: each is stored as its correctly rounded sum and the rounding
rest (:func:`exact_sum`), whose exact total is the exact sum of the rows' values. An
exact summation over those pairs (:func:`compose`) gives bit for bit what summing
every row gives, for any set of days.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

DAY_SLICE = "trading_day >= :first and trading_day <= :last"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def exact_sum(values: Iterable[float]) -> tuple[float, float]:
    """(rounded sum, rounding rest) of ``values``: together their exact sum (for values
    whose exact sum fits two doubles — any realistic money or duration)."""
    values = list(values)
    total = math.fsum(values)
    return total, math.fsum([*values, -total])


def compose(pairs: Iterable[tuple[float, float]]) -> float:
    """The correctly rounded total of (sum, rest) pairs: the same double as
    ``math.fsum`` of every value the pairs were made from."""
    return math.fsum(x for pair in pairs for x in pair)


# ---------------------------------------------------------------- from landing rows
def _columns(rows, names: tuple[str, ...]) -> list[tuple]:
    """The ``names`` columns of ``rows`` (a DataFrame or dicts) as tuples."""
    if hasattr(rows, "itertuples"):
        if rows.empty:
            return []
        return list(zip(*(rows[n].tolist() for n in names), strict=True))
    return [tuple(r[n] for n in names) for r in rows]


def _day(v) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _us(v) -> int | None:
    """An aware timestamp (datetime or pandas Timestamp) as µs since the epoch; None/NaT → None."""
    if v is None or v != v:  # NaT is not equal to itself
        return None
    return (v - _EPOCH) // timedelta(microseconds=1)


def trading_day_facts(rows) -> list[dict]:
    """``fct_trading_day`` rows of ``raw_trades`` rows."""
    by_day: dict[date, list[float]] = {}
    for day, pnl in _columns(rows, ("trading_day", "net_pnl_inr")):
        by_day.setdefault(_day(day), []).append(float(pnl))
    out = []
    for day in sorted(by_day):
        pnl = by_day[day]
        wins = [p for p in pnl if p > 0]
        losses = [p for p in pnl if p < 0]
        net, net_rest = exact_sum(pnl)
        gp, gp_rest = exact_sum(wins)
        gl, gl_rest = exact_sum(-p for p in losses)
        out.append({
            "trading_day": day, "trades": len(pnl), "wins": len(wins), "losses": len(losses),
            "net_pnl_inr": net, "net_pnl_rest_inr": net_rest,
            "gross_profit_inr": gp, "gross_profit_rest_inr": gp_rest,
            "gross_loss_inr": gl, "gross_loss_rest_inr": gl_rest,
            "largest_win_inr": max(wins) if wins else None, "largest_loss_inr": min(losses) if losses else None,
        })
    return out


def execution_ms(submitted_us: int, filled_us: int) -> float:
    """Fill − submit in milliseconds, as every execution-time KPI computes it."""
    return (filled_us - submitted_us) / 1e6 * 1000.0


def orders_day_facts(rows) -> list[dict]:
    """``fct_orders_day`` rows of ``raw_orders`` rows."""
    by_day: dict[date, list] = {}
    for day, status, submitted, filled_at in _columns(rows, ("trading_day", "status", "submitted_at", "filled_at")):
        by_day.setdefault(_day(day), []).append((str(status).lower() == "filled", submitted, filled_at))
    out = []
    for day in sorted(by_day):
        orders = by_day[day]
        ms = [execution_ms(_us(s), _us(f)) for filled, s, f in orders if filled and _us(f) is not None]
        total, rest = exact_sum(ms)
        out.append({
            "trading_day": day, "submitted": len(orders), "filled": sum(1 for o in orders if o[0]),
            "executions": len(ms), "execution_ms": total, "execution_rest_ms": rest,
        })
    return out


@dataclass(frozen=True)
class Fact:
    table: str  # the fact table
    source: str  # the landing table it aggregates
    columns: tuple[str, ...]  # landing columns it reads
    build: Callable  # landing rows → fact rows


FACTS = (
    Fact("fct_trading_day", "raw_trades", ("trading_day", "net_pnl_inr"), trading_day_facts),
    Fact("fct_orders_day", "raw_orders", ("trading_day", "status", "submitted_at", "filled_at"), orders_day_facts),
)
BY_SOURCE = {f.source: f for f in FACTS}
DDL_FILES = tuple(f"facts/{f.table}.sql" for f in FACTS)


# ---------------------------------------------------------------- writes
def write(conn: sa.Connection, table: str, where_sql: str, params: Mapping, rows) -> int:
    """Replace the facts of a landing slice just written (``rows`` are its rows), in
    the caller's transaction. Returns the fact rows written (0: no fact of ``table``)."""
    from kaizen import warehouse

    fact = BY_SOURCE.get(table)
    if fact is None:
        return 0
    if where_sql != DAY_SLICE:
        raise ValueError(f"facts of {table}: a slice {where_sql!r} is not whole trading days")
    out = fact.build(rows)
    warehouse.replace_slice(conn, fact.table, DAY_SLICE, params, out)
    return len(out)


def rebuild(conn: sa.Connection, first: date | None = None, last: date | None = None) -> dict[str, int]:
    """Recompute every fact of the trading days [first, last] (default: all the landing
    tables hold) from the landing tables, in the caller's transaction."""
    from kaizen import warehouse

    if first is None or last is None:
        spans = [conn.execute(sa.text(f"select min(trading_day), max(trading_day) from {f.source}")).one()
                 for f in FACTS]
        days = [_day(d) for span in spans for d in span if d is not None]
        if not days:
            return {f.table: 0 for f in FACTS}
        first, last = first or min(days), last or max(days)
    params = {"first": first, "last": last}
    out = {}
    for fact in FACTS:
        frame = warehouse.read_frame(
            conn, f"select {', '.join(fact.columns)} from {fact.source} where {DAY_SLICE}", params,
            ts_cols=[c for c in fact.columns if c.endswith("_at")], date_cols=["trading_day"])
        out[fact.table] = write(conn, fact.source, DAY_SLICE, params, frame)
    return out
