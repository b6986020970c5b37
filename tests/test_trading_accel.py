"""The trading parse accelerator (kaizen.sources.trading_accel) against its oracle, the
per-record checkers of kaizen.sources.trading: the same extracted count, the same rows
(values and dtypes) and the same rejects (reason, payload, day, order) on the
hand-made records that meet every rule, and on random mutations of valid records."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from functools import partial

import numpy as np
import pandas as pd
import pytest

from kaizen import calendar as cal
from kaizen.sources import trading
from kaizen.sources import trading_accel as accel
from kaizen.sources.base import FUTURE_TOLERANCE, parse_ts, payload_json
from source_wire import order, trade
from test_sources_trading_range import DEMO_END, nasty_orders, nasty_trades

FIRST = date(2026, 11, 20)


def _parse(name: str, records, *, oracle: bool, first=FIRST, last=DEMO_END, as_of=None, undated_days=()):
    """parse_trades/parse_orders; with ``oracle`` every record goes through the checker."""
    until = cal.ist_datetime(last + timedelta(days=1), datetime.min.time())  # as parse_orders sets it
    limit = accel.epoch_us(as_of + FUTURE_TOLERANCE) if as_of else None
    screen = (partial(accel.screen_trades, parse_ts=parse_ts, limit_us=limit) if name == "trades" else
              partial(accel.screen_orders, parse_ts=parse_ts, statuses=trading.ORDER_STATUSES,
                      until_us=accel.epoch_us(until), limit_us=limit))
    plain = []

    def counted(*a):
        ok, values = screen(*a)
        plain.append(int(ok.sum()))
        return (np.zeros_like(ok) if oracle else ok), values

    kw = dict(source="trades", key="trade_id", day_field="exit_time", fields=trading.TRADE_COLUMNS,
              check=partial(trading._check_trade, calendar=cal.calendar(), as_of=as_of), spec=trading.TRADE_FRAME)
    if name == "orders":
        kw = dict(source="orders", key="order_id", day_field="submitted_at", fields=trading.ORDER_COLUMNS,
                  check=partial(trading._check_order, until=until, as_of=as_of), spec=trading.ORDER_FRAME)
    out = trading.parse_records(first, last, records, screen=counted, undated_days=undated_days, **kw)
    return out, sum(plain)


def assert_same(name: str, records, **kw) -> int:
    """The accelerated and the oracle parse agree; returns how many records the
    accelerator took in bulk."""
    (n, frame, rej), plain = _parse(name, records, oracle=False, **kw)
    (n_o, frame_o, rej_o), _ = _parse(name, records, oracle=True, **kw)
    assert n == n_o
    pd.testing.assert_frame_equal(frame, frame_o)
    assert [(r.source, r.record_key, r.reason, payload_json(r.payload), r.day) for r in rej] == [
        (r.source, r.record_key, r.reason, payload_json(r.payload), r.day) for r in rej_o]
    return plain


def test_an_order_filled_after_the_extracted_days_is_quarantined():
    """Issue 14: an order filled in 2031 used to load, and the daily review printed an
    average execution of 7,02,20,868 ms. A fill after the end of the last extracted IST
    day has not happened yet: quarantined with its reason, by the bulk path and the
    checker alike; a fill at that very instant still loads."""
    day = date(2026, 11, 26)
    good = order("O1", submitted="2026-11-26T04:00:00Z", filled="2026-11-26T04:00:00.250Z")
    edge = order("O2", submitted="2026-11-26T18:00:00Z", filled="2026-11-26T18:30:00Z")  # 27 Nov 00:00 IST
    future = order("O3", submitted="2026-11-26T04:00:00Z", filled="2031-01-01T04:00:00Z")
    for oracle in (False, True):
        (n, frame, rejects), _ = _parse("orders", [good, edge, future], oracle=oracle, first=day, last=day)
        assert (n, sorted(frame["order_id"]), [r.record_key for r in rejects]) == (3, ["O1", "O2"], ["O3"])
        assert rejects[0].reason == ("filled_at 2031-01-01T04:00:00Z is after the end of the extracted days "
                                     "(2026-11-26T18:30:00Z): a fill in the future")
    n, frame, rejects = trading.parse_orders(day, day, [good, edge, future])
    assert (n, len(frame), [r.record_key for r in rejects]) == (3, 2, ["O3"])


def test_hand_made_records_agree_with_the_checkers():
    assert assert_same("trades", nasty_trades()) > 5
    assert assert_same("orders", nasty_orders()) > 3


IST = timezone(timedelta(hours=5, minutes=30))
STAMPS = ["2026-11-26T04:00:00Z", "2026-11-26T04:00:00z", " 2026-11-26T04:00:00Z", "2026-11-26T04:00:00Z ",
          "2026-11-26 09:30:00+05:30", "2026-11-26T04:00:00", "2026-11-26T04:00", "2026-11-26",
          "20261126T040000Z", "2026-W48-4T04:00:00Z", "2026-11-26T04:00:00.1234567Z", "2026-11-26T04:00:00+0530",
          "", "garbage", None, 12345, True, datetime(2026, 11, 26, 4, 0), datetime(2026, 11, 26, 9, 30, tzinfo=IST),
          "1944-01-03T04:00:00Z", "2026-11-26T10:00:00.000001Z", "2026-11-26T03:45:00Z", "2026-11-28T05:00:00Z",
          "2031-01-01T04:00:00Z"]
ODD = ["", None, 0, 2.5, 3.0, "3", True, False, float("nan"), float("inf"), -1, 2**60, 2**64, "x", "BUY", "sell"]


def _mutations(rng: random.Random, make, fields: list[str], n: int) -> list[dict]:
    out = []
    for i in range(n):
        rec = make(f"R{i % (n // 3)}")  # repeated keys: the first valid copy wins
        for _ in range(rng.choice((0, 0, 1, 2))):
            f = rng.choice(fields)
            pool = STAMPS if f.endswith(("_time", "_at")) else ODD
            rec[f] = rng.choice(pool)
        if rng.random() < 0.3:  # a valid record elsewhere in the range
            shift = timedelta(days=rng.choice((-6, -2, 0, 1)), minutes=rng.randrange(-300, 300))
            for f in [f for f in fields if f.endswith(("_time", "_at"))]:
                v = parse_ts(rec[f]) if isinstance(rec[f], str) and rec[f][:4] == "2026" else None
                if v is not None:
                    rec[f] = (v + shift).isoformat().replace("+00:00", "Z")
        out.append(rec)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_random_mutations_agree_with_the_checkers(seed):
    rng = random.Random(seed)
    trades = _mutations(rng, trade, list(trading.TRADE_COLUMNS), 600)
    orders = _mutations(rng, order, list(trading.ORDER_COLUMNS), 600)
    assert assert_same("trades", trades) > 50
    assert assert_same("orders", orders) > 50
    # as of a run on 26 Nov (records of the 26th afternoon and the 27th are in its future),
    # with the records on no day quarantined on two days
    kw = dict(as_of=AS_OF, undated_days=(date(2026, 11, 25), D))
    assert assert_same("trades", trades, **kw) > 30
    assert assert_same("orders", orders, **kw) > 30


AS_OF = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
D = date(2026, 11, 26)


def test_future_and_undated_records_agree_with_the_checkers():
    """The as-of and the records on no day, by the bulk path and the checkers alike."""
    trades = [trade("A"), trade("B", exit="2026-11-26T06:05:00Z"), trade("C", exit="2026-11-26T06:05:00.000001Z"),
              trade("E", exit=None), trade("F", exit="soon"), trade("G", exit="2026-11-26T25:00:00Z")]
    orders = [order("A"), order("B", filled="2026-11-26T06:05:00.000001Z"),
              order("C", submitted="2026-11-26T06:05:00.000001Z", filled="2026-11-26T06:05:01Z"),
              order("E", submitted=None), order("F", submitted=""), order("G", submitted="2026-11-26 lunch")]
    kw = dict(first=D, last=D, as_of=AS_OF, undated_days=(D,))
    for name, records in (("trades", trades), ("orders", orders)):
        assert_same(name, records, **kw)
        (n, frame, rejects), _ = _parse(name, records, oracle=False, **kw)
        key = "trade_id" if name == "trades" else "order_id"
        assert (n, frame[key].tolist()) == (6, ["A", "B"] if name == "trades" else ["A"])
        assert [r.record_key for r in rejects] == (["C", "G", "E", "F"] if name == "trades" else ["B", "C", "G", "E", "F"])
        assert all(r.day == D for r in rejects)


def test_stamps_read_what_parse_ts_reads():
    us, state = accel.stamps(STAMPS, parse_ts)
    for v, u, s in zip(STAMPS, us.tolist(), state.tolist(), strict=True):
        try:
            want = parse_ts(v)
        except ValueError:
            assert s == accel.BAD, v
            continue
        if want is None:
            assert s == accel.NULL, v
        else:
            assert s == accel.OK and datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=u) == want, v
