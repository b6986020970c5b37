"""Prometheus source: query_range over the review window against a fake Prometheus
(chunking past the points limit, 429/500 retries, 401, error bodies), the demo files,
every validation rule, idempotent re-extraction — on SQLite and PostgreSQL. The
columnar parser against the per-sample one (the oracle) on demo data and on hostile
bodies, and a range extract against its days one by one."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from fakes.prometheus import FakePrometheus
from kaizen import calendar as cal
from kaizen.period import review_window_utc, window_day
from kaizen.sources import SourceError, prometheus
from kaizen.sources.base import payload_json
from source_wire import DAY, PREV_DAY, prom_series, quarantine, rows, snapshot, ts, write_prometheus_demo

TOKEN = "prom-secret-token"


@pytest.fixture
def fake():
    series = {prometheus.QUERIES[name]: s for name, s in prom_series().items()}
    with FakePrometheus(series, token=TOKEN) as f:
        yield f


def counts(results):
    return {r.source: (r.extracted, r.loaded, r.quarantined) for r in results}


# latency: 1,440 minute rows (15:00 lacks its rejected 0.5 bucket) + 1 rejected sample
EXPECTED_D = {"probes": (1440, 1438, 2), "latency": (1441, 1440, 1), "errors": (1440, 1440, 0)}


def test_http_extract_rows(engine, fake, waits):
    res = prometheus.extract(DAY, engine, "r1", prometheus.http_transport(fake.url, TOKEN))
    assert counts(res) == EXPECTED_D
    assert len(fake.requests) == 3  # one request per query: 1,440 points fit
    req = fake.requests[0]
    assert req["headers"]["authorization"] == f"Bearer {TOKEN}"
    start, end = ts("2026-11-25T10:30:00Z"), ts("2026-11-26T10:30:00Z")
    assert float(req["query"]["start"][0]) == start.timestamp()
    assert float(req["query"]["end"][0]) == end.timestamp() - 60  # [start, end): the API's end is inclusive
    assert req["query"]["step"] == ["60"]
    probes = rows(engine, "select * from raw_probe_minutes order by ts")
    assert len(probes) == 1438
    assert sum(1 - p["is_up"] for p in probes) == 2
    assert str(probes[0]["ts"]).startswith("2026-11-25 10:30:00")
    assert str(probes[-1]["ts"]).startswith("2026-11-26 10:29:00")
    buckets = rows(engine, "select ts, bounds, counts, request_count from raw_latency_buckets order by ts")
    assert len(buckets) == 1440  # one row per minute
    per_le: dict[str, float] = {}
    for b in buckets:
        for le, c in zip(json.loads(b["bounds"]), json.loads(b["counts"]), strict=True):
            per_le[le] = per_le.get(le, 0.0) + c
    assert per_le == {"0.25": 10 * 1440, "0.5": 12 * 1439, "+Inf": 13 * 1440}
    assert (buckets[0]["bounds"], buckets[0]["counts"], buckets[0]["request_count"]) == (
        '["0.25","0.5","+Inf"]', "[10.0,12.0,13.0]", 13.0
    )
    (neg_minute,) = [b for b in buckets if str(b["ts"]).startswith("2026-11-25 15:00:00")]
    assert (neg_minute["bounds"], neg_minute["counts"]) == ('["0.25","+Inf"]', "[10.0,13.0]")
    assert sum(b["request_count"] for b in buckets) == 13 * 1440
    assert rows(engine, "select sum(error_count) as n from raw_error_minutes")[0]["n"] == 4
    assert waits == []


def test_validation_reasons_and_payloads(engine, fake, waits):
    prometheus.extract(DAY, engine, "r1", prometheus.http_transport(fake.url, TOKEN))
    q = quarantine(engine, "probes")
    assert {k: v[0]["reason"] for k, v in q.items()} == {
        "trading-api@2026-11-25T13:00:00Z": "probe value 2 outside [0, 1]",
        "trading-api@2026-11-25T14:00:00Z": "non-numeric sample value 'NaN'",
    }
    payload = json.loads(q["trading-api@2026-11-25T13:00:00Z"][0]["payload"])
    assert payload == {
        "metric": {"instance": "trading-api", "job": "blackbox"},
        "value": [int(ts("2026-11-25T13:00:00Z").timestamp()), "2"],
    }
    (neg,) = quarantine(engine, "latency")["0.5@2026-11-25T15:00:00Z"]
    assert neg["reason"] == "negative bucket count -3"
    assert json.loads(neg["payload"])["metric"] == {"le": "0.5"}


def test_long_window_is_chunked_under_the_points_limit(engine, fake, waits, monkeypatch):
    """D-1 follows a holiday: a 2-day window (2,880 points). With a 1,000-point limit
    every query takes 3 requests, and the rows equal the single-request result."""
    monkeypatch.setattr(prometheus, "MAX_POINTS", 1000)
    res = prometheus.extract(PREV_DAY, engine, "r1", prometheus.http_transport(fake.url, TOKEN))
    assert counts(res) == {"probes": (2880, 2880, 0), "latency": (2880, 2880, 0), "errors": (2880, 2880, 0)}
    per_query = [r for r in fake.requests if r["query"]["query"] == [prometheus.QUERIES["errors"]]]
    assert len(per_query) == 3
    spans = [(float(r["query"]["start"][0]), float(r["query"]["end"][0])) for r in per_query]
    assert all((e - s) / 60 + 1 <= 1000 for s, e in spans)
    assert all(spans[i][1] + 60 == spans[i + 1][0] for i in range(2))  # no gap, no overlap
    assert len(rows(engine, "select ts from raw_error_minutes")) == 2880


def test_chunks_respect_prometheus_limit():
    start, end = ts("2026-11-01T00:00:00Z"), ts("2026-11-10T00:00:00Z")  # 12,960 minutes
    parts = list(prometheus.chunks(start, end))
    assert len(parts) == 2
    assert all((e - s) // 60 + 1 <= 11_000 for s, e in parts)
    assert sum((e - s) // 60 + 1 for s, e in parts) == 12_960


def test_429_then_success_honours_retry_after(engine, fake, waits):
    fake.faults = ["429"]
    res = prometheus.extract(DAY, engine, "r1", prometheus.http_transport(fake.url, TOKEN))
    assert counts(res) == EXPECTED_D
    assert waits == [1.0]


def test_500_is_retried(engine, fake, waits):
    fake.faults = ["500", "503"]
    res = prometheus.extract(DAY, engine, "r1", prometheus.http_transport(fake.url, TOKEN))
    assert counts(res) == EXPECTED_D
    assert len(waits) == 2


def test_persistent_500_gives_up_with_clear_error(engine, fake, waits):
    fake.always = "500"
    with pytest.raises(
        SourceError, match=r"Prometheus GET /api/v1/query_range still failing after 5 attempts"
    ):
        prometheus.extract(DAY, engine, "r1", prometheus.http_transport(fake.url, TOKEN))
    assert len(waits) == 4


def test_401_names_the_connection_and_hides_the_token(engine, fake, waits, monkeypatch):
    monkeypatch.setenv("KAIZEN_SOURCES", "live")
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAIZEN_PROMETHEUS",
        json.dumps({"conn_type": "http", "host": fake.url, "password": "wrong-token"}),
    )
    with pytest.raises(SourceError) as exc:
        prometheus.extract(DAY, engine, "r1")
    msg = str(exc.value)
    assert "HTTP 401" in msg and "kaizen_prometheus" in msg and "check the token" in msg
    assert "wrong-token" not in msg and "query=" not in msg
    assert len(fake.requests) == 1 and waits == []  # never retried
    assert rows(engine, "select * from raw_probe_minutes") == []


def test_error_body_is_reported(engine, fake, waits):
    fake.faults = ["bad_data"]
    with pytest.raises(SourceError, match="bad_data: 1:1: parse error"):
        prometheus.extract(DAY, engine, "r1", prometheus.http_transport(fake.url, TOKEN))


def test_status_error_body_in_demo_file(tmp_path):
    path = tmp_path / "prometheus" / "errors" / "2026-11-25.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"status": "error", "errorType": "timeout", "error": "query timed out"}))
    with pytest.raises(SourceError, match="Prometheus query 'errors' failed: timeout: query timed out"):
        prometheus.check_body("errors", json.loads(path.read_text()))


def test_demo_transport_equals_http(engine, fake, waits, tmp_path):
    write_prometheus_demo(tmp_path)
    demo_res = prometheus.extract(DAY, engine, "r1", prometheus.demo_transport(tmp_path))
    demo_snap = snapshot(engine)
    http_res = prometheus.extract(DAY, engine, "r1", prometheus.http_transport(fake.url, TOKEN))
    assert counts(demo_res) == counts(http_res) == EXPECTED_D
    assert snapshot(engine) == demo_snap


def test_demo_missing_file_is_an_error(engine, tmp_path):
    with pytest.raises(SourceError, match="demo-data"):
        prometheus.extract(DAY, engine, "r1", prometheus.demo_transport(tmp_path))


def test_reextract_identical_and_windows_tile(engine, fake, waits):
    t = prometheus.http_transport(fake.url, TOKEN)
    prometheus.extract(PREV_DAY, engine, "r1", t)
    prometheus.extract(DAY, engine, "r1", t)
    first = snapshot(engine)
    prometheus.extract(DAY, engine, "r1", t)
    assert snapshot(engine) == first
    n = rows(engine, "select count(*) as n from raw_error_minutes")[0]["n"]
    assert n == 2880 + 1440  # consecutive windows: every minute once


# ------------------------------------------------------------------ columnar parse = per-sample oracle


def _oracle_rows(name: str, long_rows: list[dict]) -> list[tuple]:
    """The per-sample parser's rows in the loaded shape: latency regrouped by minute."""
    if name == "probe_success":
        return sorted((r["instance"], r["ts"], r["is_up"]) for r in long_rows)
    if name == "errors":
        return sorted((r["ts"], r["error_count"]) for r in long_rows)
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
        return sorted((r["instance"], r["ts"].to_pydatetime(), r["is_up"]) for r in recs)
    if name == "errors":
        return sorted((r["ts"].to_pydatetime(), r["error_count"]) for r in recs)
    return [
        (r["ts"].to_pydatetime(), r["bounds"], r["counts"],
         None if math.isnan(r["request_count"]) else r["request_count"])
        for r in recs
    ]


def _body(result: list[dict]) -> dict:
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def _rejects(rejects) -> list[tuple]:
    return [(r.source, r.record_key, r.reason, payload_json(r.payload), r.day) for r in rejects]


def assert_parse_matches_oracle(name, bodies, start, end, oracle_bodies=None) -> tuple[int, int]:
    """parse() == _parse_samples() regrouped: rows, rejects (with their day) and the
    extracted count; returns (rows, rejects)."""
    n_old, long_rows, old_rejects = prometheus._parse_samples(name, oracle_bodies or bodies, start, end)
    n_new, frame, new_rejects = prometheus.parse(name, bodies, start, end)
    assert _rejects(new_rejects) == _rejects(old_rejects)
    expected = _oracle_rows(name, long_rows)
    assert _frame_rows(name, frame) == expected
    # latency: extracted = minutes that got a row + rejected samples (so = loaded + quarantined)
    assert n_new == (len(expected) + len(old_rejects) if name == "latency_buckets" else n_old)
    assert n_new == len(frame) + len(new_rejects)
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    for col in ("instance", "bounds", "counts"):
        if col in frame:
            assert frame[col].dtype == object
    for col in ("error_count", "request_count"):
        if col in frame:
            assert frame[col].dtype == "float64"
    return len(frame), len(new_rejects)


def _json_transport(root: Path):
    """The demo transport as it was: each file json-decoded, series merged by label set."""
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


def test_columnar_parse_equals_oracle_on_demo_data(demo_month):
    root, _manifest = demo_month
    first, last = date(2026, 11, 25), date(2026, 11, 27)  # the bad bucket sample is on the 27th
    start, end = review_window_utc(first)[0], review_window_utc(last)[1]
    packed = prometheus.demo_transport(root)(start, end)
    decoded = _json_transport(root)(start, end)
    for name in prometheus.QUERIES:
        (body,) = packed[name]
        assert all(isinstance(s["values"], prometheus.PackedValues) for s in body["data"]["result"])
        # the packed columns decode to the very pairs json.loads reads (within the window)
        lo, hi = start.timestamp(), end.timestamp()
        assert [(s["metric"], list(s["values"])) for s in body["data"]["result"]] == [
            (s["metric"], [p for p in s["values"] if lo <= p[0] < hi])
            for s in decoded[name][0]["data"]["result"]
        ]
        n_rows, n_rejects = assert_parse_matches_oracle(name, packed[name], start, end, decoded[name])
        assert n_rows > 2000
        assert n_rejects == (1 if name == "latency_buckets" else 0)
        assert_parse_matches_oracle(name, decoded[name], start, end)


T0 = int(ts("2026-11-25T12:00:00Z").timestamp())  # in DAY's window [11-25 10:30Z, 11-26 10:30Z)


def _m(i: int) -> int:
    return T0 + 60 * i


# only string values: the demo transport decodes these columnar (odd tokens pair by pair)
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

# values no columnar decoder takes: numbers, null, booleans, short pairs, fractions
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
            if numbers:  # a JSON number for a value: that file alone is json-decoded
                text = text.replace(f'[{_m(1300)},"1"]', f"[{_m(1300)},1]")
            path = root / "prometheus" / name / f"{d}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        d += timedelta(days=1)


@pytest.mark.parametrize("data", ["plain", "raw"])
def test_columnar_parse_equals_oracle_on_hostile_bodies(data, tmp_path):
    series = PLAIN_NASTY if data == "plain" else RAW_NASTY
    start, end = review_window_utc(DAY)
    for name, result in series.items():
        assert_parse_matches_oracle(name, [_body(result)], start, end)
        # chunked like the http transport: the same samples over two bodies
        half = [{"metric": s["metric"], "values": s["values"][: len(s["values"]) // 2]} for s in result]
        rest = [{"metric": s["metric"], "values": s["values"][len(s["values"]) // 2:]} for s in result]
        assert_parse_matches_oracle(name, [_body(half), _body(rest)], start, end)
    for variant, kw in {"compact": {"compact": True}, "spaced": {"compact": False},
                        "escaped": {"compact": True, "escapes": True},
                        "numbers": {"compact": True, "numbers": True}}.items():
        root = tmp_path / variant
        _write_files(root, series, **kw)
        packed, decoded = prometheus.demo_transport(root)(start, end), _json_transport(root)(start, end)
        for name in series:
            sources = {type(src) for s in packed[name][0]["data"]["result"] for src, _ix in s["values"].parts}
            if data == "raw":
                assert sources == {prometheus._Listed}
            elif variant == "numbers" and name != "latency_buckets":
                assert sources == {prometheus._Packed, prometheus._Listed}
            else:
                assert sources == {prometheus._Packed}
            assert_parse_matches_oracle(name, packed[name], start, end, decoded[name])
            assert_parse_matches_oracle(name, decoded[name], start, end)


@pytest.mark.parametrize("twist", ["none", "duplicate", "shared label", "unsorted", "chunked"])
def test_few_rejects_among_many_bucket_samples(twist):
    """Rejects left in the columns (not copied out) and the quick no-duplicates proof."""
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
    rows_, rejects_ = assert_parse_matches_oracle("latency_buckets", bodies, start, end)
    assert rows_ == 200 and rejects_ >= 3


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


def test_demo_transport_reads_a_whole_range_once(demo_month, monkeypatch):
    """One transport call for the range; each file read once."""
    root, _manifest = demo_month
    reads: list[Path] = []
    real = Path.read_bytes

    def spy(self):
        reads.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    start, end = review_window_utc(date(2026, 11, 2))[0], review_window_utc(date(2026, 11, 27))[1]
    prometheus.demo_transport(root)(start, end)
    assert len(reads) == len(set(reads)) == 3 * ((end.date() - start.date()).days + 1)


# ------------------------------------------------------------------ a range = its days one by one


def test_range_extract_equals_days_one_by_one(engine, demo_month):
    root, _manifest = demo_month
    first, last = date(2026, 11, 19), date(2026, 11, 27)  # the 24th is a holiday; the 27th has the bad sample
    days = cal.trading_days(first, last)
    transport = prometheus.demo_transport(root)
    calls: list[tuple] = []

    def counting(start, end):
        calls.append((start, end))
        return transport(start, end)

    res = prometheus.extract_range(first, last, engine, "r1", counting)
    assert calls == [(review_window_utc(first)[0], review_window_utc(last)[1])]
    by_range = snapshot(engine)
    totals = {r.source: (r.extracted, r.loaded, r.quarantined) for r in res}
    assert totals["latency"][2] == 1 and totals["latency"][0] == totals["latency"][1] + 1
    assert len(by_range["raw_latency_buckets"]) == totals["latency"][1]

    with engine.begin() as c:
        for table in ("raw_probe_minutes", "raw_latency_buckets", "raw_error_minutes", "quarantine"):
            c.exec_driver_sql(f"delete from {table}")
    per_day = {r: [0, 0, 0] for r in totals}
    for d in days:
        for r in prometheus.extract(d, engine, "r1", transport):
            for i, x in enumerate((r.extracted, r.loaded, r.quarantined)):
                per_day[r.source][i] += x
    assert snapshot(engine) == by_range
    assert {k: tuple(v) for k, v in per_day.items()} == totals
    (q,) = quarantine(engine, "latency").values()
    assert str(q[0]["extract_day"]).startswith("2026-11-27")
