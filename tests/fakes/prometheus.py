"""Fake Prometheus HTTP API: ``/api/v1/query_range`` with start/end (unix or RFC 3339)
and step, the 11,000-points-per-series limit, Prometheus' error bodies, and an optional
bearer token (as a reverse proxy in front of Prometheus would check it)."""

from __future__ import annotations

from datetime import datetime

from fakes._json_api import FakeAPI, q1


def _time(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


class FakePrometheus(FakeAPI):
    def __init__(self, series: dict[str, list[dict]] | None = None, token: str | None = None):
        """``series``: PromQL text → [{"metric": {...}, "values": [[ts, "v"], ...]}]."""
        super().__init__()
        self.series = series or {}
        self.token = token

    def route(self, method, path, query, headers):
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return self.fault("401")
        if path != "/api/v1/query_range":
            return 404, {"Content-Type": "text/plain"}, "404 page not found\n"
        try:
            start, end, step = _time(q1(query, "start")), _time(q1(query, "end")), float(q1(query, "step"))
        except (TypeError, ValueError):
            return (
                400,
                {},
                {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": 'invalid parameter "start": cannot parse to a valid timestamp',
                },
            )
        if end < start:
            return (
                400,
                {},
                {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": 'invalid parameter "end": end timestamp must not be before start time',
                },
            )
        if (end - start) / step > 11000:
            return (
                400,
                {},
                {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": "exceeded maximum resolution of 11,000 points per timeseries. "
                    "Try decreasing the query resolution (?step=XX)",
                },
            )
        promql = q1(query, "query")
        result = []
        for s in self.series.get(promql, []):
            vals = [
                v for v in s["values"] if start <= float(v[0]) <= end and (float(v[0]) - start) % step == 0
            ]
            if vals:
                result.append({"metric": s["metric"], "values": vals})
        return 200, {}, {"status": "success", "data": {"resultType": "matrix", "result": result}}

    def fault(self, kind):
        if kind == "429":
            return 429, {"Retry-After": "1", "Content-Type": "text/plain"}, "Too Many Requests\n"
        if kind == "500":
            return 500, {}, {"status": "error", "errorType": "internal", "error": "unexpected error"}
        if kind == "503":
            return 503, {}, {"status": "error", "errorType": "unavailable", "error": "TSDB not ready"}
        if kind == "401":
            return 401, {"Content-Type": "text/plain", "WWW-Authenticate": "Bearer"}, "Unauthorized\n"
        if kind == "bad_data":
            return (
                400,
                {},
                {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": "1:1: parse error: unexpected character: '!'",
                },
            )
        raise ValueError(kind)
