"""Fake Prometheus HTTP API: ``/api/v1/query_range`` with start/end (unix or RFC 3339)
and step, the 11,000-points-per-series limit, Prometheus' error bodies, and an optional
bearer token (as a reverse proxy in front of Prometheus would check it).

Series are given either by PromQL text (the exact query answers them), or as stored
series with their labels (``__name__`` included), which a query's selector matches as
Prometheus would (``=``, ``!=``, ``=~``, ``!~``): a Prometheus that labels its series
differently from what Kaizen asks answers no series. The matched series' labels are
then those the query's aggregation keeps (``sum by (le)``: ``le``; ``sum(…)``: none;
otherwise all but ``__name__``); values are served as stored (nothing is summed)."""

from __future__ import annotations

import re
from datetime import datetime

from fakes._json_api import FakeAPI, q1

_SELECTOR = re.compile(r'([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}|([A-Za-z_:][A-Za-z0-9_:]*)\s*\[')
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_FUNCTIONS = {"min_over_time", "max_over_time", "increase", "rate", "sum", "by", "without"}


def select(promql: str, stored: list[dict]) -> list[dict]:
    """The stored series the (first) selector of ``promql`` matches, labelled as its
    aggregation leaves them."""
    for m in _SELECTOR.finditer(promql):
        name = m.group(1) or m.group(3)
        if name in _FUNCTIONS:
            continue
        matchers = [(k, op, v.encode().decode("unicode_escape")) for k, op, v in _MATCHER.findall(m.group(2) or "")]
        if name:
            matchers.append(("__name__", "=", name))
        break
    else:
        return []

    def ok(labels: dict) -> bool:
        for key, op, value in matchers:
            have = labels.get(key, "")
            if (op == "=" and have != value) or (op == "!=" and have == value):
                return False
            if op in ("=~", "!~") and (re.fullmatch(value, have) is None) == (op == "=~"):
                return False
        return True

    by = re.search(r"sum\s+by\s*\(([^)]*)\)", promql)
    keep = [k.strip() for k in by.group(1).split(",")] if by else None
    out = []
    for series in stored:
        labels = series["metric"]
        if not ok(labels):
            continue
        if keep is not None:
            metric = {k: labels[k] for k in keep if k in labels}
        elif re.match(r"\s*sum\s*\(", promql):
            metric = {}
        else:
            metric = {k: v for k, v in labels.items() if k != "__name__"}
        out.append({"metric": metric, "values": series["values"]})
    return out


def _time(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


class FakePrometheus(FakeAPI):
    def __init__(self, series: dict[str, list[dict]] | None = None, token: str | None = None,
                 stored: list[dict] | None = None):
        """``series``: PromQL text → [{"metric": {...}, "values": [[ts, "v"], ...]}];
        ``stored``: [{"metric": {"__name__": …, label: value, …}, "values": …}], matched by
        each query's selector (:func:`select`) when the query is not in ``series``."""
        super().__init__()
        self.series = series or {}
        self.stored = stored or []
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
        answer = self.series[promql] if promql in self.series else select(promql, self.stored)
        for s in answer:
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
