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


def execution_ms(submitted_us, filled_us):
    """Fill − submit in milliseconds (µs since the epoch in; numbers or numpy arrays),
    as every execution-time KPI computes it."""
    return (filled_us - submitted_us) / 1e6 * 1000.0


def _orders(rows):
    """(day codes, their days, filled, timed, execution µs) of ``raw_orders`` rows: a
    filled order is timed when it has a fill time; its execution time is fill − submit."""
    import pandas as pd

    f = _frame(rows, ("trading_day", "status", "submitted_at", "filled_at"))
    codes, days = pd.factorize(f["trading_day"].astype(object))
    filled = f["status"].astype(str).str.lower().to_numpy() == "filled"
    submitted_us, filled_us = _us_array(f["submitted_at"]), _us_array(f["filled_at"])
    timed = filled & (filled_us != _NAT)
    return codes, [_day(d) for d in days], filled, timed, filled_us - submitted_us


def orders_day_facts(rows) -> list[dict]:
    """``fct_orders_day`` rows of ``raw_orders`` rows."""
    if len(rows) == 0:
        return []
    codes, days, filled, timed, us = _orders(rows)
    ms = execution_ms(0, us)
    out = []
    for k, day in sorted(enumerate(days), key=lambda kd: kd[1]):
        mine = codes == k
        values = ms[mine & timed].tolist()
        total, rest = exact_sum(values)
        out.append({
            "trading_day": day, "submitted": int(mine.sum()), "filled": int((mine & filled).sum()),
            "executions": len(values), "execution_ms": total, "execution_rest_ms": rest,
        })
    return out


def execution_day_facts(rows) -> list[dict]:
    """``fct_execution_day`` rows of ``raw_orders`` rows: the filled orders of each day
    with a fill time, counted by their execution time in whole µs."""
    import numpy as np

    if len(rows) == 0:
        return []
    codes, days, _, timed, us = _orders(rows)
    out = []
    for k, day in sorted(enumerate(days), key=lambda kd: kd[1]):
        values, counts = np.unique(us[(codes == k) & timed], return_counts=True)
        out += [{"trading_day": day, "execution_us": v, "orders": n}
                for v, n in zip(values.tolist(), counts.tolist(), strict=True)]
    return out


# ---------------------------------------------------------------- per 15-minute slot
# IST is UTC+05:30, so every cut-off Kaizen uses (IST midnight, 09:15, 15:30, 16:00 and
# the review meetings; special sessions are set in quarter hours) is an edge of a
# 15-minute UTC slot: the minutes of any window are the sums over its slots.
SLOT = timedelta(minutes=15)
SLOT_US = 900_000_000
_NAT = -(2**63)  # a missing time, as int64 µs


def slot_of(ts: datetime) -> int:
    """The 15-minute UTC slot of an aware instant: epoch seconds // 900."""
    return _us(ts) // SLOT_US


def slot_start(slot: int) -> datetime:
    return _EPOCH + slot * SLOT


def _us_array(values):
    """Timestamps (a datetime column, aware datetimes or canonical UTC text) → int64 µs."""
    import numpy as np
    import pandas as pd

    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if len(s) == 0:
        return np.zeros(0, dtype="int64")
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s, utc=True, format="ISO8601")
    elif not isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize("UTC")
    return s.dt.tz_convert("UTC").dt.as_unit("us").to_numpy("int64", na_value=_NAT)


def _frame(rows, names: tuple[str, ...]):
    import pandas as pd

    if hasattr(rows, "columns"):
        return rows[list(names)].reset_index(drop=True)
    return pd.DataFrame([{n: r[n] for n in names} for r in rows], columns=list(names))


def probe_slot_facts(rows) -> list[dict]:
    """``fct_probe_slot`` rows of ``raw_probe_minutes`` rows: a minute is up when every
    instance probed in it was up, down when some instance was not."""
    f = _frame(rows, ("ts", "is_up"))
    if f.empty:
        return []
    f["us"] = _us_array(f["ts"])
    f["bad"] = f["is_up"] != 1
    minute = f.groupby("us").agg(low=("is_up", "min"), down=("bad", "any"))
    minute["up"] = minute["low"] == 1
    minute["slot"] = minute.index.to_numpy() // SLOT_US
    g = minute.groupby("slot").agg(probed=("up", "size"), up=("up", "sum"), down=("down", "sum"))
    return [{"slot": int(k), "slot_start": slot_start(int(k)), "probed_minutes": int(p), "up_minutes": int(u),
             "down_minutes": int(d)} for k, p, u, d in zip(g.index, g["probed"], g["up"], g["down"], strict=True)]


def _groups(keys, values) -> list[tuple[int, list[float]]]:
    """(key, its values) for each distinct integer key, in key order."""
    import numpy as np

    order = np.argsort(keys, kind="stable")
    keys, values = np.asarray(keys)[order], np.asarray(values, dtype=float)[order].tolist()
    uniq, first = np.unique(keys, return_index=True)
    ends = [*first[1:].tolist(), len(values)]
    return [(k, values[a:b]) for k, a, b in zip(uniq.tolist(), first.tolist(), ends, strict=True)]


def error_slot_facts(rows) -> list[dict]:
    """``fct_error_slot`` rows of ``raw_error_minutes`` rows."""
    f = _frame(rows, ("ts", "error_count"))
    if f.empty:
        return []
    out = []
    for k, counts in _groups(_us_array(f["ts"]) // SLOT_US, f["error_count"].to_numpy(dtype=float)):
        total, rest = exact_sum(counts)
        out.append({"slot": k, "slot_start": slot_start(k), "minutes": len(counts), "errors": total,
                    "errors_rest": rest})
    return out


def _count_matrix(texts: list[str], k: int, where: str):
    """JSON arrays of ``k`` numbers each → an (n, k) float matrix."""
    import numpy as np

    inner = [t.strip()[1:-1] for t in texts]
    try:
        flat = np.array(",".join(inner).split(","), dtype=float) if k else np.zeros(0)
    except ValueError:
        flat = None
    if flat is None or len(flat) != len(texts) * k:
        raise ValueError(f"raw_latency_buckets {where}: a row's counts are not {k} numbers matching its bounds")
    return flat.reshape(len(texts), k)


def latency_slot_facts(rows) -> list[dict]:
    """``fct_latency_slot`` rows of ``raw_latency_buckets`` rows (bounds and counts as
    aligned JSON arrays; rows of one bucket layout are parsed together)."""
    import json

    import numpy as np
    import pandas as pd

    f = _frame(rows, ("ts", "bounds", "counts"))
    if f.empty:
        return []
    slots = _us_array(f["ts"]) // SLOT_US
    per: dict[tuple[int, str], list[float]] = {}
    codes, layouts = pd.factorize(f["bounds"].astype(str))
    counts = f["counts"].astype(str).to_numpy()
    for code, bounds in enumerate(layouts.tolist()):
        idx = np.flatnonzero(codes == code)
        les = [str(le) for le in json.loads(bounds)]
        matrix = _count_matrix(counts[idx].tolist(), len(les), f"layout {bounds}")
        order = np.argsort(slots[idx], kind="stable")
        keys, first = np.unique(slots[idx][order], return_index=True)
        ends = [*first[1:].tolist(), len(order)]
        for j, le in enumerate(les):
            column = matrix[order, j].tolist()
            for key, a, b in zip(keys.tolist(), first.tolist(), ends, strict=True):
                per.setdefault((key, le), []).extend(column[a:b])
    slot_minutes = dict(zip(*np.unique(slots, return_counts=True), strict=True))
    out = []
    for (key, le), values in sorted(per.items(), key=lambda kv: (kv[0][0], float(kv[0][1]))):
        total, rest = exact_sum(values)
        out.append({"slot": key, "le": le, "slot_start": slot_start(key), "le_seconds": float(le),
                    "minutes": len(values), "slot_minutes": int(slot_minutes[key]), "count": total,
                    "count_rest": rest})
    return out


TS_SLICE = "ts >= :start and ts < :end"
SLOT_SLICE = "slot >= :lo and slot < :hi"


@dataclass(frozen=True)
class Fact:
    table: str  # the fact table
    source: str  # the landing table it aggregates
    columns: tuple[str, ...]  # landing columns it reads
    build: Callable  # landing rows → fact rows
    by_slot: bool = False  # keyed by 15-minute slot (landing slices by ts), else by trading day


FACTS = (
    Fact("fct_trading_day", "raw_trades", ("trading_day", "net_pnl_inr"), trading_day_facts),
    Fact("fct_orders_day", "raw_orders", ("trading_day", "status", "submitted_at", "filled_at"), orders_day_facts),
    Fact("fct_execution_day", "raw_orders", ("trading_day", "status", "submitted_at", "filled_at"),
         execution_day_facts),
    Fact("fct_probe_slot", "raw_probe_minutes", ("ts", "is_up"), probe_slot_facts, by_slot=True),
    Fact("fct_error_slot", "raw_error_minutes", ("ts", "error_count"), error_slot_facts, by_slot=True),
    Fact("fct_latency_slot", "raw_latency_buckets", ("ts", "bounds", "counts"), latency_slot_facts, by_slot=True),
)
BY_SOURCE = {s: tuple(f for f in FACTS if f.source == s) for s in dict.fromkeys(f.source for f in FACTS)}
DDL_FILES = tuple(f"facts/{f.table}.sql" for f in FACTS)


# ---------------------------------------------------------------- writes
def write(conn: sa.Connection, table: str, where_sql: str, params: Mapping, rows) -> int:
    """Replace the facts of a landing slice just written (``rows`` are its rows), in
    the caller's transaction. Returns the fact rows written (0: no fact of ``table``).

    A ts slice whose ends are not slot edges shares its edge slots with rows outside it:
    those slots are built from the landing table as it now stands."""
    return sum(_write(conn, fact, where_sql, params, rows) for fact in BY_SOURCE.get(table, ()))


def _write(conn: sa.Connection, fact: Fact, where_sql: str, params: Mapping, rows) -> int:
    from kaizen import warehouse

    if not fact.by_slot:
        if where_sql != DAY_SLICE:
            raise ValueError(f"facts of {fact.source}: a slice {where_sql!r} is not whole trading days")
        out = fact.build(rows)
        warehouse.replace_slice(conn, fact.table, DAY_SLICE, params, out)
        return len(out)
    if where_sql != TS_SLICE:
        raise ValueError(f"facts of {fact.source}: a slice {where_sql!r} is not a ts range")
    start, end = params["start"], params["end"]
    lo, hi = slot_of(start), -(-_us(end) // SLOT_US)
    if slot_start(lo) != start or slot_start(hi) != end:
        rows = warehouse.read_frame(
            conn, f"select {', '.join(fact.columns)} from {fact.source} where {TS_SLICE}",
            {"start": slot_start(lo), "end": slot_start(hi)}, ts_cols=["ts"])
    out = fact.build(rows)
    warehouse.replace_slice(conn, fact.table, SLOT_SLICE, {"lo": lo, "hi": hi}, out)
    return len(out)


def rebuild(conn: sa.Connection, first: date | None = None, last: date | None = None) -> dict[str, int]:
    """Recompute every fact of the trading days [first, last] (default: all the landing
    tables hold; the slot facts over those days' review windows) from the landing
    tables, in the caller's transaction."""
    from kaizen import warehouse
    from kaizen.period import windows_utc

    if first is None or last is None:
        spans = [conn.execute(sa.text(f"select min(trading_day), max(trading_day) from {f.source}")).one()
                 for f in FACTS if not f.by_slot]
        spans += [tuple(_parse_utc(t) for t in conn.execute(sa.text(f"select min(ts), max(ts) from {f.source}")).one())
                  for f in FACTS if f.by_slot]
        days = [_day(d) if not isinstance(d, datetime) else _window_day(d) for span in spans for d in span
                if d is not None]
        if not days:
            return {f.table: 0 for f in FACTS}
        first, last = first or min(days), last or max(days)
    start, end = windows_utc(first, last)
    out = {}
    for fact in FACTS:
        where, params = (TS_SLICE, {"start": start, "end": end}) if fact.by_slot else (
            DAY_SLICE, {"first": first, "last": last})
        frame = warehouse.read_frame(
            conn, f"select {', '.join(fact.columns)} from {fact.source} where {where}", params,
            ts_cols=[c for c in fact.columns if c.endswith("_at") or c == "ts"],
            date_cols=[] if fact.by_slot else ["trading_day"])
        out[fact.table] = _write(conn, fact, where, params, frame)
    return out


def _parse_utc(v) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    return datetime.fromisoformat(str(v))


def _window_day(ts: datetime) -> date:
    """The trading day whose review window holds ``ts``."""
    from kaizen.period import window_day

    return window_day(ts)
