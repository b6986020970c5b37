"""Prometheus ``parse`` against a per-sample reference parser (the rules one sample
at a time, the latency rows regrouped by minute, a minute with a rejected or
decreasing bucket dropped whole): on demo data, on hostile bodies (read directly,
chunked, and through demo files) and on many bucket samples with a few rejects; and
the quarantine reasons, reject days and minute rows it gives."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from kaizen.period import review_window_utc, window_day
from kaizen.sources import prometheus
from kaizen.sources.base import Reject, as_number, payload_json
from source_wire import DAY, PREV_DAY, ts

# ------------------------------------------------------------------ the per-sample reference


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


def _z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _bound(le) -> float:
    return math.inf if le == "+Inf" else float(le)


def _drop_decreasing(rows: list[tuple[int, dict]], reasons: dict[int, str]) -> list[tuple[int, dict]]:
    """Latency rows less the minutes whose cumulative counts decrease with le: each
    bucket compared with every bucket of a smaller bound (1e-12 relative is noise)."""
    by_minute: dict[datetime, list[tuple[int, dict]]] = {}
    for i, r in rows:
        by_minute.setdefault(r["ts"], []).append((i, r))
    why: dict[datetime, str] = {}
    for minute, buckets in by_minute.items():
        order = sorted(buckets, key=lambda b: (_bound(b[1]["le"]), str(b[1]["le"])))
        for j, (_i, r) in enumerate(order):
            earlier = [b for _, b in order[:j] if _bound(b["le"]) < _bound(r["le"])]
            if not earlier:
                continue
            top = max(b["request_count"] for b in earlier)
            if r["request_count"] < top * (1 - 1e-12):
                at = next(b["le"] for b in earlier if b["request_count"] == top)
                why[minute] = (f"minute {_z(minute)} dropped: bucket le={r['le']} count {r['request_count']!r} "
                               f"is below le={at} count {top!r} (cumulative counts cannot decrease with le)")
                break
    for i, r in rows:
        if r["ts"] in why:
            reasons[i] = why[r["ts"]]
    return [(i, r) for i, r in rows if r["ts"] not in why]


def reference_parse(name: str, bodies: list[dict], start: datetime, end: datetime
                    ) -> tuple[int, list[dict], list[Reject]]:
    """Samples read, one row per valid sample (latency in long form: ts, le,
    le_seconds, request_count) and the rejects, in sample order. Latency: a minute
    with a rejected sample (its time read, not a duplicate), or whose counts decrease
    with le, is dropped whole: its valid samples become rejects naming the minute."""
    source, _table = prometheus.TARGETS[name]
    last = prometheus._last_day(end)
    samples: list[tuple[dict, object, datetime | None]] = []
    rows: list[tuple[int, dict]] = []  # (sample, row)
    reasons: dict[int, str] = {}  # sample → reason
    seen: set = set()
    for i, (metric, pair, ts_) in enumerate(_samples(bodies, start, end)):
        samples.append((metric, pair, ts_))
        reason, v = prometheus._check(name, metric, pair, ts_)
        if reason is not None:
            reasons[i] = reason
            continue
        if name == "probe_success":
            instance = metric.get("instance")
            row = {"instance": instance, "ts": ts_, "is_up": 1 if v == 1 else 0}
            pk = (instance, ts_)
        elif name == "latency_buckets":
            le = metric.get("le")
            row = {"ts": ts_, "le": le, "le_seconds": None if le == "+Inf" else as_number(le), "request_count": v}
            pk = (ts_, le)
        else:
            row = {"ts": ts_, "error_count": v}
            pk = ts_
        if pk in seen:
            reasons[i] = prometheus.DUPLICATE
            continue
        seen.add(pk)
        rows.append((i, row))
    if name == "latency_buckets":
        rejected: dict[datetime, list[str]] = {}  # minute → its rejected samples, in sample order
        for i, reason in sorted(reasons.items()):
            metric, _pair, ts_ = samples[i]
            if ts_ is not None and reason != prometheus.DUPLICATE:
                le = metric.get("le")
                what = "a bucket without an le label" if le is None else f"bucket le={le}"
                rejected.setdefault(ts_, []).append(f"{what} rejected ({reason})")
        for i, r in rows:
            if r["ts"] in rejected:
                parts = rejected[r["ts"]]
                more = f"; and {len(parts) - 3} more rejected bucket sample(s)" if len(parts) > 3 else ""
                reasons[i] = f"minute {_z(r['ts'])} dropped: " + "; ".join(parts[:3]) + more
        rows = _drop_decreasing([(i, r) for i, r in rows if r["ts"] not in rejected], reasons)
    rejects = []
    for i in sorted(reasons):
        metric, pair, ts_ = samples[i]
        rejects.append(Reject(source, prometheus._record_key(name, metric, pair, ts_), reasons[i],
                              {"metric": metric, "value": pair},
                              day=window_day(ts_) if ts_ is not None else last))
    return len(samples), [r for _, r in rows], rejects


def _reference_rows(name: str, long_rows: list[dict]) -> list[tuple]:
    """The reference rows in the loaded shape: latency regrouped by minute."""
    if name == "probe_success":
        return [(r["instance"], r["ts"], r["is_up"]) for r in long_rows]
    if name == "errors":
        return [(r["ts"], r["error_count"]) for r in long_rows]
    by_minute: dict[datetime, list[dict]] = {}
    for r in long_rows:
        by_minute.setdefault(r["ts"], []).append(r)
    out = []
    for minute, buckets in sorted(by_minute.items()):
        buckets.sort(key=lambda b: (math.inf if b["le"] == "+Inf" else b["le_seconds"], str(b["le"])))
        out.append((
            minute,
            json.dumps([b["le"] for b in buckets], separators=(",", ":")),
            json.dumps([b["request_count"] for b in buckets], separators=(",", ":")),
            next((b["request_count"] for b in buckets if b["le"] == "+Inf"), None),
        ))
    return out


def _frame_rows(name: str, frame) -> list[tuple]:
    recs = frame.to_dict("records")
    if name == "probe_success":
        return [(r["instance"], r["ts"].to_pydatetime(), r["is_up"]) for r in recs]
    if name == "errors":
        return [(r["ts"].to_pydatetime(), r["error_count"]) for r in recs]
    return [
        (r["ts"].to_pydatetime(), r["bounds"], r["counts"],
         None if math.isnan(r["request_count"]) else r["request_count"])
        for r in recs
    ]


def _body(result: list[dict]) -> dict:
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def _rejects(rejects) -> list[tuple]:
    return [(r.source, r.record_key, r.reason, payload_json(r.payload), r.day) for r in rejects]


def assert_parse_matches_reference(name, bodies, start, end, reference_bodies=None) -> tuple[int, int]:
    """parse() == reference_parse() regrouped: rows (probes and errors in sample
    order, latency by minute), rejects (with their day, in sample order) and the
    extracted count; returns (rows, rejects)."""
    n_ref, long_rows, ref_rejects = reference_parse(name, reference_bodies or bodies, start, end)
    n, frame, rejects = prometheus.parse(name, bodies, start, end)
    assert _rejects(rejects) == _rejects(ref_rejects)
    expected = _reference_rows(name, long_rows)
    assert _frame_rows(name, frame) == expected
    # latency: extracted = minutes that got a row + quarantined samples (so = loaded + quarantined)
    assert n == (len(expected) + len(ref_rejects) if name == "latency_buckets" else n_ref)
    assert n == len(frame) + len(rejects)
    if name == "latency_buckets":
        # every sample read is in a minute's row or in the quarantine, and a minute with a
        # rejected sample (its time read, not a duplicate) has no row
        assert sum(len(json.loads(b)) for b in frame["bounds"]) + len(rejects) == n_ref
        dropped = {prometheus._time(r.payload["value"]) for r in rejects if r.reason != prometheus.DUPLICATE}
        dropped = {datetime.fromtimestamp(x, UTC) for x in dropped if x is not None}
        assert not dropped & set(frame["ts"].dt.to_pydatetime())
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    for col in ("instance", "bounds", "counts"):
        if col in frame:
            assert frame[col].dtype == object
    for col in ("error_count", "request_count"):
        if col in frame:
            assert frame[col].dtype == "float64"
    if "is_up" in frame:
        assert frame["is_up"].dtype == "int64"
    return len(frame), len(rejects)


# ------------------------------------------------------------------ demo data


def _json_transport(root: Path):
    """Each demo file json-decoded, series merged by label set (first seen first)."""
    def fetch(start, end):
        out = {}
        for name in prometheus.QUERIES:
            merged: dict[str, dict] = {}
            d = start.date()
            while datetime.combine(d, datetime.min.time(), tzinfo=UTC) < end:
                body = json.loads((root / "prometheus" / name / f"{d}.json").read_text())
                for series in body["data"]["result"]:
                    key = json.dumps(series.get("metric", {}), sort_keys=True)
                    entry = merged.setdefault(key, {"metric": series.get("metric", {}), "values": []})
                    entry["values"] += series.get("values", [])
                d += timedelta(days=1)
            out[name] = [_body(list(merged.values()))]
        return out
    return fetch


@pytest.fixture(scope="module")
def demo_month(tmp_path_factory):
    from kaizen.demo import generate

    root = tmp_path_factory.mktemp("prom_demo")
    manifest = generate(end=date(2026, 11, 27), months=1, seed=5, out_dir=root, trades_per_day=20)
    return root, manifest


def test_parse_equals_reference_on_demo_data(demo_month):
    root, _manifest = demo_month
    first, last = date(2026, 11, 25), date(2026, 11, 27)  # the bad bucket sample is on the 27th
    start, end = review_window_utc(first)[0], review_window_utc(last)[1]
    demo = prometheus.demo_transport(root)(start, end)
    decoded = _json_transport(root)(start, end)
    lo, hi = start.timestamp(), end.timestamp()
    for name in prometheus.QUERIES:
        (body,) = demo[name]
        # the series and, within the window, the very pairs json.loads reads
        assert [(s["metric"], [p for p in s["values"] if lo <= p[0] < hi]) for s in body["data"]["result"]] == [
            (s["metric"], [p for p in s["values"] if lo <= p[0] < hi])
            for s in decoded[name][0]["data"]["result"]
        ]
        n_rows, n_rejects = assert_parse_matches_reference(name, demo[name], start, end, decoded[name])
        assert n_rows > 2000
        # latency: the bad sample's minute whole, its 12 buckets (demo LE)
        assert n_rejects == (12 if name == "latency_buckets" else 0)


# ------------------------------------------------------------------ hostile bodies


T0 = int(ts("2026-11-25T12:00:00Z").timestamp())  # in DAY's window [11-25 10:30Z, 11-26 10:30Z)


def _m(i: int) -> int:
    return T0 + 60 * i


# string values, as Prometheus sends them: valid, odd and invalid
PLAIN_NASTY = {
    "probe_success": [
        {"metric": {"instance": "a", "job": "blackbox"}, "values": [
            [_m(0), "1"], [_m(1), "0.5"], [_m(2), "2"], [_m(3), "NaN"], [_m(16) + 0.5, "1"], [_m(4), "+Inf"],
            [_m(5), "1"], [_m(5), "0"], [_m(6), "-0"], [_m(7), "1e0"], [_m(8), " 1 "], [_m(9), ""],
            [_m(10), "-1"], [_m(11), "1.0000"], [T0 - 4 * 86400, "1"], [_m(1500), "0"],
        ]},
        {"metric": {"job": "blackbox"}, "values": [[_m(20), "1"], [_m(21), "x"]]},
        {"metric": {"instance": ""}, "values": [[_m(22), "1"]]},
        {"metric": {"instance": "a", "job": "other"}, "values": [[_m(0), "0"], [_m(30), "0"]]},
        {"metric": {"instance": "b"}, "values": [[_m(0), "0"], [_m(1300), "1"], [_m(2000), "1"]]},
    ],
    "latency_buckets": [
        {"metric": {"le": "0.25"}, "values": [
            [_m(0), "10"], [_m(1), "-3"], [_m(2), "NaN"], [_m(3), "+Inf"], [_m(4) + 1e-6, "5"], [_m(5), "1"],
            [_m(5), "2"], [_m(6), "12345678901.5"], [_m(7), "0.1"], [_m(8), "1_000"], [_m(9), "007"],
            [_m(10), "-0"], [_m(11), "0.30000000000000004"], [_m(12), "1e-7"], [_m(1500), "4"],
        ]},
        {"metric": {"le": "+Inf"}, "values": [
            [_m(0), "13"], [_m(1), "13"], [_m(2), "13"], [_m(3), "13"], [_m(5), "13"], [_m(6), "12345678902"],
            [_m(13), "1.5"], [_m(1500), "4"],
        ]},
        {"metric": {"le": "abc"}, "values": [[_m(0), "1"], [_m(1), "-1"]]},
        {"metric": {}, "values": [[_m(0), "1"]]},
        {"metric": {"le": "0.5"}, "values": [[_m(0), "12"], [_m(1), "12"], [_m(14), "3"]]},
        {"metric": {"le": "0.50"}, "values": [[_m(0), "12.5"]]},
        {"metric": {"le": "0.25", "x": "y"}, "values": [[_m(0), "11"], [_m(15), "2"]]},
        {"metric": {"le": "1e-3"}, "values": [[_m(0), "0"]]},
        {"metric": {"le": "Inf"}, "values": [[_m(0), "0"]]},
    ],
    "errors": [
        {"metric": {}, "values": [
            [_m(0), "0"], [_m(1), "-1"], [_m(2), "4.5"], [_m(2), "1"], [_m(3), "x"], [_m(4), "-0"],
            [_m(5), "1234567890123456789"], [_m(1300), "1"], [_m(1500), "2"],
        ]},
        {"metric": {"le": "oops"}, "values": [[_m(6), "-2"], [_m(2), "3"]]},
    ],
}

# pairs Prometheus does not send: numbers, null, booleans, short pairs, fractional times
RAW_NASTY = {
    "probe_success": [
        {"metric": {"instance": "a"}, "values": [
            [_m(0), "1"], [_m(1), None], [_m(2), 1], [_m(3), True], [_m(4)], [], [_m(5) + 0.25, "1"],
            [_m(5) + 0.2500001, "0"], [str(_m(6)), "1"], [_m(7), 0.5], [None, "1"], [_m(8), "1", "extra"],
            ["abc", "1"],
        ]},
    ],
    "latency_buckets": [
        {"metric": {"le": "0.1"}, "values": [
            [_m(0), 5], [_m(1), None], [_m(2) + 0.5, "1"], [_m(3), -2], ["abc", "5"],
        ]},
        {"metric": {"le": "+Inf"}, "values": [[_m(0), "6"], [_m(2) + 0.5, "2"], [_m(3), False]]},
    ],
    "errors": [{"metric": {}, "values": [[_m(0), 1], [_m(1), -1.5], [_m(2), None], [_m(3) + 1e-7, "1"]]}],
}


def _utc_date(pair, default: date) -> date:
    try:
        return datetime.fromtimestamp(float(pair[0]), UTC).date()
    except (TypeError, ValueError, IndexError):
        return default


def _write_files(root: Path, series: dict, compact: bool, *, escapes: bool = False, numbers: bool = False):
    """Each sample into the file of its UTC date (unreadable times: T0's date); every
    file lists every series, some with no values."""
    first = datetime.fromtimestamp(T0, UTC).date()
    d = review_window_utc(PREV_DAY)[0].date()
    while d <= review_window_utc(DAY)[1].date():
        for name, result in series.items():
            day = [{"metric": s["metric"], "values": [p for p in s["values"] if _utc_date(p, first) == d]}
                   for s in result]
            body = _body(day)
            text = json.dumps(body, separators=(",", ":")) if compact else json.dumps(body)
            if escapes:
                text = text.replace('"12.5"', '"\\u0031\\u0032.5"')
            if numbers:  # a JSON number for a value
                text = text.replace(f'[{_m(1300)},"1"]', f"[{_m(1300)},1]")
            path = root / "prometheus" / name / f"{d}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        d += timedelta(days=1)


@pytest.mark.parametrize("data", ["plain", "raw"])
def test_parse_equals_reference_on_hostile_bodies(data, tmp_path):
    series = PLAIN_NASTY if data == "plain" else RAW_NASTY
    start, end = review_window_utc(DAY)
    for name, result in series.items():
        assert_parse_matches_reference(name, [_body(result)], start, end)
        # chunked like the http transport: the same samples over two bodies
        half = [{"metric": s["metric"], "values": s["values"][: len(s["values"]) // 2]} for s in result]
        rest = [{"metric": s["metric"], "values": s["values"][len(s["values"]) // 2:]} for s in result]
        assert_parse_matches_reference(name, [_body(half), _body(rest)], start, end)
    for variant, kw in {"compact": {"compact": True}, "spaced": {"compact": False},
                        "escaped": {"compact": True, "escapes": True},
                        "numbers": {"compact": True, "numbers": True}}.items():
        root = tmp_path / variant
        _write_files(root, series, **kw)
        demo, decoded = prometheus.demo_transport(root)(start, end), _json_transport(root)(start, end)
        for name in series:
            assert_parse_matches_reference(name, demo[name], start, end, decoded[name])
            assert_parse_matches_reference(name, decoded[name], start, end)


def test_unhashable_le_is_quarantined():
    start, end = review_window_utc(DAY)
    result = [{"metric": {"le": ["x"]}, "values": [[_m(0), "1"]]}, {"metric": {"le": "+Inf"}, "values": [[_m(0), "2"]]}]
    rows_, rejects_ = assert_parse_matches_reference("latency_buckets", [_body(result)], start, end)
    assert (rows_, rejects_) == (0, 2)  # the minute is dropped: its +Inf sample goes too


@pytest.mark.parametrize("twist", ["none", "duplicate", "shared label", "unsorted", "chunked", "decreasing"])
def test_few_rejects_among_many_bucket_samples(twist):
    """A few rejects among many bucket samples, with duplicates in several shapes."""
    start, end = review_window_utc(DAY)
    les = ("0.1", "0.5", "+Inf")
    result = [{"metric": {"le": le}, "values": [[_m(i), str(i % 7 + j)] for i in range(200)]}
              for j, le in enumerate(les)]
    result[1]["values"][50][1] = "-4"  # negative
    result[2]["values"][7] = ["x", "1"]  # unreadable time
    result[0]["values"][120][1] = "NaN"
    if twist == "duplicate":
        result[1]["values"].insert(90, [_m(89), "3"])
    elif twist == "shared label":
        result.append({"metric": {"le": "0.5", "pod": "b"}, "values": [[_m(60), "9"], [_m(150), "1"]]})
    elif twist == "unsorted":
        result[0]["values"][10], result[0]["values"][11] = result[0]["values"][11], result[0]["values"][10]
        result[0]["values"].insert(150, [_m(5), "2"])
    bodies = [_body(result)]
    if twist == "chunked":
        bodies = [_body([{"metric": s["metric"], "values": s["values"][a:b]} for s in result])
                  for a, b in ((0, 100), (100, 200))]
        bodies[1]["data"]["result"][0]["values"].append([_m(20), "5"])  # same series, an earlier minute
    elif twist == "decreasing":
        result[0]["values"][30][1] = "100"  # le=0.1 above +Inf (30 % 7 + 2 = 4)
    rows_, rejects_ = assert_parse_matches_reference("latency_buckets", bodies, start, end)
    # minutes 50 (negative) and 120 (NaN) are dropped whole; the unreadable time drops none
    dropped = 3 if twist == "decreasing" else 2
    assert rows_ == 200 - dropped
    duplicates = {"none": 0, "duplicate": 1, "shared label": 2, "unsorted": 1, "chunked": 1, "decreasing": 0}[twist]
    assert rejects_ == 1 + 3 * dropped + duplicates


def test_hostile_bodies_reasons(tmp_path):
    start, end = review_window_utc(DAY)
    reasons = {}
    for name, result in PLAIN_NASTY.items():
        _n, _rows, rejects = prometheus.parse(name, [_body(result)], start, end)
        reasons[name] = {(r.record_key, r.reason, r.day) for r in rejects}
    assert {
        ("a@2026-11-25T12:02:00Z", "probe value 2 outside [0, 1]", DAY),
        ("a@2026-11-25T12:03:00Z", "non-numeric sample value 'NaN'", DAY),
        ("a@2026-11-25T12:05:00Z", prometheus.DUPLICATE, DAY),
        ("a@2026-11-25T12:00:00Z", prometheus.DUPLICATE, DAY),  # instance a again, another job label
        ("2026-11-25T12:20:00Z", "probe series without an instance label", DAY),
        ("@2026-11-25T12:22:00Z", "probe series without an instance label", DAY),
        ("a@2026-11-25T12:09:00Z", "non-numeric sample value ''", DAY),
    } <= reasons["probe_success"]
    assert ("0.25@2026-11-25T12:01:00Z", "negative bucket count -3", DAY) in reasons["latency_buckets"]
    assert ("abc@2026-11-25T12:00:00Z", "unparseable le 'abc'", DAY) in reasons["latency_buckets"]
    assert ("Inf@2026-11-25T12:00:00Z", "unparseable le 'Inf'", DAY) in reasons["latency_buckets"]
    assert ("2026-11-25T12:00:00Z", "bucket series without an le label", DAY) in reasons["latency_buckets"]
    assert ("0.25@2026-11-25T12:00:00Z", prometheus.DUPLICATE, DAY) in reasons["latency_buckets"]
    # minutes with a rejected bucket are dropped whole: their valid samples name why
    at_0 = ("minute 2026-11-25T12:00:00Z dropped: bucket le=abc rejected (unparseable le 'abc'); "
            "a bucket without an le label rejected (bucket series without an le label); "
            "bucket le=Inf rejected (unparseable le 'Inf')")
    at_1 = ("minute 2026-11-25T12:01:00Z dropped: bucket le=0.25 rejected (negative bucket count -3); "
            "bucket le=abc rejected (unparseable le 'abc')")
    at_2 = "minute 2026-11-25T12:02:00Z dropped: bucket le=0.25 rejected (non-numeric sample value 'NaN')"
    assert {
        *((f"{le}@2026-11-25T12:00:00Z", at_0, DAY) for le in ("0.25", "+Inf", "0.5", "0.50", "1e-3")),
        *((f"{le}@2026-11-25T12:01:00Z", at_1, DAY) for le in ("+Inf", "0.5")),
        ("+Inf@2026-11-25T12:02:00Z", at_2, DAY),
    } <= reasons["latency_buckets"]
    assert ("2026-11-25T12:01:00Z", "negative error count -1", DAY) in reasons["errors"]
    assert ("oops@2026-11-25T12:06:00Z", "negative error count -2", DAY) in reasons["errors"]


def test_reject_day_is_the_window_of_its_sample():
    """A range's rejects land on the trading day whose window holds the sample; an
    unreadable timestamp on the range's last day."""
    first, last = PREV_DAY, DAY
    start, end = review_window_utc(first)[0], review_window_utc(last)[1]
    sat = int(ts("2026-11-21T06:00:00Z").timestamp())  # outside: not read
    mon = int(ts("2026-11-23T11:00:00Z").timestamp())  # PREV_DAY's window (24 Nov is a holiday)
    wed = int(ts("2026-11-25T10:29:59Z").timestamp())  # PREV_DAY's last second
    thu = int(ts("2026-11-25T10:30:00Z").timestamp())  # DAY's first
    values = [[sat, "-1"], [mon, "-1"], [wed, "-1"], [thu, "-1"], ["x", "1"]]
    n, frame, rejects = prometheus.parse("errors", [_body([{"metric": {}, "values": values}])], start, end)
    assert (n, len(frame)) == (4, 0)
    assert [(r.record_key, r.day) for r in rejects] == [
        ("2026-11-23T11:00:00Z", PREV_DAY), ("2026-11-25T10:29:59Z", PREV_DAY),
        ("2026-11-25T10:30:00Z", DAY), ("['x', '1']", DAY),
    ]
    expected = [window_day(datetime.fromtimestamp(t, UTC)) for t in (mon, wed, thu)]
    assert [r.day for r in rejects[:3]] == expected


def test_minute_rows_without_inf_or_with_missing_buckets():
    start, end = review_window_utc(DAY)
    result = [
        {"metric": {"le": "1"}, "values": [[_m(0), "3"], [_m(1), "4"]]},
        {"metric": {"le": "0.5"}, "values": [[_m(0), "2.5"]]},
        {"metric": {"le": "+Inf"}, "values": [[_m(1), "9"]]},
    ]
    n, frame, rejects = prometheus.parse("latency_buckets", [_body(result)], start, end)
    assert (n, rejects) == (2, [])
    recs = frame.to_dict("records")
    assert [(r["bounds"], r["counts"]) for r in recs] == [
        ('["0.5","1"]', "[2.5,3.0]"), ('["1","+Inf"]', "[4.0,9.0]"),
    ]
    assert math.isnan(recs[0]["request_count"]) and recs[1]["request_count"] == 9.0


# ------------------------------------------------------------------ a minute whole or not at all


def _frame_of(result: list[dict]):
    start, end = review_window_utc(DAY)
    assert_parse_matches_reference("latency_buckets", [_body(result)], start, end)
    return prometheus.parse("latency_buckets", [_body(result)], start, end)


def _minute(i: int) -> datetime:
    return datetime.fromtimestamp(_m(i), UTC)


def test_one_bad_bucket_quarantines_its_whole_minute():
    """Minute 12:02 has a negative 0.5 bucket: no row for it, its 4 samples quarantined
    (the bad one with its own reason, the others naming the minute and the bucket);
    the minutes around it are whole."""
    les = ("0.1", "0.5", "1", "+Inf")
    result = [{"metric": {"le": le}, "values": [[_m(i), str(10 * i + j)] for i in range(5)]}
              for j, le in enumerate(les)]
    result[1]["values"][2][1] = "-3"
    n, frame, rejects = _frame_of(result)
    assert _frame_rows("latency_buckets", frame) == [
        (_minute(0), '["0.1","0.5","1","+Inf"]', "[0.0,1.0,2.0,3.0]", 3.0),
        (_minute(1), '["0.1","0.5","1","+Inf"]', "[10.0,11.0,12.0,13.0]", 13.0),
        (_minute(3), '["0.1","0.5","1","+Inf"]', "[30.0,31.0,32.0,33.0]", 33.0),
        (_minute(4), '["0.1","0.5","1","+Inf"]', "[40.0,41.0,42.0,43.0]", 43.0),
    ]
    dropped = "minute 2026-11-25T12:02:00Z dropped: bucket le=0.5 rejected (negative bucket count -3)"
    assert [(r.source, r.record_key, r.reason, r.payload["value"], r.day) for r in rejects] == [
        ("latency", "0.1@2026-11-25T12:02:00Z", dropped, [_m(2), "20"], DAY),
        ("latency", "0.5@2026-11-25T12:02:00Z", "negative bucket count -3", [_m(2), "-3"], DAY),
        ("latency", "1@2026-11-25T12:02:00Z", dropped, [_m(2), "22"], DAY),
        ("latency", "+Inf@2026-11-25T12:02:00Z", dropped, [_m(2), "23"], DAY),
    ]
    # extracted = loaded + quarantined: 4 minute rows + 4 samples (20 samples = 4 × 4 + 4)
    assert (n, len(frame), len(rejects)) == (8, 4, 4)


def test_several_bad_buckets_a_duplicate_and_an_unreadable_time():
    """Minute 12:01 has four rejected samples (the reason names three and counts the
    rest) and is dropped whole, a second valid 0.5 sample included; a duplicate in 12:02
    and a sample whose time cannot be read drop no minute."""
    result = [
        {"metric": {"le": "0.1"}, "values": [[_m(0), "1"], [_m(1), "-1"], [_m(2), "1"], ["later", "1"]]},
        {"metric": {"le": "0.5"}, "values": [[_m(0), "2"], [_m(1), "x"], [_m(1), "2"], [_m(2), "2"], [_m(2), "3"]]},
        {"metric": {}, "values": [[_m(1), "2"]]},
        {"metric": {"le": "abc"}, "values": [[_m(1), "1"]]},
        {"metric": {"le": "+Inf"}, "values": [[_m(0), "3"], [_m(1), "3"], [_m(2), "3"]]},
    ]
    n, frame, rejects = _frame_of(result)
    assert _frame_rows("latency_buckets", frame) == [
        (_minute(0), '["0.1","0.5","+Inf"]', "[1.0,2.0,3.0]", 3.0),
        (_minute(2), '["0.1","0.5","+Inf"]', "[1.0,2.0,3.0]", 3.0),
    ]
    dropped = ("minute 2026-11-25T12:01:00Z dropped: bucket le=0.1 rejected (negative bucket count -1); "
               "bucket le=0.5 rejected (non-numeric sample value 'x'); "
               "a bucket without an le label rejected (bucket series without an le label); "
               "and 1 more rejected bucket sample(s)")
    assert [(r.record_key, r.reason) for r in rejects] == [
        ("0.1@2026-11-25T12:01:00Z", "negative bucket count -1"),
        ("['later', '1']", "unparseable sample timestamp"),
        ("0.5@2026-11-25T12:01:00Z", "non-numeric sample value 'x'"),
        ("0.5@2026-11-25T12:01:00Z", dropped),
        ("0.5@2026-11-25T12:02:00Z", prometheus.DUPLICATE),
        ("2026-11-25T12:01:00Z", "bucket series without an le label"),
        ("abc@2026-11-25T12:01:00Z", "unparseable le 'abc'"),
        ("+Inf@2026-11-25T12:01:00Z", dropped),
    ]
    assert (n, len(frame), len(rejects)) == (10, 2, 8)  # 14 samples = 2 × 3 + 8


def test_decreasing_cumulative_counts_quarantine_their_minute():
    """A bucket count below a count at a smaller bound drops the minute (float noise of
    ≤ 1e-12 relative aside; two spellings of one bound are not ordered); a minute with
    a rejected sample gives that reason rather."""
    assert prometheus.COUNT_TOLERANCE == 1e-12
    series = {
        "0.1": {0: "5", 1: "5", 2: "1", 3: "2", 4: "3", 5: "1", 6: "1", 7: "5"},
        "0.5": {0: "4", 1: "5", 2: "1", 3: "5", 5: "2", 7: "-1"},
        "0.50": {3: "4"},
        "+Inf": {0: "6", 1: "4", 2: "0.9999999999999999", 3: "6", 4: "2", 5: "3", 6: "0.999999999998", 7: "4"},
    }
    result = [{"metric": {"le": le}, "values": [[_m(i), v] for i, v in values.items()]} for le, values in series.items()]
    n, frame, rejects = _frame_of(result)
    assert _frame_rows("latency_buckets", frame) == [
        (_minute(2), '["0.1","0.5","+Inf"]', "[1.0,1.0,0.9999999999999999]", 0.9999999999999999),
        (_minute(3), '["0.1","0.5","0.50","+Inf"]', "[2.0,5.0,4.0,6.0]", 6.0),
        (_minute(5), '["0.1","0.5","+Inf"]', "[1.0,2.0,3.0]", 3.0),
    ]

    def below(i, le, x, at, top):
        return (f"minute 2026-11-25T12:0{i}:00Z dropped: bucket le={le} count {x} is below le={at} count {top} "
                "(cumulative counts cannot decrease with le)")

    why = {
        0: below(0, "0.5", "4.0", "0.1", "5.0"),
        1: below(1, "+Inf", "4.0", "0.1", "5.0"),  # 0.1 and 0.5 both 5: the first is named
        4: below(4, "+Inf", "2.0", "0.1", "3.0"),  # 0.5 missing: the buckets it has
        6: below(6, "+Inf", "0.999999999998", "0.1", "1.0"),  # 2e-12 below
        7: "minute 2026-11-25T12:07:00Z dropped: bucket le=0.5 rejected (negative bucket count -1)",
    }
    got = {(r.record_key, r.reason) for r in rejects}
    assert got == {
        *((f"{le}@2026-11-25T12:0{i}:00Z", reason) for i, reason in why.items() for le in series
          if i in series[le] and not (i == 7 and le == "0.5")),
        ("0.5@2026-11-25T12:07:00Z", "negative bucket count -1"),
    }
    assert (n, len(frame), len(rejects)) == (16, 3, 13)  # 23 samples = 3 + 4 + 3 + 13
