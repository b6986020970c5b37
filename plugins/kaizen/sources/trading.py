"""Orders and closed trades from the trading system's database (PostgreSQL via the
``kaizen_trading_db`` connection; in demo mode the SQLite ``trading.db``), validated
into ``raw_trades`` / ``raw_orders``.

A trade belongs to the IST date on which it closed (exit_time); an order to the IST
date on which it was submitted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config
from kaizen.sources.base import ExtractResult, Reject, SourceError, TableLoad, as_number, load, parse_ts

SIDES = {"BUY": 1, "SELL": -1}
ORDER_STATUSES = {"FILLED": "filled", "REJECTED": "rejected", "ERRORED": "errored",
                  "CANCELLED": "cancelled", "OPEN": "open"}
PNL_TOLERANCE_INR = 1.0

# Wide text bounds (the day before to the day after): works on text ISO columns in
# SQLite ("T" or space separator, any offset spelling) and on timestamptz in PostgreSQL;
# the exact IST-day filter happens in Python on the parsed times.
TRADES_SQL = """
select trade_id, symbol, side, quantity, entry_time, exit_time, entry_price, exit_price,
       fees, net_pnl, strategy, ab_arm
from trades
where exit_time >= :lo and exit_time < :hi
order by exit_time, trade_id, entry_time, quantity, entry_price, exit_price, fees, net_pnl
"""
ORDERS_SQL = """
select order_id, trade_id, symbol, side, quantity, status, submitted_at, filled_at, fill_price
from orders
where submitted_at >= :lo and submitted_at < :hi
order by submitted_at, order_id, status, filled_at
"""

Transport = Callable[[date], dict]


def _fetch(engine: sa.Engine, day: date) -> dict:
    params = {"lo": (day - timedelta(days=1)).isoformat(), "hi": (day + timedelta(days=2)).isoformat()}
    with engine.connect() as conn:
        trades = [dict(r._mapping) for r in conn.execute(sa.text(TRADES_SQL), params)]
        orders = [dict(r._mapping) for r in conn.execute(sa.text(ORDERS_SQL), params)]
    return {"trades": trades, "orders": orders}


def sql_transport(url_or_engine) -> Transport:
    def fetch(day: date) -> dict:
        engine = url_or_engine if isinstance(url_or_engine, sa.Engine) else sa.create_engine(url_or_engine)
        try:
            return _fetch(engine, day)
        except sa.exc.OperationalError as exc:
            raise SourceError(
                f"trading DB unreachable ({type(exc.orig).__name__}): check host, port and "
                f"credentials in connection {config.TRADING_DB_CONN_ID!r}."
            ) from None
        finally:
            if engine is not url_or_engine:
                engine.dispose()
    return fetch


def demo_transport(demo_dir: Path | None = None) -> Transport:
    path = Path(demo_dir or config.demo_dir()) / "trading.db"

    def fetch(day: date) -> dict:
        if not path.exists():
            raise SourceError(f"demo trading DB {path} does not exist: run `python -m kaizen demo-data`.")
        return sql_transport(f"sqlite:///{path}")(day)
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


# ---------------------------------------------------------------- validation

def _in_session(ts: datetime) -> bool:
    local = ts.astimezone(cal.IST)
    return cal.is_trading_day(local.date()) and cal.SESSION_OPEN <= local.time() <= cal.SESSION_CLOSE


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
        if not _in_session(ts):
            return None, (f"{f} {ts.astimezone(cal.IST).strftime('%Y-%m-%d %H:%M:%S')} IST outside "
                          "the NSE session (09:15–15:30 IST on a trading day)")
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


def parse_records(day: date, records: list[dict], *, source: str, key: str, day_field: str,
                  check) -> tuple[int, list[dict], list[Reject]]:
    """Keep the records of IST day ``day``; validate; first valid copy of a key wins."""
    mine = [r for r in records if _day_of(r, day_field) == day]
    rows: list[dict] = []
    rejects: list[Reject] = []
    seen: set[str] = set()
    for rec in mine:
        row, reason = check(rec)
        rkey = str(rec.get(key))
        if row is None:
            rejects.append(Reject(source, rkey, reason, rec))
        elif row[key] in seen:
            rejects.append(Reject(source, rkey, f"duplicate {key} {rkey}: the first valid copy was "
                                                "loaded, this copy quarantined", rec))
        else:
            seen.add(row[key])
            rows.append(row)
    return len(mine), rows, rejects


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None) -> list[ExtractResult]:
    raw = (transport or default_transport())(day)
    n_t, trades, t_rej = parse_records(day, raw["trades"], source="trades", key="trade_id",
                                       day_field="exit_time", check=_check_trade)
    n_o, orders, o_rej = parse_records(day, raw["orders"], source="orders", key="order_id",
                                       day_field="submitted_at", check=_check_order)
    return load(engine, day, run_id, [
        TableLoad("trades", "raw_trades", "trading_day = :day", {"day": day}, n_t, trades, t_rej, key="trade_id"),
        TableLoad("orders", "raw_orders", "trading_day = :day", {"day": day}, n_o, orders, o_rej, key="order_id"),
    ])
