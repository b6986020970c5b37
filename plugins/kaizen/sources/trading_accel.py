"""Accelerator of the trading parse: the records that are plainly valid, checked and
turned into rows column by column with numpy.

Kept because ``bench/rebuild.py`` misses its year target without it: validating
record by record costs about 10 µs a record, 15 s for a year of 1.5 million trades
and orders. A record is *plain* when every field has the type the trading database
returns (text, integer quantity, finite float money, ISO-8601 or datetime stamps) and
it passes every rule; the screen computes exactly what the per-record checkers of
:mod:`kaizen.sources.trading` compute for it. Every other record goes through those
checkers, which define the rules and give the reasons: they are this module's oracle
(``tests/test_trading_accel.py`` compares the two on hand-made and random records)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from kaizen import calendar as cal

US = 1_000_000
DAY_US = 86_400 * US
IST_US = 19_800 * US  # Asia/Kolkata is UTC+05:30 since 1945-10-15
FIXED_IST_FROM = (datetime(1946, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY = date(1970, 1, 1)
ONE_US = timedelta(microseconds=1)
SAFE_INT = 2**53  # integers exactly representable as float64
OK, NULL, BAD = 0, 1, 2  # the state of a parsed stamp


def epoch_us(ts: datetime) -> int:
    """An aware datetime as microseconds since the epoch (the unit of :func:`stamps`)."""
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def stamps(values, parse_ts) -> tuple[np.ndarray, np.ndarray]:
    """(microseconds since the epoch, state OK/NULL/BAD) of each value as ``parse_ts``
    reads it (NULL: None; BAD: ``parse_ts`` raises). ISO text goes through
    ``datetime.fromisoformat``, which ``parse_ts`` calls too (Python 3.11 reads a ``Z``
    suffix as UTC); anything it refuses is handed to ``parse_ts`` itself."""
    stamps: list[datetime | None] = []
    state: list[int] = []
    fromiso = datetime.fromisoformat
    for v in values:
        try:
            ts = fromiso(v) if type(v) is str else parse_ts(v)
        except ValueError:
            try:
                ts = parse_ts(v)
            except ValueError:
                stamps.append(None)
                state.append(BAD)
                continue
        if ts is None:
            state.append(NULL)
        else:
            if ts.tzinfo is not UTC:
                ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
            state.append(OK)
        stamps.append(ts)
    us = pd.DatetimeIndex(stamps, dtype="datetime64[us, UTC]").asi8
    return np.where(np.isin(state, (NULL, BAD)), 0, us), np.array(state, dtype=np.int8)


def ist_days(us: np.ndarray) -> np.ndarray:
    """The IST date of each instant as days since 1970-01-01."""
    days = (us + IST_US) // DAY_US
    old = np.flatnonzero(us < FIXED_IST_FROM)
    for i in old.tolist():  # before 1946 the zone's offset was not +05:30
        days[i] = (cal.ist_date(EPOCH + timedelta(microseconds=int(us[i]))) - EPOCH_DAY).days
    return days


def as_dates(days: np.ndarray) -> np.ndarray:
    """Day numbers → ``datetime.date`` objects (each distinct day built once)."""
    uniq, codes = np.unique(days, return_inverse=True)
    return np.array([EPOCH_DAY + timedelta(days=int(d)) for d in uniq], dtype=object)[codes]


def _texts(col: np.ndarray) -> np.ndarray:
    return np.array([type(v) is str and v != "" for v in col], dtype=bool)


def _ints(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.array([type(v) is int and 0 < v < SAFE_INT for v in col], dtype=bool)
    return ok, np.where(ok, col, 0).astype(np.int64)


def _floats(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.array([type(v) is float or (type(v) is int and -SAFE_INT < v < SAFE_INT) for v in col], dtype=bool)
    values = np.where(ok, col, 0.0).astype(np.float64)
    return ok & np.isfinite(values), values


def _side(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    buy, sell = col == "BUY", col == "SELL"
    return buy | sell, np.where(buy, 1.0, -1.0)


def _in_session(us: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Whether each instant lies within the NSE session of its IST day (closed
    interval of IST wall time); False where the calendar does not cover the day."""
    tod = us + IST_US - days * DAY_US
    lo = np.full(len(us), 1, dtype=np.int64)
    hi = np.full(len(us), 0, dtype=np.int64)
    for d in np.unique(days).tolist():
        try:
            s = cal.session(EPOCH_DAY + timedelta(days=d))
        except cal.CalendarNotCovered:
            continue
        if s is not None:
            at = days == d
            lo[at] = (s.open.hour * 3600 + s.open.minute * 60 + s.open.second) * US
            hi[at] = (s.close.hour * 3600 + s.close.minute * 60 + s.close.second) * US
    return (lo <= tod) & (tod <= hi) & (us >= FIXED_IST_FROM)


def screen_trades(cols: dict[str, np.ndarray], exit_us: np.ndarray, exit_days: np.ndarray, parse_ts,
                  limit_us: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(which trades are plain, their row columns) — ``cols`` are the records' fields
    as object arrays, ``exit_us``/``exit_days`` their parsed exit times and IST days; a
    trade closed after ``limit_us`` (the as-of with its tolerance) is not plain (the
    checker quarantines it)."""
    ok = _texts(cols["trade_id"]) & _texts(cols["symbol"]) & _texts(cols["strategy"])
    side_ok, direction = _side(cols["side"])
    qty_ok, qty = _ints(cols["quantity"])
    entry_us, entry_state = stamps(cols["entry_time"], parse_ts)
    ok &= side_ok & qty_ok & (entry_state == OK) & (exit_us >= entry_us)
    if limit_us is not None:
        ok &= exit_us <= limit_us
    ok &= _in_session(entry_us, ist_days(entry_us)) & _in_session(exit_us, exit_days)
    money = {}
    for f in ("entry_price", "exit_price", "fees", "net_pnl"):
        f_ok, money[f] = _floats(cols[f])
        ok &= f_ok
    with np.errstate(invalid="ignore", over="ignore"):
        expected = (money["exit_price"] - money["entry_price"]) * qty.astype(np.float64) * direction - money["fees"]
        ok &= np.abs(expected - money["net_pnl"]) <= 1.0
    return ok, {
        "trade_id": cols["trade_id"], "trading_day": exit_days, "symbol": cols["symbol"], "side": cols["side"],
        "quantity": qty, "entry_time": entry_us, "exit_time": exit_us,
        "entry_price_inr": money["entry_price"], "exit_price_inr": money["exit_price"], "fees_inr": money["fees"],
        "net_pnl_inr": money["net_pnl"], "strategy": cols["strategy"],
        "ab_arm": np.array([v or None for v in cols["ab_arm"]], dtype=object),
    }


def screen_orders(cols: dict[str, np.ndarray], submitted_us: np.ndarray, days: np.ndarray, parse_ts,
                  statuses: dict[str, str], until_us: int | None = None, limit_us: int | None = None
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(which orders are plain, their row columns); ``statuses`` maps the source's
    status spelling (upper case) to the stored one; a fill after ``until_us`` (the end
    of the extracted days), a submission or fill after ``limit_us`` (the as-of with its
    tolerance) is not plain (the checker quarantines it)."""
    ok = _texts(cols["order_id"]) & _texts(cols["symbol"])
    side_ok, _ = _side(cols["side"])
    qty_ok, qty = _ints(cols["quantity"])
    status = np.array([statuses.get(v.upper()) if type(v) is str else None for v in cols["status"]], dtype=object)
    filled_us, filled_state = stamps(cols["filled_at"], parse_ts)
    filled = status == "filled"
    ok &= side_ok & qty_ok & (status != None)  # noqa: E711 (elementwise)
    ok &= np.where(filled, (filled_state == OK) & (filled_us >= submitted_us), filled_state == NULL)
    if until_us is not None:
        ok &= ~filled | (filled_us <= until_us)
    if limit_us is not None:
        ok &= (submitted_us <= limit_us) & (~filled | (filled_us <= limit_us))
    trade_ok = np.array([v is None or type(v) is str for v in cols["trade_id"]], dtype=bool)
    ok &= trade_ok
    return ok, {
        "order_id": cols["order_id"], "trading_day": days,
        "trade_id": np.array([v or None for v in cols["trade_id"]], dtype=object), "symbol": cols["symbol"],
        "side": cols["side"], "quantity": qty, "status": status, "submitted_at": submitted_us,
        "filled_at": np.where(filled, filled_us, np.iinfo(np.int64).min),
    }
