"""The binary COPY of DataFrames into PostgreSQL (kaizen.warehouse.copy_frame, by
psycopg's own dumpers) stores what a plain INSERT of the expected Python values and
the text COPY (copy_text) store, value for value; what it cannot take goes through the
text path whole, never stored otherwise."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from kaizen import warehouse

IST = timezone(timedelta(hours=5, minutes=30))
COLUMNS = """seq integer, i4 integer, i8 bigint, f8 double precision, f_int double precision,
    flag boolean, day date, ts timestamptz, ts_naive timestamptz, ts_ist timestamptz, name text,
    note text, s_str text, nothing integer, run_id text, loaded_at timestamptz, x_int integer,
    x_day date, x_null text, x_f8 double precision"""
NAN = float("nan")
# the expected value of each row and column, as Python values (None: NULL)
EXPECTED = {
    "i4": [-(2**31), 2**31 - 1, 0, 7],
    "i8": [-(2**63), 2**63 - 1, 0, 2**40],
    "f8": [1.5, None, math.inf, -0.0],
    "f_int": [2.0**53, -1.0, 0.0, 3.0],
    "flag": [True, False, True, False],
    "day": [date(1, 1, 1), None, date(9999, 12, 31), date(2024, 2, 29)],
    "ts": [datetime(1969, 12, 31, 23, 59, 59, 999999, UTC), None, datetime(2000, 1, 1, tzinfo=UTC),
           datetime(9999, 12, 31, 23, 59, 59, 999999, UTC)],
    # from naive ns: UTC, cut to the µs (as the text path always did)
    "ts_naive": [datetime(2026, 11, 28, 1, 2, 3, 123456, UTC), None, datetime(1900, 1, 1, 0, 0, 0, 1, UTC),
                 datetime(1999, 12, 31, 23, 59, 59, 999999, UTC)],
    "ts_ist": [datetime(2026, 11, 28, 3, 45, 0, 500000, UTC), None, datetime(1999, 12, 31, 23, 59, 59, 999999, UTC),
               datetime(2026, 3, 31, 18, 30, tzinfo=UTC)],
    "name": ["tab\there\nnew\\line\r", "", "Ünïcödé ✓ 日本語 🚀 'q' \"qq\"", "\\N"],
    "note": ["a", None, None, None],
    "s_str": ["NULL", None, "", "ß"],
    "nothing": [None] * 4,
}
EXTRA = {"run_id": "run-é", "loaded_at": datetime(2026, 11, 28, 12, 0, 0, 1, IST), "x_int": -7,
         "x_day": date(1999, 1, 2), "x_null": None, "x_f8": NAN}


def _frame() -> pd.DataFrame:
    """EXPECTED as the sources build frames: numpy numbers, datetime64 timestamps
    (aware, naive UTC in ns, IST), object dates and texts, NaN/NaT/pd.NA for NULL."""
    ts = pd.to_datetime(["1969-12-31T23:59:59.999999", "NaT", "2000-01-01", "9999-12-31T23:59:59.999999"],
                        format="ISO8601").astype("datetime64[us]")
    return pd.DataFrame({
        "seq": np.arange(4),
        "i4": np.array(EXPECTED["i4"], dtype=np.int64),
        "i8": np.array(EXPECTED["i8"], dtype=np.int64),
        "f8": np.array([1.5, np.nan, np.inf, -0.0]),
        "f_int": np.array([2**53, -1, 0, 3], dtype=np.int64),
        "flag": np.array(EXPECTED["flag"]),
        "day": pd.Series(EXPECTED["day"], dtype=object),
        "ts": pd.Series(ts).dt.tz_localize("UTC"),
        "ts_naive": pd.to_datetime(["2026-11-28T01:02:03.123456789", None, "1900-01-01T00:00:00.000001",
                                    "1999-12-31T23:59:59.9999999"], format="ISO8601"),
        "ts_ist": pd.to_datetime(["2026-11-28T09:15:00.5", None, "2000-01-01T05:29:59.999999", "2026-04-01"],
                                 format="ISO8601").tz_localize("Asia/Kolkata"),
        "name": pd.Series(EXPECTED["name"], dtype=object),
        "note": pd.Series(["a", np.nan, None, pd.NA], dtype=object),
        "s_str": pd.Series(EXPECTED["s_str"], dtype="string"),
        "nothing": pd.Series([None] * 4, dtype=object),
    })


@pytest.fixture
def pg(pg_url):
    eng = sa.create_engine(pg_url)
    yield eng
    eng.dispose()


@pytest.fixture
def tables(pg):
    """``tables(columns, count)``: new tables of that shape, dropped after the test
    (other tests look at every table of the session's database)."""
    made: list[str] = []

    def make(columns: str, count: int) -> list[str]:
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


def _text_rows(pg, table) -> list[str]:
    """Every row as PostgreSQL's own text of the record (-0, NaN, µs and NULLs show)."""
    with pg.connect() as c:
        return [r[0] for r in c.exec_driver_sql(f"select t::text from {table} t order by seq")]


def _refuse_text_path(*args, **kwargs):
    raise AssertionError("the binary COPY was bypassed")


def test_binary_copy_stores_what_insert_and_text_copy_store(pg, tables, monkeypatch):
    binary, text, plain = tables(COLUMNS, 3)
    frame = _frame()
    with monkeypatch.context() as m:
        m.setattr(warehouse, "copy_text", _refuse_text_path)
        with pg.begin() as c:
            assert warehouse.insert_rows(c, binary, frame, EXTRA) == len(frame)
    with pg.begin() as c, c.connection.driver_connection.cursor() as cur:
        assert warehouse.copy_text(cur, text, frame, EXTRA) == len(frame)
    # the expected values by psycopg's parameter binding, one INSERT per row
    cols = ["seq", *EXPECTED, *EXTRA]
    rows = [(i, *(v[i] for v in EXPECTED.values()), *EXTRA.values()) for i in range(len(frame))]
    with pg.begin() as c:
        c.exec_driver_sql(f"insert into {plain} ({', '.join(cols)}) values ({', '.join(['%s'] * len(cols))})", rows)
    assert _text_rows(pg, binary) == _text_rows(pg, plain)
    assert _text_rows(pg, text) == _text_rows(pg, plain)
    with pg.connect() as c:
        got = [tuple(r) for r in c.exec_driver_sql(f"select {', '.join(cols)} from {binary} order by seq")]
    for i, row in enumerate(got):  # and what they read back as
        assert row[:-1] == rows[i][:-1] and math.isnan(row[-1])  # an extra NaN is NaN, not NULL
    assert str(got[3][3]) == "-0.0" and got[1][3] is None  # the frame's NaN is NULL


def test_frames_it_cannot_take_go_through_the_text_path(pg, tables):
    small, numeric, mixed, wide = tables(
        "seq integer, n smallint, amount numeric, name text, i4 integer, loaded timestamptz", 4)
    cases = [  # (table, frame, what the column stores)
        (small, pd.DataFrame({"seq": [0], "n": [5]}), "5"),
        (numeric, pd.DataFrame({"seq": [0], "amount": [1.25]}), "1.25"),
        (mixed, pd.DataFrame({"seq": [0], "name": pd.Series([5], dtype=object)}), "5"),
    ]
    for table, frame, _ in cases:
        with pg.begin() as c:
            warehouse.insert_rows(c, table, frame)
    with pg.connect() as c:
        got = [c.exec_driver_sql(f"select coalesce(n::text, amount::text, name) from {t}").scalar() for t, *_ in cases]
    assert got == [stored for *_, stored in cases]
    # psycopg's int4 dumper would wrap 2**31 to -2**31: the text path refuses it instead
    for frame, extra in [(pd.DataFrame({"seq": [0], "i4": [2**31]}), {}), (pd.DataFrame({"seq": [0]}), {"i4": -(2**31) - 1})]:
        with pytest.raises(psycopg.errors.NumericValueOutOfRange), pg.begin() as c:
            warehouse.insert_rows(c, wide, frame, extra)
    with pytest.raises(ValueError, match="naive"), pg.begin() as c:  # as utc_text always refused
        warehouse.insert_rows(c, wide, pd.DataFrame({"seq": [0]}), {"name": "x", "loaded": datetime(2026, 1, 1)})
