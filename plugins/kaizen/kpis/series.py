"""The five big landing series the measures read — trades, orders, probe minutes,
latency histograms, error minutes — as sorted numpy arrays over a span.

They come from the warehouse, or, in a range rebuild, from what the load step has
just written (:class:`Landed`): a year is three million rows, and reading them back
costs as much as loading them. A span is a half-open integer interval — day
ordinals for trades and orders, µs since the epoch for the per-minute series — and
is assembled from the landed pieces that cover it plus warehouse reads of the gaps,
so the result is the same rows either way. A piece covers exactly the slice the load
step replaced (see :func:`kaizen.sources.base.load`): the warehouse holds, inside
that slice, the rows the piece was reduced from and nothing else."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import text as sa_text

from kaizen.sources.base import DAY_SLICE, TS_SLICE
from kaizen.warehouse import SERIES_TABLES

NAT = -(2**63)  # numpy's NaT as int64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORD = date(1970, 1, 1).toordinal()

# the slice each big table's load replaces, and the series it feeds
TABLES = {t: (kind, DAY_SLICE if col == "trading_day" else TS_SLICE) for t, (kind, col) in SERIES_TABLES.items()}
KINDS = tuple(kind for kind, _ in SERIES_TABLES.values())  # the series series_months caches
BY_DAY = frozenset(kind for kind, col in SERIES_TABLES.values() if col == "trading_day")  # keyed by day ordinal


def us(ts: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact)."""
    return (ts - _EPOCH) // timedelta(microseconds=1)


# ---------------------------------------------------------------- value conversion
def us_array(values) -> np.ndarray:
    """Timestamps → int64 µs since the epoch: integers (PostgreSQL, see :func:`ts_sql`),
    canonical UTC text (SQLite), datetimes or a datetime64 column; NULL → :data:`NAT`."""
    import pandas as pd

    if isinstance(values, pd.Series) and pd.api.types.is_datetime64_any_dtype(values.dtype):
        s = values.dt.tz_convert("UTC") if isinstance(values.dtype, pd.DatetimeTZDtype) else values
        return s.dt.as_unit("us").to_numpy("int64", na_value=NAT)
    values = list(values)
    if not values:
        return np.zeros(0, dtype="int64")
    if all(v is None or isinstance(v, int) for v in values):
        return np.array([NAT if v is None else v for v in values], dtype="int64")
    ts = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
    return ts.dt.as_unit("us").to_numpy("int64", na_value=NAT)


def day_array(values) -> np.ndarray:
    """Dates (ISO text on SQLite, day numbers from :func:`day_sql` on PostgreSQL, or
    ``datetime.date``) → int64 day ordinals."""
    values = list(values)
    if not values:
        return np.zeros(0, dtype="int64")
    if isinstance(values[0], int):
        return np.array(values, dtype="int64") + _EPOCH_ORD
    if isinstance(values[0], date):
        return np.array([v.toordinal() for v in values], dtype="int64")
    days = np.array([str(v)[:10] for v in values], dtype="datetime64[D]")
    return days.astype("int64") + _EPOCH_ORD


def ts_sql(dialect: str, col: str) -> str:
    """A timestamp column as selected for :func:`us_array`: PostgreSQL hands over
    exact integer microseconds (building a datetime per value costs more than the
    query); SQLite's canonical text parses fast."""
    return f"(extract(epoch from {col}) * 1000000)::bigint" if dialect == "postgresql" else col


def day_sql(dialect: str, col: str) -> str:
    return f"({col} - date '1970-01-01')" if dialect == "postgresql" else col


# ---------------------------------------------------------------- reductions
# Each series is a dict of equal-length arrays sorted by its "key" (latency also
# carries its bucket labels); the same reduction serves warehouse rows and frames.
# Within a day, trades and orders are put in value order: every measure over them is
# order-free (exact sums, extremes, percentiles), and the arrays are then the same
# however the rows were read (an index, a frame).
def _trades(day, pnl) -> dict:
    pnl = np.asarray(pnl, dtype=float)
    o = np.lexsort((pnl, day))
    return {"key": day[o], "pnl": pnl[o]}


def _orders(day, status, submitted, filled_at) -> dict:
    import pandas as pd

    codes, kinds = pd.factorize(np.asarray(status, dtype=object))  # a few distinct statuses; NULL: -1
    filled = np.isin(codes, [k for k, s in enumerate(kinds.tolist()) if str(s).lower() == "filled"])
    with_fill = filled & (filled_at != NAT)
    exec_ms = np.full(len(day), np.nan)
    exec_ms[with_fill] = (filled_at[with_fill] - submitted[with_fill]) / 1e6 * 1000.0  # = timedelta.total_seconds() × 1000
    o = np.lexsort((exec_ms, filled, day))
    return {"key": day[o], "filled": filled[o], "exec_ms": exec_ms[o]}


def _probes(ts, is_up) -> dict:
    """Per minute: up when every instance was up (min over instances); and the
    minutes some instance was down (MTBF)."""
    ts, is_up = np.asarray(ts, dtype="int64"), np.asarray(is_up)
    o = np.argsort(ts, kind="stable")
    ts, is_up = ts[o], is_up[o]
    minute, start = np.unique(ts, return_index=True)
    low = np.minimum.reduceat(is_up, start) if len(ts) else is_up
    return {"key": minute, "up": (low == 1).astype("int64")}


def _down(ts) -> dict:
    return {"key": np.unique(np.asarray(ts, dtype="int64"))}


def _errors(ts, count) -> dict:
    o = np.argsort(ts, kind="stable")
    return {"key": np.asarray(ts, dtype="int64")[o], "count": np.asarray(count, dtype=float)[o]}


def _latency(ts, bounds, counts) -> dict:
    """Rows of (ts, bounds JSON, counts JSON) → ts, the union of labels in numeric
    order, a (rows × labels) count matrix and a 0/1 'bucket present' matrix."""
    import pandas as pd

    ts = np.asarray(ts, dtype="int64")
    codes, shapes = pd.factorize(np.asarray(bounds, dtype=object))  # rows by bucket layout
    groups = {b: np.flatnonzero(codes == k) for k, b in enumerate(shapes.tolist())}
    labels = sorted({le for b in groups for le in json.loads(b)}, key=float)
    col = {le: k for k, le in enumerate(labels)}
    matrix = np.zeros((len(ts), len(labels)))
    present = np.zeros((len(ts), len(labels)), dtype="int8")
    for b, idx in groups.items():
        cols = [col[le] for le in json.loads(b)]
        block = _counts([counts[i].strip()[1:-1] for i in idx.tolist()], len(cols))
        for j, c in enumerate(cols):
            matrix[idx, c] = block[:, j]
            present[idx, c] = 1
    o = np.argsort(ts, kind="stable")
    return {"key": ts[o], "labels": labels, "matrix": matrix[o], "present": present[o]}


def _counts(texts: list[str], k: int) -> np.ndarray:
    """Rows of ``k`` comma-separated floats (a counts array without its brackets) →
    an (n, k) matrix. pandas' C reader parses them 4× faster than ``float()`` and to
    the same doubles (``repr`` text round-trips); anything it does not read as k
    floats per row goes the slow, exact way, which also names a malformed row."""
    import io

    import pandas as pd

    if texts and k and all(t.count(",") == k - 1 for t in texts):
        try:
            frame = pd.read_csv(io.StringIO("\n".join(texts)), header=None, dtype=float, engine="c")
        except (ValueError, pd.errors.ParserError):
            frame = None
        if frame is not None and frame.shape == (len(texts), k):
            matrix = frame.to_numpy(dtype=float)
            if not np.isnan(matrix).any():  # an empty field reads as NaN: not ours to guess
                return matrix
    flat = np.array(",".join(t for t in texts if t).split(","), dtype=float) if any(texts) else np.zeros(0)
    if len(flat) != len(texts) * k:
        raise ValueError("raw_latency_buckets: a row's counts do not match its bounds")
    return flat.reshape(len(texts), k)


# ---------------------------------------------------------------- warehouse reads
def _rows(conn, sql: str, params: dict) -> list[tuple]:
    from kaizen import warehouse

    return warehouse.fetch_rows(conn, sql, params)


def _days(lo: int, hi: int) -> dict:
    return {"first": date.fromordinal(lo), "last": date.fromordinal(hi - 1)}


def _span(lo: int, hi: int) -> dict:
    return {"start": _EPOCH + timedelta(microseconds=lo), "end": _EPOCH + timedelta(microseconds=hi)}


def _read(kind: str, conn, lo: int, hi: int) -> dict:
    d = conn.dialect.name
    if kind == "trades":
        r = _rows(conn, f"select {day_sql(d, 'trading_day')}, net_pnl_inr from raw_trades "
                        f"where {DAY_SLICE}", _days(lo, hi))
        return _trades(day_array([x[0] for x in r]), [float(x[1]) for x in r])
    if kind == "orders":
        r = _rows(conn, f"select {day_sql(d, 'trading_day')}, status, {ts_sql(d, 'submitted_at')}, "
                        f"{ts_sql(d, 'filled_at')} from raw_orders "
                        f"where {DAY_SLICE}", _days(lo, hi))
        return _orders(day_array([x[0] for x in r]), [x[1] for x in r],
                       us_array([x[2] for x in r]), us_array([x[3] for x in r]))
    if kind == "probes":
        r = _rows(conn, f"select {ts_sql(d, 'ts')}, min(is_up) from raw_probe_minutes "
                        f"where {TS_SLICE} group by ts", _span(lo, hi))
        return _probes(us_array([x[0] for x in r]), np.array([x[1] for x in r], dtype="int64"))
    if kind == "down":
        r = _rows(conn, f"select distinct {ts_sql(d, 'ts')} from raw_probe_minutes "
                        f"where {TS_SLICE} and is_up <> 1", _span(lo, hi))
        return _down(us_array([x[0] for x in r]))
    if kind == "latency":
        r = _rows(conn, f"select {ts_sql(d, 'ts')}, bounds, counts from raw_latency_buckets "
                        f"where {TS_SLICE}", _span(lo, hi))
        return _latency(us_array([x[0] for x in r]), [x[1] for x in r], [x[2] for x in r])
    if kind == "errors":
        r = _rows(conn, f"select {ts_sql(d, 'ts')}, error_count from raw_error_minutes "
                        f"where {TS_SLICE}", _span(lo, hi))
        return _errors(us_array([x[0] for x in r]), [float(x[1]) for x in r])
    raise ValueError(kind)


def _read_sessions(conn, lo: int, hi: int) -> dict[date, float]:
    """Session P&L of the trading days in [lo, hi), from ``trade_sessions`` (one row a
    day, which the warehouse keeps equal to the sums of ``raw_trades``: a day's run
    reads a row per past session, not every trade since the history start), taken to
    the paisa: P&L is booked in paisa, so the rounded sum is exact on both dialects."""
    from kaizen import warehouse

    warehouse.sync_trade_sessions(conn)
    return {
        d if isinstance(d, date) else date.fromisoformat(str(d)[:10]): round(float(total), 2)
        for d, total in _rows(conn, f"select trading_day, net_pnl_inr from trade_sessions where {DAY_SLICE}",
                              _days(lo, hi))
    }


# ---------------------------------------------------------------- assembling a span
def _clip(piece: dict, lo: int, hi: int) -> dict:
    i, j = np.searchsorted(piece["key"], [lo, hi], side="left").tolist()
    return {k: (v if k == "labels" else v[i:j]) for k, v in piece.items()}


def _concat(kind: str, parts: list[dict]) -> dict:
    if kind != "latency":
        if not parts:
            return _empty(kind)
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    labels = sorted({le for p in parts for le in p["labels"]}, key=float)
    col = {le: k for k, le in enumerate(labels)}
    n = sum(len(p["key"]) for p in parts)
    matrix, present = np.zeros((n, len(labels))), np.zeros((n, len(labels)), dtype="int8")
    at = 0
    for p in parts:
        cols = [col[le] for le in p["labels"]]
        m = len(p["key"])
        matrix[at:at + m, cols] = p["matrix"]
        present[at:at + m, cols] = p["present"]
        at += m
    key = np.concatenate([p["key"] for p in parts]) if parts else np.zeros(0, dtype="int64")
    return {"key": key, "labels": labels, "matrix": matrix, "present": present}


def _empty(kind: str) -> dict:
    z = np.zeros(0, dtype="int64")
    return {
        "trades": {"key": z, "pnl": np.zeros(0)},
        "orders": {"key": z, "filled": np.zeros(0, dtype=bool), "exec_ms": np.zeros(0)},
        "probes": {"key": z, "up": z},
        "down": {"key": z},
        "errors": {"key": z, "count": np.zeros(0)},
    }[kind]


def _gaps(lo: int, hi: int, covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [lo, hi) outside the sorted, disjoint intervals ``covered``."""
    out, at = [], lo
    for a, b in covered:
        if b <= at or a >= hi:
            continue
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < hi:
        out.append((at, hi))
    return out


def span(kind: str, conn, lo: int, hi: int, landed: Landed | None = None) -> dict:
    """The ``kind`` series over [lo, hi): landed pieces where they cover it, the
    warehouse elsewhere; sorted by key."""
    pieces = landed.pieces.get(kind, []) if landed else []
    parts = [(a, _clip(p, max(a, lo), min(b, hi))) for a, b, p in pieces if a < hi and b > lo]
    for a, b in _gaps(lo, hi, [(a, b) for a, b, _ in pieces]):
        parts += _stored(kind, conn, a, b, landed)
    return _concat(kind, [p for _, p in sorted(parts, key=lambda x: x[0])])


# ---------------------------------------------------------------- cached months
# A rollup to date reads its period's rows again every day: a quarter, two months of
# rows it read yesterday. ``series_months`` keeps each IST calendar month of a series
# reduced; the warehouse's own triggers drop a month whenever one of its rows is
# written (sql/triggers.*.sql), so a month found there is its rows, reduced.
_IST_US = 330 * 60 * 1_000_000  # IST = UTC+05:30, no daylight saving


def _month_after(m: date) -> date:
    return date(m.year + m.month // 12, m.month % 12 + 1, 1)


def _day_key(kind: str, d: date) -> int:
    """Where IST day ``d`` starts, in the series' key units."""
    return d.toordinal() if kind in BY_DAY else (d.toordinal() - _EPOCH_ORD) * 86_400_000_000 - _IST_US


def _months(kind: str, lo: int, hi: int) -> list[tuple[int, int, date]]:
    """The IST calendar months wholly inside [lo, hi), as (lo, hi, first day)."""
    first = date.fromordinal(lo) if kind in BY_DAY else (_EPOCH + timedelta(microseconds=lo + _IST_US)).date()
    m = first if first.day == 1 else _month_after(first)
    out = []
    while _day_key(kind, _month_after(m)) <= hi:
        if _day_key(kind, m) >= lo:
            out.append((_day_key(kind, m), _day_key(kind, _month_after(m)), m))
        m = _month_after(m)
    return out


def _pack(series: dict) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in series.items()})
    return buf.getvalue()


def _unpack(blob: bytes) -> dict:
    import io

    with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    if "labels" in out:
        out["labels"] = [str(x) for x in out["labels"].tolist()]
    return out


def _counted(kind: str, series: dict, landed: Landed | None) -> dict:
    """``series``, counted as read from the warehouse (tests: :attr:`Landed.read`)."""
    if landed is not None:
        landed.read[kind] = landed.read.get(kind, 0) + len(series["key"])
    return series


def _cache_lock(conn) -> None:
    """Before reading rows to cache (PostgreSQL): taken by every trigger that drops a
    month too, so no statement still uncommitted can have changed the rows read."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("lock table series_months in share row exclusive mode")


def _store(conn, kind: str, month: date, series: dict) -> None:
    """Cache one month, and let go of the months older than the quarter before it:
    rollups to date read the current quarter; older periods are re-run seldom."""
    from kaizen import warehouse
    from kaizen.period import Period

    horizon = Period.of("quarter", month).previous()[0].start
    conn.execute(sa_text("delete from series_months where month < :horizon"),
                 {"horizon": warehouse.bind_value(horizon)})
    conn.execute(
        sa_text("insert into series_months (kind, month, rows, series) values (:kind, :month, :rows, :series) "
                "on conflict (kind, month) do nothing"),
        {"kind": kind, "month": warehouse.bind_value(month), "rows": len(series["key"]), "series": _pack(series)},
    )


def _stored(kind: str, conn, a: int, b: int, landed: Landed | None) -> list[tuple[int, dict]]:
    """[a, b) from the warehouse: its whole months from ``series_months`` where cached,
    the rest from the rows. A daily run (no ``landed``) caches the whole months it had
    to read; a range rebuild caches at its end (:func:`warm`)."""
    if kind not in KINDS:  # down minutes: few, over a trailing window
        return [(a, _counted(kind, _read(kind, conn, a, b), landed))]
    months = _months(kind, a, b)
    cached = {}
    if months:
        cached = {
            date.fromisoformat(str(m)[:10]): blob
            for m, blob in _rows(conn, "select month, series from series_months where kind = :kind "
                                       "and month >= :first and month <= :last",
                                 {"kind": kind, "first": months[0][2], "last": months[-1][2]})
        }
    out, at, locked = [], a, False
    for m_lo, m_hi, month in months:
        if month in cached:
            series = _counted(kind, _unpack(cached[month]), landed)
        elif landed is None:
            if not locked:
                _cache_lock(conn)
                locked = True
            series = _read(kind, conn, m_lo, m_hi)
            _store(conn, kind, month, series)
        else:
            continue
        if at < m_lo:
            out.append((at, _counted(kind, _read(kind, conn, at, m_lo), landed)))
        out.append((m_lo, series))
        at = m_hi
    if at < b:
        out.append((at, _counted(kind, _read(kind, conn, at, b), landed)))
    return out


def warm(conn, last: date) -> int:
    """Cache the whole months of the quarter holding ``last`` that end before it: what
    the next daily runs' quarter-to-date rollups read. Read from the rows under the
    lock (a range rebuild's own pieces could have been overwritten since). Returns
    the months cached."""
    from kaizen.period import Period

    q_first = Period.of("quarter", last).start
    todo = [(kind, m) for kind in KINDS
            for m in _months(kind, _day_key(kind, q_first), _day_key(kind, last.replace(day=1)))]
    if not todo:
        return 0
    have = {(k, date.fromisoformat(str(m)[:10])) for k, m in _rows(
        conn, "select kind, month from series_months where month >= :first", {"first": q_first})}
    todo = [(kind, m) for kind, m in todo if (kind, m[2]) not in have]
    if todo:
        _cache_lock(conn)
    for kind, (m_lo, m_hi, month) in todo:
        _store(conn, kind, month, _read(kind, conn, m_lo, m_hi))
    return len(todo)


def sessions(conn, last: date, landed: Landed | None = None) -> dict[date, float]:
    """Session P&L of every trading day up to ``last`` (days with trades)."""
    covered = sorted(landed.sessions) if landed else []
    out: dict[date, float] = {}
    for a, b in _gaps(date.min.toordinal(), last.toordinal() + 1, [(a, b) for a, b, _ in covered]):
        if landed is None:
            out.update(_read_sessions(conn, a, b))
        else:  # history before and between landed ranges does not change during a rebuild
            if (a, b) not in landed.session_cache:
                landed.session_cache[(a, b)] = _read_sessions(conn, a, b)
            out.update(landed.session_cache[(a, b)])
    for a, b, days in covered:
        out.update({d: v for d, v in days.items() if a <= d.toordinal() < b and d <= last})
    return out


# ---------------------------------------------------------------- what a rebuild loaded
@dataclass
class Landed:
    """The big series a range rebuild has loaded, reduced to what the measures read,
    as pieces ``(lo, hi, series)`` — each exactly one load's slice. Hand it to
    :func:`kaizen.sources.base.observe_loads`; :meth:`forget` bounds the memory."""

    pieces: dict[str, list[tuple[int, int, dict]]] = field(default_factory=dict)
    sessions: list[tuple[int, int, dict]] = field(default_factory=list)
    session_cache: dict[tuple[int, int], dict] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)  # entries read from the warehouse (rows or cached months), per kind (tests)

    def __call__(self, table: str, where_sql: str, params: dict, rows) -> None:
        """A load of ``rows`` into the slice ``where_sql`` of ``table`` committed (or
        will, in the caller's transaction)."""
        import pandas as pd

        kind, slice_sql = TABLES.get(table, (None, None))
        if kind is None:
            return
        if where_sql != slice_sql:  # a slice of another shape: the warehouse answers for it
            return
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        if kind in BY_DAY:
            lo, hi = params["first"].toordinal(), params["last"].toordinal() + 1
        else:
            lo, hi = us(params["start"]), us(params["end"])
        if not len(frame):
            self._put(kind, lo, hi, _empty(kind) if kind != "latency" else _latency([], [], []))
            if kind == "probes":
                self._put("down", lo, hi, _empty("down"))
            if kind == "trades":
                self._put_sessions(lo, hi, {})
            return
        if kind == "trades":
            day = day_array(frame["trading_day"])
            pnl = frame["net_pnl_inr"].to_numpy(dtype=float)
            self._put(kind, lo, hi, _trades(day, pnl))
            self._put_sessions(lo, hi, _session_sums(day, pnl))
        elif kind == "orders":
            self._put(kind, lo, hi, _orders(day_array(frame["trading_day"]), frame["status"].tolist(),
                                            us_array(frame["submitted_at"]), us_array(frame["filled_at"])))
        elif kind == "probes":
            ts, up = us_array(frame["ts"]), frame["is_up"].to_numpy(dtype="int64")
            self._put(kind, lo, hi, _probes(ts, up))
            self._put("down", lo, hi, _down(ts[up != 1]))
        elif kind == "latency":
            self._put(kind, lo, hi, _latency(us_array(frame["ts"]), frame["bounds"].tolist(),
                                             frame["counts"].tolist()))
        else:
            self._put(kind, lo, hi, _errors(us_array(frame["ts"]), frame["error_count"].to_numpy(dtype=float)))

    def _put(self, kind: str, lo: int, hi: int, series: dict) -> None:
        # a piece overlapping the new slice is stale as a whole: drop it (its parts
        # outside the slice are read from the warehouse, which still holds them)
        keep = [p for p in self.pieces.get(kind, []) if p[1] <= lo or p[0] >= hi]
        self.pieces[kind] = sorted([*keep, (lo, hi, series)], key=lambda p: p[0])

    def _put_sessions(self, lo: int, hi: int, days: dict) -> None:
        keep = [s for s in self.sessions if s[1] <= lo or s[0] >= hi]
        self.sessions = sorted([*keep, (lo, hi, days)], key=lambda s: s[0])
        self.session_cache = {k: v for k, v in self.session_cache.items() if k[1] <= lo or k[0] >= hi}

    def forget(self, *, day: date, ts: datetime) -> None:
        """Drop the pieces wholly before trading day ``day`` (trades, orders) or time
        ``ts`` (the per-minute series); session P&L (one number a day) is kept."""
        for kind, pieces in self.pieces.items():
            edge = day.toordinal() if kind in BY_DAY else us(ts)
            self.pieces[kind] = [p for p in pieces if p[1] > edge]


def _session_sums(day: np.ndarray, pnl: np.ndarray) -> dict[date, float]:
    """Per trading day, the exact sum of the trades' P&L taken to the paisa (what
    :func:`_read_sessions` gets from the database)."""
    o = np.argsort(day, kind="stable")
    day, pnl = day[o], pnl[o]
    keys, start = np.unique(day, return_index=True)
    bounds = [*start.tolist(), len(day)]
    values = pnl.tolist()
    return {date.fromordinal(int(k)): round(math.fsum(values[bounds[i]:bounds[i + 1]]), 2)
            for i, k in enumerate(keys.tolist())}
