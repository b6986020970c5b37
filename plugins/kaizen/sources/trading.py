"""Orders and closed trades from the trading system's database (PostgreSQL via the
``kaizen_trading_db`` connection; in demo mode the SQLite ``trading.db``), validated
into ``raw_trades`` / ``raw_orders``.

A trade belongs to the IST date on which it closed (exit_time); an order to the IST
date on which it was submitted. A range of trading days is ONE fetch and ONE load.

Validation is columnar (a year is ~0.5 M trades and ~1 M orders): numpy checks mark
the records that every rule of the per-record checkers :func:`_check_trade` /
:func:`_check_order` certainly passes, and build their rows; every other record goes
through the per-record checker itself, so rows, quarantine reasons and payloads are
exactly those of the per-record path :func:`_parse_records_slow` (kept as the tests'
oracle). The valid rows are returned as a pandas DataFrame (the bulk shape of
:func:`kaizen.sources.base.load`).

A transport is ``fetch(first, last) -> {"trades": records, "orders": records}``, the
records a :class:`RawRecords` (the driver's tuples) or a list of dicts in the SQL's
order; a transport of the old shape ``fetch(day)`` is still accepted (called per
day). On SQLite the rows are fetched without ``ORDER BY`` and put in that order here
(:func:`_sql_order`, SQLite's own comparison rules; ~1 s a year cheaper than the
database's sorter); PostgreSQL sorts in the database as before."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config
from kaizen.sources.base import (
    DAY_SLICE,
    ExtractResult,
    Reject,
    SourceError,
    TableLoad,
    as_number,
    load,
    parse_ts,
)

SIDES = {"BUY": 1, "SELL": -1}
ORDER_STATUSES = {"FILLED": "filled", "REJECTED": "rejected", "ERRORED": "errored",
                  "CANCELLED": "cancelled", "OPEN": "open"}
PNL_TOLERANCE_INR = 1.0

TRADE_COLUMNS = ("trade_id", "symbol", "side", "quantity", "entry_time", "exit_time", "entry_price",
                 "exit_price", "fees", "net_pnl", "strategy", "ab_arm")
ORDER_COLUMNS = ("order_id", "trade_id", "symbol", "side", "quantity", "status", "submitted_at",
                 "filled_at", "fill_price")
TRADES_ORDER_BY = ("exit_time", "trade_id", "entry_time", "quantity", "entry_price", "exit_price", "fees",
                   "net_pnl")
ORDERS_ORDER_BY = ("submitted_at", "order_id", "status", "filled_at")

# Wide text bounds (the day before the first day to the day after the last): works on
# text ISO columns in SQLite ("T" or space separator, any offset spelling) and on
# timestamptz in PostgreSQL; the exact IST-day filter happens here on the parsed times.
_TRADES_SELECT = f"""
select {", ".join(TRADE_COLUMNS)}
from trades
where exit_time >= :lo and exit_time < :hi"""
_ORDERS_SELECT = f"""
select {", ".join(ORDER_COLUMNS)}
from orders
where submitted_at >= :lo and submitted_at < :hi"""
TRADES_SQL = f"{_TRADES_SELECT}\norder by {', '.join(TRADES_ORDER_BY)}\n"
ORDERS_SQL = f"{_ORDERS_SELECT}\norder by {', '.join(ORDERS_ORDER_BY)}\n"

Transport = Callable[[date, date], dict]  # (first, last) -> {"trades": ..., "orders": ...}


@dataclass(frozen=True)
class RawRecords:
    """One table's records as the database returned them: ``columns`` and one tuple per
    record. ``order_by`` names the SQL ``ORDER BY`` columns when the rows are still to
    be put in that order (see :func:`_sql_order`); empty when they already are."""

    columns: tuple[str, ...]
    rows: list[tuple]
    order_by: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    def records(self) -> list[dict]:
        """The records as dicts, in the SQL's order."""
        tbl = _Table(self)
        return [tbl.record(i) for i in tbl.python_order(np.arange(tbl.n)).tolist()]


# ---------------------------------------------------------------- transports

def _bounds(first: date, last: date) -> dict:
    return {"lo": (first - timedelta(days=1)).isoformat(), "hi": (last + timedelta(days=2)).isoformat()}


def _fetch_dicts(engine: sa.Engine, first: date, last: date) -> dict:
    """The records of [first, last] as dicts, ordered by the database (the per-record
    path's fetch; kept for the tests' oracle)."""
    with engine.connect() as conn:
        trades = [dict(r._mapping) for r in conn.execute(sa.text(TRADES_SQL), _bounds(first, last))]
        orders = [dict(r._mapping) for r in conn.execute(sa.text(ORDERS_SQL), _bounds(first, last))]
    return {"trades": trades, "orders": orders}


def _sorts_here(conn: sa.Connection, table: str) -> bool:
    """SQLite only: whether ``table`` is a plain table without a COLLATE clause in a
    UTF-8 database, so its ORDER BY is what :func:`_sql_order` reproduces."""
    row = conn.exec_driver_sql("select type, sql from sqlite_master where name = ?", (table,)).first()
    encoding = conn.exec_driver_sql("pragma encoding").scalar()
    return (row is not None and row[0] == "table" and "collate" not in (row[1] or "").lower()
            and encoding == "UTF-8")


def _fetch_rows(conn: sa.Connection, table: str, select: str, order_by: tuple[str, ...], params: dict) -> RawRecords:
    here = conn.dialect.name == "sqlite" and _sorts_here(conn, table)
    sql = select if here else f"{select}\norder by {', '.join(order_by)}"
    if conn.dialect.name == "sqlite" or conn.dialect.paramstyle in ("named", "pyformat"):
        # The driver's cursor: tuples, without SQLAlchemy's per-row objects.
        if conn.dialect.paramstyle == "pyformat":
            sql = sql.replace(":lo", "%(lo)s").replace(":hi", "%(hi)s")
        cur = conn.connection.driver_connection.cursor()
        try:
            cur.execute(sql, params)
            return RawRecords(tuple(d[0] for d in cur.description), cur.fetchall(), order_by if here else ())
        finally:
            cur.close()
    result = conn.execute(sa.text(sql), params)
    return RawRecords(tuple(result.keys()), [tuple(r) for r in result], order_by if here else ())


def _fetch(engine: sa.Engine, first: date, last: date) -> dict:
    params = _bounds(first, last)
    with engine.connect() as conn:
        return {
            "trades": _fetch_rows(conn, "trades", _TRADES_SELECT, TRADES_ORDER_BY, params),
            "orders": _fetch_rows(conn, "orders", _ORDERS_SELECT, ORDERS_ORDER_BY, params),
        }


def sql_transport(url_or_engine) -> Transport:
    def fetch(first: date, last: date) -> dict:
        engine = url_or_engine if isinstance(url_or_engine, sa.Engine) else sa.create_engine(url_or_engine)
        dbapi_error = getattr(engine.dialect.loaded_dbapi, "OperationalError", sa.exc.OperationalError)
        try:
            return _fetch(engine, first, last)
        except (sa.exc.OperationalError, dbapi_error) as exc:
            orig = getattr(exc, "orig", None) or exc
            raise SourceError(
                f"trading DB unreachable ({type(orig).__name__}): check host, port and "
                f"credentials in connection {config.TRADING_DB_CONN_ID!r}."
            ) from None
        finally:
            if engine is not url_or_engine:
                engine.dispose()
    return fetch


def demo_transport(demo_dir: Path | None = None) -> Transport:
    path = Path(demo_dir or config.demo_dir()) / "trading.db"

    def fetch(first: date, last: date) -> dict:
        if not path.exists():
            raise SourceError(f"demo trading DB {path} does not exist: run `python -m kaizen demo-data`.")
        return sql_transport(f"sqlite:///{path}")(first, last)
    return fetch


def live_transport() -> Transport:
    conn = config.require_connection(config.TRADING_DB_CONN_ID, "trading PostgreSQL database")
    url = sa.engine.URL.create(
        "postgresql+psycopg", username=conn.login, password=conn.password,
        host=conn.host, port=conn.port, database=conn.schema,
    )
    return sql_transport(url)


def default_transport() -> Transport:
    return demo_transport() if config.sources_mode() == "demo" else live_transport()


def _takes_range(fetch) -> bool:
    try:
        params = list(inspect.signature(fetch).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def _fetch_range(fetch, first: date, last: date) -> dict:
    """``fetch(first, last)``; a transport of the old shape ``fetch(day)`` is called per
    day and each day's records are cut to that day, in day order."""
    if _takes_range(fetch):
        return fetch(first, last)
    out: dict[str, list[dict]] = {"trades": [], "orders": []}
    day = first
    while day <= last:
        raw = fetch(day)
        for name, field in (("trades", "exit_time"), ("orders", "submitted_at")):
            out[name] += [r for r in _Table(raw[name]).records_in_order() if _day_of(r, field) == day]
        day += timedelta(days=1)
    return out


# ---------------------------------------------------------------- per-record validation

def _session_problem(field: str, ts: datetime) -> str | None:
    """Why ``ts`` is not inside an NSE session (the day's own hours), or None."""
    local = ts.astimezone(cal.IST)
    try:
        s = cal.session(local.date())
    except cal.CalendarNotCovered as exc:
        return f"{field} {local:%Y-%m-%d %H:%M:%S} IST is outside the calendar: {exc}"
    if s is not None and s.open <= local.time() <= s.close:
        return None
    hours = (f"{s.open:%H:%M}–{s.close:%H:%M} IST that day" if s is not None
             else "no session that day: weekend or NSE holiday")
    return f"{field} {local:%Y-%m-%d %H:%M:%S} IST outside the NSE session ({hours})"


def _check_trade(t: dict) -> tuple[dict | None, str | None]:
    """(row, None) or (None, reason)."""
    for f in ("trade_id", "symbol", "strategy"):
        if t.get(f) in (None, ""):
            return None, f"missing {f}"
    side = t.get("side")
    if side not in SIDES:
        return None, f"unknown side {side!r} (expected BUY or SELL)"
    qty = t.get("quantity")
    if not isinstance(qty, int) or isinstance(qty, bool):
        q = as_number(qty)
        if q is None or q != int(q):
            return None, f"quantity {qty!r} is not an integer"
        qty = int(q)
    if qty <= 0:
        return None, f"non-positive quantity {qty}"
    times = {}
    for f in ("entry_time", "exit_time"):
        try:
            times[f] = parse_ts(t.get(f))
        except ValueError:
            return None, f"unparseable {f} {t.get(f)!r}"
        if times[f] is None:
            return None, f"missing {f}"
    entry, exit_ = times["entry_time"], times["exit_time"]
    if exit_ < entry:
        return None, f"exit_time {exit_.isoformat()} before entry_time {entry.isoformat()}"
    for f, ts in times.items():
        problem = _session_problem(f, ts)
        if problem:
            return None, problem
    if t.get("net_pnl") is None:
        return None, "net_pnl is NULL"
    nums = {}
    for f in ("entry_price", "exit_price", "fees", "net_pnl"):
        nums[f] = as_number(t.get(f))
        if nums[f] is None:
            return None, f"{f} {t.get(f)!r} is not a number"
    expected = (nums["exit_price"] - nums["entry_price"]) * qty * SIDES[side] - nums["fees"]
    if abs(expected - nums["net_pnl"]) > PNL_TOLERANCE_INR:
        return None, (f"net P&L mismatch: reported {nums['net_pnl']:.2f}, (exit − entry) × qty × "
                      f"direction − fees = {expected:.2f} (off by more than ₹1)")
    return {
        "trade_id": str(t["trade_id"]),
        "trading_day": cal.ist_date(exit_),
        "symbol": t["symbol"],
        "side": side,
        "quantity": qty,
        "entry_time": entry,
        "exit_time": exit_,
        "entry_price_inr": nums["entry_price"],
        "exit_price_inr": nums["exit_price"],
        "fees_inr": nums["fees"],
        "net_pnl_inr": nums["net_pnl"],
        "strategy": t["strategy"],
        "ab_arm": t.get("ab_arm") or None,
    }, None


def _check_order(o: dict) -> tuple[dict | None, str | None]:
    for f in ("order_id", "symbol"):
        if o.get(f) in (None, ""):
            return None, f"missing {f}"
    side = o.get("side")
    if side not in SIDES:
        return None, f"unknown side {side!r} (expected BUY or SELL)"
    q = as_number(o.get("quantity"))
    if q is None or q != int(q):
        return None, f"quantity {o.get('quantity')!r} is not an integer"
    if q <= 0:
        return None, f"non-positive quantity {int(q)}"
    raw_status = o.get("status")
    status = ORDER_STATUSES.get(str(raw_status).upper()) if raw_status is not None else None
    if status is None:
        return None, f"unknown status {raw_status!r} (expected {', '.join(ORDER_STATUSES)})"
    try:
        submitted = parse_ts(o.get("submitted_at"))
        filled = parse_ts(o.get("filled_at"))
    except ValueError as exc:
        return None, f"unparseable timestamp ({exc})"
    if submitted is None:
        return None, "missing submitted_at"
    if status == "filled" and filled is None:
        return None, "status FILLED but filled_at is NULL"
    if status != "filled" and filled is not None:
        return None, f"filled_at set but status is {raw_status}"
    if filled is not None and filled < submitted:
        ms = (filled - submitted).total_seconds() * 1000
        return None, f"filled_at before submitted_at (negative execution latency {ms:.0f} ms)"
    return {
        "order_id": str(o["order_id"]),
        "trading_day": cal.ist_date(submitted),
        "trade_id": str(o["trade_id"]) if o.get("trade_id") not in (None, "") else None,
        "symbol": o["symbol"],
        "side": side,
        "quantity": int(q),
        "status": status,
        "submitted_at": submitted,
        "filled_at": filled,
    }, None


def _day_of(record: dict, field: str) -> date | None:
    try:
        ts = parse_ts(record.get(field))
    except ValueError:
        return None
    return cal.ist_date(ts) if ts else None


def _duplicate_reason(key: str, rkey: str) -> str:
    return f"duplicate {key} {rkey}: the first valid copy was loaded, this copy quarantined"


def _parse_records_slow(first: date, last: date, records: list[dict], *, source: str, key: str,
                        day_field: str, check) -> tuple[int, list[dict], list[Reject]]:
    """The per-record path: keep the records of IST days [first, last] (in the given
    order); validate each; the first valid copy of a key wins."""
    mine = [(r, d) for r in records if (d := _day_of(r, day_field)) is not None and first <= d <= last]
    rows: list[dict] = []
    rejects: list[Reject] = []
    seen: set[str] = set()
    for rec, day in mine:
        row, reason = check(rec)
        rkey = str(rec.get(key))
        if row is None:
            rejects.append(Reject(source, rkey, reason, rec, day=day))
        elif row[key] in seen:
            rejects.append(Reject(source, rkey, _duplicate_reason(key, rkey), rec, day=day))
        else:
            seen.add(row[key])
            rows.append(row)
    return len(mine), rows, rejects


# ---------------------------------------------------------------- columnar access

class _Table:
    """Records column by column (object arrays of the values as received)."""

    def __init__(self, raw):
        if isinstance(raw, RawRecords):
            self.columns, self.rows, self.order_by, self.dicts = raw.columns, raw.rows, raw.order_by, None
        else:
            self.dicts = list(raw)  # already in order
            self.columns, self.rows, self.order_by = (), None, ()
        self.n = len(self.rows) if self.dicts is None else len(self.dicts)
        self._cols: dict[str, np.ndarray] = {}

    def col(self, name: str) -> np.ndarray:
        if name not in self._cols:
            if self.dicts is not None:
                values = (d.get(name) for d in self.dicts)
            elif name in self.columns:
                values = map(itemgetter(self.columns.index(name)), self.rows)
            else:
                values = repeat(None, self.n)
            self._cols[name] = np.fromiter(values, dtype=object, count=self.n)
        return self._cols[name]

    def record(self, i: int) -> dict:
        return self.dicts[i] if self.dicts is not None else dict(zip(self.columns, self.rows[i], strict=True))

    def sql_key(self, i: int) -> tuple:
        return tuple(_sqlite_key(self.col(c)[i]) for c in self.order_by)

    def python_order(self, idx: np.ndarray) -> np.ndarray:
        """``idx`` sorted by the ORDER BY columns (stable), value by value."""
        if not self.order_by or len(idx) < 2:
            return idx
        return np.array(sorted(idx.tolist(), key=self.sql_key), dtype=np.int64)

    def records_in_order(self) -> list[dict]:
        return [self.record(i) for i in self.python_order(np.arange(self.n)).tolist()]


class _Columns(dict):
    """The columns of a table at positions ``idx`` (taken on first use)."""

    def __init__(self, tbl: _Table, idx: np.ndarray):
        super().__init__()
        self.tbl, self.idx = tbl, idx

    def __missing__(self, name: str) -> np.ndarray:
        self[name] = self.tbl.col(name)[self.idx]
        return self[name]


def _sqlite_key(v) -> tuple:
    """SQLite's ORDER BY rank of a value: NULL < numbers (compared exactly) < text
    (BINARY collation: UTF-8 byte order, which is code point order) < blobs."""
    if v is None:
        return (0, 0)
    if isinstance(v, int | float):
        return (1, v)
    if isinstance(v, str):
        return (2, v)
    return (3, bytes(v))


# ---------------------------------------------------------------- timestamps

_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
_US_DAY = 86_400_000_000
_IST_US = (5 * 3600 + 30 * 60) * 1_000_000  # Asia/Kolkata is UTC+05:30 since Oct 1945
_FIXED_IST_FROM = date(1946, 1, 1)
_NAT = np.iinfo(np.int64).min
_TS_KIND = {str: 0, type(None): 1, datetime: 2}
_UTC_ZONES = {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu", "GMT",
              "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT0", "GMT+0", "GMT-0", "Greenwich",
              "Etc/Greenwich"}
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_CHUNK = 1 << 15  # strings per block of the ISO parser (cache-sized)


@dataclass
class _Times:
    """A column of timestamps as :func:`parse_ts` reads them."""

    us: np.ndarray      # int64 µs since the epoch (UTC) where status == 0
    status: np.ndarray  # int8: 0 parsed, 1 NULL, 2 parse_ts raises ValueError
    shape: np.ndarray   # int16: ISO text layout id when text order is time order, else -1

    def take(self, idx: np.ndarray) -> _Times:
        return _Times(self.us[idx], self.status[idx], self.shape[idx])


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (years >= 1)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _number(d: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The decimal number of columns [lo, hi) of a digit matrix."""
    v = d[:, lo].astype(np.int64)
    for p in range(lo + 1, hi):
        v = v * 10 + d[:, p]
    return v


_HEAD_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])


def _iso_chunk(text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(µs, ok, shape) of ISO-8601 strings ``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z|z|±HH:MM]``,
    as ``parse_ts`` (``datetime.fromisoformat``) reads them; ``ok`` is False for any
    other string (those take ``parse_ts`` itself)."""
    k = len(text)
    us, ok, shape = np.zeros(k, np.int64), np.zeros(k, bool), np.full(k, -1, np.int16)
    lens = np.fromiter(map(len, text), np.int64, k)
    cand = np.flatnonzero((lens >= 19) & (lens <= 32))
    if not len(cand):
        return us, ok, shape
    sub = text if len(cand) == k else text[cand]
    width = int(lens[cand].max())
    try:
        a = sub.astype(f"S{width}")
    except UnicodeEncodeError:  # non-ASCII text is never the fast layout
        ascii_ = np.fromiter(map(str.isascii, sub), bool, len(sub))
        cand, sub = cand[ascii_], sub[ascii_]
        a = sub.astype(f"S{width}")
    m = len(cand)
    n_len = lens[cand]
    a = a.view(np.uint8).reshape(m, width)
    d = a - np.uint8(48)  # digits 0–9; anything else wraps above 9
    good = ~(d[:, _HEAD_DIGITS] > 9).any(axis=1)
    y, mo, dd = _number(d, 0, 4), _number(d, 5, 7), _number(d, 8, 10)
    hh, mi, ss = _number(d, 11, 13), _number(d, 14, 16), _number(d, 17, 19)
    space = a[:, 10] == 32
    good &= (a[:, 4] == 45) & (a[:, 7] == 45) & ((a[:, 10] == 84) | space) & (a[:, 13] == 58) & (a[:, 16] == 58)
    good &= (y >= 2) & (y <= 9998) & (mo >= 1) & (mo <= 12) & (dd >= 1) & (hh <= 23) & (mi <= 59) & (ss <= 59)
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    good &= dd <= _DAYS_IN_MONTH[np.clip(mo, 0, 12)] + (leap & (mo == 2))
    # the tail after the seconds, by length: [.f{1,6}] then "", Z/z or ±HH:MM
    frac, offset = np.zeros(m, np.int64), np.zeros(m, np.int64)
    layout = np.full(m, -1, np.int64)
    tail_ok = np.zeros(m, bool)
    for length in np.flatnonzero(np.bincount(n_len)).tolist():
        rows = np.flatnonzero(n_len == length)
        whole = len(rows) == m  # one length (the usual case): slices, no gathers
        ta, td = (a, d) if whole else (a[rows], d[rows])
        for suffix in (0, 1, 6):
            f = length - 19 - suffix  # "." and the fraction digits
            if f < 0 or f == 1 or f > 7:
                continue
            sel = np.ones(len(rows), bool)
            if f:
                sel &= (ta[:, 19] == 46) & ~(td[:, 20 : 19 + f] > 9).any(axis=1)
            if suffix == 1:
                sel &= (ta[:, length - 1] == 90) | (ta[:, length - 1] == 122)
            elif suffix == 6:
                sel &= ((ta[:, length - 6] == 43) | (ta[:, length - 6] == 45)) & (ta[:, length - 3] == 58)
                sel &= ~(td[:, [length - 5, length - 4, length - 2, length - 1]] > 9).any(axis=1)
            if not sel.any():
                continue
            all_sel = sel.all()
            hit = rows if all_sel else rows[sel]
            tsel, dsel = (ta, td) if all_sel else (ta[sel], td[sel])
            if suffix == 6:
                oh, om = _number(dsel, length - 5, length - 3), _number(dsel, length - 2, length)
                fits = (oh <= 23) & (om <= 59)
                sign = np.where(tsel[:, length - 6] == 45, -1, 1)
                hit, tsel, dsel = hit[fits], tsel[fits], dsel[fits]
                offset[hit] = (sign * (oh * 3600 + om * 60) * 1_000_000)[fits]
                layout[hit] = -1
            else:
                # one layout (separator, fraction digits, suffix text) → text order is time order
                code = 2 * f + (np.where(tsel[:, length - 1] == 90, 16, 32) if suffix else 0)
                layout[hit] = space[hit] + code
            if f:
                frac[hit] = _number(dsel, 20, 19 + f) * 10 ** (7 - f)
            tail_ok[hit] = True
    good &= tail_ok
    local = ((_days_from_civil(y, mo, dd) * 24 + hh) * 60 + mi) * 60 + ss
    utc = local * 1_000_000 + frac - offset
    hit = cand[good]
    us[hit], ok[hit], shape[hit] = utc[good], True, layout[good]
    return us, ok, shape


def _iso(text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = [_iso_chunk(text[i : i + _CHUNK]) for i in range(0, len(text), _CHUNK)] or [_iso_chunk(text)]
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def _one_ts(v) -> tuple[int, int]:
    """(status, µs) of one value, by parse_ts itself."""
    try:
        ts = parse_ts(v)
    except ValueError:
        return 2, 0
    return (1, 0) if ts is None else (0, (ts - _EPOCH) // _US)


def _since_epoch(ts: datetime) -> int:
    return (ts - _EPOCH) // _US  # aware: the instant, as astimezone(UTC) gives it


def _datetimes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(µs, ok) of datetime objects as parse_ts converts them (naive = UTC): zones with
    a fixed offset through pandas, others (e.g. a PostgreSQL session's ZoneInfo, whose
    offset depends on the date and ``fold``) one by one."""
    n = len(values)
    tz = np.fromiter(map(attrgetter("tzinfo"), values), dtype=object, count=n)
    zones = {z: z is None or isinstance(z, timezone) or (isinstance(z, ZoneInfo) and z.key in _UTC_ZONES)
             for z in set(tz)}
    fixed = np.ones(n, bool) if all(zones.values()) else np.fromiter(map(zones.__getitem__, tz), bool, n)
    us, ok = np.zeros(n, np.int64), np.ones(n, bool)
    if fixed.any():
        conv = pd.to_datetime(pd.Series(values[fixed], dtype=object), utc=True, errors="coerce")
        us[fixed] = conv.dt.as_unit("us").array.asi8
        ok[np.flatnonzero(fixed)[us[fixed] == _NAT]] = False
    if not fixed.all():
        us[~fixed] = np.fromiter(map(_since_epoch, values[~fixed]), np.int64, int((~fixed).sum()))
    return us, ok


def _times(col: np.ndarray) -> _Times:
    """Parse a column exactly as :func:`parse_ts` does, vectorised where that is certain."""
    n = len(col)
    out = _Times(np.zeros(n, np.int64), np.full(n, 2, np.int8), np.full(n, -1, np.int16))
    kinds = set(map(type, col))
    if kinds <= {str}:
        kind = np.zeros(n, np.int8)
    else:
        kind = np.fromiter(map(_TS_KIND.get, map(type, col), repeat(3)), np.int8, n)
    todo = [np.flatnonzero(kind == 3)]
    if str in kinds:
        i = np.flatnonzero(kind == 0)
        us, ok, shape = _iso(col[i])
        out.us[i[ok]], out.status[i[ok]], out.shape[i[ok]] = us[ok], 0, shape[ok]
        todo.append(i[~ok])
    out.status[kind == 1] = 1
    if datetime in kinds:
        i = np.flatnonzero(kind == 2)
        us, ok = _datetimes(col[i])
        out.us[i[ok]], out.status[i[ok]] = us[ok], 0
        todo.append(i[~ok])
    for i in np.concatenate(todo).tolist():
        out.status[i], out.us[i] = _one_ts(col[i])
    return out


def _ist_days(us: np.ndarray) -> np.ndarray:
    return (us + _IST_US) // _US_DAY


def _per_day(days: np.ndarray, fn, dtype) -> np.ndarray:
    """``fn(day number)`` for each element, evaluated once per distinct day."""
    if not len(days):
        return np.zeros(0, dtype)
    lo, hi = int(days.min()), int(days.max())
    if hi - lo < 20_000:
        table = np.array([fn(lo + i) for i in range(hi - lo + 1)], dtype=dtype)
        return table[days - lo]
    uniq, inv = np.unique(days, return_inverse=True)
    return np.array([fn(int(u)) for u in uniq], dtype=dtype)[inv]


def _session_us(k: int) -> tuple[int, int]:
    """[open, close] of day number ``k``'s session in µs since IST midnight; an empty
    range when it has none or the calendar does not cover it (the per-record check then
    says why)."""
    try:
        s = cal.session(_EPOCH_DATE + timedelta(days=k))
    except (LookupError, OverflowError, ValueError):
        s = None
    if s is None:
        return (1, 0)
    return tuple((t.hour * 3600 + t.minute * 60 + t.second) * 1_000_000 + t.microsecond for t in (s.open, s.close))


def _in_session_us(us: np.ndarray) -> np.ndarray:
    if not len(us):
        return np.zeros(0, bool)
    local = us + _IST_US
    days = local // _US_DAY
    tod = local - days * _US_DAY
    bounds = _per_day(days, _session_us, np.int64)
    return (tod >= bounds[:, 0]) & (tod <= bounds[:, 1])


def _dates(days: np.ndarray) -> np.ndarray:
    return _per_day(days, lambda k: _EPOCH_DATE + timedelta(days=k), object)


# ---------------------------------------------------------------- vectorised checks

def _of_types(col: np.ndarray, types: dict) -> np.ndarray:
    """Whether each value's exact type is a key of ``types`` (subclasses are not)."""
    return np.fromiter(map(types.get, map(type, col), repeat(False)), bool, len(col))


def _texts(col: np.ndarray) -> np.ndarray:
    """Non-empty str."""
    if set(map(type, col)) <= {str}:
        return col != ""
    return _of_types(col, {str: True}) & (col != "")


def _optional_texts(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value or None for None/"", ok = str or None)."""
    if set(map(type, col)) <= {str, type(None)}:
        ok = np.ones(len(col), bool)
    else:
        ok = _of_types(col, {str: True, type(None): True})
    out = col.copy()
    out[col == ""] = None
    return out, ok


def _sides(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is BUY, is BUY or SELL)."""
    buy = col == "BUY"
    return buy, buy | (col == "SELL")


def _counts(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, ok = a Python int in (0, 2**53), where int and float agree)."""
    ok = np.ones(len(col), bool) if set(map(type, col)) <= {int} else _of_types(col, {int: True})
    v = np.zeros(len(col), np.int64)
    try:
        v[ok] = col[ok].astype(np.int64)
    except OverflowError:
        ok &= np.fromiter((type(x) is int and -(2**53) < x < 2**53 for x in col), bool, len(col))
        v[ok] = col[ok].astype(np.int64)
    return v, ok & (v > 0) & (v < 2**53)


def _float_or_nan(x) -> float:
    try:
        return float(x)
    except OverflowError:
        return float("nan")


def _numbers(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float(value), ok = an int or float, finite) — as_number's result where ok."""
    num = np.ones(len(col), bool) if set(map(type, col)) <= {float, int} else _of_types(col, {float: True, int: True})
    v = np.zeros(len(col), np.float64)
    try:
        v[num] = col[num].astype(np.float64)
    except OverflowError:
        v[num] = np.fromiter(map(_float_or_nan, col[num]), np.float64, int(num.sum()))
    return v, num & np.isfinite(v)


def _statuses(col: np.ndarray) -> np.ndarray:
    """ORDER_STATUSES of str values (None where unknown or not a str)."""
    if set(map(type, col)) <= {str}:
        codes, uniq = pd.factorize(col)
        mapped = np.array([ORDER_STATUSES.get(u.upper()) for u in uniq] + [None], dtype=object)
        return mapped[codes]
    return np.array([ORDER_STATUSES.get(v.upper()) if type(v) is str else None for v in col], dtype=object)


def _fast_trades(c: _Columns, exit_: _Times) -> tuple[np.ndarray, dict]:
    """(certainly valid per :func:`_check_trade`, its row values where so)."""
    ok = _texts(c["trade_id"]) & _texts(c["symbol"]) & _texts(c["strategy"])
    buy, known = _sides(c["side"])
    qty, q_ok = _counts(c["quantity"])
    ok &= known & q_ok
    entry = _times(c["entry_time"])
    ok &= (entry.status == 0) & (exit_.status == 0) & (exit_.us >= entry.us)
    ok &= _in_session_us(entry.us) & _in_session_us(exit_.us)
    nums = {}
    for f in ("entry_price", "exit_price", "fees", "net_pnl"):
        nums[f], f_ok = _numbers(c[f])
        ok &= f_ok
    with np.errstate(all="ignore"):
        expected = (nums["exit_price"] - nums["entry_price"]) * qty.astype(np.float64) \
            * np.where(buy, 1.0, -1.0) - nums["fees"]
        ok &= ~(np.abs(expected - nums["net_pnl"]) > PNL_TOLERANCE_INR)
    ab, ab_ok = _optional_texts(c["ab_arm"])
    ok &= ab_ok
    return ok, {
        "trade_id": c["trade_id"], "trading_day": _ist_days(exit_.us), "symbol": c["symbol"],
        "side": c["side"], "quantity": qty, "entry_time": entry.us, "exit_time": exit_.us,
        "entry_price_inr": nums["entry_price"], "exit_price_inr": nums["exit_price"],
        "fees_inr": nums["fees"], "net_pnl_inr": nums["net_pnl"], "strategy": c["strategy"], "ab_arm": ab,
    }


def _fast_orders(c: _Columns, submitted: _Times) -> tuple[np.ndarray, dict]:
    """(certainly valid per :func:`_check_order`, its row values where so)."""
    ok = _texts(c["order_id"]) & _texts(c["symbol"])
    _, known = _sides(c["side"])
    qty, q_ok = _counts(c["quantity"])
    status = _statuses(c["status"])
    ok &= known & q_ok & ~pd.isna(status)
    filled = _times(c["filled_at"])
    is_filled = status == "filled"
    ok &= (submitted.status == 0) & np.where(
        is_filled, (filled.status == 0) & (filled.us >= submitted.us), filled.status == 1
    )
    trade_id, t_ok = _optional_texts(c["trade_id"])
    ok &= t_ok
    return ok, {
        "order_id": c["order_id"], "trading_day": _ist_days(submitted.us), "trade_id": trade_id,
        "symbol": c["symbol"], "side": c["side"], "quantity": qty, "status": status,
        "submitted_at": submitted.us, "filled_at": np.where(filled.status == 0, filled.us, _NAT),
    }


TRADE_FRAME = (("trade_id", "text"), ("trading_day", "day"), ("symbol", "text"), ("side", "text"),
               ("quantity", "int"), ("entry_time", "ts"), ("exit_time", "ts"), ("entry_price_inr", "float"),
               ("exit_price_inr", "float"), ("fees_inr", "float"), ("net_pnl_inr", "float"),
               ("strategy", "text"), ("ab_arm", "text"))
ORDER_FRAME = (("order_id", "text"), ("trading_day", "day"), ("trade_id", "text"), ("symbol", "text"),
               ("side", "text"), ("quantity", "int"), ("status", "text"), ("submitted_at", "ts"),
               ("filled_at", "ts"))


def _put(out: dict, spec, i: int, row: dict) -> None:
    """Store a row of the per-record checker at position ``i`` of the column arrays."""
    for name, kind in spec:
        v = row[name]
        if kind == "ts":
            v = _NAT if v is None else (v - _EPOCH) // _US
        elif kind == "day":
            v = (v - _EPOCH_DATE).days
        try:
            out[name][i] = v
        except OverflowError:  # an int beyond int64: keep it as is
            out[name] = out[name].astype(object)
            out[name][i] = v


def _frame(out: dict, spec, pos: np.ndarray) -> pd.DataFrame:
    data = {}
    for name, kind in spec:
        a = out[name][pos]
        if kind == "ts":
            data[name] = pd.Series(a.astype("datetime64[us]"), copy=False).dt.tz_localize("UTC")
        elif kind == "day":
            data[name] = pd.Series(_dates(a), dtype=object)
        elif kind == "text" or a.dtype == object:
            data[name] = pd.Series(a, dtype=object)
        else:
            data[name] = pd.Series(a, copy=False)
    return pd.DataFrame(data, copy=False)


def _sql_order(tbl: _Table, idx: np.ndarray, field: str, primary: _Times) -> np.ndarray:
    """Positions ``idx`` in the order of ``ORDER BY tbl.order_by`` (SQLite rules).

    When the first ORDER BY column is ``field`` (parsed: ``primary``) and all its values
    are ISO text of one layout with the same suffix, text order is time order: a stable
    sort on the parsed times, then the runs of equal times by the other columns, value
    by value. Otherwise value by value."""
    shape = primary.shape
    if not len(idx) or tbl.order_by[0] != field or shape[0] < 0 or (shape != shape[0]).any():
        return tbl.python_order(idx)
    o = np.argsort(primary.us, kind="stable")
    idx, us = idx[o], primary.us[o]
    same = np.concatenate(([False], us[1:] == us[:-1], [False]))
    edges = np.diff(same.astype(np.int8))
    for a, b in zip(np.flatnonzero(edges == 1).tolist(), (np.flatnonzero(edges == -1) + 1).tolist(),
                    strict=True):
        idx[a:b] = tbl.python_order(idx[a:b])
    return idx


def parse_records(first: date, last: date, records, *, source: str, key: str, day_field: str,
                  check, fast, spec) -> tuple[int, pd.DataFrame | list[dict], list[Reject]]:
    """Keep the records of IST days [first, last] (in the SQL's order); validate; the
    first valid copy of a key wins. (extracted count, rows as a DataFrame, rejects) —
    the same as :func:`_parse_records_slow`, vectorised."""
    tbl = _Table(records)
    if first < _FIXED_IST_FROM:  # older IST offsets: not worth a fast path
        return _parse_records_slow(first, last, tbl.records_in_order(), source=source, key=key,
                                   day_field=day_field, check=check)
    day = _times(tbl.col(day_field))
    days = _ist_days(day.us)
    idx = np.flatnonzero((day.status == 0) & (days >= (first - _EPOCH_DATE).days)
                         & (days <= (last - _EPOCH_DATE).days))
    if tbl.order_by:
        idx = _sql_order(tbl, idx, day_field, day.take(idx))
    day = day.take(idx)
    cols = _Columns(tbl, idx)
    valid, out = fast(cols, day)
    reasons: dict[int, str] = {}
    for i in np.flatnonzero(~valid).tolist():
        row, reason = check(tbl.record(int(idx[i])))
        if row is None:
            reasons[i] = reason
        else:
            valid[i] = True
            _put(out, spec, i, row)
    pos = np.flatnonzero(valid)
    dup = pd.Series(out[key][pos], dtype=object).duplicated(keep="first").to_numpy()
    rejects = []
    bad = np.array(sorted([*reasons, *pos[dup].tolist()]), dtype=np.int64)
    for i, day_i in zip(bad.tolist(), _dates(_ist_days(day.us[bad])), strict=True):
        rec = tbl.record(int(idx[i]))
        rkey = str(rec.get(key))
        reason = reasons[i] if i in reasons else _duplicate_reason(key, rkey)
        rejects.append(Reject(source, rkey, reason, rec, day=day_i))
    return len(idx), _frame(out, spec, pos[~dup]), rejects


def parse_trades(first: date, last: date, records) -> tuple[int, pd.DataFrame | list[dict], list[Reject]]:
    return parse_records(first, last, records, source="trades", key="trade_id", day_field="exit_time",
                         check=_check_trade, fast=_fast_trades, spec=TRADE_FRAME)


def parse_orders(first: date, last: date, records) -> tuple[int, pd.DataFrame | list[dict], list[Reject]]:
    return parse_records(first, last, records, source="orders", key="order_id", day_field="submitted_at",
                         check=_check_order, fast=_fast_orders, spec=ORDER_FRAME)


def prepare_range(first: date, last: date, transport: Transport | None = None) -> list[TableLoad]:
    """The trading days ``first``..``last`` fetched and validated: what to load."""
    raw = _fetch_range(transport or default_transport(), first, last)
    n_t, trades, t_rej = parse_trades(first, last, raw["trades"])
    n_o, orders, o_rej = parse_orders(first, last, raw["orders"])
    where, params = DAY_SLICE, {"first": first, "last": last}
    return [
        TableLoad("trades", "raw_trades", where, params, n_t, trades, t_rej, key="trade_id"),
        TableLoad("orders", "raw_orders", where, params, n_o, orders, o_rej, key="order_id"),
    ]


def extract_range(first: date, last: date, engine: sa.Engine, run_id: str,
                  transport: Transport | None = None) -> list[ExtractResult]:
    """The trading days ``first``..``last``: one fetch, one load."""
    return load(engine, (first, last), run_id, prepare_range(first, last, transport))


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None) -> list[ExtractResult]:
    return extract_range(day, day, engine, run_id, transport)
