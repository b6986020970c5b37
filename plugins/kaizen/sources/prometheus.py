"""Probe minutes, latency-histogram bucket increases and error-counter increases from
Prometheus ``/api/v1/query_range`` (step 60 s) over the review window of a trading day.

Each sample's timestamp is stored as the row's ``ts``; samples are kept in
``[window start, window end)`` so consecutive windows tile the time line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from kaizen import calendar as cal
from kaizen import config
from kaizen.sources.base import ExtractResult, Reject, SourceError, TableLoad, as_number, iso_z, load
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


def demo_transport(demo_dir: Path | None = None) -> Transport:
    root = Path(demo_dir or config.demo_dir()) / "prometheus"

    def fetch(start: datetime, end: datetime) -> dict[str, list[dict]]:
        lo, hi = start.timestamp(), end.timestamp()
        out: dict[str, list[dict]] = {}
        for name in QUERIES:
            result: dict[str, dict] = {}
            d = start.astimezone(UTC).date()
            while datetime.combine(d, datetime.min.time(), tzinfo=UTC) < end:
                path = root / name / f"{d.isoformat()}.json"
                if not path.exists():
                    raise SourceError(f"demo file {path} is missing: run `python -m kaizen demo-data` "
                                      "for a range covering this day.")
                data = check_body(name, json.loads(path.read_text()))
                for series in data.get("result", []):
                    key = json.dumps(series.get("metric", {}), sort_keys=True)
                    vals = [v for v in series.get("values", []) if lo <= float(v[0]) < hi]
                    if vals:
                        result.setdefault(key, {"metric": series.get("metric", {}), "values": []})
                        result[key]["values"].extend(vals)
                d += timedelta(days=1)
            out[name] = [{"status": "success",
                          "data": {"resultType": "matrix", "result": list(result.values())}}]
        return out
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


# ---------------------------------------------------------------- parsing

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


def parse(name: str, bodies: list[dict], start: datetime, end: datetime) -> tuple[int, list[dict], list[Reject]]:
    source, _table = TARGETS[name]
    rows: list[dict] = []
    rejects: list[Reject] = []
    seen: set = set()
    n = 0
    for metric, pair, ts in _samples(bodies, start, end):
        n += 1
        payload = {"metric": metric, "value": pair}
        label = metric.get("instance") if name == "probe_success" else metric.get("le")
        key = f"{label}@{iso_z(ts)}" if ts and label is not None else (iso_z(ts) if ts else str(pair))
        if ts is None:
            rejects.append(Reject(source, key, "unparseable sample timestamp", payload))
            continue
        raw_v = pair[1] if len(pair) > 1 else None
        v = as_number(raw_v)
        if v is None:
            rejects.append(Reject(source, key, f"non-numeric sample value {raw_v!r}", payload))
            continue
        if name == "probe_success":
            instance = metric.get("instance")
            if not instance:
                rejects.append(Reject(source, key, "probe series without an instance label", payload))
                continue
            if not 0 <= v <= 1:
                rejects.append(Reject(source, key, f"probe value {raw_v} outside [0, 1]", payload))
                continue
            row = {"instance": instance, "ts": ts, "is_up": 1 if v == 1 else 0}
            pk = (instance, ts)
        elif name == "latency_buckets":
            le = metric.get("le")
            if le is None:
                rejects.append(Reject(source, key, "bucket series without an le label", payload))
                continue
            le_s = None if le == "+Inf" else as_number(le)
            if le != "+Inf" and le_s is None:
                rejects.append(Reject(source, key, f"unparseable le {le!r}", payload))
                continue
            if v < 0:
                rejects.append(Reject(source, key, f"negative bucket count {raw_v}", payload))
                continue
            row = {"ts": ts, "le": le, "le_seconds": le_s, "request_count": v}
            pk = (ts, le)
        else:
            if v < 0:
                rejects.append(Reject(source, key, f"negative error count {raw_v}", payload))
                continue
            row = {"ts": ts, "error_count": v}
            pk = ts
        if pk in seen:
            rejects.append(Reject(source, key, "duplicate sample for the same series and minute "
                                               "(the first was loaded)", payload))
            continue
        seen.add(pk)
        rows.append(row)
    return n, rows, rejects


def extract(day: date, engine: sa.Engine, run_id: str, transport: Transport | None = None) -> list[ExtractResult]:
    start, end = cal.review_window_utc(day)
    raw = (transport or default_transport())(start, end)
    loads = []
    for name in QUERIES:
        source, table = TARGETS[name]
        n, rows, rejects = parse(name, raw.get(name, []), start, end)
        loads.append(TableLoad(source, table, "ts >= :start and ts < :end", {"start": start, "end": end},
                               n, rows, rejects))
    return load(engine, day, run_id, loads)
