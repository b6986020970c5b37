"""The trading source over a range of trading days: ONE fetch, columnar validation
(kaizen.sources.trading.parse_trades / parse_orders) that gives exactly what the
per-record path gives (``_parse_records_slow`` over the database-ordered records,
the tests' oracle): the extracted counts, the rows, and the rejects with their reason,
payload and day — on the demo database, on hand-made records covering every rule
(as dicts, as a SQLite table sorted client-side, and as PostgreSQL timestamptz rows),
and in the warehouse, where a range extract leaves the same tables as its days one at
a time."""

from __future__ import annotations

import math
import random
import sqlite3
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen.sources import trading
from kaizen.sources.base import parse_ts, payload_json
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

TABLES = {
    "trades": dict(parse=trading.parse_trades, key="trade_id", day_field="exit_time", check=trading._check_trade),
    "orders": dict(parse=trading.parse_orders, key="order_id", day_field="submitted_at",
                   check=trading._check_order),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from kaizen.demo import generate

    out = tmp_path_factory.mktemp("demo")
    manifest = generate(end=DEMO_END, months=1, seed=42, out_dir=out, trades_per_day=200)
    return out, date.fromisoformat(manifest["first_trading_day"])


# ------------------------------------------------------------------ the oracle comparison


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


def assert_same(name: str, first: date, last: date, records, oracle_records) -> tuple:
    """The columnar parse of ``records`` equals the per-record path over
    ``oracle_records`` (the same records, in the database's order)."""
    t = TABLES[name]
    n, frame, rej = t["parse"](first, last, records)
    n_o, rows_o, rej_o = trading._parse_records_slow(
        first, last, oracle_records, source=name, key=t["key"], day_field=t["day_field"], check=t["check"]
    )
    assert n == n_o
    assert normalised(frame) == normalised(rows_o)
    assert rejects(rej) == rejects(rej_o)
    assert n == len(frame) + len(rej)
    for r in rej:
        assert first <= r.day <= last
    return n, frame, rej


def check_frame_dtypes(name: str, frame: pd.DataFrame) -> None:
    ts = ("entry_time", "exit_time") if name == "trades" else ("submitted_at", "filled_at")
    for c in ts:
        assert str(frame[c].dtype) in ("datetime64[us, UTC]", "datetime64[ns, UTC]"), (c, frame[c].dtype)
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
        t("D2", qty=3.0, net=10.0), t("D2"),  # a per-record-path row, then a columnar one
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


@pytest.mark.parametrize("first,last", RANGES)
@pytest.mark.parametrize("name", ["trades", "orders"])
def test_hand_made_records_as_dicts_equal_the_per_record_path(name, first, last):
    records = nasty_trades() if name == "trades" else nasty_orders()
    n, frame, rej = assert_same(name, first, last, records, records)
    check_frame_dtypes(name, frame)
    assert n > 0


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


@pytest.mark.parametrize("first,last", RANGES)
def test_hand_made_records_in_sqlite_equal_the_per_record_path(tmp_path, first, last):
    """Fetched without ORDER BY and sorted here (mixed layouts: value by value) —
    the same records in the same order as the database's ORDER BY."""
    path = write_db(tmp_path / "trading.db", nasty_trades(), nasty_orders())
    eng = sa.create_engine(f"sqlite:///{path}")
    raw = trading.sql_transport(eng)(first, last)
    oracle = trading._fetch_dicts(eng, first, last)
    for name in ("trades", "orders"):
        assert raw[name].order_by  # sorted client-side
        assert raw[name].records() == oracle[name]
        assert_same(name, first, last, raw[name], oracle[name])
    eng.dispose()


def test_client_side_order_equals_sqlite_order_by(tmp_path):
    """One ISO layout (the stable time sort), many equal exit times, and the other
    ORDER BY columns of every storage class (NULL, integer, real, text, blob)."""
    rng = random.Random(7)
    exits = ["2026-11-26T05:00:00.000Z", "2026-11-26T05:00:00.001Z", "2026-11-26T04:59:59.999Z"]
    seen, trades = set(), []
    while len(trades) < 400:
        rec = trade(
            rng.choice(["A", "B", "a", "10", "9", "Ä", "é"]),
            qty=rng.choice([None, 1, 2, 2.5, -1, "x", "10", b"\x01"]),
            entry=rng.choice(["2026-11-26T04:00:00Z", "2026-11-26T04:00:00.5Z", None, 3]),
            exit=rng.choice(exits),
            ep=rng.choice([100.0, 100, None, "100"]), xp=110.0, fees=rng.choice([20.0, 20]), net=80.0,
        )
        key = tuple(repr(rec[c]) for c in trading.TRADES_ORDER_BY)
        if key not in seen:  # equal ORDER BY keys have no defined order
            seen.add(key)
            trades.append(rec)
    # integers and reals compare exactly (2**53 + 1 > 2.0**53), the larger one first
    trades += [trade("Q", qty=2**53 + 1, exit=exits[0], net=80.0), trade("Q", qty=2.0**53, exit=exits[0], net=80.0)]
    path = write_trading_db(tmp_path / "trading.db", trades, [])
    eng = sa.create_engine(f"sqlite:///{path}")
    raw = trading.sql_transport(eng)(D, D)
    oracle = trading._fetch_dicts(eng, D, D)
    assert raw["trades"].records() == oracle["trades"]
    assert_same("trades", D, D, raw["trades"], oracle["trades"])
    eng.dispose()


def test_timestamps_parse_exactly_as_parse_ts():
    """The columnar timestamp parser against parse_ts on random ISO-like text (valid,
    invalid, odd spellings) and datetime objects: same instant, NULL or unparseable."""
    rng = random.Random(3)

    def one():
        y = rng.choice([2, 1999, 2024, 2026, 9998, 2000, 2100])
        s = (f"{y:04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}{rng.choice('TT x')}"
             f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}")
        if rng.random() < 0.6:
            s += rng.choice(".....,") + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 8)))
        r = rng.random()
        if r < 0.3:
            s += rng.choice("Zz")
        elif r < 0.6:
            s += f"{rng.choice('+-')}{rng.randint(0, 25):02d}{rng.choice([':', ''])}{rng.randint(0, 61):02d}"
        if rng.random() < 0.05:
            s = s[: rng.randint(0, len(s))]
        return s

    values = [one() for _ in range(30_000)] + [
        None, "", "  ", 5, 2.5, b"2026-11-26T04:00:00Z", date(2026, 11, 26), pd.Timestamp("2026-11-26T04:00Z"),
        datetime(2026, 11, 26, 4, 0, 0, 7), datetime(2026, 11, 26, 4, tzinfo=IST530),
        datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/London")),
        datetime(2026, 10, 25, 1, 30, fold=1, tzinfo=ZoneInfo("Europe/London")),
        datetime(2026, 11, 26, tzinfo=ZoneInfo("UTC")), datetime(2026, 11, 26, tzinfo=UTC),
    ]
    col = np.empty(len(values), dtype=object)
    col[:] = values
    got = trading._times(col)
    for i, v in enumerate(values):
        try:
            ts = parse_ts(v)
            want = (1, 0) if ts is None else (0, (ts - trading._EPOCH) // trading._US)
        except ValueError:
            want = (2, 0)
        assert (int(got.status[i]), int(got.us[i]) if got.status[i] == 0 else 0) == want, repr(v)
    # a layout id only where text order is time order: one layout, same suffix text
    for i, v in enumerate(values):
        if got.shape[i] >= 0:
            assert isinstance(v, str) and not v.endswith(("+", "-")) and v[-6] not in "+-"


def test_session_bounds_and_day_filter_in_ist():
    us = np.array([(parse_ts(s) - trading._EPOCH) // trading._US for s in (
        "2026-11-26T03:45:00Z", "2026-11-26T03:44:59.999999Z", "2026-11-26T10:00:00Z",
        "2026-11-26T10:00:00.000001Z", "2026-11-24T05:00:00Z", "2026-11-28T05:00:00Z")])
    assert trading._in_session_us(us).tolist() == [True, False, True, False, False, False]
    assert trading._dates(trading._ist_days(us)).tolist()[0] == D


# ------------------------------------------------------------------ the demo data


def demo_engine(demo):
    return sa.create_engine(f"sqlite:///{demo[0] / 'trading.db'}")


@pytest.mark.parametrize("span", ["month", "last3", "day"])
def test_demo_range_equals_the_per_record_path(demo, span):
    """The demo DB (deliberate bad records on the last day: a duplicated trade, a NULL
    P&L, an exit before its entry, a fill before its submission)."""
    eng = demo_engine(demo)
    first = {"month": demo[1], "last3": date(2026, 11, 25), "day": DEMO_END}[span]
    raw = trading.demo_transport(demo[0])(first, DEMO_END)
    oracle = trading._fetch_dicts(eng, first, DEMO_END)
    for name in ("trades", "orders"):
        n, frame, rej = assert_same(name, first, DEMO_END, raw[name], oracle[name])
        check_frame_dtypes(name, frame)
        assert n > 0 and len(rej) >= 1
        # the dict path (list of records in order) gives the same too
        assert_same(name, first, DEMO_END, oracle[name], oracle[name])
    eng.dispose()


def test_demo_on_postgres_timestamptz_equals_the_per_record_path(demo, request):
    """PostgreSQL returns aware datetime objects (the connection's zone), sorted by the
    database."""
    pg_url = request.getfixturevalue("pg_url")
    src = sa.create_engine(pg_url)
    first = date(2026, 11, 20)
    records = trading._fetch_dicts(demo_engine(demo), first, DEMO_END)
    records["trades"] += nasty_pg_trades()
    records["orders"] += nasty_pg_orders()
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
            oracle = trading._fetch_dicts(eng, first, DEMO_END)
            for name in ("trades", "orders"):
                assert not raw[name].order_by  # sorted by the database
                assert isinstance(raw[name].rows[0][TRADE_COLS.index("exit_time") if name == "trades" else 6],
                                  datetime)
                assert_same(name, first, DEMO_END, raw[name], oracle[name])
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
    """Hand-made records over four days: rows and quarantine (reason, payload, day) are
    those of the per-record path."""
    path = write_db(tmp_path / "trading.db", nasty_trades(), nasty_orders())
    first, last = date(2026, 11, 20), DEMO_END
    res = {r.source: r for r in trading.extract_range(first, last, engine, "r", trading.demo_transport(path.parent))}
    oracle = trading._fetch_dicts(sa.create_engine(f"sqlite:///{path}"), first, last)
    for name in ("trades", "orders"):
        t = TABLES[name]
        n, rows, rej = trading._parse_records_slow(first, last, oracle[name], source=name, key=t["key"],
                                                   day_field=t["day_field"], check=t["check"])
        assert (res[name].extracted, res[name].loaded, res[name].quarantined) == (n, len(rows), len(rej))
        with engine.connect() as c:
            q = c.execute(sa.text("select record_key, reason, payload, extract_day from quarantine"
                                  " where source = :s"), {"s": name}).all()
        assert sorted((k, r, p, str(d)) for k, r, p, d in q) == sorted(
            (rj.record_key, rj.reason, payload_json(rj.payload), str(rj.day)) for rj in rej)


def test_old_ist_offsets_take_the_per_record_path():
    """Before 1946 Asia/Kolkata was not UTC+05:30: the columnar path is not used."""
    recs = [trade("old", entry="1944-01-03T04:00:00Z", exit="1944-01-03T05:00:00Z")]
    first = last = date(1944, 1, 3)
    n, rows, (rej,) = trading.parse_trades(first, last, recs)
    assert (n, len(rows)) == (1, 0)
    assert "outside the calendar" in rej.reason and "before the NSE calendar's coverage" in rej.reason
    assert datetime.combine(first, time(12), KOLKATA).utcoffset() != timedelta(hours=5, minutes=30)


def test_payload_of_a_fetched_record_is_the_raw_row(tmp_path):
    path = write_db(tmp_path / "trading.db", [trade("X", net=None)], [])
    raw = trading.sql_transport(f"sqlite:///{path}")(D, D)
    _, _, (rej,) = trading.parse_trades(D, D, raw["trades"])
    assert rej.payload == dict(zip(TRADE_COLS, trade("X", net=None).values(), strict=True))
    assert (rej.record_key, rej.reason, rej.day) == ("X", "net_pnl is NULL", D)
    con = sqlite3.connect(path)
    assert con.execute("select count(*) from trades").fetchone() == (1,)
    con.close()
