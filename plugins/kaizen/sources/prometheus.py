"""Probe minutes, latency histograms and error-counter increases from Prometheus
``/api/v1/query_range`` (step 60 s) over the review windows of a range of trading days.

Each sample's timestamp is stored as the row's ``ts``; samples are kept in
``[review window start of the first day, review window end of the last day)``, so
consecutive windows tile the time line and a range equals its days one by one.

``raw_latency_buckets`` holds ONE row per minute: the bucket bounds (the ``le``
labels, ascending) and the cumulative count increases aligned with them, as JSON
arrays, plus the +Inf bucket's increase as ``request_count``. A rejected bucket
sample is quarantined on its own and its minute's row lacks that bucket, so the
latency ``extracted`` count is **(distinct minutes that got a row) + (rejected
bucket samples)**: extracted = loaded + quarantined holds as for every table. For
probes and errors ``extracted`` is the number of samples read. Each reject carries
the trading day whose review window holds its sample (:func:`kaizen.calendar.window_day`;
the range's last day when the timestamp cannot be read), so a range quarantines what
its days one by one would.

Parsing is columnar (a year is ~7 M samples): timestamps and values go through numpy
checks, and only the samples a vectorised check does not pass as plainly valid take
the per-sample path :func:`_check`, so quarantine reasons and keys are exactly those
of the per-sample parser :func:`_parse_samples` (kept as the tests' oracle). The demo
transport decodes the ``values`` arrays of its files straight from the JSON text into
columns (:class:`PackedValues`) instead of building a Python list per sample.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import sqlalchemy as sa

from kaizen import config
from kaizen.period import window_day, windows_utc
from kaizen.sources.base import (
    TS_SLICE,
    ExtractResult,
    Reject,
    SourceError,
    TableLoad,
    as_number,
    iso_z,
    load,
)
from kaizen.sources.http import JsonClient

STEP_S = 60
MAX_POINTS = 11_000  # Prometheus refuses query_range with more points per series

QUERIES = {
    "probe_success": 'min_over_time(probe_success{job="blackbox",instance="trading-api"}[1m])',
    "latency_buckets": 'sum by (le) (increase(http_request_duration_seconds_bucket{job="trading-api"}[1m]))',
    "errors": 'sum(increase(trading_api_errors_total{job="trading-api"}[1m]))',
}

# query name → (quarantine source, raw table)
TARGETS = {
    "probe_success": ("probes", "raw_probe_minutes"),
    "latency_buckets": ("latency", "raw_latency_buckets"),
    "errors": ("errors", "raw_error_minutes"),
}

DUPLICATE = "duplicate sample for the same series and minute (the first was loaded)"

# A transport returns {query name: [query_range response body, ...]} for the window;
# a series' "values" may be a PackedValues (the demo files) instead of a list.
Transport = Callable[[datetime, datetime], dict[str, list[dict]]]


def chunks(start: datetime, end: datetime, step_s: int = STEP_S, max_points: int | None = None):
    """[start, end) as query_range (start, end) pairs (both inclusive on the API side),
    each at most ``max_points`` (default :data:`MAX_POINTS`) points."""
    max_points = max_points or MAX_POINTS
    first, last = int(start.timestamp()), int(end.timestamp()) - step_s
    s = first
    while s <= last:
        e = min(s + (max_points - 1) * step_s, last)
        yield s, e
        s = e + step_s


def check_body(name: str, body) -> dict:
    if not isinstance(body, dict) or body.get("status") != "success":
        if isinstance(body, dict) and body.get("status") == "error":
            raise SourceError(
                f"Prometheus query {name!r} failed: {body.get('errorType')}: {body.get('error')} "
                f"(PromQL: {QUERIES[name]})"
            )
        raise SourceError(f"Prometheus query {name!r}: unexpected response {str(body)[:200]!r}")
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        raise SourceError(f"Prometheus query {name!r}: expected a matrix result, got {data.get('resultType')!r}")
    return data


def http_transport(base_url: str, token: str | None = None, **client_kw) -> Transport:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    client = JsonClient("Prometheus", config.PROMETHEUS_CONN_ID, base_url, headers, **client_kw)

    def fetch(start: datetime, end: datetime) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for name, promql in QUERIES.items():
            bodies = []
            for s, e in chunks(start, end):
                body = client.get_json("/api/v1/query_range",
                                       {"query": promql, "start": s, "end": e, "step": STEP_S})
                check_body(name, body)
                bodies.append(body)
            out[name] = bodies
        return out
    return fetch


# ---------------------------------------------------------------- columns
#
# A "source" holds samples as columns: t (float(pair[0]); NaN where unparseable),
# tbad (unparseable timestamp), vcode (index into vtable, the distinct values; the
# last entry is NaN: the per-sample check must look at that sample), and gives back
# any raw pair.

class _Listed:
    """Samples of a decoded ``values`` list."""

    def __init__(self, values: Sequence):
        self.values = values if isinstance(values, list) else list(values)
        if not self._plain():
            self._one_by_one()

    def _plain(self) -> bool:
        """Columns at C speed when every time is a JSON number and every value a string
        (what Prometheus sends); as_number() once per distinct value."""
        import pandas as pd

        try:
            times, texts = [p[0] for p in self.values], [p[1] for p in self.values]
        except Exception:  # a short or odd pair: one by one
            return False
        if not set(map(type, times)) <= {int, float} or not set(map(type, texts)) <= {str}:
            return False
        try:
            self.t = np.array(times, dtype=np.float64)
        except OverflowError:
            return False
        self.tbad = np.zeros(len(times), dtype=bool)
        codes, uniq = pd.factorize(np.array(texts, dtype=object))
        values = [as_number(x) for x in uniq.tolist()]
        self.vtable = np.array([np.nan if x is None else x for x in values] + [np.nan], dtype=np.float64)
        self.vcode = codes
        return True

    def _one_by_one(self) -> None:
        import pandas as pd

        n = len(self.values)
        t, v, bad = [np.nan] * n, [np.nan] * n, []
        for i, pair in enumerate(self.values):
            try:
                t[i] = float(pair[0])
            except (TypeError, ValueError, IndexError):
                bad.append(i)
                continue
            try:
                x = as_number(pair[1]) if len(pair) > 1 else None
            except Exception:  # a pair only the per-sample check can judge
                x = None
            if x is not None:
                v[i] = x
        self.t = np.array(t, dtype=np.float64)
        self.tbad = np.zeros(n, dtype=bool)
        self.tbad[bad] = True
        vals = np.array(v, dtype=np.float64)
        codes, uniq = pd.factorize(vals.view(np.int64), use_na_sentinel=False)
        self.vtable = np.append(np.asarray(uniq, dtype=np.int64).view(np.float64), np.nan)
        self.vcode = np.where(np.isnan(vals), len(self.vtable) - 1, codes)

    def pair(self, i: int):
        return self.values[i]


class _Packed:
    """Samples of JSON ``values`` arrays decoded into columns from their text ``buf``:
    pair i ends at its closing quote ``q2[i]`` + 2 and starts 3 bytes after the one
    before it; ``seg`` gives each array's first pair (and the end)."""

    def __init__(self, buf: bytes, q2: np.ndarray, seg: np.ndarray, t: np.ndarray, tbad: np.ndarray,
                 vcode: np.ndarray, decoded: dict[int, list]):
        self.buf, self.q2, self.seg = buf, q2, seg
        self.t, self.tbad, self.vcode, self.decoded = t, tbad, vcode, decoded
        self.vtable = np.full(1, np.nan)  # set by the reader once every block is decoded

    def pair(self, i: int):
        i = int(i)
        if i in self.decoded:
            return self.decoded[i]
        return json.loads(self.buf[int(self.q2[i - 1]) + 3 if i else _PAD: int(self.q2[i]) + 2])


def _size(ix: slice | np.ndarray) -> int:
    return ix.stop - ix.start if isinstance(ix, slice) else len(ix)


def _pick(ix: slice | np.ndarray, j: int) -> int:
    return ix.start + j if isinstance(ix, slice) else int(ix[j])


class PackedValues(Sequence):
    """A series' ``values`` (a sequence of ``[t, "v"]`` pairs) kept as columns of one
    or more sources, each part a slice or an index array of its source; indexing
    decodes a pair, :func:`parse` reads the columns."""

    def __init__(self, parts: list[tuple[object, slice | np.ndarray]]):
        self.parts = [(src, ix) for src, ix in parts if _size(ix)]
        self._ends = np.cumsum([_size(ix) for _src, ix in self.parts], dtype=np.int64)

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        k = int(np.searchsorted(self._ends, i, side="right"))
        src, ix = self.parts[k]
        return src.pair(_pick(ix, i - (int(self._ends[k - 1]) if k else 0)))


# ---------------------------------------------------------------- decoding JSON text
#
# A demo file's ``values`` arrays are read without a Python object per sample. The
# pairs' places come from the quote positions; each token is read as little-endian
# 64-bit words ending at its last byte (overlapping views of the text). Timestamps of
# up to 15 digits are decoded in those words with SWAR arithmetic (an integer below
# 2**53: exact), values by as_number() once per distinct token. Anything else (a
# fraction or an exponent in a timestamp, escapes, long tokens) is decoded pair by
# pair with json, so every pair means what json.loads of the file makes of it. Files
# are decoded in blocks of a few MB, which keeps numpy's temporaries small.

_PAD = 16  # spaces around the text, so every token has whole 16-byte windows
_BLOCK_BYTES = 4 << 20
_BLOCK = 1 << 20  # samples per block of an elementwise step
_ZEROS = 0x3030303030303030  # "00000000"
_HIGH_BITS = 0x8080808080808080
_M8, _M16, _M32 = np.uint64(0x00FF00FF00FF00FF), np.uint64(0x0000FFFF0000FFFF), np.uint64(0xFFFFFFFF)


def _windows(buf: bytes, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 16 bytes of ``buf`` from each offset in ``at`` as (low, high) little-endian
    words (one gather from an overlapping view of the text)."""
    view = np.ndarray(shape=(len(buf) - 15,), dtype="V16", buffer=buf, strides=(1,))
    w = view[at].view("<u8").reshape(-1, 2)
    return w[:, 0], w[:, 1]


def _keep_top(n: int) -> np.uint64:
    """The mask of the top ``n`` bytes of a word: a token of n bytes ending the word."""
    return np.uint64(((1 << (8 * n)) - 1) << (8 * (8 - n)) if n else 0)


def _eight_digits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Words of eight ASCII digits (first digit in the lowest byte) → (value, None when
    all were digits, else which were)."""
    x = x - np.uint64(_ZEROS)
    bad = ((x + np.uint64(0x7676767676767676)) | x) & np.uint64(_HIGH_BITS)  # a byte outside 0-9
    ok = None if not bad.any() else bad == 0
    x = (x * np.uint64(10) + (x >> np.uint64(8))) & _M8
    x = (x * np.uint64(100) + (x >> np.uint64(16))) & _M16
    return (x * np.uint64(10000) + (x >> np.uint64(32))) & _M32, ok


def _digits_of(word: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The last ``n`` (≤ 8) bytes of each word as a decimal number (see _eight_digits)."""
    keep = _keep_top(n)
    return _eight_digits((word & keep) | (np.uint64(_ZEROS) & ~keep))


def _json_ints(lo: np.ndarray, hi: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens ending at byte 14 of their 16-byte window (low, high words) that are
    JSON integers of 1 to 15 digits (no sign, no leading zero) → (value as float,
    which were)."""
    t, ok = np.full(len(lo), np.nan), np.zeros(len(lo), dtype=bool)
    if not len(lo):
        return t, ok
    lmin, lmax = int(length.min()), int(length.max())
    for n in range(max(lmin, 1), min(lmax, 15) + 1):  # usually one length
        rows = slice(None) if lmin == lmax else np.flatnonzero(length == n)
        wl, wh = lo[rows], hi[rows]
        if not len(wl):
            continue
        last8 = (wl >> np.uint64(56)) | (wh << np.uint64(8))  # window bytes 7-14
        value, good = _digits_of(last8, min(n, 8))
        value = value.astype(np.float64)
        if n > 8:  # the first n - 8 digits: window bytes 15 - n to 6
            first = (wl << np.uint64(8)) & _keep_top(n - 8)
            if (first == first[0]).all():  # neighbouring times share their leading digits
                lead, good_lead = _digits_of(first[:1], n - 8)
                value += float(lead[0]) * 1e8
                good_lead = None if good_lead is None or good_lead[0] else np.zeros(len(wl), dtype=bool)
            else:
                lead, good_lead = _digits_of(first, n - 8)
                value += lead.astype(np.float64) * 1e8
            if good_lead is not None:
                good = good_lead if good is None else good & good_lead
        good = np.ones(len(wl), dtype=bool) if good is None else good
        if n > 1:
            good &= value >= 10.0 ** (n - 1)  # "0" alone, never "01"
        t[rows], ok[rows] = value, good
    return t, ok


class _ValueTable:
    """The distinct value tokens of one read → as_number of the string, NaN where the
    per-sample check must look (not a finite number, escapes, control bytes)."""

    def __init__(self):
        self.ids: dict[bytes, int] = {}
        self.values: list[float] = []
        self.words = np.zeros(0, dtype=np.uint64)  # short tokens as words, sorted
        self.word_ids = np.zeros(0, dtype=np.int32)

    def id(self, tok: bytes) -> int:
        i = self.ids.get(tok)
        if i is None:
            i = self.ids[tok] = len(self.values)
            x = None
            if b"\\" not in tok and not any(c < 32 for c in tok):
                try:
                    x = as_number(tok.decode())
                except UnicodeDecodeError:
                    x = None
            self.values.append(np.nan if x is None else x)
        return i

    def word_ids_of(self, words: np.ndarray) -> np.ndarray:
        """Ids of distinct tokens of 1 to 8 bytes given as words (token in the low
        bytes, zeros above; tokens hold no NUL byte)."""
        pos = np.searchsorted(self.words, words)
        known = self.words[np.minimum(pos, len(self.words) - 1)] == words if len(self.words) else \
            np.zeros(len(words), dtype=bool)
        if not known.all():
            new = words[~known]
            toks = [w.to_bytes(8, "little").rstrip(b"\0") for w in new.tolist()]
            ids = np.array([self.id(tok) for tok in toks], dtype=np.int32)
            order = np.argsort(np.concatenate([self.words, new]), kind="stable")
            self.words = np.concatenate([self.words, new])[order]
            self.word_ids = np.concatenate([self.word_ids, ids])[order]
            pos = np.searchsorted(self.words, words)
        return self.word_ids[pos]

    def array(self) -> np.ndarray:
        return np.array([*self.values, np.nan], dtype=np.float64)


def _value_codes(buf: bytes, lo: np.ndarray, hi: np.ndarray, q1: np.ndarray, q2: np.ndarray,
                 table: _ValueTable) -> np.ndarray:
    """Each string body ``buf[q1 + 1:q2]`` → its id in ``table``. The body ends at byte
    11 of its 16-byte window (low, high words); one of up to 8 bytes is taken as one
    word, hashed once per block; longer ones are looked up one by one."""
    import pandas as pd

    n = q2 - q1 - 1
    short = (n >= 1) & (n <= 8)
    word = (lo >> np.uint64(32)) | (hi << np.uint64(32))  # window bytes 4-11
    word >>= (64 - 8 * np.where(short, n, 8)).astype(np.uint64)  # drop the bytes before the token
    if not short.all():
        word[~short] = 0
    codes, uniq = pd.factorize(word)
    out = table.word_ids_of(np.asarray(uniq, dtype=np.uint64))[codes]
    for i in np.flatnonzero(~short).tolist():
        out[i] = table.id(buf[q1[i] + 1:q2[i]])
    return out


class _NotPlain(Exception):
    """The text is not in the shape the columnar decoder handles: decode it as JSON."""


def _pack(inners: list, table: _ValueTable) -> _Packed:
    """Decode the insides of ``values`` arrays (``[t,"v"],[t,"v"]``, no outer brackets,
    none empty) into columns. Raises :class:`_NotPlain` unless the joined text is a
    comma-separated run of ``[T,"S"]`` whose pairs json can decode one by one."""
    pad = b" " * _PAD
    buf = pad + b",".join(inners) + pad
    a = np.frombuffer(buf, dtype=np.uint8)
    q = np.flatnonzero(a == 34)  # every quote: pairs (q1, q2) delimit the values
    if not len(q) or len(q) % 2 or buf.find(b"\0") >= 0:  # NUL: not JSON, and words need none
        raise _NotPlain
    q1, q2 = q[0::2], q[1::2]
    n = len(q1)
    t_lo, t_hi = _windows(buf, q1 - 16)  # ... T ',' | '"'
    s_lo, s_hi = _windows(buf, q2 - 12)  # ... S | '"],['
    if not (
        a[_PAD] == 91 and q2[-1] + 2 == len(buf) - _PAD and a[q2[-1] + 1] == 93
        and ((t_hi >> np.uint64(56)) == 0x2C).all()
        and ((s_hi[:-1] >> np.uint64(32)) == 0x5B2C5D22).all()
    ):
        raise _NotPlain
    open_ = np.empty(n, dtype=np.int64)  # each pair is buf[open_:q2 + 2]
    open_[0], open_[1:] = _PAD, q2[:-1] + 3
    offs = _PAD + np.cumsum([0] + [len(x) + 1 for x in inners[:-1]], dtype=np.int64)
    seg = np.searchsorted(open_, offs)
    if (seg >= n).any() or (open_[np.minimum(seg, n - 1)] != offs).any():
        raise _NotPlain
    t, tok = _json_ints(t_lo, t_hi, q1 - 2 - open_)
    vcode = _value_codes(buf, s_lo, s_hi, q1, q2, table)
    nan_ids = np.isnan(np.array(table.values, dtype=np.float64))
    tbad = np.zeros(n, dtype=bool)
    decoded: dict[int, list] = {}
    for i in np.flatnonzero(~tok | nan_ids[vcode]).tolist():
        try:
            pair = json.loads(buf[open_[i]:q2[i] + 2])
        except ValueError as exc:
            raise _NotPlain from exc
        decoded[i] = pair
        vcode[i] = -1  # the per-sample check reads the decoded pair
        if not tok[i]:
            try:
                t[i] = float(pair[0])
            except (TypeError, ValueError, IndexError):
                t[i], tbad[i] = np.nan, True
    return _Packed(buf, q2.astype(np.int32 if len(buf) < 2**31 else np.int64), np.append(seg, n), t, tbad,
                   vcode, decoded)


_VALUES = b'"values":'
_SPACE = b" \t\r\n"


def _skeleton(raw: bytes):
    """The body with each series' ``values`` array cut out, and the arrays' insides
    (outer brackets stripped, ``", "`` separators compacted). None when the cut does
    not line up with the series (decode the whole file as JSON then)."""
    parts, inners, pos = [], [], 0
    while (k := raw.find(_VALUES, pos)) >= 0:
        a = k + len(_VALUES)
        while a < len(raw) and raw[a] in _SPACE:
            a += 1
        if raw[a:a + 1] != b"[":
            return None
        j = a + 1
        while j < len(raw) and raw[j] in _SPACE:
            j += 1
        if raw[j:j + 1] == b"]":
            b, inner = j + 1, b""
        else:
            b = raw.find(b"}", a)  # the array ends its series object: "]]}"
            if b < 0 or raw[b - 2:b] != b"]]":
                return None
            inner = memoryview(raw)[a + 1:b - 1]
            if raw.find(b" ", a, b) >= 0:
                inner = bytes(inner).replace(b", ", b",")
        parts += [raw[pos:a], b'"\\u0000%d"' % len(inners)]
        inners.append(inner)
        pos = b
    parts.append(raw[pos:])
    try:
        body = json.loads(b"".join(parts))
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if inners or result:
        if not isinstance(result, list) or not all(isinstance(s, dict) for s in result):
            return None
        if [s["values"] for s in result if "values" in s] != [f"\0{i}" for i in range(len(inners))]:
            return None
    return body, inners


def _in_window(keep: np.ndarray, a: int, b: int) -> slice | np.ndarray:
    """The samples a..b-1 to keep: a slice when they all are, else their indexes."""
    part = keep[a:b]
    return slice(a, b) if part.all() else np.flatnonzero(part) + a


def _read_demo(name: str, paths: list[Path], lo: float, hi: float) -> dict:
    """One query_range body for [lo, hi) from the demo files of the UTC dates: series
    merged by label set (first seen first), values in file order; samples whose
    timestamp cannot be read are kept (the parser quarantines them). Files are read
    and decoded a block at a time, so their text is not held twice."""
    table = _ValueTable()
    files: list[list] = []  # [data, the values arrays' insides (None: decoded as JSON), raw text]
    placed: dict[int, tuple[_Packed | None, list[int]]] = {}  # file → (pack, its arrays' numbers)

    def pack_files(group: list[int]) -> bool:
        inners, where = [], {}
        for fi in group:
            where[fi] = []
            for x in files[fi][1]:
                where[fi].append(len(inners) if len(x) else -1)
                if len(x):
                    inners.append(x)
        try:
            packed = _pack(inners, table) if inners else None
        except _NotPlain:
            return False
        for fi in group:
            placed[fi] = (packed, where[fi])
        return True

    def flush(block: list[int]) -> None:
        if block and not pack_files(block):
            for one in block:  # file by file; what still fails is decoded as JSON
                if not pack_files([one]):
                    files[one][0], files[one][1] = check_body(name, json.loads(files[one][2])), None
        for fi in block:  # the pack holds what is needed: let the file's text go
            if files[fi][1] is not None:
                files[fi][1] = [len(x) for x in files[fi][1]]
            files[fi][2] = None

    block, size = [], 0
    for path in paths:
        if not path.exists():
            raise SourceError(f"demo file {path} is missing: run `python -m kaizen demo-data` "
                              "for a range covering this day.")
        raw = path.read_bytes()
        cut = _skeleton(raw)
        if cut is None:
            files.append([check_body(name, json.loads(raw)), None, None])
            continue
        files.append([check_body(name, cut[0]), cut[1], raw])
        block.append(len(files) - 1)
        size += len(raw)
        if size >= _BLOCK_BYTES:
            flush(block)
            block, size = [], 0
    flush(block)
    vtable = table.array()
    for packed, _where in placed.values():
        if packed is not None and packed.vtable is not vtable:
            packed.vtable = vtable
            packed.vcode[packed.vcode < 0] = len(vtable) - 1

    merged: dict[str, dict] = {}
    keep_of: dict[int, np.ndarray] = {}
    for fi, (data, inners, _raw) in enumerate(files):
        arrays = iter(range(len(inners))) if inners is not None else None
        for series in data.get("result", []):
            metric = series.get("metric", {})
            if arrays is None:
                src = _Listed(series.get("values", []))
                ix = _in_window(src.tbad | ((src.t >= lo) & (src.t < hi)), 0, len(src.t))
            elif "values" not in series:
                continue
            else:
                packed, where = placed[fi]
                s = where[next(arrays)]
                if s < 0:
                    continue
                src = packed
                if id(packed) not in keep_of:
                    keep_of[id(packed)] = packed.tbad | ((packed.t >= lo) & (packed.t < hi))
                ix = _in_window(keep_of[id(packed)], int(packed.seg[s]), int(packed.seg[s + 1]))
            if _size(ix):
                key = json.dumps(metric, sort_keys=True)
                merged.setdefault(key, {"metric": metric, "parts": []})["parts"].append((src, ix))
    result = []
    for m in merged.values():
        parts: list[tuple[object, slice | np.ndarray]] = []
        for src, ix in m["parts"]:  # adjacent runs of one source: one slice
            prev = parts[-1] if parts else (None, None)
            if prev[0] is src and isinstance(ix, slice) and isinstance(prev[1], slice) and prev[1].stop == ix.start:
                parts[-1] = (src, slice(prev[1].start, ix.stop))
            else:
                parts.append((src, ix))
        result.append({"metric": m["metric"], "values": PackedValues(parts)})
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def demo_transport(demo_dir: Path | None = None) -> Transport:
    root = Path(demo_dir or config.demo_dir()) / "prometheus"

    def fetch(start: datetime, end: datetime) -> dict[str, list[dict]]:
        days, d = [], start.astimezone(UTC).date()
        while datetime.combine(d, time.min, tzinfo=UTC) < end:
            days.append(d)
            d += timedelta(days=1)
        lo, hi = start.timestamp(), end.timestamp()
        return {name: [_read_demo(name, [root / name / f"{d.isoformat()}.json" for d in days], lo, hi)]
                for name in QUERIES}
    return fetch


def live_transport() -> Transport:
    conn = config.require_connection(config.PROMETHEUS_CONN_ID, "Prometheus HTTP API")
    host = conn.host or ""
    if not host.startswith(("http://", "https://")):
        host = f"http://{host}"
    if conn.port and urlsplit(host).port is None:
        host = f"{host.rstrip('/')}:{conn.port}"
    return http_transport(host, conn.password)


def default_transport() -> Transport:
    return demo_transport() if config.sources_mode() == "demo" else live_transport()


# ---------------------------------------------------------------- per-sample checks

def _record_key(name: str, metric: dict, pair, ts: datetime | None) -> str:
    label = metric.get("instance") if name == "probe_success" else metric.get("le")
    return f"{label}@{iso_z(ts)}" if ts and label is not None else (iso_z(ts) if ts else str(pair))


def _check(name: str, metric: dict, pair, ts: datetime | None) -> tuple[str | None, float | None]:
    """One sample's validation, duplicates aside: (reason, None) when rejected, else
    (None, value)."""
    if ts is None:
        return "unparseable sample timestamp", None
    raw_v = pair[1] if len(pair) > 1 else None
    v = as_number(raw_v)
    if v is None:
        return f"non-numeric sample value {raw_v!r}", None
    if name == "probe_success":
        if not metric.get("instance"):
            return "probe series without an instance label", None
        if not 0 <= v <= 1:
            return f"probe value {raw_v} outside [0, 1]", None
    elif name == "latency_buckets":
        le = metric.get("le")
        if le is None:
            return "bucket series without an le label", None
        if le != "+Inf" and as_number(le) is None:
            return f"unparseable le {le!r}", None
        if v < 0:
            return f"negative bucket count {raw_v}", None
    elif v < 0:
        return f"negative error count {raw_v}", None
    return None, v


def _last_day(end: datetime) -> date:
    """The trading day whose window ends at ``end``: rejects without a readable time land there."""
    return window_day(end - timedelta(microseconds=1))


def _samples(bodies: list[dict], start: datetime, end: datetime):
    lo, hi = start.timestamp(), end.timestamp()
    for body in bodies:
        for series in body["data"].get("result", []):
            metric = series.get("metric", {})
            for pair in series.get("values", []):
                try:
                    t = float(pair[0])
                except (TypeError, ValueError, IndexError):
                    yield metric, pair, None
                    continue
                if lo <= t < hi:
                    yield metric, pair, datetime.fromtimestamp(t, UTC)


def _parse_samples(name: str, bodies: list[dict], start: datetime, end: datetime
                   ) -> tuple[int, list[dict], list[Reject]]:
    """The per-sample parser (the tests' oracle for :func:`parse`): samples read, one
    row per valid sample (latency in long form: ts, le, le_seconds, request_count)
    and the rejects, in sample order."""
    source, _table = TARGETS[name]
    last = _last_day(end)
    rows: list[dict] = []
    rejects: list[Reject] = []
    seen: set = set()
    n = 0
    for metric, pair, ts in _samples(bodies, start, end):
        n += 1
        payload = {"metric": metric, "value": pair}
        key = _record_key(name, metric, pair, ts)
        day = window_day(ts) if ts is not None else last
        reason, v = _check(name, metric, pair, ts)
        if reason is not None:
            rejects.append(Reject(source, key, reason, payload, day=day))
            continue
        if name == "probe_success":
            instance = metric.get("instance")
            row = {"instance": instance, "ts": ts, "is_up": 1 if v == 1 else 0}
            pk = (instance, ts)
        elif name == "latency_buckets":
            le = metric.get("le")
            row = {"ts": ts, "le": le, "le_seconds": None if le == "+Inf" else as_number(le),
                   "request_count": v}
            pk = (ts, le)
        else:
            row = {"ts": ts, "error_count": v}
            pk = ts
        if pk in seen:
            rejects.append(Reject(source, key, DUPLICATE, payload, day=day))
            continue
        seen.add(pk)
        rows.append(row)
    return n, rows, rejects


# ---------------------------------------------------------------- columnar parse

def _to_us(t: np.ndarray) -> np.ndarray:
    """Epoch seconds → epoch microseconds as ``datetime.fromtimestamp`` rounds them
    (the fraction's microseconds, half to even)."""
    frac, whole = np.modf(t)
    return whole.astype(np.int64) * 1_000_000 + np.rint(frac * 1e6).astype(np.int64)


def _ts_column(us: np.ndarray):
    import pandas as pd

    return pd.Series(np.asarray(us, dtype=np.int64).view("datetime64[us]")).dt.tz_localize("UTC")


def _text_column(values):
    import pandas as pd

    return pd.Series(values, dtype=object)


def _minute_codes(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample times (finite) → (a code per sample, the epoch µs of each code): one code
    per distinct ``datetime.fromtimestamp`` value, in time order. Whole-minute times
    are numbered without sorting (a code may then have no sample)."""
    if len(t):
        t0 = float(t.min())
        codes = np.empty(len(t), dtype=np.int32)
        grid = t0 == int(t0) and float(t.max()) - t0 < 60 * 2**30
        for b0 in range(0, len(t) if grid else 0, _BLOCK):  # blocks: small temporaries
            d = t[b0:b0 + _BLOCK] - t0
            c = (d / 60).astype(np.int32)  # exact for whole minutes: a correctly rounded quotient
            if not (c * 60.0 == d).all():  # not all whole minutes after t0
                grid = False
                break
            codes[b0:b0 + _BLOCK] = c
        if grid:
            return codes, (int(t0) + 60 * np.arange(int(codes.max()) + 1, dtype=np.int64)) * 1_000_000
    uniq, codes = np.unique(_to_us(t), return_inverse=True)
    return codes.reshape(-1).astype(np.int32), uniq


def _clearly_unique(codes: np.ndarray, sid: np.ndarray, series_key: np.ndarray, series_ok: np.ndarray,
                    neutral: np.ndarray | None) -> bool:
    """A cheap proof that no (minute, label) repeats: each label belongs to one series,
    each series' samples come as one run, in strictly increasing minutes (``neutral``
    samples, timed as the one before them, are not compared with it). False: look."""
    if len(codes) < 2:
        return True
    present = np.flatnonzero(np.bincount(sid))
    labelled = present[series_ok[present]]
    if len(set(series_key[labelled].tolist())) < len(labelled):
        return False
    change = sid[1:] != sid[:-1]
    if int(np.count_nonzero(change)) + 1 != len(present):
        return False
    later = codes[1:] > codes[:-1]
    if neutral is not None:
        later |= neutral[1:]
    return bool((later | change).all())


def _first_of_keys(codes: np.ndarray, size: int) -> np.ndarray:
    """For integer keys in [0, size): True where a key occurs for the first time."""
    first = np.full(size, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes), dtype=np.int64))
    return first[codes] == np.arange(len(codes))


def _le_order(le) -> tuple[float, str]:
    return (np.inf if le == "+Inf" else float(as_number(le)), str(le))


_ROWS_BLOCK = 1 << 14


def _minute_rows(codes: np.ndarray, minute_us: np.ndarray, rank: np.ndarray, vcode: np.ndarray,
                 table: np.ndarray, les: list):
    """Valid bucket samples (one per minute and le; rank ``len(les)``: not a sample)
    → one row per minute: ts, bounds, counts (JSON as ``json.dumps(...,
    separators=(",", ":"))`` writes it), request_count."""
    import pandas as pd

    nl = len(les)
    cell = np.full((len(minute_us), nl + 1), -1, dtype=np.int32)  # value id per minute and bucket
    cell[codes, rank] = vcode
    cell = cell[:, :nl]
    present = cell >= 0
    has, full = present.any(axis=1), present.all(axis=1)
    used = np.zeros(len(table), dtype=bool)
    used[cell[present] if nl * len(cell) < 2 * len(vcode) else vcode] = True
    ids = np.flatnonzero(used)
    texts = [repr(x) for x in table[ids].tolist()]  # json.dumps writes floats as repr
    w = max(map(len, texts), default=1)
    # each used value's text as "," + text, space-padded: a row is "[" + its cells
    # without the first comma + "]" + "\n", the padding deleted afterwards
    sparse = len(table) > 4 * len(ids) + 1024
    cells = np.full((len(ids) if sparse else len(table), w + 1), 32, dtype=np.uint8)
    cells[:, 0] = 44
    if texts:
        core = np.frombuffer("".join(s.ljust(w) for s in texts).encode("ascii"), dtype=np.uint8)
        cells[slice(None) if sparse else ids, 1:] = core.reshape(len(ids), w)
    cells = cells.view(f"V{w + 1}").reshape(len(cells))  # one item per text: fast to gather
    if sparse:
        compact = np.zeros(len(table), dtype=np.int32)
        compact[ids] = np.arange(len(ids), dtype=np.int32)
    counts = np.empty(len(cell), dtype=object)
    bounds = np.empty(len(cell), dtype=object)
    rows = slice(None) if full.all() else np.flatnonzero(full)
    item = cell if isinstance(rows, slice) else cell[rows]
    lines: list[str] = []
    for b0 in range(0, len(item), _ROWS_BLOCK):
        part = item[b0:b0 + _ROWS_BLOCK]
        part = cells[compact[part] if sparse else part]
        line = np.empty((len(part), nl * (w + 1) + 2), dtype=np.uint8)
        line[:, :-2] = part.view(np.uint8).reshape(len(part), -1)
        line[:, 0], line[:, -2], line[:, -1] = 91, 93, 10
        lines += line.tobytes().translate(None, b" ").decode("ascii").split("\n")[:-1]
    counts[rows] = lines
    bounds[rows] = json.dumps(les, separators=(",", ":"))
    text_of = dict(zip(ids.tolist(), texts, strict=True))
    patterns: dict[bytes, str] = {}
    for i in np.flatnonzero(has & ~full).tolist():
        row = present[i]
        key = row.tobytes()
        if key not in patterns:
            patterns[key] = json.dumps([le for le, p in zip(les, row.tolist(), strict=True) if p],
                                       separators=(",", ":"))
        bounds[i] = patterns[key]
        counts[i] = "[" + ",".join(text_of[c] for c in cell[i][row].tolist()) + "]"
    if "+Inf" in les:
        inf = les.index("+Inf")
        request_count = np.where(present[has, inf], table[cell[has, inf]], np.nan)
    else:
        request_count = np.full(int(has.sum()), np.nan)
    return pd.DataFrame({"ts": _ts_column(minute_us[has]), "bounds": _text_column(bounds[has]),
                         "counts": _text_column(counts[has]), "request_count": request_count})


def parse(name: str, bodies: list[dict], start: datetime, end: datetime) -> tuple[int, object, list[Reject]]:
    """(extracted, rows as a DataFrame, rejects) of one query's bodies for [start, end).
    Rows: probes (instance, ts, is_up), errors (ts, error_count), latency one row per
    minute (ts, bounds, counts, request_count); see the module doc for ``extracted``."""
    import pandas as pd

    source, _table = TARGETS[name]
    metrics: list[dict] = []
    parts: list[tuple[int, object, np.ndarray]] = []  # (series, source, indexes)
    for body in bodies:
        for series in body["data"].get("result", []):
            metrics.append(series.get("metric", {}))
            values = series.get("values", [])
            if isinstance(values, PackedValues):
                parts += [(len(metrics) - 1, src, ix) for src, ix in values.parts]
            elif len(values):
                src = _Listed(values)
                parts.append((len(metrics) - 1, src, slice(0, len(src.t))))
    offset: dict[int, int] = {}  # one value table for every source
    tables: list[np.ndarray] = []
    for _s, src, _ix in parts:
        if id(src) not in offset:
            offset[id(src)] = sum(map(len, tables))
            tables.append(src.vtable)
    vtable = np.concatenate(tables) if tables else np.zeros(0)
    lens = np.array([_size(ix) for _s, _src, ix in parts], dtype=np.int64)
    ends = np.cumsum(lens)
    sid = np.repeat(np.array([s for s, _src, _ix in parts], dtype=np.int32), lens)

    def cat(get, dtype) -> np.ndarray:
        arrays = [get(src, ix) for _s, src, ix in parts]
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype=dtype)

    t = cat(lambda src, ix: src.t[ix], np.float64)
    tbad = cat(lambda src, ix: src.tbad[ix], bool)
    vcode = cat(lambda src, ix: src.vcode[ix], np.int32)
    if len(tables) > 1:
        vcode += np.repeat(np.array([offset[id(src)] for _s, src, _ix in parts], dtype=np.int32), lens)
    lo, hi = start.timestamp(), end.timestamp()
    sel = tbad | ((t >= lo) & (t < hi))  # what the per-sample parser yields
    sel = None if sel.all() else np.flatnonzero(sel)
    if sel is not None:
        t, tbad, vcode, sid = t[sel], tbad[sel], vcode[sel], sid[sel]
    n = len(t)
    v = vtable[vcode]

    def pair_of(k: int):
        g = k if sel is None else int(sel[k])
        p = int(np.searchsorted(ends, g, side="right"))
        _s, src, ix = parts[p]
        return src.pair(_pick(ix, g - (int(ends[p - 1]) if p else 0)))

    # per series: whether its label passes, and a dense id of the label (duplicate key)
    label_ids: dict = {}
    series_ok = np.zeros(len(metrics) + 1, dtype=bool)
    series_key = np.zeros(len(metrics) + 1, dtype=np.int32)
    for i, metric in enumerate(metrics):
        if name == "probe_success":
            label = metric.get("instance")
            series_ok[i] = bool(label)
        elif name == "latency_buckets":
            label = metric.get("le")
            series_ok[i] = label is not None and (label == "+Inf" or as_number(label) is not None)
        else:
            label, series_ok[i] = None, True
        if series_ok[i]:
            series_key[i] = label_ids.setdefault(label, len(label_ids))
    nlab = len(label_ids) + 1
    series_key[-1] = nlab - 1  # the stand-in series of samples that are not rows (see below)
    valid = ~tbad & ~np.isnan(v) & series_ok[sid]
    valid &= ((v >= 0) & (v <= 1)) if name == "probe_success" else (v >= 0)

    # what a vectorised check did not pass: the per-sample checks decide
    reasons: dict[int, str] = {}
    seen: dict[int, tuple] = {}  # rejected sample → (series, time, timestamp unreadable)
    extra: list[float] = []
    for k in np.flatnonzero(~valid).tolist():
        ts = None if tbad[k] else datetime.fromtimestamp(float(t[k]), UTC)
        reason, value = _check(name, metrics[int(sid[k])], pair_of(k), ts)
        if reason is None:
            valid[k], v[k], vcode[k] = True, value, len(vtable) + len(extra)
            extra.append(value)
        else:
            reasons[k] = reason
            seen[k] = (int(sid[k]), float(t[k]), bool(tbad[k]))
    if extra:
        vtable = np.append(vtable, extra)

    neutral = None  # samples in the columns that are not rows (see below)
    vk = None if not reasons else np.flatnonzero(valid)
    if vk is not None and name == "latency_buckets" and len(reasons) * 8 < n:
        # a few rejects among many bucket samples: rather than copy every column they
        # stay, timed as the sample before them, and go to no bucket (series len(metrics))
        neutral, vk = ~valid, None
        for k in np.flatnonzero(neutral).tolist():
            t[k] = t[k - 1] if k else t[int(np.argmax(valid))] if valid.any() else lo
    elif vk is not None:
        t, v, vcode, sid = t[vk], v[vk], vcode[vk], sid[vk]
    codes, minute_us = _minute_codes(t)
    if not _clearly_unique(codes, sid, series_key, series_ok, neutral):
        stand_in = sid if neutral is None else np.where(neutral, len(metrics), sid)
        keys = codes * np.int32(nlab) + series_key[stand_in]
        first = _first_of_keys(keys, len(minute_us) * nlab)
        if neutral is not None:
            first |= neutral
        for k in np.flatnonzero(~first).tolist():  # duplicates: the first was loaded
            kk = k if vk is None else int(vk[k])
            reasons[kk] = DUPLICATE
            seen[kk] = (int(sid[k]), float(t[k]), False)
        if neutral is not None:
            neutral |= ~first
        else:
            codes, v, vcode, sid = codes[first], v[first], vcode[first], sid[first]
    if neutral is not None:
        sid[neutral] = len(metrics)

    rejects: list[Reject] = []
    last = _last_day(end)
    days: dict[float, date] = {}
    for k in sorted(reasons):
        s, tk, unreadable = seen[k]
        metric, pair = metrics[s], pair_of(k)
        ts = None if unreadable else datetime.fromtimestamp(tk, UTC)
        if ts is None:
            day = last
        elif tk in days:
            day = days[tk]
        else:
            day = days[tk] = window_day(ts)
        rejects.append(Reject(source, _record_key(name, metric, pair, ts), reasons[k],
                              {"metric": metric, "value": pair}, day=day))

    if name == "probe_success":
        instances = np.empty(len(metrics), dtype=object)
        instances[:] = [m.get("instance") for m in metrics]
        rows = pd.DataFrame({"instance": _text_column(instances[sid]), "ts": _ts_column(minute_us[codes]),
                             "is_up": (v == 1).astype(np.int64)})
        return n, rows, rejects
    if name == "errors":
        return n, pd.DataFrame({"ts": _ts_column(minute_us[codes]), "error_count": v}), rejects
    present = np.bincount(sid, minlength=len(metrics) + 1)[:-1] > 0
    les = sorted({metrics[i].get("le") for i in np.flatnonzero(present).tolist()}, key=_le_order)
    rank_of = {le: r for r, le in enumerate(les)}
    series_rank = np.array([rank_of.get(m.get("le"), len(les)) for m in metrics] + [len(les)], dtype=np.int32)
    rows = _minute_rows(codes, minute_us, series_rank[sid], vcode, vtable, les)
    return len(rows) + len(rejects), rows, rejects


# ---------------------------------------------------------------- extract

def prepare_range(first: date, last: date, transport: Transport | None = None) -> list[TableLoad]:
    """Trading days ``first``..``last`` in one fetch (their review windows, which tile
    the time line), validated: what to load."""
    start, end = windows_utc(first, last)
    raw = (transport or default_transport())(start, end)
    loads = []
    for name in QUERIES:
        source, table = TARGETS[name]
        n, rows, rejects = parse(name, raw.get(name, []), start, end)
        loads.append(TableLoad(source, table, TS_SLICE, {"start": start, "end": end},
                               n, rows, rejects))
    return loads


def extract_range(first: date, last: date, engine: sa.Engine, run_id: str,
                  transport: Transport | None = None) -> list[ExtractResult]:
    """Trading days ``first``..``last``: one fetch and one load."""
    return load(engine, (first, last), run_id, prepare_range(first, last, transport))


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None) -> list[ExtractResult]:
    return extract_range(day, day, engine, run_id, transport)
