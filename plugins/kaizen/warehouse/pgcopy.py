"""Bulk loads of a pandas DataFrame into PostgreSQL by binary ``COPY``, encoded with
numpy a chunk of rows at a time (no Python loop per row).

Each frame column is encoded by the PostgreSQL type of its target column (looked up
at every load): ``text``, ``integer``, ``bigint``,
``double precision``, ``boolean``, ``date`` and ``timestamp with time zone``. The
stored values are exactly those of the text ``COPY`` that
:func:`kaizen.warehouse.insert_rows` always did (:func:`copy_text`, still used): NULL
for None/NaN/NaT, timestamps to the microsecond. A frame with any column the encoder
cannot vouch for (another type, mixed Python types, an int4 overflow, text with a NUL,
a non-UTF-8 client encoding, ...) goes through :func:`copy_text` whole, so behaviour
never changes silently; only the speed does.

The binary format (PostgreSQL docs, "COPY", "Binary Format"): a 19-byte header, per
row an int16 field count then per field an int32 byte length (-1 = NULL) and the
bytes, an int16 -1 trailer; all big-endian. A chunk (:func:`_encode`) is built from
every row's size and offset (cumsum): the text values land in place by one
``str.join``, every other field is written to its offsets by numpy fancy indexing,
one element per row."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import NamedTuple

import numpy as np
import pandas as pd

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, int32 flags 0, int32 extension length 0
TRAILER = b"\xff\xff"  # int16 -1
CHUNK_ROWS = 50_000  # ~8 MB buffers for raw_orders-shaped rows (larger chunks encode slower)

TEXT, INT4, INT8, FLOAT8 = "text", "integer", "bigint", "double precision"
BOOL, DATE, TIMESTAMPTZ = "boolean", "date", "timestamp with time zone"
SUPPORTED = {TEXT, INT4, INT8, FLOAT8, BOOL, DATE, TIMESTAMPTZ}

_PG_EPOCH = datetime(2000, 1, 1).toordinal()  # PostgreSQL's day 0
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 00:00 UTC in Unix µs
_PG_EPOCH_TS = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
_US = timedelta(microseconds=1)
# Unix µs of 0001-01-01 and 10000-01-01: outside, the text path's spelling of a
# timestamp is not a plain 4-digit year, so the encoder does not vouch for it
_MIN_US, _END_US = -62_135_596_800_000_000, 253_402_300_800_000_000
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_EXACT_FLOAT = 2**53  # ints up to this magnitude are exact as float8


class _Field(NamedTuple):
    """One column, prepared once for the whole frame by :func:`_field`/:func:`_constant`."""

    kind: str  # "fixed", "text" or "const" (an ``extra`` value, the same in every row)
    # fixed: per row a packed record (int32 length, big-endian value); text: per row
    # the str ("" for NULL); const: the length word and bytes, or None for NULL
    values: object
    null: np.ndarray | None = None  # fixed: the NULL rows (None: there are none)
    sizes: np.ndarray | None = None  # text: per row the UTF-8 byte size, -1 for NULL


def column_types(cursor, table: str) -> dict[str, str]:
    """{column: type name as ``regtype`` spells it} of ``table``, looked up at every
    load (~0.3 ms): a table re-created or altered under a live connection is seen."""
    cursor.execute(
        "select attname, atttypid::regtype::text from pg_attribute"
        " where attrelid = %s::regclass and attnum > 0 and not attisdropped",
        (table,),
    )
    return dict(cursor.fetchall())


def copy_frame(cursor, table: str, frame: pd.DataFrame, extra: Mapping, chunk_rows: int = CHUNK_ROWS) -> int:
    """Load ``frame`` plus the constant columns ``extra`` into ``table`` by binary
    ``COPY`` (psycopg ``cursor``, caller's transaction); :func:`copy_text` when the
    encoder cannot vouch for every column. Returns the number of rows."""
    n = len(frame)
    prepared = _fields(cursor, table, frame, extra)
    if prepared is None:
        return copy_text(cursor, table, frame, extra)
    cols, fields = prepared
    with cursor.copy(f"copy {table} ({', '.join(cols)}) from stdin with (format binary)") as copy:
        copy.write(HEADER)
        for a in range(0, n, chunk_rows):
            copy.write(memoryview(_encode(fields, a, min(n, a + chunk_rows))))
        copy.write(TRAILER)
    return n


def copy_text(cursor, table: str, frame: pd.DataFrame, extra: Mapping) -> int:
    """The text ``COPY`` of a frame, row by row (:func:`kaizen.warehouse.copy_text`):
    the fallback, and the reference the binary path is tested against."""
    from kaizen import warehouse

    return warehouse.copy_text(cursor, table, frame, extra)


# ---------------------------------------------------------------- columns → fields

def _fields(cursor, table, frame, extra) -> tuple[list[str], list[_Field]] | None:
    """(columns, fields) with the text fields last, as :func:`_encode` wants them (COPY
    names the columns); None when any column needs the text path."""
    cols = [str(c) for c in frame.columns] + [str(k) for k in extra]
    if len(set(cols)) != len(cols) or cursor.connection.info.encoding != "utf-8":
        return None
    types = column_types(cursor, table)
    if not set(cols) <= types.keys() or not {types[c] for c in cols} <= SUPPORTED:
        return None
    fields = [_field(frame.iloc[:, i], types[c]) for i, c in enumerate(cols[: frame.shape[1]])]
    fields += [_constant(v, types[str(k)]) for k, v in extra.items()]
    if any(f is None for f in fields):
        return None
    order = sorted(range(len(cols)), key=lambda i: fields[i].kind == "text")  # stable
    return [cols[i] for i in order], [fields[i] for i in order]


def _field(series: pd.Series, pgtype: str) -> _Field | None:
    """A frame column as a field for a ``pgtype`` column, None if not vouched for."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        if pgtype != TIMESTAMPTZ:
            return None
        # the very conversion _column does, so both paths see the same µs
        utc = series.dt.tz_convert("UTC") if isinstance(dtype, pd.DatetimeTZDtype) else series.dt.tz_localize("UTC")
        stamps = utc.dt.tz_localize(None).to_numpy("datetime64[us]")
        null = np.isnat(stamps)
        us = np.where(null, 0, stamps.view(np.int64))
        if len(us) and (us.min() < _MIN_US or us.max() >= _END_US):
            return None
        return _fixed(us - _PG_EPOCH_US, ">i8", null)
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return _numbers(series.to_numpy(), pgtype)
    if (isinstance(dtype, np.dtype) and dtype.kind == "O") or isinstance(dtype, pd.StringDtype):
        return _objects(series.to_numpy(dtype=object), pgtype)
    return None  # categorical, nullable extension dtypes, ...


def _numbers(values: np.ndarray, pgtype: str) -> _Field | None:
    kind = values.dtype.kind
    if kind == "b":
        return _fixed(values, "u1") if pgtype == BOOL else None
    if kind == "f":
        if pgtype != FLOAT8 or values.dtype.itemsize > 8:
            return None
        return _fixed(values, ">f8", np.isnan(values))  # NaN → NULL, as _column does
    # integers; the text path writes str(int) and the server converts
    lo, hi = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    if pgtype == INT4 and _INT32[0] <= lo and hi <= _INT32[1]:
        return _fixed(values, ">i4")
    if pgtype == INT8 and _INT64[0] <= lo and hi <= _INT64[1]:
        return _fixed(values, ">i8")
    if pgtype == FLOAT8 and -_EXACT_FLOAT <= lo and hi <= _EXACT_FLOAT:
        return _fixed(values, ">f8")
    return None  # out of range (the text path raises), or bool/date/text targets


def _objects(values: np.ndarray, pgtype: str) -> _Field | None:
    """An object column: str (text) or datetime.date (date); NULL for None, NaN, NaT
    and pd.NA, as :func:`kaizen.warehouse._plain` binds them."""
    # "string"/"date": every value (every other than the missing ones) is a str/date
    inferred = pd.api.types.infer_dtype(values, skipna=False)
    null = np.zeros(len(values), dtype=bool)
    if inferred not in ("string", "date"):
        null = pd.isna(values)
        if not all(map(_binds_null, set(map(type, values[null])))):
            return None  # e.g. Decimal("NaN"): not NULL on the text path
        if null.all():
            return _Field("const", None)
        inferred = pd.api.types.infer_dtype(values, skipna=True)
    if pgtype == TEXT and inferred == "string":
        strs = values[~null] if null.any() else values
        # UTF-8 byte sizes: the gaps between NUL separators of one join
        try:
            joined = np.frombuffer("\x00".join(strs.tolist()).encode(), dtype=np.uint8)
        except UnicodeEncodeError:
            return None  # a lone surrogate: copy_text raises as it always did
        seps = np.flatnonzero(joined == 0)
        if len(seps) != len(strs) - 1:
            return None  # PostgreSQL text cannot hold NUL: copy_text raises as it always did
        sizes = np.full(len(values), -1, dtype=np.int32)
        sizes[~null] = np.diff(seps, prepend=-1, append=len(joined)) - 1
        return _Field("text", np.where(null, "", values) if null.any() else values, sizes=sizes)
    if pgtype == DATE and inferred == "date":
        # few distinct days: convert the distinct ones (date → datetime64 is slow per value)
        codes, uniq = pd.factorize(values)
        if any(type(d) is not date for d in uniq):
            return None  # datetime, a date subclass: the text path's spelling
        days = np.array([d.toordinal() - _PG_EPOCH for d in uniq] + [0], dtype=np.int64)[codes]
        return _fixed(days, ">i4", null)
    return None


def _utf8(v: str) -> bool:
    try:
        v.encode()
    except UnicodeEncodeError:  # a lone surrogate: copy_text raises as it always did
        return False
    return True


def _binds_null(t: type) -> bool:
    """Whether the values of type ``t`` that pandas calls missing are NULL on the text
    path (:func:`kaizen.warehouse._plain`): None, NaN floats, NaT and pd.NA."""
    return t is type(None) or issubclass(t, float) or t.__name__ in ("NaTType", "NAType")


def _fixed(values: np.ndarray, be: str, null: np.ndarray | None = None) -> _Field:
    """A fixed-width field: per row a packed record (int32 length, big-endian value)."""
    records = np.empty(len(values), dtype=[("len", ">i4"), ("value", be)])
    records["len"] = records.dtype["value"].itemsize
    records["value"] = values
    return _Field("fixed", records, null if null is not None and null.any() else None)


def _constant(v, pgtype: str) -> _Field | None:
    """An ``extra`` value (bound as :func:`kaizen.warehouse.bind_value` does) as a field."""
    t = type(v)
    if v is None:
        data = None
    elif t is str and pgtype == TEXT and "\x00" not in v and _utf8(v):
        data = v.encode()
    elif t is bool and pgtype == BOOL:
        data = bytes([v])
    elif t is int and pgtype == INT4 and _INT32[0] <= v <= _INT32[1]:
        data = struct.pack(">i", v)
    elif t is int and pgtype == INT8 and _INT64[0] <= v <= _INT64[1]:
        data = struct.pack(">q", v)
    elif t is int and pgtype == FLOAT8 and abs(v) <= _EXACT_FLOAT:
        data = struct.pack(">d", v)
    elif t is float and pgtype == FLOAT8:
        data = struct.pack(">d", v)  # NaN stays NaN: bind_value does not make it NULL
    elif t is datetime and pgtype == TIMESTAMPTZ and v.utcoffset() is not None:
        data = struct.pack(">q", (v - _PG_EPOCH_TS) // _US)  # naive: copy_text raises as before
    elif t is date and pgtype == DATE:
        data = struct.pack(">i", v.toordinal() - _PG_EPOCH)
    else:
        return None
    # the length word and the value, as written to every row
    return _Field("const", None if data is None else struct.pack(">i", len(data)) + data)


# ---------------------------------------------------------------- chunk encoder

def _encode(fields: list[_Field], a: int, b: int) -> np.ndarray:
    """Rows ``a:b`` as binary COPY rows (no header or trailer), one uint8 array.
    ``fields`` must have the text fields last (see :func:`_fields`).

    The text values are put in place by one ``str.join`` of every row's pieces: a run
    of NULs standing for the row's field count, non-text fields and first length
    word, then the texts with 4 NULs (the next length word) between them. The field
    counts, length words and fixed-width fields are then written over the NULs at
    their offsets, one numpy element per row and field (see :func:`_at`)."""
    m, nf = b - a, len(fields)
    lens = np.empty((nf, m), dtype=np.int64)  # each field's value size per row, -1 = NULL
    for f, fl in enumerate(fields):
        if fl.kind == "text":
            lens[f] = fl.sizes[a:b]
        elif fl.kind == "const":
            lens[f] = -1 if fl.values is None else len(fl.values) - 4
        else:
            lens[f] = fl.values.itemsize - 4
            if fl.null is not None:
                lens[f, fl.null[a:b]] = -1
    size = 4 + np.maximum(lens, 0)  # each field's bytes: length word and value
    row_size = 2 + size.sum(axis=0)
    row_start = np.cumsum(row_size) - row_size

    texts = [fl.values[a:b] for fl in fields if fl.kind == "text"]
    nt = len(texts)
    head = 2 + size[: nf - nt].sum(axis=0) + (4 if nt else 0)  # bytes before the first text
    runs, which = np.unique(head, return_inverse=True)
    pieces = np.empty((m, max(1, 2 * nt)), dtype=object)  # per row: head, text, gap, text, ...
    pieces[:, 0] = np.array(["\x00" * k for k in runs.tolist()], dtype=object)[which]
    for j, strs in enumerate(texts):
        pieces[:, 2 * j + 1] = strs
        if j:
            pieces[:, 2 * j] = "\x00" * 4
    out = np.frombuffer("".join(pieces.ravel().tolist()).encode(), dtype=np.uint8).copy()
    if len(out) != row_start[-1] + row_size[-1]:
        raise AssertionError("binary COPY chunk of the wrong size")

    _at(out, 2)[row_start] = np.frombuffer(struct.pack(">h", nf), dtype="V2")[0]
    pos = row_start + 2  # where each row's next field starts
    for f, fl in enumerate(fields):
        if fl.kind == "text":  # the text is in place: its length word
            _at(out, 4)[pos] = lens[f].astype(">i4").view("V4")
        elif fl.kind == "const":
            if fl.values is not None:
                _at(out, len(fl.values))[pos] = np.frombuffer(fl.values, dtype=f"V{len(fl.values)}")[0]
            else:
                _at(out, 4)[pos] = _NULL
        elif fl.null is None:  # a record of length word and value per row
            _at(out, fl.values.itemsize)[pos] = fl.values[a:b].view(f"V{fl.values.itemsize}")
        else:
            null = fl.null[a:b]
            _at(out, 4)[pos[null]] = _NULL
            _at(out, fl.values.itemsize)[pos[~null]] = fl.values[a:b].view(f"V{fl.values.itemsize}")[~null]
        pos += size[f]
    return out


_NULL = np.frombuffer(struct.pack(">i", -1), dtype="V4")[0]


def _at(out: np.ndarray, width: int) -> np.ndarray:
    """``out`` as overlapping ``width``-byte elements, one starting at every byte:
    ``_at(out, w)[p] = v`` writes the w bytes of ``v`` at offset ``p`` (fancy
    indexing then moves one element per row instead of w single bytes)."""
    return np.ndarray(shape=(len(out) - width + 1,), dtype=f"V{width}", buffer=out, strides=(1,))
