"""Probe minutes, latency histograms and error-counter increases from Prometheus
``/api/v1/query_range`` (step 60 s) over the review windows of a range of trading days.

Each sample's timestamp is stored as the row's ``ts``; samples are kept in
``[review window start of the first day, review window end of the last day)``, so
consecutive windows tile the time line and a range equals its days one by one.

``raw_latency_buckets`` holds ONE row per minute: the bucket bounds (the ``le``
labels, ascending) and the cumulative count increases aligned with them, as JSON
arrays, plus the +Inf bucket's increase as ``request_count``. A minute is loaded
whole or not at all: when one of its bucket samples is rejected (a duplicate aside:
the minute keeps the first), or its cumulative counts decrease with ``le`` (by more
than :data:`COUNT_TOLERANCE`), every bucket sample of the minute is quarantined — the
rejected ones with their own reason, the others with one naming the minute and why
it was dropped — and the minute gets no row. (A minute is a sample timestamp; one
that merely lacks a bucket, nothing rejected, is loaded with the buckets it has.) The
latency ``extracted`` count is therefore **(minutes that got a row) + (quarantined
bucket samples)**: extracted = loaded + quarantined holds as for every table. For
probes and errors ``extracted`` is the number of samples read. Each reject carries
the trading day whose review window holds its sample (:func:`kaizen.calendar.window_day`;
the range's last day when the timestamp cannot be read, and such a sample drops no
minute), so a range quarantines what its days one by one would.

A year is ~7 M samples, so :func:`parse` reads them into numpy columns and checks
them there; only the samples that check does not pass as plainly valid go through
the per-sample rules of :func:`_check`, which decide every quarantine reason.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from kaizen.sources.http import HttpError, JsonClient

log = logging.getLogger(__name__)

STEP_S = 60
MAX_POINTS = 11_000  # Prometheus refuses query_range with more points per series

# What each query reads is a setting: a series selector (metric name and label
# matchers), wrapped in the query's own aggregation, which the parser relies on (probes:
# one series per instance; latency: one per ``le``; errors: one series). Query name →
# (setting, default selector, template). See the README, "Prometheus queries".
SELECTORS = {
    "probe_success": ("KAIZEN_PROM_PROBE_SELECTOR", 'probe_success{job="blackbox",instance="trading-api"}',
                      "min_over_time({selector}[1m])"),
    "latency_buckets": ("KAIZEN_PROM_LATENCY_SELECTOR", 'http_request_duration_seconds_bucket{job="trading-api"}',
                        "sum by (le) (increase({selector}[1m]))"),
    "errors": ("KAIZEN_PROM_ERRORS_SELECTOR", 'trading_api_errors_total{job="trading-api"}',
               "sum(increase({selector}[1m]))"),
}

# The default PromQL of each query (the demo files answer these)
QUERIES = {name: template.format(selector=default) for name, (_env, default, template) in SELECTORS.items()}

# a selector: a metric name, label matchers in braces, or both; no functions, no range
_MATCHERS = r'\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\}'  # {…}, braces only outside quoted values
_SELECTOR = re.compile(rf'^\s*(?:[A-Za-z_:][A-Za-z0-9_:]*\s*(?:{_MATCHERS})?|{_MATCHERS})\s*$')


def setting(name: str) -> str:
    """The environment variable that sets query ``name``'s selector."""
    return SELECTORS[name][0]


def queries() -> dict[str, str]:
    """Query name → the PromQL Kaizen sends, from the settings (defaults: :data:`QUERIES`).
    A setting that is not a series selector fails at once, naming it."""
    out = {}
    for name, (env, default, template) in SELECTORS.items():
        selector = os.environ.get(env, "").strip() or default
        if not _SELECTOR.match(selector):
            raise SourceError(
                f"setting {env}={selector!r} is not a Prometheus series selector: give a metric name "
                f"and label matchers, e.g. {default} (Kaizen adds the range and aggregation itself: "
                f"{template.format(selector='…')})",
                transient=False,
            )
        out[name] = template.format(selector=selector)
    return out

# query name → (quarantine source, raw table)
TARGETS = {
    "probe_success": ("probes", "raw_probe_minutes"),
    "latency_buckets": ("latency", "raw_latency_buckets"),
    "errors": ("errors", "raw_error_minutes"),
}

DUPLICATE = "duplicate sample for the same series and minute (the first was loaded)"
# a cumulative bucket count lower than one at a smaller bound by at most this fraction of
# it is float noise (kaizen.kpis.maths.histogram_quantile smooths it), not a decrease
COUNT_TOLERANCE = 1e-12
MAX_NAMED = 3  # rejected buckets a dropped minute's reason names

# A transport returns {query name: [query_range response body, ...]} for the window.
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


def check_body(name: str, body, promql: str | None = None) -> dict:
    if not isinstance(body, dict) or body.get("status") != "success":
        if isinstance(body, dict) and body.get("status") == "error":
            raise SourceError(
                f"Prometheus query {name!r} failed: {body.get('errorType')}: {body.get('error')} "
                f"(PromQL: {promql or QUERIES[name]}; setting {setting(name)})",
                # the API's error types: bad_data and execution (HTTP 400, 422) are the
                # query's fault, as JsonClient judges their status; the rest the server's
                transient=body.get("errorType") in ("timeout", "canceled", "unavailable", "internal"),
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
        for name, promql in queries().items():
            bodies = []
            for s, e in chunks(start, end):
                try:
                    body = client.get_json("/api/v1/query_range",
                                           {"query": promql, "start": s, "end": e, "step": STEP_S})
                except HttpError as exc:  # e.g. HTTP 400 bad_data: name the query it refused
                    raise HttpError(f"{exc} (query {name!r}, PromQL: {promql}; setting {setting(name)})",
                                    exc.status, transient=exc.transient) from exc
                check_body(name, body, promql)
                bodies.append(body)
            out[name] = bodies
        return out
    return fetch


# ---------------------------------------------------------------- demo files

def _in_window(pair, lo: float, hi: float) -> bool:
    """Whether :func:`parse` reads the sample for [lo, hi): its time is in it or unreadable."""
    try:
        t = float(pair[0])
    except (TypeError, ValueError, IndexError):
        return True
    return lo <= t < hi


def _read_demo(name: str, paths: list[Path], lo: float, hi: float) -> dict:
    """One query_range body for [lo, hi) from the demo files of the UTC dates: series
    merged by label set, in the order they first have a sample for the window, values
    in file order (samples outside the window are left for :func:`parse` to skip)."""
    merged: dict[str, dict] = {}
    for path in paths:
        if not path.exists():
            raise SourceError(f"demo file {path} is missing: run `python -m kaizen demo-data` "
                              "for a range covering this day.")
        data = check_body(name, json.loads(path.read_bytes()))
        for series in data.get("result", []):
            values = series.get("values", [])
            key = json.dumps(series.get("metric", {}), sort_keys=True)
            if key in merged:
                merged[key]["values"].extend(values)
            elif any(_in_window(pair, lo, hi) for pair in values):
                merged[key] = {"metric": series.get("metric", {}), "values": values}
    return {"status": "success", "data": {"resultType": "matrix", "result": list(merged.values())}}


_NO_SERIES = {"status": "success", "data": {"resultType": "matrix", "result": []}}


def demo_transport(demo_dir: Path | None = None) -> Transport:
    """The demo files as a Prometheus would answer: they hold the series of the default
    queries (:data:`QUERIES`), so a query set to another selector matches nothing, as it
    would against a Prometheus that labels its series that way."""
    root = Path(demo_dir or config.demo_dir()) / "prometheus"

    def fetch(start: datetime, end: datetime) -> dict[str, list[dict]]:
        days, d = [], start.astimezone(UTC).date()
        while datetime.combine(d, time.min, tzinfo=UTC) < end:
            days.append(d)
            d += timedelta(days=1)
        lo, hi = start.timestamp(), end.timestamp()
        return {name: [_read_demo(name, [root / name / f"{d.isoformat()}.json" for d in days], lo, hi)
                       if promql == QUERIES[name] else _NO_SERIES]
                for name, promql in queries().items()}
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


def _label(name: str, metric: dict) -> tuple[object, bool]:
    """The label that tells a query's series apart (errors: one series) and whether
    :func:`_check` accepts it."""
    if name == "probe_success":
        instance = metric.get("instance")
        return instance, bool(instance)
    if name == "latency_buckets":
        le = metric.get("le")
        return le, le is not None and (le == "+Inf" or as_number(le) is not None)
    return None, True


def _last_day(end: datetime) -> date:
    """The trading day whose window ends at ``end``: rejects without a readable time land there."""
    return window_day(end - timedelta(microseconds=1))


# ---------------------------------------------------------------- parse

def _time(pair) -> float | None:
    try:
        return float(pair[0])
    except (TypeError, ValueError, IndexError):
        return None


def _columns(values: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A series' samples as columns: the time (``float(pair[0])``), whether it cannot
    be read, and the value as :func:`as_number` reads a string (NaN: :func:`_check`
    decides: not a finite number, or not a string)."""
    n = len(values)
    try:
        t = np.fromiter(map(float, [pair[0] for pair in values]), np.float64, n)
        tbad = np.zeros(n, dtype=bool)
    except (TypeError, ValueError, IndexError):  # an odd pair: time by time
        times = [_time(pair) for pair in values]
        t = np.array([np.nan if x is None else x for x in times], dtype=np.float64)
        tbad = np.array([x is None for x in times], dtype=bool)
    try:
        texts = [pair[1] for pair in values]
        distinct = set(texts)
    except (TypeError, IndexError):  # a short pair, an unhashable value
        return t, tbad, np.full(n, np.nan)
    if not all(type(x) is str for x in distinct):  # numbers, null, booleans: _check reads each
        return t, tbad, np.full(n, np.nan)
    number = {x: np.nan if (f := as_number(x)) is None else f for x in distinct}
    return t, tbad, np.fromiter(map(number.__getitem__, texts), np.float64, n)


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


def _le_order(le) -> tuple[float, str]:
    return (np.inf if le == "+Inf" else float(as_number(le)), str(le))


def _histograms(minute: np.ndarray, n: int, les: list, rank: np.ndarray, values: np.ndarray):
    """Bucket samples (at most one per minute and bucket: minute ``minute`` of ``n``,
    bucket ``les[rank]``) → (cell, distinct): each minute's value code per bucket (-1:
    none) and the distinct values (told apart by their bits, so that -0.0 keeps its
    sign) the codes index."""
    import pandas as pd

    codes, distinct = pd.factorize(values.view(np.int64))
    cell = np.full((n, len(les)), -1, dtype=np.int64)
    cell[minute, rank] = codes
    return cell, distinct.view(np.float64)


def _decreasing(cell: np.ndarray, distinct: np.ndarray, les: list) -> np.ndarray:
    """Whether each minute has a bucket count below a count at a smaller bound (by more
    than :data:`COUNT_TOLERANCE` of it): cumulative counts cannot decrease with ``le``."""
    bounds = [_le_order(le)[0] for le in les]
    out = np.zeros(len(cell), dtype=bool)
    below = seen = np.full(len(cell), -np.inf)  # greatest count at a smaller bound; so far
    for j, c in enumerate(cell.T):
        if j and bounds[j] != bounds[j - 1]:
            below = seen
        x = np.where(c >= 0, distinct[c], np.nan)
        out |= x < below * (1 - COUNT_TOLERANCE)  # NaN (no sample) and -inf compare False
        seen = np.fmax(seen, x)
    return out


def _decrease_reason(ts: datetime, buckets: list[tuple[object, float]]) -> str:
    """Why a minute with ``buckets`` ((le, count) in ``le`` order) whose counts decrease
    is dropped: the first bucket below a count at a smaller bound, and that count."""
    for j, (le, x) in enumerate(buckets):
        bound = _le_order(le)[0]
        earlier = [(c, e) for e, c in buckets[:j] if _le_order(e)[0] < bound]
        if earlier:
            top = max(c for c, _ in earlier)
            if x < top * (1 - COUNT_TOLERANCE):
                at = next(e for c, e in earlier if c == top)
                return (f"minute {iso_z(ts)} dropped: bucket le={le} count {x!r} is below le={at} count {top!r} "
                        "(cumulative counts cannot decrease with le)")
    raise ValueError("the minute's counts do not decrease")


def _bucket(metric: dict) -> str:
    le = metric.get("le")
    return "a bucket without an le label" if le is None else f"bucket le={le}"


def _rejected_reason(ts: datetime, parts: list[str]) -> str:
    """Why a minute with rejected bucket samples is dropped: ``parts`` ("bucket le=… rejected
    (reason)", in sample order), the first :data:`MAX_NAMED` of them."""
    more = len(parts) - MAX_NAMED
    named = "; ".join(parts[:MAX_NAMED]) + (f"; and {more} more rejected bucket sample(s)" if more > 0 else "")
    return f"minute {iso_z(ts)} dropped: {named}"


def _minute_rows(cell: np.ndarray, distinct: np.ndarray, les: list, minutes_us: np.ndarray):
    """Each minute's histogram (``cell``, ``distinct``: :func:`_histograms`) → one row per
    minute: ts, bounds and counts as JSON text (as ``json.dumps(..., separators=(",",
    ":"))`` writes them), request_count (the +Inf bucket's, NaN without one)."""
    import pandas as pd

    # json.dumps writes a float as its repr
    texts = np.array([repr(x) for x in distinct.tolist()], dtype=object)
    full = (cell >= 0).all(axis=1)  # every bucket: most minutes
    bounds = np.full(len(minutes_us), json.dumps(les, separators=(",", ":")), dtype=object)
    counts = np.empty(len(minutes_us), dtype=object)
    columns = [texts[cell[full, j]].tolist() for j in range(len(les))]
    counts[full] = ["[" + ",".join(row) + "]" for row in zip(*columns, strict=True)]
    for i in np.flatnonzero(~full).tolist():
        present = cell[i] >= 0
        bounds[i] = json.dumps([le for le, p in zip(les, present.tolist(), strict=True) if p], separators=(",", ":"))
        counts[i] = "[" + ",".join(texts[cell[i][present]].tolist()) + "]"
    request_count = np.full(len(minutes_us), np.nan)
    if "+Inf" in les:
        inf = cell[:, les.index("+Inf")]
        request_count[inf >= 0] = distinct[inf[inf >= 0]]
    return pd.DataFrame({"ts": _ts_column(minutes_us), "bounds": _text_column(bounds),
                         "counts": _text_column(counts), "request_count": request_count})


def _us_time(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def parse(name: str, bodies: list[dict], start: datetime, end: datetime) -> tuple[int, object, list[Reject]]:
    """(extracted, rows as a DataFrame, rejects in sample order) of one query's bodies
    for [start, end). Rows: probes (instance, ts, is_up), errors (ts, error_count),
    latency one row per minute (ts, bounds, counts, request_count); see the module doc
    for ``extracted``."""
    import pandas as pd

    metrics: list[dict] = []
    pairs: list = []  # every sample's [time, value] as received
    columns: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for body in bodies:
        for series in body["data"].get("result", []):
            values = series.get("values", [])
            metrics.append(series.get("metric", {}))
            pairs.extend(values)
            columns.append(_columns(values))
    t = np.concatenate([np.zeros(0), *(c[0] for c in columns)])
    tbad = np.concatenate([np.zeros(0, dtype=bool), *(c[1] for c in columns)])
    v = np.concatenate([np.zeros(0), *(c[2] for c in columns)])
    sid = np.repeat(np.arange(len(metrics)), np.array([len(c[0]) for c in columns], dtype=np.int64))  # series

    # the samples read: in the window, or with a time that cannot be read (quarantined)
    lo, hi = start.timestamp(), end.timestamp()
    keep = np.flatnonzero(tbad | ((t >= lo) & (t < hi)))
    t, tbad, v, sid = t[keep], tbad[keep], v[keep], sid[keep]
    n = len(keep)

    # each series' label, whether _check accepts it, and a number per accepted label
    labels, accepted = [], []
    for metric in metrics:
        label, good = _label(name, metric)
        labels.append(label)
        accepted.append(good)
    label_ids: dict = {}  # accepted label → its number, in first-seen order
    label_id = np.array([label_ids.setdefault(x, len(label_ids)) if good else -1
                         for x, good in zip(labels, accepted, strict=True)], dtype=np.int64)
    label_ok = np.array(accepted, dtype=bool)

    # plainly valid samples; _check decides on the others
    in_range = ((v >= 0) & (v <= 1)) if name == "probe_success" else (v >= 0)
    valid = ~tbad & in_range & label_ok[sid]
    reasons: dict[int, str] = {}  # sample → why it is rejected
    for k in np.flatnonzero(~valid).tolist():
        ts = None if tbad[k] else datetime.fromtimestamp(float(t[k]), UTC)
        reason, value = _check(name, metrics[sid[k]], pairs[keep[k]], ts)
        if reason is None:
            valid[k], v[k] = True, value
        else:
            reasons[k] = reason

    # one sample per label and minute (as datetime.fromtimestamp has it): the first
    ok = np.flatnonzero(valid)
    minute, minutes_us = pd.factorize(_to_us(t[ok]), sort=True)
    dup = pd.Index(label_id[sid[ok]] * len(minutes_us) + minute).duplicated()
    for k in ok[dup].tolist():
        reasons[k] = DUPLICATE
    rows, minute = ok[~dup], minute[~dup]

    if name == "probe_success":
        instances = _text_column(labels).to_numpy()  # each series'
        frame = pd.DataFrame({"instance": _text_column(instances[sid[rows]]),
                              "ts": _ts_column(minutes_us[minute]), "is_up": (v[rows] == 1).astype(np.int64)})
        return n, frame, _rejects(name, metrics, pairs, keep, sid, t, tbad, reasons, end)
    if name == "errors":
        frame = pd.DataFrame({"ts": _ts_column(minutes_us[minute]), "error_count": v[rows]})
        return n, frame, _rejects(name, metrics, pairs, keep, sid, t, tbad, reasons, end)

    # latency: a minute is loaded whole or not at all. A rejected sample (its time read,
    # not a duplicate) drops its minute: the minute's samples go to the quarantine.
    parts: dict[int, list[str]] = {}  # minute → its rejected samples, in sample order
    named: dict[int, datetime] = {}
    for k, reason in sorted(reasons.items()):
        if reason == DUPLICATE or tbad[k]:
            continue
        us = int(_to_us(t[k: k + 1])[0])
        i = int(np.searchsorted(minutes_us, us))
        if i < len(minutes_us) and minutes_us[i] == us:  # the minute has valid samples
            parts.setdefault(i, []).append(f"{_bucket(metrics[sid[k]])} rejected ({reason})")
            named.setdefault(i, datetime.fromtimestamp(float(t[k]), UTC))
    rows, minute = _drop(rows, minute, {i: _rejected_reason(named[i], p) for i, p in parts.items()}, reasons)

    def histograms(rows, minute, minutes_us):
        """The minutes with samples left: (minute, minutes_us, les, cell, distinct)."""
        used = np.zeros(len(minutes_us), dtype=bool)
        used[minute] = True
        minute, minutes_us = (np.cumsum(used) - 1)[minute], minutes_us[used]
        with_rows = np.flatnonzero(np.bincount(sid[rows], minlength=len(metrics)))
        les = sorted({labels[s] for s in with_rows.tolist()}, key=_le_order)
        rank_of = {le: r for r, le in enumerate(les)}
        rank_by_id = np.array([rank_of.get(le, -1) for le in label_ids], dtype=np.int64)  # label_ids: in number order
        return (minute, minutes_us, les,
                *_histograms(minute, len(minutes_us), les, rank_by_id[label_id[sid[rows]]], v[rows]))

    minute, minutes_us, les, cell, distinct = histograms(rows, minute, minutes_us)
    # and so does a decreasing cumulative count (then the buckets are built again)
    bad = np.flatnonzero(_decreasing(cell, distinct, les))
    if len(bad):
        why = {}
        for i in bad.tolist():
            buckets = [(le, float(distinct[c])) for le, c in zip(les, cell[i].tolist(), strict=True) if c >= 0]
            why[i] = _decrease_reason(_us_time(minutes_us[i]), buckets)
        rows, minute = _drop(rows, minute, why, reasons)
        minute, minutes_us, les, cell, distinct = histograms(rows, minute, minutes_us)
    frame = _minute_rows(cell, distinct, les, minutes_us)
    rejects = _rejects(name, metrics, pairs, keep, sid, t, tbad, reasons, end)
    return len(frame) + len(rejects), frame, rejects


def _drop(rows: np.ndarray, minute: np.ndarray, why: dict[int, str], reasons: dict[int, str]):
    """The samples ``rows`` (of minutes ``minute``) less those of the minutes in ``why``,
    each of which goes to ``reasons`` with its minute's."""
    if not why:
        return rows, minute
    gone = np.isin(minute, np.fromiter(why, np.int64, len(why)))
    for k, i in zip(rows[gone].tolist(), minute[gone].tolist(), strict=True):
        reasons[k] = why[i]
    return rows[~gone], minute[~gone]


def _rejects(name: str, metrics: list[dict], pairs: list, keep: np.ndarray, sid: np.ndarray, t: np.ndarray,
             tbad: np.ndarray, reasons: dict[int, str], end: datetime) -> list[Reject]:
    """The samples in ``reasons`` as rejects, in sample order."""
    source, _table = TARGETS[name]
    rejects: list[Reject] = []
    last = _last_day(end)
    days: dict[datetime, date] = {}
    for k in sorted(reasons):
        metric, pair = metrics[sid[k]], pairs[keep[k]]
        ts = None if tbad[k] else datetime.fromtimestamp(float(t[k]), UTC)
        if ts is None:
            day = last
        elif ts in days:
            day = days[ts]
        else:
            day = days[ts] = window_day(ts)
        rejects.append(Reject(source, _record_key(name, metric, pair, ts), reasons[k],
                              {"metric": metric, "value": pair}, day=day))
    return rejects


# ---------------------------------------------------------------- extract

@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off: decoded bodies are millions of small lists
    (a ``[time, value]`` pair per sample), which it would otherwise scan again and again
    for cycles they never form (that more than doubles the time of a month)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def prepare_range(first: date, last: date, transport: Transport | None = None) -> list[TableLoad]:
    """Trading days ``first``..``last`` in one fetch (their review windows, which tile
    the time line), validated: what to load."""
    return prepare_window(*windows_utc(first, last), transport)


def prepare_window(start: datetime, end: datetime, transport: Transport | None = None) -> list[TableLoad]:
    """The instants [start, end) in one fetch, validated: what to load."""
    loads = []
    retention = config.retention("prometheus")
    promql = queries()
    with _gc_paused():  # the bodies are freed (reference counts) before the collector sees them
        raw = (transport or default_transport())(start, end)
        for name in QUERIES:
            source, table = TARGETS[name]
            n, rows, rejects = parse(name, raw.get(name, []), start, end)
            if n == 0:
                _no_series(name, promql[name], start, end, retention)
            loads.append(TableLoad(source, table, TS_SLICE, {"start": start, "end": end},
                                   n, rows, rejects, retention=retention))
        del raw
    return loads


def _no_series(name: str, promql: str, start: datetime, end: datetime, retention: timedelta | None) -> None:
    """A query that matched no series in [start, end) fails, naming the query and its
    setting: a wrong metric name or label reads as an empty window otherwise. Only a
    window older than the source's retention may be empty (Prometheus has dropped it;
    the load keeps what is stored)."""
    window = f"[{iso_z(start)}, {iso_z(end)})"
    if retention is not None and start < datetime.now(UTC) - retention:
        log.warning("Prometheus: no series matched %s in %s, which starts before the %d-day retention: "
                    "nothing new to load", promql, window, retention.days)
        return
    raise SourceError(
        f"Prometheus: no series matched {promql} in {window}; check the metric name and labels "
        f"(setting {setting(name)})",
        transient=False,
    )


def extract_range(first: date, last: date, engine: sa.Engine, run_id: str,
                  transport: Transport | None = None) -> list[ExtractResult]:
    """Trading days ``first``..``last``: one fetch and one load."""
    return load(engine, (first, last), run_id, prepare_range(first, last, transport))


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None) -> list[ExtractResult]:
    return extract_range(day, day, engine, run_id, transport)
