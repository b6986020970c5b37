"""The binary COPY of DataFrames into PostgreSQL (kaizen.warehouse.pgcopy): what it
stores is exactly what the text COPY of insert_rows stores (pgcopy.copy_text, the
oracle), value for value; frames it cannot vouch for go through the text path whole;
insert_rows takes the binary path for the common frame."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from kaizen import warehouse
from kaizen.warehouse import pgcopy

LOADED = datetime(2026, 11, 28, 6, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def pg(pg_url):
    eng = sa.create_engine(pg_url)
    yield eng
    eng.dispose()


@pytest.fixture
def tables(pg):
    """``tables(columns, count=2)``: new tables of that shape, dropped after the test
    (other tests look at every table of the session's database)."""
    made: list[str] = []

    def make(columns: str, count: int = 2) -> list[str]:
        names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(count)]
        made.extend(names)
        with pg.begin() as c:
            for name in names:
                c.exec_driver_sql(f"create table {name} ({columns})")
        return names

    yield make
    with pg.begin() as c:
        for name in made:
            c.exec_driver_sql(f"drop table if exists {name}")


@pytest.fixture
def spy(monkeypatch):
    """Which paths ran: the text fallback and the chunk encoder (chunks encoded)."""
    calls = {"text": 0, "chunks": 0}
    copy_text, encode = pgcopy.copy_text, pgcopy._encode

    def text(*args, **kwargs):
        calls["text"] += 1
        return copy_text(*args, **kwargs)

    def chunk(*args, **kwargs):
        calls["chunks"] += 1
        return encode(*args, **kwargs)

    monkeypatch.setattr(pgcopy, "copy_text", text)
    monkeypatch.setattr(pgcopy, "_encode", chunk)
    return calls


def _load(pg, table, frame, extra, how="binary", chunk_rows=pgcopy.CHUNK_ROWS) -> None:
    with pg.begin() as c, c.connection.driver_connection.cursor() as cur:
        if how == "binary":
            assert pgcopy.copy_frame(cur, table, frame, extra, chunk_rows) == len(frame)
        else:
            assert pgcopy.copy_text(cur, table, frame, extra) == len(frame)


def _rows(pg, table) -> list[str]:
    """Every row as PostgreSQL's own text of the record (-0, NaN, µs and NULLs show)."""
    with pg.connect() as c:
        return [r[0] for r in c.exec_driver_sql(f"select t::text from {table} t order by seq")]


def _values(pg, table) -> list[tuple]:
    with pg.connect() as c:
        return [tuple(r) for r in c.exec_driver_sql(f"select * from {table} order by seq")]


def _ts(*texts, unit="us", tz="UTC"):
    s = pd.Series(pd.to_datetime(list(texts), format="ISO8601")).astype(f"datetime64[{unit}]")
    return s.dt.tz_localize(tz) if tz else s


ALL_TYPES = """
    seq integer primary key, i4 integer, i8 bigint, i32 bigint, f8 double precision,
    f_int double precision, f32 double precision, flag boolean, day date,
    ts timestamptz, ts_naive_ns timestamptz, ts_ist timestamptz, name text, note text,
    s_str text, s_default text, nothing integer, run_id text, loaded_at timestamptz, x_int integer,
    x_day date, x_null text, x_flag boolean, x_f8 double precision
"""


def _all_types_frame() -> tuple[pd.DataFrame, dict]:
    n = 8
    frame = pd.DataFrame({
        "seq": np.arange(n, dtype=np.int64),
        "i4": np.array([-(2**31), 2**31 - 1, 0, 1, -1, 5, 6, 7], dtype=np.int64),
        "i8": np.array([-(2**63), 2**63 - 1, 0, 1, -1, 2**40, 6, 7], dtype=np.int64),
        "i32": np.array([-(2**31), 2**31 - 1, 0, 1, -1, 5, 6, 7], dtype=np.int32),
        "f8": np.array([1.5, -2.25, np.nan, np.inf, -np.inf, -0.0, 5e-324, 0.1]),
        "f_int": np.array([2**53, -(2**53), 0, 1, -1, 3, 4, 5], dtype=np.int64),
        "f32": np.array([0.1, np.nan, -3.5, 1e30, 0, 1, 2, 3], dtype=np.float32),
        "flag": np.array([True, False, True, True, False, False, True, False]),
        "day": pd.Series([date(1999, 12, 31), date(2000, 1, 1), None, date(1, 1, 1), date(9999, 12, 31),
                          date(2038, 1, 20), date(1970, 1, 1), date(2024, 2, 29)], dtype=object),
        "ts": _ts("1969-12-31T23:59:59.999999", "1999-12-31T23:59:59.000001", "NaT",
                  "2038-01-19T03:14:08.123456", "2100-06-30T12:00:00.000007", "2000-01-01T00:00:00",
                  "0999-03-04T05:06:07.89", "9999-12-31T23:59:59.999999"),
        "ts_naive_ns": _ts("2026-11-28T01:02:03.123456789", "NaT", "1900-01-01T00:00:00.000001",
                           "2026-11-28T01:02:03", "2200-01-01", "1999-12-31T23:59:59.9999999",
                           "2000-01-01T00:00:00.0000001", "1970-01-01", unit="ns", tz=None),
        "ts_ist": _ts("2026-11-28T09:15:00.5", "NaT", "2000-01-01T05:29:59.999999", "1990-05-05",
                      "2050-05-05", "2026-03-31T23:59:59", "2026-04-01", "2027-01-01", tz="Asia/Kolkata"),
        "name": pd.Series(["plain", "", None, "Ünïcödé ✓ 日本語 🚀", "tab\there\nnew\\line\r",
                           "x" * 5000, "'quoted' \"too\"", "NULL"], dtype=object),
        "note": pd.Series(["a", np.nan, "b", None, np.nan, "ä", "", pd.NA], dtype=object),
        "s_str": pd.Series(["s1", None, "", "ß", "s5", None, "s7", "s8"], dtype="string"),
        "s_default": pd.Series(["d1", None, "d3", "", "d5", "d6", "d7", "d8"]),  # pandas' own str dtype
        "nothing": pd.Series([None] * n, dtype=object),
    })
    extra = {"run_id": "run-é", "loaded_at": LOADED, "x_int": -7, "x_day": date(1999, 1, 2), "x_null": None,
             "x_flag": True, "x_f8": float("nan")}
    return frame, extra


def test_every_supported_type_loads_as_the_text_path_loads_it(pg, tables, spy):
    binary, text = tables(ALL_TYPES)
    frame, extra = _all_types_frame()
    _load(pg, binary, frame, extra)
    assert spy == {"text": 0, "chunks": 1}
    _load(pg, text, frame, extra, how="text")
    assert _rows(pg, binary) == _rows(pg, text)
    got = _values(pg, binary)
    # and the values are the frame's, not merely the same mistakes on both paths
    assert [r[1] for r in got] == frame["i4"].tolist() and [r[2] for r in got] == frame["i8"].tolist()
    assert got[2][4] is None and got[3][4] == float("inf") and str(got[5][4]) == "-0.0" and got[6][4] == 5e-324
    assert got[3][8] == date(1, 1, 1) and got[2][8] is None
    assert got[0][9] == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert got[3][9] == datetime(2038, 1, 19, 3, 14, 8, 123456, tzinfo=UTC)
    assert got[7][9] == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert got[0][11] == datetime(2026, 11, 28, 3, 45, 0, 500000, tzinfo=UTC)
    assert [r[12] for r in got] == frame["name"].tolist()
    assert [r[13] for r in got] == ["a", None, "b", None, None, "ä", "", None]
    assert [r[14] for r in got] == ["s1", None, "", "ß", "s5", None, "s7", "s8"]
    assert [r[15] for r in got] == ["d1", None, "d3", "", "d5", "d6", "d7", "d8"]
    assert {r[16] for r in got} == {None}
    assert {r[17:23] for r in got} == {("run-é", LOADED, -7, date(1999, 1, 2), None, True)}
    assert all(r[23] != r[23] for r in got)  # NaN: an extra float is bound as is, not as NULL


def test_a_chunk_boundary_inside_the_frame(pg, tables, spy):
    binary, text = tables("seq integer, name text, ts timestamptz, f8 double precision, run_id text")
    n = 10
    frame = pd.DataFrame({
        "seq": np.arange(n),
        "name": pd.Series([None if i % 4 == 1 else "é" * i for i in range(n)], dtype=object),
        "ts": _ts(*[f"2026-01-0{1 + i % 9}T00:00:0{i}.00000{i}" if i % 3 else "NaT" for i in range(n)]),
        "f8": np.where(np.arange(n) % 5 == 2, np.nan, np.arange(n) / 3),
    })
    _load(pg, binary, frame, {"run_id": "r"}, chunk_rows=3)
    assert spy == {"text": 0, "chunks": 4}
    _load(pg, text, frame, {"run_id": "r"}, how="text")
    assert _rows(pg, binary) == _rows(pg, text)
    assert len(_rows(pg, binary)) == n


def test_frames_the_encoder_cannot_vouch_for_go_through_the_text_path(pg, tables, spy):
    numeric, jsonb, mixed, odd_nan, stamped, small = tables(
        "seq integer, payload jsonb, amount numeric, name text, ts timestamp, n smallint", count=6
    )
    base = pd.DataFrame({"seq": [0, 1]})
    cases = [
        (numeric, base.assign(amount=[1.25, np.nan])),  # a numeric column
        (jsonb, base.assign(payload=pd.Series(['{"a": [1, "é"]}', None], dtype=object))),  # jsonb
        (mixed, base.assign(name=pd.Series(["x", 5], dtype=object))),  # str and int: "5" as text
        (odd_nan, base.assign(name=pd.Series(["y", np.float32("nan")], dtype=object))),  # missing to pandas only
        (stamped, base.assign(ts=_ts("2026-01-01T01:02:03.5", "NaT"))),  # timestamp without time zone
        (small, base.assign(n=[1, 2])),  # smallint
    ]
    for table, frame in cases:
        _load(pg, table, frame, {})
    assert spy == {"text": len(cases), "chunks": 0}
    with pg.connect() as c:
        got = [tuple(r) for table, _ in cases for r in c.exec_driver_sql(
            f"select payload::text, amount::text, name, ts::text, n from {table} order by seq")]
    assert got == [
        (None, "1.25", None, None, None), (None, None, None, None, None),
        ('{"a": [1, "é"]}', None, None, None, None), (None, None, None, None, None),
        (None, None, "x", None, None), (None, None, "5", None, None),
        (None, None, "y", None, None), (None, None, "nan", None, None),
        (None, None, None, "2026-01-01 01:02:03.5", None), (None, None, None, None, None),
        (None, None, None, None, 1), (None, None, None, None, 2),
    ]


@pytest.mark.parametrize("frame, extra, error", [
    (pd.DataFrame({"seq": [1], "i4": np.array([2**31], dtype=np.int64)}), {}, psycopg.errors.NumericValueOutOfRange),
    (pd.DataFrame({"seq": [1], "name": pd.Series(["a\x00b"], dtype=object)}), {}, psycopg.DataError),
    (pd.DataFrame({"seq": [1]}), {"ts": datetime(2026, 1, 1)}, ValueError),  # naive
])
def test_what_the_text_path_refuses_is_still_refused(pg, tables, spy, frame, extra, error):
    (table,) = tables("seq integer, i4 integer, name text, ts timestamptz", count=1)
    with pytest.raises(error):
        _load(pg, table, frame, extra)
    assert spy["text"] == 1 and spy["chunks"] == 0


def test_insert_rows_takes_the_binary_path_for_a_source_frame(pg, tables, spy, monkeypatch):
    """A raw_orders frame shaped as kaizen.sources.trading builds it; insert_rows must
    not need the text path for it (the test fails if the encoder is bypassed)."""
    binary, text = tables("""
        order_id text primary key, trading_day date not null, trade_id text, symbol text not null,
        side text not null, quantity integer not null, status text not null,
        submitted_at timestamptz not null, filled_at timestamptz, run_id text, loaded_at timestamptz not null,
        seq integer""")
    n = 1000
    rng = np.random.default_rng(7)
    sub = np.datetime64("2026-11-02T03:45:00", "us").astype(np.int64) + rng.integers(0, 20 * 86400 * 10**6, n)
    filled = rng.random(n) < 0.7
    frame = pd.DataFrame({
        "order_id": pd.Series([f"O{i:06d}" for i in range(n)], dtype=object),
        "trading_day": pd.Series([date(1970, 1, 1) + timedelta(days=int(d)) for d in sub // 86_400_000_000],
                                 dtype=object),
        "trade_id": pd.Series([f"T{i // 2}" if f else None for i, f in enumerate(filled)], dtype=object),
        "symbol": pd.Series(rng.choice(["TCS", "INFY", "RELIANCE"], n), dtype=object),
        "side": pd.Series(rng.choice(["BUY", "SELL"], n), dtype=object),
        "quantity": rng.integers(1, 500, n),
        "status": pd.Series(np.where(filled, "filled", "rejected"), dtype=object),
        "submitted_at": pd.Series(sub.astype("datetime64[us]")).dt.tz_localize("UTC"),
        "filled_at": pd.Series(np.where(filled, sub + 1500, np.iinfo(np.int64).min).astype("datetime64[us]"))
        .dt.tz_localize("UTC"),
        "seq": np.arange(n),
    })
    stamp = {"run_id": "run-1", "loaded_at": datetime(2026, 11, 28, 12, tzinfo=timezone(timedelta(hours=5, minutes=30)))}

    def refuse(*args, **kwargs):
        raise AssertionError("the binary COPY was bypassed")

    with monkeypatch.context() as m:
        m.setattr(pgcopy, "copy_text", refuse)
        with pg.begin() as c:
            assert warehouse.insert_rows(c, binary, frame, stamp) == n
    assert spy["chunks"] == 1
    _load(pg, text, frame, stamp, how="text")
    assert _rows(pg, binary) == _rows(pg, text)
    # dict rows still go row by row (write_row), untouched
    with pg.begin() as c:
        c.exec_driver_sql(f"delete from {binary}")
        rows = frame.head(3).astype(object).where(frame.head(3).notna(), None).to_dict("records")
        assert warehouse.insert_rows(c, binary, rows, stamp) == 3
    assert spy["chunks"] == 1


def test_a_column_added_later_is_picked_up(pg, tables, spy):
    (table,) = tables("seq integer", count=1)
    with pg.begin() as c, c.connection.driver_connection.cursor() as cur:
        pgcopy.copy_frame(cur, table, pd.DataFrame({"seq": [1]}), {})
        c.exec_driver_sql(f"alter table {table} add column name text")
        pgcopy.copy_frame(cur, table, pd.DataFrame({"seq": [2], "name": ["b"]}), {})
    assert spy == {"text": 0, "chunks": 2}
    assert _values(pg, table) == [(1, None), (2, "b")]
