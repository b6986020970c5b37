"""The trading source over a range of trading days: ONE fetch (the database orders the
records), per-record validation (kaizen.sources.trading.parse_trades / parse_orders):
the extracted counts, the rows and their dtypes, and the rejects with their reason,
payload and day — on hand-made records covering every rule (as dicts, in a SQLite
table and as PostgreSQL timestamptz rows), on the demo database, and in the warehouse,
where a range extract leaves the same tables as its days one at a time."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen.sources import trading
from kaizen.sources.base import payload_json
from source_wire import (
    ORDER_COLS,
    TRADE_COLS,
    Counted,
    create_pg_trading_tables,
    order,
    trade,
    write_trading_db,
)

DEMO_END = date(2026, 11, 27)
D = date(2026, 11, 26)  # Thu; 2026-11-24 is an NSE holiday
IST530 = timezone(timedelta(hours=5, minutes=30))
KOLKATA = ZoneInfo("Asia/Kolkata")
PARSE = {"trades": trading.parse_trades, "orders": trading.parse_orders}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from kaizen.demo import generate

    out = tmp_path_factory.mktemp("demo")
    manifest = generate(end=DEMO_END, months=1, seed=42, out_dir=out, trades_per_day=200)
    return out, date.fromisoformat(manifest["first_trading_day"])


# ------------------------------------------------------------------ helpers


def _plain(v):
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def normalised(rows) -> list[dict]:
    """Rows as plain dicts: aware UTC datetimes, None for NULL (NaN/NaT)."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    out = []
    for r in rows:
        row = {k: _plain(v) for k, v in r.items()}
        for k, v in row.items():
            if isinstance(v, datetime):
                assert v.utcoffset() == timedelta(0), (k, v)
                row[k] = v.astimezone(UTC)
        out.append(row)
    return out


def rejects(rej) -> list[tuple]:
    return [(r.source, r.record_key, r.reason, payload_json(r.payload), r.day) for r in rej]


def check_frame_dtypes(name: str, frame: pd.DataFrame) -> None:
    ts = ("entry_time", "exit_time") if name == "trades" else ("submitted_at", "filled_at")
    for c in ts:
        assert str(frame[c].dtype) == "datetime64[us, UTC]", (c, frame[c].dtype)
    assert frame["quantity"].dtype == np.int64
    assert frame["trading_day"].dtype == object
    assert all(type(d) is date for d in frame["trading_day"])
    texts = ("trade_id", "symbol", "side", "strategy", "ab_arm") if name == "trades" else (
        "order_id", "trade_id", "symbol", "side", "status")
    for c in texts:
        assert frame[c].dtype == object, (c, frame[c].dtype)
        assert not any(isinstance(v, float) for v in frame[c])  # None for NULL, never NaN
    if name == "trades":
        for c in ("entry_price_inr", "exit_price_inr", "fees_inr", "net_pnl_inr"):
            assert frame[c].dtype == np.float64
    assert list(frame.index) == list(range(len(frame)))


def check_counts(first: date, last: date, n: int, frame: pd.DataFrame, rej) -> None:
    assert n == len(frame) + len(rej)
    for r in rej:
        assert first <= r.day <= last


# ------------------------------------------------------------------ hand-made records


def nasty_trades() -> list[dict]:
    t = trade
    return [
        t("N01"),  # plainly valid
        t(None), t("N02", symbol=""), t("N03", strategy=None),  # missing fields
        t("N04", side="LONG", net=80.0), t("N05", side="buy", net=80.0), t("N06", side=None, net=80.0),
        t("N07", qty=2.5, net=5.0), t("N08", qty="3", net=10.0), t("N09", qty=3.0, net=10.0),
        t("N10", qty=0, net=-20.0), t("N11", qty=-5, net=-70.0), t("N12", qty=True, net=-10.0),
        t("N13", qty=None, net=80.0), t("N13b", qty=2**60, net=80.0),
        t("N14", entry="garbage"), t("N15", entry=None), t("N16", entry=12345),
        t("N17", entry=datetime(2026, 11, 26, 4, 0), exit=datetime(2026, 11, 26, 5, 0, 0, 123456)),  # naive = UTC
        t("N18", entry=datetime(2026, 11, 26, 9, 30, tzinfo=IST530),
          exit=datetime(2026, 11, 26, 10, 30, tzinfo=KOLKATA)),
        t("N18b", entry=datetime(2026, 11, 26, 4, 0, tzinfo=UTC), exit=datetime(2026, 11, 26, 0, 0, tzinfo=UTC)),
        t("N19", entry="2026-11-26T06:00:00Z", exit="2026-11-26T05:00:00Z", net=80.0),  # exit before entry
        t("N20", entry="2026-11-26T03:00:00Z"),  # 08:30 IST
        t("N21", exit="2026-11-26T10:00:00.000001Z"),  # 15:30:00.000001 IST
        t("N22", entry="2026-11-26T03:45:00Z", exit="2026-11-26T10:00:00Z"),  # 09:15:00 – 15:30:00: valid
        t("N23", entry="2026-11-26T03:44:59.999Z"), t("N23b", entry="2026-11-26T03:44:59.999999Z"),
        t("N23c", entry="2026-11-26T05:00:00.000001Z", exit="2026-11-26T05:00:00Z"),  # exit 1 µs early
        t("N23d", entry="2026-11-26T05:00:00Z", exit="2026-11-26T05:00:00Z"),  # a zero-length trade
        t("N24", entry="2026-11-24T04:00:00Z", exit="2026-11-24T05:00:00Z"),  # a holiday
        t("N24b", entry="2026-11-22T04:00:00Z", exit="2026-11-23T05:00:00Z"),  # entered on a Sunday
        t("N25", net=None), t("N26", net="abc"), t("N27", net="80.0"), t("N28", net=float("nan")),
        t("N29", net=float("inf")), t("N30", net=500.0), t("N31", net=81.0), t("N32", net=81.01), t("N32b", net=81.0005),
        t("N33", ep=100, xp=110, fees=20), t("N34", ab_arm=""), t("N35", ab_arm="test"), t("N36", ab_arm=5),
        t("N37", fees="abc", net=80.0), t("N38", ep=None, net=80.0), t("N39", xp=True, net=80.0), t("N39b", fees=False, net=100.0),
        t("N40", symbol=7), t("N41", strategy=""),
        # duplicates: the first valid copy in order wins (invalid copies before it do not count)
        t("D1", net=None), t("D1"), t("D1", fees=20.5, net=79.5),
        t("D2", qty=3.0, net=10.0), t("D2"),  # a float quantity that is whole, then a copy
        t(77, net=80.0), t("77"),  # str(77) == "77"
        t("D3", side="SELL", ep=110.0, xp=100.0), t("D3", entry="x"), t("D3", ep=110.0, xp=100.0, net=-120.0),
        # timestamp spellings
        t("S01", entry="2026-11-26T04:00:00.1234567Z"), t("S02", entry="2026-11-26T04:00:00z"),
        t("S03", entry="2026-11-26 04:00:00"), t("S04", entry="2026-11-26T09:30:00+05:30"),
        t("S05", entry="2026-11-26T04:00:00-00:00"), t("S06", entry="2026-11-26T04:00Z"),
        t("S07", entry=" 2026-11-26T04:00:00Z "), t("S08", entry="2026-11-26T04:00:00+0530"),
        t("S09", entry="2026-02-30T04:00:00Z"), t("S10", exit="2026-11-26T05:00:00.5+05:30"),
        t("S11", entry="2026-11-26T04:00:00.5", exit="2026-11-26T05:00:00.25"),
        t("S12", entry="2026-11-26T04:00:00.000000Z"), t("S13", entry="2026-11-26T24:00:00Z"),
        t("S14", entry="２026-11-26T04:00:00Z"), t("S15", exit="2026-11-26T05:00:00Z\x00"),
        t("S16", entry="2026-11-26T04:00:00+23:59"), t("S17", entry="2026-11-26T04:00:00+24:00"),
        # the day filter
        t("F01", entry="2026-11-25T04:00:00Z", exit="2026-11-25T05:00:00Z"),
        t("F02", exit="garbage"), t("F03", exit=None),  # no day: never extracted
        t("F04", exit="2026-11-26T19:00:00Z"),  # 00:30 IST on the 27th
        t("F05", entry="2026-11-20T04:00:00Z", exit="2026-11-20T05:00:00Z"),
        t("F06", exit="2026-11-27T05:00:00+05:30"),  # 23:30Z on the 26th, 05:00 IST on the 27th
    ]


def nasty_orders() -> list[dict]:
    o = order
    return [
        o("P01"), o(None), o("P02", symbol=""), o("P03", side="HOLD"), o("P03b", side="sell"),
        o("P04", qty=2.5), o("P05", qty="3"), o("P06", qty=0), o("P07", qty=-1), o("P08", qty=True),
        o("P09", qty=3.0), o("P09b", qty=None), o("P09c", qty=float("inf")),
        o("P10", status="filled"), o("P11", status="PARTIAL", filled=None), o("P12", status=None, filled=None),
        o("P13", status=5, filled=None), o("P13b", status="", filled=None),
        o("P14", filled=None),  # FILLED without filled_at
        o("P15", status="REJECTED"),  # filled_at set but not filled
        o("P16", status="REJECTED", filled=None),
        o("P17", submitted="2026-11-26T04:00:01Z", filled="2026-11-26T04:00:00Z"),  # fill before submit
        o("P18", filled="garbage"), o("P19", filled=""), o("P20", status="CANCELLED", filled=""),
        o("P21", submitted=datetime(2026, 11, 26, 4, 0), filled=datetime(2026, 11, 26, 4, 0, 0, 250000)),
        o("P22", submitted=datetime(2026, 11, 26, 9, 30, tzinfo=IST530),
          filled=datetime(2026, 11, 26, 4, 0, 1, tzinfo=UTC)),
        o("P22b", submitted=datetime(2026, 11, 26, 9, 30, tzinfo=KOLKATA),
          filled=datetime(2026, 11, 26, 9, 29, tzinfo=KOLKATA)),
        o("P23", trade_id=""), o("P24", trade_id=None), o("P25", trade_id=5),
        o("P26", status="OPEN", filled=None), o("P27", status="ERRORED", submitted="2026-11-25T19:00:00Z", filled=None),
        o("P28", submitted="garbage"), o("P29", submitted=None), o("P29b", submitted=""),  # never extracted
        o("P30", filled="2026-11-26T04:00:00Z"),  # zero latency
        o("P30b", filled="2026-11-26T03:59:59.999999Z"),  # 1 µs before the submission
        o("P31", filled="2026-11-26T04:00:00.123456789Z"), o("P32", submitted="2026-11-26 04:00:00",
                                                             filled="2026-11-26 04:00:00.5"),
        o("P33", submitted="2026-11-26T09:30:00+05:30", filled="2026-11-26T04:00:00.001Z"),
        o("Q1", filled=None), o("Q1"), o("Q1", filled="2026-11-26T04:00:00.300Z"),
        o("Q2", qty=3.0), o("Q2"), o(77), o("77"),
        o("F01", submitted="2026-11-24T04:00:00Z", filled="2026-11-24T04:00:01Z"),
        o("F02", submitted="2026-11-20T04:00:00Z", filled="2026-11-20T04:00:01Z"),
    ]


RANGES = [(D, D), (date(2026, 11, 24), date(2026, 11, 27)), (date(2026, 11, 25), D), (date(2026, 11, 20), D)]

# What the hand-made records of 2026-11-20…27 give, in order: the keys loaded, and each
# reject's key and the start of its reason.
LOADED = {
    "trades": ["N01", "N08", "N09", "N17", "N18", "N22", "N23d", "N27", "N31", "N33", "N34", "N35", "N36", "N40",
               "D1", "D2", "77", "D3", "S01", "S02", "S03", "S04", "S05", "S06", "S07", "S11", "S12", "S15", "S16",
               "F01", "F05"],
    "orders": ["P01", "P05", "P09", "P10", "P16", "P21", "P22", "P23", "P24", "P25", "P26", "P27", "P30", "P31",
               "P32", "P33", "Q1", "Q2", "77", "F01", "F02"],
}
DUP = "duplicate {} {}: the first valid copy was loaded, this copy quarantined"
QUARANTINED = {
    "trades": [
        ("None", "missing trade_id"), ("N02", "missing symbol"), ("N03", "missing strategy"),
        ("N04", "unknown side 'LONG' (expected BUY or SELL)"), ("N05", "unknown side 'buy'"),
        ("N06", "unknown side None"), ("N07", "quantity 2.5 is not an integer"), ("N10", "non-positive quantity 0"),
        ("N11", "non-positive quantity -5"), ("N12", "quantity True is not an integer"),
        ("N13", "quantity None is not an integer"), ("N13b", "net P&L mismatch: reported 80.00"),
        ("N14", "unparseable entry_time 'garbage'"), ("N15", "missing entry_time"),
        ("N16", "unparseable entry_time 12345"),
        ("N18b", "exit_time 2026-11-26T00:00:00+00:00 before entry_time 2026-11-26T04:00:00+00:00"),
        ("N19", "exit_time 2026-11-26T05:00:00+00:00 before entry_time 2026-11-26T06:00:00+00:00"),
        ("N20", "entry_time 2026-11-26 08:30:00 IST outside the NSE session (09:15–15:30 IST that day)"),
        ("N21", "exit_time 2026-11-26 15:30:00 IST outside the NSE session"),
        ("N23", "entry_time 2026-11-26 09:14:59 IST outside"), ("N23b", "entry_time 2026-11-26 09:14:59 IST outside"),
        ("N23c", "exit_time 2026-11-26T05:00:00+00:00 before entry_time 2026-11-26T05:00:00.000001+00:00"),
        ("N24", "entry_time 2026-11-24 09:30:00 IST outside the NSE session (no session that day: weekend or NSE"
                " holiday)"),
        ("N24b", "entry_time 2026-11-22 09:30:00 IST outside the NSE session (no session"),
        ("N25", "net_pnl is NULL"), ("N26", "net_pnl 'abc' is not a number"), ("N28", "net_pnl nan is not a number"),
        ("N29", "net_pnl inf is not a number"),
        ("N30", "net P&L mismatch: reported 500.00, (exit − entry) × qty × direction − fees = 80.00 (off by more"
                " than ₹1)"),
        ("N32", "net P&L mismatch: reported 81.01"), ("N32b", "net P&L mismatch: reported 81.00"),
        ("N37", "fees 'abc' is not a number"), ("N38", "entry_price None is not a number"),
        ("N39", "exit_price True is not a number"), ("N39b", "fees False is not a number"),
        ("N41", "missing strategy"),
        ("D1", "net_pnl is NULL"), ("D1", DUP.format("trade_id", "D1")), ("D2", DUP.format("trade_id", "D2")),
        ("77", DUP.format("trade_id", "77")), ("D3", "unparseable entry_time 'x'"), ("D3", DUP.format("trade_id", "D3")),
        ("S08", "entry_time 2026-11-26 04:00:00 IST outside"), ("S09", "unparseable entry_time '2026-02-30T04:00:00Z'"),
        ("S10", "exit_time 2026-11-25T23:30:00.500000+00:00 before entry_time"),
        ("S13", "unparseable entry_time '2026-11-26T24:00:00Z'"), ("S14", "unparseable entry_time '２026"),
        ("S17", "unparseable entry_time '2026-11-26T04:00:00+24:00'"),
        ("F04", "exit_time 2026-11-27 00:30:00 IST outside"), ("F06", "exit_time 2026-11-27 05:00:00 IST outside"),
    ],
    "orders": [
        ("None", "missing order_id"), ("P02", "missing symbol"), ("P03", "unknown side 'HOLD' (expected BUY or SELL)"),
        ("P03b", "unknown side 'sell'"), ("P04", "quantity 2.5 is not an integer"), ("P06", "non-positive quantity 0"),
        ("P07", "non-positive quantity -1"), ("P08", "quantity True is not an integer"),
        ("P09b", "quantity None is not an integer"), ("P09c", "quantity inf is not an integer"),
        ("P11", "unknown status 'PARTIAL' (expected FILLED, REJECTED, ERRORED, CANCELLED, OPEN)"),
        ("P12", "unknown status None"), ("P13", "unknown status 5"), ("P13b", "unknown status ''"),
        ("P14", "status FILLED but filled_at is NULL"), ("P15", "filled_at set but status is REJECTED"),
        ("P17", "filled_at before submitted_at (negative execution latency -1000 ms)"),
        ("P18", "unparseable timestamp (Invalid isoformat string: 'garbage')"),
        ("P19", "unparseable timestamp (empty timestamp)"), ("P20", "unparseable timestamp (empty timestamp)"),
        ("P22b", "filled_at before submitted_at (negative execution latency -60000 ms)"),
        ("P30b", "filled_at before submitted_at (negative execution latency -0 ms)"),
        ("Q1", "status FILLED but filled_at is NULL"), ("Q1", DUP.format("order_id", "Q1")),
        ("Q2", DUP.format("order_id", "Q2")), ("77", DUP.format("order_id", "77")),
    ],
}


@pytest.mark.parametrize("name", ["trades", "orders"])
def test_hand_made_records_give_the_expected_rows_and_rejects(name):
    """Every rule, in record order: the first valid copy of a key wins (invalid copies
    before it do not count), later copies are quarantined as duplicates."""
    first, last = date(2026, 11, 20), DEMO_END
    records = nasty_trades() if name == "trades" else nasty_orders()
    n, frame, rej = PARSE[name](first, last, records)
    check_frame_dtypes(name, frame)
    check_counts(first, last, n, frame, rej)
    key = "trade_id" if name == "trades" else "order_id"
    assert frame[key].tolist() == LOADED[name]
    assert [r.record_key for r in rej] == [k for k, _ in QUARANTINED[name]]
    for r, (k, reason) in zip(rej, QUARANTINED[name], strict=True):
        assert r.source == name and r.reason.startswith(reason), (k, r.reason)
        assert any(r.payload is rec for rec in records)  # the record itself, as received
    days = {r.record_key: r.day for r in rej}  # the IST day of the record's exit / submission
    if name == "trades":
        assert (days["N24"], days["N24b"], days["F04"], days["F06"]) == (date(2026, 11, 24), date(2026, 11, 23),
                                                                         DEMO_END, DEMO_END)
        assert {d for k, d in days.items() if k not in ("N24", "N24b", "F04", "F06")} == {D}
    else:
        assert set(days.values()) == {D}


@pytest.mark.parametrize("first,last", RANGES)
@pytest.mark.parametrize("name", ["trades", "orders"])
def test_hand_made_records_by_range(name, first, last):
    """A range keeps the records of its IST days only (a record whose day field is NULL
    or unparseable is on no day), with the frame's dtypes."""
    records = nasty_trades() if name == "trades" else nasty_orders()
    field = "exit_time" if name == "trades" else "submitted_at"
    n, frame, rej = PARSE[name](first, last, records)
    check_frame_dtypes(name, frame)
    check_counts(first, last, n, frame, rej)
    assert n == sum(1 for r in records if (d := trading._day_of(r, field)) is not None and first <= d <= last)
    assert n > 0
    assert all(first <= d <= last for d in frame["trading_day"])


def test_rows_of_valid_records():
    trades = [trade("A", entry=datetime(2026, 11, 26, 4, 0), exit=datetime(2026, 11, 26, 5, 0, 0, 123456)),  # naive = UTC
              trade("B", entry=datetime(2026, 11, 26, 9, 30, tzinfo=IST530),
                    exit=datetime(2026, 11, 26, 10, 30, tzinfo=KOLKATA)),
              trade("C", qty=3.0, net=10.0, ab_arm=""), trade("D", ab_arm="test", entry="2026-11-26T09:30:00+05:30"),
              trade("D", fees=20.5, net=79.5)]
    n, frame, rej = trading.parse_trades(D, D, trades)
    assert (n, len(frame)) == (5, 4) and [r.record_key for r in rej] == ["D"]
    rows = normalised(frame)
    assert rows[0] == {
        "trade_id": "A", "trading_day": D, "symbol": "RELIANCE", "side": "BUY", "quantity": 10,
        "entry_time": datetime(2026, 11, 26, 4, 0, tzinfo=UTC),
        "exit_time": datetime(2026, 11, 26, 5, 0, 0, 123456, tzinfo=UTC),
        "entry_price_inr": 100.0, "exit_price_inr": 110.0, "fees_inr": 20.0, "net_pnl_inr": 80.0,
        "strategy": "orb", "ab_arm": None,
    }
    assert (rows[1]["entry_time"], rows[1]["exit_time"]) == (datetime(2026, 11, 26, 4, 0, tzinfo=UTC),
                                                             datetime(2026, 11, 26, 5, 0, tzinfo=UTC))
    assert (rows[2]["quantity"], rows[2]["ab_arm"]) == (3, None)
    assert (rows[3]["ab_arm"], rows[3]["entry_time"], rows[3]["fees_inr"]) == (
        "test", datetime(2026, 11, 26, 4, 0, tzinfo=UTC), 20.0)  # the first valid copy of D

    orders = [order("O1", submitted="2026-11-25T19:00:00Z", filled="2026-11-25T19:00:00.250Z"),  # 00:30 IST on D
              order("O2", status="cancelled", filled=None, trade_id=""), order("O3", qty=2.0, trade_id=5)]
    n, frame, rej = trading.parse_orders(D, D, orders)
    assert (n, rej) == (3, [])
    rows = normalised(frame)
    assert rows[0] == {
        "order_id": "O1", "trading_day": D, "trade_id": "T1", "symbol": "RELIANCE", "side": "BUY", "quantity": 10,
        "status": "filled", "submitted_at": datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
        "filled_at": datetime(2026, 11, 25, 19, 0, 0, 250000, tzinfo=UTC),
    }
    assert (rows[1]["status"], rows[1]["trade_id"], rows[1]["filled_at"]) == ("cancelled", None, None)
    assert (rows[2]["quantity"], rows[2]["trade_id"]) == (2, "5")


def test_frames_of_no_rows_and_of_huge_quantities():
    for name in ("trades", "orders"):
        n, frame, rej = PARSE[name](D, D, [])
        assert (n, len(frame), rej) == (0, 0, [])
        check_frame_dtypes(name, frame)
    _, frame, _ = trading.parse_trades(D, D, [trade("BIG", qty=2**64, net=10.0 * 2**64 - 20.0), trade("S")])
    assert frame["quantity"].tolist() == [2**64, 10] and frame["quantity"].dtype == object


def test_session_bounds_and_day_filter_in_ist():
    """Sessions are closed intervals of IST wall time; days are IST dates."""
    t = trade
    _, frame, rej = trading.parse_trades(D, DEMO_END, [
        t("open", entry="2026-11-26T03:45:00Z"), t("early", entry="2026-11-26T03:44:59.999999Z"),
        t("close", exit="2026-11-26T10:00:00Z"), t("late", exit="2026-11-26T10:00:00.000001Z"),
        t("holiday", entry="2026-11-24T04:00:00Z", exit="2026-11-24T05:00:00Z"),  # not in the range
        t("saturday", entry="2026-11-28T04:00:00Z", exit="2026-11-28T05:00:00Z"),  # nor this
        t("ist-next-day", exit="2026-11-26T18:30:00Z"),  # 00:00 IST on the 27th
    ])
    assert frame["trade_id"].tolist() == ["open", "close"]
    assert [(r.record_key, r.day) for r in rej] == [("early", D), ("late", D), ("ist-next-day", DEMO_END)]


def test_old_ist_offsets_are_outside_the_calendar():
    """Before 1946 Asia/Kolkata was not UTC+05:30; the calendar does not cover it."""
    recs = [trade("old", entry="1944-01-03T04:00:00Z", exit="1944-01-03T05:00:00Z")]
    first = last = date(1944, 1, 3)
    n, rows, (rej,) = trading.parse_trades(first, last, recs)
    assert (n, len(rows)) == (1, 0)
    assert "outside the calendar" in rej.reason and "before the NSE calendar's coverage" in rej.reason
    assert datetime.combine(first, time(12), KOLKATA).utcoffset() != timedelta(hours=5, minutes=30)


def test_hand_made_records_cover_every_rule():
    """The hand-made records meet every reason of the per-record checkers."""
    _, _, t_rej = trading.parse_trades(date(2026, 11, 20), DEMO_END, nasty_trades())
    _, _, o_rej = trading.parse_orders(date(2026, 11, 20), DEMO_END, nasty_orders())
    got = {r.reason.split(" ")[0] + " " + r.reason.split(" ")[1] for r in t_rej + o_rej}
    for start in ("missing trade_id", "missing symbol", "missing strategy", "unknown side", "quantity 2.5",
                  "non-positive quantity", "unparseable entry_time", "missing entry_time", "exit_time 2026-11-26T05:00:00+00:00",
                  "entry_time 2026-11-26", "exit_time 2026-11-26", "net_pnl is", "net_pnl 'abc'", "net P&L",
                  "fees 'abc'", "duplicate trade_id", "missing order_id", "unknown status",
                  "status FILLED", "filled_at set", "filled_at before", "unparseable timestamp",
                  "duplicate order_id"):
        words = start.split(" ")
        assert any(g.startswith(" ".join(words[:2])) for g in got), start


def write_db(path, trades, orders):
    """The records in a SQLite trading DB (datetime objects as ISO text, as the demo's)."""
    def text(records):
        return [{k: (v.isoformat(sep=" ") if isinstance(v, datetime) else v) for k, v in r.items()}
                for r in records]
    return write_trading_db(path, text(trades), text(orders))


def stored(path, table: str) -> list[dict]:
    """The rows of a SQLite table as stored (insertion order), as dicts."""
    con = sqlite3.connect(path)
    cur = con.execute(f"select * from {table} order by rowid")
    out = [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()]
    con.close()
    return out


@pytest.mark.parametrize("first,last", [*RANGES, (date(2026, 11, 20), DEMO_END)])
def test_hand_made_records_in_sqlite(tmp_path, first, last):
    """Fetched from SQLite in the database's order: the rows and rejects of the records
    as stored there (SQLite stores True as 1, NaN as NULL, datetimes as ISO text here);
    the order decides only which copy of a repeated key wins (see the next test).
    Every reject's payload is the stored row."""
    path = write_db(tmp_path / "trading.db", nasty_trades(), nasty_orders())
    raw = trading.sql_transport(sa.create_engine(f"sqlite:///{path}"))(first, last)
    for name in ("trades", "orders"):
        records = stored(path, name)
        assert all(type(r) is dict for r in raw[name])
        n, frame, rej = PARSE[name](first, last, raw[name])
        check_frame_dtypes(name, frame)
        check_counts(first, last, n, frame, rej)
        n_s, frame_s, rej_s = PARSE[name](first, last, records)
        key = "trade_id" if name == "trades" else "order_id"
        assert n == n_s
        assert sorted(frame[key]) == sorted(frame_s[key])
        ids = [str(r[key]) for r in records]
        single = {k for k in ids if ids.count(k) == 1}
        assert sorted(r for r in rejects(rej) if r[1] in single) == sorted(r for r in rejects(rej_s) if r[1] in single)
        assert sorted(r.record_key for r in rej) == sorted(r.record_key for r in rej_s)
        assert all(r.payload in records for r in rej)


def test_the_first_valid_copy_in_the_databases_order_wins(tmp_path):
    """Copies of a key: the database's ORDER BY (exit time, id, entry time, …) decides
    which one is loaded, not the order the rows were inserted in."""
    trades = [trade("K", entry="2026-11-26T04:30:00Z", fees=10.0, net=90.0),
              trade("K", entry="2026-11-26T04:00:00Z"),
              trade("K", exit="2026-11-26T04:59:59Z", entry="2026-11-26T04:10:00Z", fees=30.0, net=70.0)]
    orders = [order("Q", status="REJECTED", filled=None), order("Q", status="FILLED")]
    path = write_trading_db(tmp_path / "trading.db", trades, orders)
    eng = sa.create_engine(f"sqlite:///{path}")
    raw = trading.sql_transport(eng)(D, D)
    assert [r["entry_time"] for r in raw["trades"]] == ["2026-11-26T04:10:00Z", "2026-11-26T04:00:00Z",
                                                         "2026-11-26T04:30:00Z"]
    assert [r["status"] for r in raw["orders"]] == ["FILLED", "REJECTED"]
    (t_load, o_load) = trading.prepare_range(D, D, trading.sql_transport(eng))
    assert t_load.rows["fees_inr"].tolist() == [30.0]
    assert [r.payload["fees"] for r in t_load.rejects] == [20.0, 10.0]
    assert o_load.rows["status"].tolist() == ["filled"]
    eng.dispose()


# ------------------------------------------------------------------ the demo data


def demo_engine(demo):
    return sa.create_engine(f"sqlite:///{demo[0] / 'trading.db'}")


@pytest.mark.parametrize("span", ["month", "last3", "day"])
def test_demo_range(demo, span):
    """The demo DB (deliberate bad records on the last day: a duplicated trade, a NULL
    P&L, an exit before its entry, a fill before its submission)."""
    first = {"month": demo[1], "last3": date(2026, 11, 25), "day": DEMO_END}[span]
    loads = {tl.source: tl for tl in trading.prepare_range(first, DEMO_END, trading.demo_transport(demo[0]))}
    for name in ("trades", "orders"):
        tl = loads[name]
        check_frame_dtypes(name, tl.rows)
        check_counts(first, DEMO_END, tl.extracted, tl.rows, tl.rejects)
        assert len(tl.rows) > 0 and {r.day for r in tl.rejects} == {DEMO_END}
        assert tl.rows[tl.key].is_unique
    reasons = sorted(r.reason.split(" ")[0] for r in loads["trades"].rejects + loads["orders"].rejects)
    assert reasons == ["duplicate", "exit_time", "filled_at", "net_pnl"]


def test_postgres_timestamptz_gives_what_iso_text_gives(demo, request, tmp_path):
    """PostgreSQL returns aware datetime objects (in the session's zone), SQLite ISO
    text: the same records give the same rows and rejects."""
    pg_url = request.getfixturevalue("pg_url")
    src = sa.create_engine(pg_url)
    first = date(2026, 11, 20)
    records = trading.sql_transport(demo_engine(demo))(first, DEMO_END)
    records["trades"] = [*records["trades"], *nasty_pg_trades()]
    records["orders"] = [*records["orders"], *nasty_pg_orders()]
    lite = trading.demo_transport(write_db(tmp_path / "trading.db", records["trades"], records["orders"]).parent)
    want = {tl.source: tl for tl in trading.prepare_range(first, DEMO_END, lite)}
    with src.begin() as c:
        create_pg_trading_tables(c)
        c.execute(sa.text(f"insert into trades values ({', '.join(':' + k for k in TRADE_COLS)})"),
                  records["trades"])
        c.execute(sa.text(f"insert into orders values ({', '.join(':' + k for k in ORDER_COLS)})"),
                  records["orders"])
    try:
        for tz in ("UTC", "Asia/Kolkata"):
            eng = sa.create_engine(pg_url, connect_args={"options": f"-c timezone={tz}"})
            raw = trading.sql_transport(eng)(first, DEMO_END)
            assert isinstance(raw["trades"][0]["exit_time"], datetime)
            assert isinstance(raw["orders"][0]["submitted_at"], datetime)
            got = {tl.source: tl for tl in trading.prepare_range(first, DEMO_END, trading.sql_transport(eng))}
            for name in ("trades", "orders"):
                g, w = got[name], want[name]
                check_frame_dtypes(name, g.rows)
                assert g.extracted == w.extracted
                key = g.key
                assert normalised(g.rows.sort_values(key)) == normalised(w.rows.sort_values(key))
                # NULLs sort last in PostgreSQL, first in SQLite: the same rejects, maybe in another order
                assert sorted((r.record_key, r.reason, r.day) for r in g.rejects) == sorted(
                    (r.record_key, r.reason, r.day) for r in w.rejects)
                assert len(g.rejects) >= 3
            eng.dispose()
    finally:
        with src.begin() as c:
            c.exec_driver_sql("drop table trades; drop table orders")
        src.dispose()


def nasty_pg_trades() -> list[dict]:
    return [trade("PG1", net=None), trade("PG1"), trade("PG2", entry="2026-11-26T03:00:00Z"),
            trade("PG3", qty=0, net=-20.0), trade("PG4", net=500.0), trade("PG5", side="LONG", net=80.0)]


def nasty_pg_orders() -> list[dict]:
    return [order("PQ1", filled=None), order("PQ1"), order("PQ2", status="filled"),
            order("PQ3", status="REJECTED"), order("PQ4", submitted="2026-11-26T04:00:01Z",
                                                    filled="2026-11-26T04:00:00Z")]


# ------------------------------------------------------------------ the warehouse

UNSTAMPED = {"run_id", "loaded_at", "quarantined_at"}


def state(engine) -> dict[str, list[tuple]]:
    out = {}
    with engine.connect() as c:
        for t in ("raw_trades", "raw_orders", "quarantine"):
            res = c.execute(sa.text(f"select * from {t}"))
            cols = [k for k in res.keys() if k not in UNSTAMPED]
            out[t] = sorted(tuple(str(r._mapping[k]) for k in cols) for r in res)
    return out


def clear(engine) -> None:
    with engine.begin() as c:
        for t in ("raw_trades", "raw_orders", "quarantine"):
            c.execute(sa.text(f"delete from {t}"))


def test_range_extract_equals_its_days_one_at_a_time(engine, demo):
    days = cal.trading_days(date(2026, 11, 17), DEMO_END)
    per_day = [r for d in days for r in trading.extract(d, engine, "day", trading.demo_transport(demo[0]))]
    expected = state(engine)
    assert expected["quarantine"]  # the bad records of the last day

    clear(engine)
    t = Counted(trading.demo_transport(demo[0]))
    ranged = trading.extract_range(days[0], days[-1], engine, "range", t)
    assert t.calls == [(days[0], days[-1])]  # one fetch
    assert state(engine) == expected
    for r in ranged:
        assert r.extracted == r.loaded + r.quarantined, r
    for source in ("trades", "orders"):
        tot = [sum(v) for v in zip(*[(r.extracted, r.loaded, r.quarantined) for r in per_day
                                     if r.source == source], strict=True)]
        got = next(r for r in ranged if r.source == source)
        assert tot == [got.extracted, got.loaded, got.quarantined]
    q_days = {row[1] for row in expected["quarantine"]}  # extract_day of every reject
    assert q_days <= {str(d) for d in days}

    # the range again over itself, and a day over the range, change nothing
    trading.extract_range(days[0], days[-1], engine, "again", trading.demo_transport(demo[0]))
    assert state(engine) == expected
    trading.extract(days[-1], engine, "day-again", trading.demo_transport(demo[0]))
    assert state(engine) == expected


def test_a_transport_of_the_old_one_day_shape_still_works(engine, demo):
    days = cal.trading_days(date(2026, 11, 23), DEMO_END)
    new = trading.demo_transport(demo[0])
    trading.extract_range(days[0], days[-1], engine, "range", new)
    expected = state(engine)
    clear(engine)
    calls = []

    def one_day(day):
        calls.append(day)
        return new(day, day)

    trading.extract_range(days[0], days[-1], engine, "old", one_day)
    assert state(engine) == expected
    assert calls == [days[0] + timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]


def test_range_extract_of_hand_made_records(engine, tmp_path):
    """Hand-made records over four days: the warehouse holds the rows and quarantine
    (reason, payload, day) that prepare_range gave."""
    path = write_db(tmp_path / "trading.db", nasty_trades(), nasty_orders())
    first, last = date(2026, 11, 20), DEMO_END
    transport = trading.demo_transport(path.parent)
    res = {r.source: r for r in trading.extract_range(first, last, engine, "r", transport)}
    for tl in trading.prepare_range(first, last, transport):
        assert (res[tl.source].extracted, res[tl.source].loaded, res[tl.source].quarantined) == (
            tl.extracted, len(tl.rows), len(tl.rejects))
        with engine.connect() as c:
            q = c.execute(sa.text("select record_key, reason, payload, extract_day from quarantine"
                                  " where source = :s"), {"s": tl.source}).all()
            keys = [r[0] for r in c.execute(sa.text(f"select {tl.key} from {tl.table}"))]
        assert sorted((k, r, p, str(d)) for k, r, p, d in q) == sorted(
            (rj.record_key, rj.reason, payload_json(rj.payload), str(rj.day)) for rj in tl.rejects)
        assert sorted(keys) == sorted(tl.rows[tl.key])


def test_payload_of_a_fetched_record_is_the_raw_row(tmp_path):
    path = write_db(tmp_path / "trading.db", [trade("X", net=None)], [])
    raw = trading.sql_transport(f"sqlite:///{path}")(D, D)
    _, _, (rej,) = trading.parse_trades(D, D, raw["trades"])
    assert rej.payload == dict(zip(TRADE_COLS, trade("X", net=None).values(), strict=True))
    assert (rej.record_key, rej.reason, rej.day) == ("X", "net_pnl is NULL", D)
    con = sqlite3.connect(path)
    assert con.execute("select count(*) from trades").fetchone() == (1,)
    con.close()
