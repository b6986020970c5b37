"""Prometheus source: query_range over the review window against a fake Prometheus
(chunking past the points limit, 429/500 retries, 401, error bodies), the demo files,
every validation rule, idempotent re-extraction — on SQLite and PostgreSQL; the demo
transport reading a range once, and a range extract against its days one by one; the
selectors as settings against a Prometheus that labels its series differently, and a
query matching no series failing with the query, the window and the setting.
The parse rules sample by sample: tests/test_sources_prometheus_parse.py."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from fakes.prometheus import FakePrometheus
from kaizen import calendar as cal
from kaizen.period import review_window_utc
from kaizen.sources import SourceError, prometheus
from source_wire import DAY, PREV_DAY, prom_series, quarantine, rows, snapshot, ts, write_prometheus_demo

TOKEN = "prom-secret-token"


@pytest.fixture
def fake():
    series = {prometheus.QUERIES[name]: s for name, s in prom_series().items()}
    with FakePrometheus(series, token=TOKEN) as f:
        yield f


def counts(results):
    return {r.source: (r.extracted, r.loaded, r.quarantined) for r in results}


# latency: 1,440 minutes × 3 buckets; 15:00 has a rejected 0.5 bucket, so the whole
# minute is quarantined (its 3 samples) and 1,439 minutes get a row: 1,439 + 3 extracted
EXPECTED_D = {"probes": (1440, 1438, 2), "latency": (1442, 1439, 3), "errors": (1440, 1440, 0)}
NEG_MINUTE = "2026-11-25T15:00:00Z"


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
    assert len(buckets) == 1439  # one row per minute, but the dropped 15:00
    per_le: dict[str, float] = {}
    for b in buckets:
        for le, c in zip(json.loads(b["bounds"]), json.loads(b["counts"]), strict=True):
            per_le[le] = per_le.get(le, 0.0) + c
    assert per_le == {"0.25": 10 * 1439, "0.5": 12 * 1439, "+Inf": 13 * 1439}  # every row has every bucket
    assert (buckets[0]["bounds"], buckets[0]["counts"], buckets[0]["request_count"]) == (
        '["0.25","0.5","+Inf"]', "[10.0,12.0,13.0]", 13.0
    )
    assert {(b["bounds"], b["counts"]) for b in buckets} == {('["0.25","0.5","+Inf"]', "[10.0,12.0,13.0]")}
    assert not [b for b in buckets if str(b["ts"]).startswith("2026-11-25 15:00:00")]
    assert str(buckets[269]["ts"]).startswith("2026-11-25 14:59:00")  # 10:30 + 269 min
    assert str(buckets[270]["ts"]).startswith("2026-11-25 15:01:00")
    assert sum(b["request_count"] for b in buckets) == 13 * 1439
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
    q = quarantine(engine, "latency")
    dropped = f"minute {NEG_MINUTE} dropped: bucket le=0.5 rejected (negative bucket count -3)"
    assert {k: [r["reason"] for r in v] for k, v in q.items()} == {
        f"0.25@{NEG_MINUTE}": [dropped],
        f"0.5@{NEG_MINUTE}": ["negative bucket count -3"],
        f"+Inf@{NEG_MINUTE}": [dropped],
    }
    minute = int(ts(NEG_MINUTE).timestamp())
    assert {k: json.loads(v[0]["payload"]) for k, v in q.items()} == {
        f"0.25@{NEG_MINUTE}": {"metric": {"le": "0.25"}, "value": [minute, "10"]},
        f"0.5@{NEG_MINUTE}": {"metric": {"le": "0.5"}, "value": [minute, "-3"]},
        f"+Inf@{NEG_MINUTE}": {"metric": {"le": "+Inf"}, "value": [minute, "13"]},
    }
    assert {str(v[0]["extract_day"])[:10] for v in q.values()} == {DAY.isoformat()}


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


# ------------------------------------------------------------------ demo data over a month


@pytest.fixture(scope="module")
def demo_month(tmp_path_factory):
    from kaizen.demo import generate

    root = tmp_path_factory.mktemp("prom_demo")
    manifest = generate(end=date(2026, 11, 27), months=1, seed=5, out_dir=root, trades_per_day=20)
    return root, manifest


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
    # the bad sample's minute is quarantined whole: its 12 bucket samples (demo LE), no row
    assert totals["latency"][2] == 12 and totals["latency"][0] == totals["latency"][1] + 12
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
    q = quarantine(engine, "latency")
    assert len(q) == 12 and {str(v[0]["extract_day"])[:10] for v in q.values()} == {"2026-11-27"}
    (bad,) = [k for k, v in q.items() if v[0]["reason"].startswith("negative bucket count")]
    minute = bad.split("@")[1]
    assert {k.split("@")[1] for k in q} == {minute}
    def stored(t):  # rows of minute t (ts as the driver writes it: "2026-11-27 06:01:00…")
        return [r for r in by_range["raw_latency_buckets"] if f"{t:%Y-%m-%d %H:%M:%S}" in str(r)]

    at = ts(minute)
    assert stored(at) == [] and len(stored(at - timedelta(minutes=1))) == len(stored(at + timedelta(minutes=1))) == 1


# ------------------------------------------------------------------ the queries are settings

# A Prometheus that labels its series otherwise than Kaizen's defaults: another probe
# job and instance, another histogram and counter, labelled by service.
RELABELLED = {
    "probe_success": ("probe_success", {"job": "blackbox-exporter", "instance": "trading-api.prod:443"}),
    "latency_buckets": ("api_request_seconds_bucket", {"service": "trading"}),
    "errors": ("api_errors_total", {"service": "trading"}),
}
SETTINGS = {
    "KAIZEN_PROM_PROBE_SELECTOR": 'probe_success{job="blackbox-exporter",instance="trading-api.prod:443"}',
    "KAIZEN_PROM_LATENCY_SELECTOR": 'api_request_seconds_bucket{service="trading"}',
    "KAIZEN_PROM_ERRORS_SELECTOR": 'api_errors_total{service=~"trad.*"}',
}
WINDOW_D = "[2026-11-25T10:30:00Z, 2026-11-26T10:30:00Z)"


def _stored() -> list[dict]:
    out = []
    for name, series in prom_series().items():
        metric_name, labels = RELABELLED[name]
        for s in series:
            le = {"le": s["metric"]["le"]} if "le" in s["metric"] else {}
            out.append({"metric": {"__name__": metric_name, **labels, **le}, "values": s["values"]})
    return out


@pytest.fixture
def relabelled(monkeypatch):
    monkeypatch.setenv("KAIZEN_RETENTION_PROMETHEUS_DAYS", "0")  # every window is in retention
    with FakePrometheus(token=TOKEN, stored=_stored()) as f:
        yield f


def _raw_counts(engine) -> dict:
    return {t: len(rows(engine, f"select * from {t}"))
            for t in ("raw_probe_minutes", "raw_latency_buckets", "raw_error_minutes", "quarantine")}


def test_the_default_queries_match_nothing_there_and_fail_naming_the_setting(engine, relabelled, waits):
    with pytest.raises(SourceError) as info:
        prometheus.extract(DAY, engine, "r1", prometheus.http_transport(relabelled.url, TOKEN))
    assert str(info.value) == (
        'Prometheus: no series matched min_over_time(probe_success{job="blackbox",instance="trading-api"}[1m]) '
        f"in {WINDOW_D}; check the metric name and labels (setting KAIZEN_PROM_PROBE_SELECTOR)"
    )
    assert info.value.transient is False  # permanent: Airflow's retries cannot fix a selector
    assert [r["query"]["query"] for r in relabelled.requests] == [[q] for q in prometheus.QUERIES.values()]
    assert _raw_counts(engine) == {"raw_probe_minutes": 0, "raw_latency_buckets": 0, "raw_error_minutes": 0,
                                   "quarantine": 0}
    assert waits == []  # not retried


def test_the_selectors_are_settings(engine, relabelled, waits, monkeypatch):
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    res = prometheus.extract(DAY, engine, "r1", prometheus.http_transport(relabelled.url, TOKEN))
    assert counts(res) == EXPECTED_D
    assert [r["query"]["query"][0] for r in relabelled.requests] == [
        'min_over_time(probe_success{job="blackbox-exporter",instance="trading-api.prod:443"}[1m])',
        'sum by (le) (increase(api_request_seconds_bucket{service="trading"}[1m]))',
        'sum(increase(api_errors_total{service=~"trad.*"}[1m]))',
    ]
    probes = rows(engine, "select instance, count(*) as n from raw_probe_minutes group by instance")
    assert [(p["instance"], p["n"]) for p in probes] == [("trading-api.prod:443", 1438)]
    assert rows(engine, "select sum(error_count) as n from raw_error_minutes")[0]["n"] == 4


def test_one_wrong_selector_fails_the_whole_extract(engine, relabelled, waits, monkeypatch):
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KAIZEN_PROM_ERRORS_SELECTOR", 'api_errors_total{service="trading-api"}')
    with pytest.raises(SourceError) as info:
        prometheus.extract(DAY, engine, "r1", prometheus.http_transport(relabelled.url, TOKEN))
    assert str(info.value) == (
        'Prometheus: no series matched sum(increase(api_errors_total{service="trading-api"}[1m])) '
        f"in {WINDOW_D}; check the metric name and labels (setting KAIZEN_PROM_ERRORS_SELECTOR)"
    )
    assert _raw_counts(engine)["raw_probe_minutes"] == 0  # nothing half-loaded


@pytest.mark.parametrize("value", ['rate(probe_success[1m])', 'probe_success[5m]',
                                   'probe_success{job="a"} or up', 'probe_success{job="a"'])
def test_a_setting_that_is_not_a_selector_fails_before_asking(fake, waits, monkeypatch, value):
    monkeypatch.setenv("KAIZEN_PROM_PROBE_SELECTOR", value)
    with pytest.raises(SourceError) as info:
        prometheus.http_transport(fake.url, TOKEN)(ts("2026-11-25T10:30:00Z"), ts("2026-11-26T10:30:00Z"))
    assert str(info.value).startswith(f"setting KAIZEN_PROM_PROBE_SELECTOR={value!r} is not a Prometheus series "
                                      "selector")
    assert info.value.transient is False and fake.requests == []


def test_an_error_body_names_the_query_sent_and_its_setting():
    body = {"status": "error", "errorType": "execution", "error": "many-to-many matching not allowed"}
    promql = f"min_over_time({SETTINGS['KAIZEN_PROM_PROBE_SELECTOR']}[1m])"
    with pytest.raises(SourceError) as info:
        prometheus.check_body("probe_success", body, promql)
    assert str(info.value) == (
        "Prometheus query 'probe_success' failed: execution: many-to-many matching not allowed "
        f"(PromQL: {promql}; setting KAIZEN_PROM_PROBE_SELECTOR)"
    )
    assert info.value.transient is False  # the query's fault (HTTP 422): retrying it cannot help


def test_the_demo_files_answer_the_default_queries_only(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("KAIZEN_RETENTION_PROMETHEUS_DAYS", "0")
    write_prometheus_demo(tmp_path)
    assert counts(prometheus.extract(DAY, engine, "r1", prometheus.demo_transport(tmp_path))) == EXPECTED_D
    monkeypatch.setenv("KAIZEN_PROM_LATENCY_SELECTOR", SETTINGS["KAIZEN_PROM_LATENCY_SELECTOR"])
    with pytest.raises(SourceError, match=r"no series matched sum by \(le\) \(increase\(api_request_seconds_bucket"
                                          r".*\(setting KAIZEN_PROM_LATENCY_SELECTOR\)$"):
        prometheus.extract(DAY, engine, "r2", prometheus.demo_transport(tmp_path))


def test_past_the_retention_an_empty_window_is_no_error(engine, relabelled, monkeypatch, caplog):
    """Prometheus has dropped a window older than its retention: nothing matches, and
    that is expected (the stored rows are kept, see tests/test_retention.py)."""
    monkeypatch.setenv("KAIZEN_RETENTION_PROMETHEUS_DAYS", "1")
    with caplog.at_level("WARNING", logger="kaizen.sources.prometheus"):
        res = prometheus.extract(DAY, engine, "r1", prometheus.http_transport(relabelled.url, TOKEN))
    assert counts(res) == {"probes": (0, 0, 0), "latency": (0, 0, 0), "errors": (0, 0, 0)}
    assert [m for m in caplog.messages if "no series matched" in m] == [
        f"Prometheus: no series matched {q} in {WINDOW_D}, which starts before the 1-day retention: "
        "nothing new to load" for q in prometheus.QUERIES.values()]
