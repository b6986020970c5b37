"""Orders and closed trades from the trading system's database (PostgreSQL via the
``kaizen_trading_db`` connection; in demo mode the SQLite ``trading.db``), validated
into ``raw_trades`` / ``raw_orders``.

A trade belongs to the IST date on which it closed (exit_time); an order to the IST
date on which it was submitted. A range of trading days is ONE fetch and ONE load.

A transport is ``fetch(first, last) -> {"trades": records, "orders": records}``, the
records dicts in the order of the SQL's ``ORDER BY`` (the database sorts them); a
transport of the old shape ``fetch(day)`` is still accepted (called per day). Each
record is validated by :func:`_check_trade` / :func:`_check_order`; the first valid
copy of a key wins, every other record is quarantined with its reason. The valid rows
are returned as a pandas DataFrame (the bulk shape of :func:`kaizen.sources.base.load`).

Timestamps (issue 14, validation; every case below is quarantined with its reason, and
extracted = loaded + quarantined):

- *As-of.* An extract runs as of ``as_of`` (:func:`prepare_range`; by default the
  extraction's clock, :func:`kaizen.sources.base.extraction_clock`: now, or the demo
  clock of a rehearsal). A trade whose ``exit_time``, an order whose ``submitted_at`` or
  ``filled_at`` is more than :data:`~kaizen.sources.base.FUTURE_TOLERANCE` after it
  has not happened yet. Independently, a fill after the end of the last extracted IST
  day cannot belong to these days (``until`` of :func:`_check_order`); a fill before
  its submission is a negative execution latency.
- *Unreadable times.* An unparseable ``entry_time`` or ``filled_at`` quarantines its
  record. A record whose *day field* (``exit_time``, ``submitted_at``) cannot be read
  but whose text starts with a date (``YYYY-MM-DD``, what the SQL's text bounds fetch
  it by) is that date's record, quarantined by that day's extract. Without any date
  (NULL, empty, other text) it belongs to no trading day: the transport fetches such
  records apart from the day bounds, and every trading day of every extract
  quarantines it again until the trading system fixes it (as
  :mod:`kaizen.sources.github_issues` does with an issue without ``updated_at``), so a
  range extract leaves what its days one at a time leave."""

from __future__ import annotations

import calendar as _months
import inspect
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config, warehouse
from kaizen.sources import trading_accel as accel
from kaizen.sources.base import (
    DAY_SLICE,
    FUTURE_TOLERANCE,
    ExtractResult,
    Reject,
    SourceError,
    TableLoad,
    as_number,
    extraction_clock,
    future_reason,
    iso_z,
    load,
    parse_ts,
    read_ts,
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
TRADES_SQL = f"""
select {", ".join(TRADE_COLUMNS)}
from trades
where exit_time >= :lo and exit_time < :hi
order by {", ".join(TRADES_ORDER_BY)}
"""
ORDERS_SQL = f"""
select {", ".join(ORDER_COLUMNS)}
from orders
where submitted_at >= :lo and submitted_at < :hi
order by {", ".join(ORDERS_ORDER_BY)}
"""

# The records whose day field no text bound finds (NULL, or text that does not start
# with a date): fetched apart, by every extract. The text that starts with a date but
# lies inside the bounds is the main query's already.
DATE_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
UNDATED_WHERE = {
    "sqlite": ("{f} is null or (cast({f} as text) not glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"
               " and not ({f} >= :lo and {f} < :hi))"),
    "postgresql": ("{f} is null or (cast({f} as text) !~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}'"
                   " and not ({f} >= :lo and {f} < :hi))"),
}
UNDATED_SQL = {
    "trades": f"select {', '.join(TRADE_COLUMNS)} from trades where {{where}} order by {', '.join(TRADES_ORDER_BY)}",
    "orders": f"select {', '.join(ORDER_COLUMNS)} from orders where {{where}} order by {', '.join(ORDERS_ORDER_BY)}",
}
DAY_FIELDS = {"trades": "exit_time", "orders": "submitted_at"}

Transport = Callable[[date, date], dict]  # (first, last) -> {"trades": ..., "orders": ...}


# ---------------------------------------------------------------- transports

def _bounds(first: date, last: date) -> dict:
    return {"lo": (first - timedelta(days=1)).isoformat(), "hi": (last + timedelta(days=2)).isoformat()}


class Records(Sequence):
    """The records of one query as the driver returned them: a sequence of dicts to
    whoever iterates it, and whole columns at once to the parse."""

    def __init__(self, names: list[str], rows: list[tuple]):
        self.names, self.rows = names, rows
        self._columns: dict[str, tuple] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return dict(zip(self.names, self.rows[i], strict=True))

    def column(self, name: str) -> tuple:
        if self._columns is None:
            cols = list(zip(*self.rows, strict=True)) or [()] * len(self.names)
            self._columns = dict(zip(self.names, cols, strict=True))
        return self._columns.get(name) or (None,) * len(self.rows)


def _undated_sql(name: str, dialect: str) -> str:
    where = UNDATED_WHERE.get(dialect, "{f} is null").format(f=DAY_FIELDS[name])
    return UNDATED_SQL[name].format(where=where)


def _fetch(engine: sa.Engine, first: date, last: date) -> dict:
    """The records of [first, last] (and a day either side) as dicts, in the SQL's order,
    then those whose day field no day's bounds find (NULL, or text without a date)."""
    params = _bounds(first, last)
    out = {}
    with engine.connect() as conn:
        for name, sql in (("trades", TRADES_SQL), ("orders", ORDERS_SQL)):
            names, rows = warehouse.fetch_table(conn, sql, params)
            _, undated = warehouse.fetch_table(conn, _undated_sql(name, conn.dialect.name), params)
            out[name] = Records(names, rows + undated)
    return out


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
                f"credentials in connection {config.TRADING_DB_CONN_ID!r}.", transient=True
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
    day and each day's records are cut to that day, in day order (the records on no
    day once, from the first call)."""
    if _takes_range(fetch):
        return fetch(first, last)
    out: dict[str, list[dict]] = {"trades": [], "orders": []}
    undated: dict[str, list[dict]] = {}
    day = first
    while day <= last:
        raw = fetch(day)
        for name, field in DAY_FIELDS.items():
            out[name] += [r for r in raw[name] if _day_of(r, field) == day]
            if name not in undated:
                undated[name] = [r for r in raw[name] if _day_of(r, field) is None]
        day += timedelta(days=1)
    for name, records in undated.items():
        out[name] += records
    return out


# ---------------------------------------------------------------- per-record validation

def _text_day(value) -> date | None:
    """The day of an unreadable day field's text: the date it starts with, clamped to a
    real date (2026-11-31 → 30 Nov: the day whose ISO text range holds it, where the
    fetch's text bounds find it); None when it does not start with ``YYYY-MM-DD``."""
    if not isinstance(value, str) or not DATE_PREFIX.match(value):
        return None
    y, m, d = int(value[:4]), int(value[5:7]), int(value[8:10])
    if y == 0 or (y == 1 and (m == 0 or (m == 1 and d == 0))):
        return None
    if m == 0:
        return date(y - 1, 12, 31)
    if m > 12:
        return date(y, 12, 31)
    if d == 0:
        return date(y, m, 1) - timedelta(days=1)
    return date(y, m, min(d, _months.monthrange(y, m)[1]))


def _day_of(record: dict, field: str) -> date | None:
    """The day a record's day field puts it on: the IST date of the time, or for an
    unreadable time the date its text starts with; None: on no day (NULL, no date)."""
    value = record.get(field)
    try:
        ts = parse_ts(value)
    except ValueError:
        return _text_day(value)
    return cal.ist_date(ts) if ts else None


def _session_problem(field: str, ts: datetime, calendar: cal.Calendar) -> str | None:
    """Why ``ts`` is not inside an NSE session (the day's own hours), or None."""
    local = ts.astimezone(cal.IST)
    try:
        s = calendar.session(local.date())
    except cal.CalendarNotCovered as exc:
        return f"{field} {local:%Y-%m-%d %H:%M:%S} IST is outside the calendar: {exc}"
    if s is not None and s.open <= local.time() <= s.close:
        return None
    hours = (f"{s.open:%H:%M}–{s.close:%H:%M} IST that day" if s is not None
             else "no session that day: weekend or NSE holiday")
    return f"{field} {local:%Y-%m-%d %H:%M:%S} IST outside the NSE session ({hours})"


def _check_trade(t: dict, exit_: datetime, day: date, calendar: cal.Calendar, *,
                 as_of: datetime | None = None) -> tuple[dict | None, str | None]:
    """(row, None) or (None, reason). ``exit_`` is ``t``'s exit_time and ``day`` its IST
    date, as the day filter read them; ``calendar`` gives the NSE sessions; a trade
    closed after ``as_of`` (the extraction's as-of; None: not checked) is in the future."""
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
    entry, reason = read_ts(t.get("entry_time"), "entry_time")
    if reason:
        return None, reason
    if entry is None:
        return None, "missing entry_time"
    future = future_reason("exit_time", exit_, as_of, "a trade closed")
    if future:
        return None, future
    if exit_ < entry:
        return None, f"exit_time {exit_.isoformat()} before entry_time {entry.isoformat()}"
    for f, ts in (("entry_time", entry), ("exit_time", exit_)):
        problem = _session_problem(f, ts, calendar)
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
        "trading_day": day,
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


def _check_order(o: dict, submitted: datetime, day: date, *, until: datetime | None = None,
                 as_of: datetime | None = None) -> tuple[dict | None, str | None]:
    """(row, None) or (None, reason). ``submitted`` is ``o``'s submitted_at and ``day``
    its IST date, as the day filter read them; a fill after ``until`` (the end of the
    extracted days), a submission or fill after ``as_of`` (the extraction's as-of, with
    its tolerance) has not happened yet: a bad clock or a bad record. None: not checked."""
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
        filled = parse_ts(o.get("filled_at"))
    except ValueError as exc:
        return None, f"unparseable timestamp ({exc})"
    if status == "filled" and filled is None:
        return None, "status FILLED but filled_at is NULL"
    if status != "filled" and filled is not None:
        return None, f"filled_at set but status is {raw_status}"
    if filled is not None and filled < submitted:
        ms = (filled - submitted).total_seconds() * 1000
        return None, f"filled_at before submitted_at (negative execution latency {ms:.0f} ms)"
    if filled is not None and until is not None and filled > until:
        return None, (f"filled_at {iso_z(filled)} is after the end of the extracted days ({iso_z(until)}): "
                      "a fill in the future")
    future = (future_reason("submitted_at", submitted, as_of, "an order submitted")
              or future_reason("filled_at", filled, as_of, "a fill"))
    if future:
        return None, future
    return {
        "order_id": str(o["order_id"]),
        "trading_day": day,
        "trade_id": str(o["trade_id"]) if o.get("trade_id") not in (None, "") else None,
        "symbol": o["symbol"],
        "side": side,
        "quantity": int(q),
        "status": status,
        "submitted_at": submitted,
        "filled_at": filled,
    }, None


def _duplicate_reason(key: str, rkey: str) -> str:
    return f"duplicate {key} {rkey}: the first valid copy was loaded, this copy quarantined"


# ---------------------------------------------------------------- the valid rows as a frame

TRADE_FRAME = (("trade_id", "text"), ("trading_day", "day"), ("symbol", "text"), ("side", "text"),
               ("quantity", "int"), ("entry_time", "ts"), ("exit_time", "ts"), ("entry_price_inr", "float"),
               ("exit_price_inr", "float"), ("fees_inr", "float"), ("net_pnl_inr", "float"),
               ("strategy", "text"), ("ab_arm", "text"))
ORDER_FRAME = (("order_id", "text"), ("trading_day", "day"), ("trade_id", "text"), ("symbol", "text"),
               ("side", "text"), ("quantity", "int"), ("status", "text"), ("submitted_at", "ts"),
               ("filled_at", "ts"))


def _column(values: list, kind: str) -> pd.Series:
    """One column of the frame: timestamps as datetime64[us, UTC] (NaT for NULL), money
    as float64, quantities as int64, text and dates as Python objects."""
    if kind == "ts":
        return pd.Series(values, dtype="datetime64[us, UTC]")
    if kind == "float":
        return pd.Series(values, dtype=np.float64)
    if kind == "int":
        try:
            return pd.Series(np.array(values, dtype=np.int64))
        except OverflowError:  # an int beyond int64: kept as it is
            return pd.Series(values, dtype=object)
    return pd.Series(values, dtype=object)  # text (None for NULL, never NaN) and dates


def _frame(rows: list[dict], spec) -> pd.DataFrame:
    """The checkers' rows as a DataFrame with the columns (and dtypes) of ``spec``."""
    return pd.DataFrame({name: _column([r[name] for r in rows], kind) for name, kind in spec})


# ---------------------------------------------------------------- parse

def _object_column(records, name: str) -> np.ndarray:
    values = records.column(name) if isinstance(records, Records) else [r.get(name) for r in records]
    return np.fromiter(values, dtype=object, count=len(records))


def _frame_of(columns: dict, spec) -> pd.DataFrame:
    """The accelerator's row columns as a DataFrame with the dtypes of ``spec``."""
    out = {}
    for name, kind in spec:
        v = columns[name]
        if kind == "ts":
            out[name] = pd.Series(v.astype("datetime64[us]"), dtype="datetime64[us, UTC]")
        elif kind == "day":
            out[name] = pd.Series(accel.as_dates(v), dtype=object)
        else:
            out[name] = _column(v, kind)
    return pd.DataFrame(out)


def parse_records(first: date, last: date, records, *, source: str, key: str, day_field: str,
                  fields, check, screen, spec, undated_days: Sequence[date] = ()
                  ) -> tuple[int, pd.DataFrame, list[Reject]]:
    """Keep the records of IST days [first, last] (in the given order); validate each
    with ``check(record, its day field parsed, that field's IST date)`` — the plain
    ones in bulk by ``screen`` (:mod:`kaizen.sources.trading_accel`); the first valid
    copy of a key wins. A day field that cannot be parsed puts its record on the date
    its text starts with (:func:`_text_day`), where it is quarantined; a record on no
    day at all is quarantined on each of ``undated_days`` (none: not extracted).
    Returns (extracted count, rows as a DataFrame, rejects)."""
    if not isinstance(records, Sequence):
        records = list(records)
    day_values = _object_column(records, day_field)
    us, state = accel.stamps(day_values, parse_ts)
    days = accel.ist_days(us)
    undated = state == accel.NULL
    for i in np.flatnonzero(state == accel.BAD).tolist():
        d = _text_day(day_values[i])
        if d is None:
            undated[i] = True
        else:
            days[i] = (d - accel.EPOCH_DAY).days
    lo, hi = (first - accel.EPOCH_DAY).days, (last - accel.EPOCH_DAY).days
    kept = np.flatnonzero(~undated & (lo <= days) & (days <= hi))
    cols = {f: _object_column(records, f)[kept] for f in fields}
    plain, values = screen(cols, us[kept], days[kept])
    plain &= state[kept] == accel.OK
    day_of = accel.as_dates(days[kept])  # each kept record's IST day, as the day filter read it
    slow_rows, slow_at, rejects = [], [], []
    for j in np.flatnonzero(~plain).tolist():
        rec = records[int(kept[j])]
        if state[kept[j]] != accel.OK:  # a day from the text of an unparseable time
            _, reason = read_ts(rec.get(day_field), day_field)
            rejects.append((j, Reject(source, str(rec.get(key)), reason, rec, day=day_of[j])))
            continue
        row, reason = check(rec, parse_ts(rec.get(day_field)), day_of[j])
        if row is None:
            rejects.append((j, Reject(source, str(rec.get(key)), reason, rec, day=day_of[j])))
        else:
            slow_rows.append(row)
            slow_at.append(j)
    frame = _frame_of({k: v[plain] for k, v in values.items()}, spec)
    at = np.flatnonzero(plain)
    if slow_rows:
        at = np.concatenate([at, slow_at])
        frame = pd.concat([frame, _frame(slow_rows, spec)], ignore_index=True)
        order = np.argsort(at, kind="stable")
        frame, at = frame.iloc[order].reset_index(drop=True), at[order]
    dup = frame[key].duplicated(keep="first").to_numpy()
    for j in at[dup].tolist():
        rec = records[int(kept[j])]
        rkey = str(rec.get(key))
        rejects.append((j, Reject(source, rkey, _duplicate_reason(key, rkey), rec, day=day_of[j])))
    if dup.any():
        frame = frame[~dup].reset_index(drop=True)
    rejects.sort(key=lambda r: r[0])
    out = [r for _, r in rejects]
    nowhere = np.flatnonzero(undated).tolist() if len(undated_days) else []
    for day in undated_days:
        for i in nowhere:
            rec = records[i]
            value = rec.get(day_field)
            reason = f"missing {day_field}" if value is None else read_ts(value, day_field)[1]
            out.append(Reject(source, str(rec.get(key)), f"{reason}: on no trading day (each day's extract "
                                                         "quarantines it)", rec, day=day))
    return len(kept) + len(nowhere) * len(undated_days), frame, out


def _limit_us(as_of: datetime) -> int:
    """The latest instant (µs since the epoch) a record may carry as of ``as_of``."""
    return accel.epoch_us(as_of + FUTURE_TOLERANCE)


def parse_trades(first: date, last: date, records, *, as_of: datetime | None = None,
                 undated_days: Sequence[date] = ()) -> tuple[int, pd.DataFrame, list[Reject]]:
    """The trades of IST days [first, last] among ``records``, validated as of ``as_of``
    (None: the extraction's clock); see :func:`parse_records` for ``undated_days``."""
    as_of = as_of or extraction_clock()
    calendar = cal.calendar()
    return parse_records(first, last, records, source="trades", key="trade_id", day_field="exit_time",
                         fields=TRADE_COLUMNS, check=partial(_check_trade, calendar=calendar, as_of=as_of),
                         screen=partial(accel.screen_trades, parse_ts=parse_ts, limit_us=_limit_us(as_of)),
                         spec=TRADE_FRAME, undated_days=undated_days)


def parse_orders(first: date, last: date, records, *, as_of: datetime | None = None,
                 undated_days: Sequence[date] = ()) -> tuple[int, pd.DataFrame, list[Reject]]:
    """The orders of IST days [first, last] among ``records``, validated as of ``as_of``
    (None: the extraction's clock); see :func:`parse_records` for ``undated_days``."""
    as_of = as_of or extraction_clock()
    until = cal.ist_datetime(last + timedelta(days=1), time(0))  # the end of the last extracted IST day
    return parse_records(first, last, records, source="orders", key="order_id", day_field="submitted_at",
                         fields=ORDER_COLUMNS, check=partial(_check_order, until=until, as_of=as_of),
                         screen=partial(accel.screen_orders, parse_ts=parse_ts, statuses=ORDER_STATUSES,
                                        until_us=accel.epoch_us(until), limit_us=_limit_us(as_of)),
                         spec=ORDER_FRAME, undated_days=undated_days)


def prepare_range(first: date, last: date, transport: Transport | None = None, *,
                  as_of: datetime | None = None) -> list[TableLoad]:
    """The trading days ``first``..``last`` fetched and validated as of ``as_of`` (None:
    the extraction's clock, :func:`~kaizen.sources.base.extraction_clock`): what to load.
    A record on no day is quarantined on each trading day of the range."""
    as_of = as_of or extraction_clock()
    raw = _fetch_range(transport or default_transport(), first, last)
    every = cal.trading_days(first, last)
    n_t, trades, t_rej = parse_trades(first, last, raw["trades"], as_of=as_of, undated_days=every)
    n_o, orders, o_rej = parse_orders(first, last, raw["orders"], as_of=as_of, undated_days=every)
    where, params = DAY_SLICE, {"first": first, "last": last}
    return [
        TableLoad("trades", "raw_trades", where, params, n_t, trades, t_rej, key="trade_id"),
        TableLoad("orders", "raw_orders", where, params, n_o, orders, o_rej, key="order_id"),
    ]


def extract_range(first: date, last: date, engine: sa.Engine, run_id: str,
                  transport: Transport | None = None, *, as_of: datetime | None = None) -> list[ExtractResult]:
    """The trading days ``first``..``last``: one fetch, one load (``as_of``: see
    :func:`prepare_range`)."""
    return load(engine, (first, last), run_id, prepare_range(first, last, transport, as_of=as_of))


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None, *,
            as_of: datetime | None = None) -> list[ExtractResult]:
    return extract_range(day, day, engine, run_id, transport, as_of=as_of)
