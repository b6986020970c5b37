"""Fake PagerDuty REST API v2: ``/incidents`` (since/until on created_at, statuses[],
classic pagination ``limit``/``offset`` → ``more``/``total``), ``/incidents/{id}/alerts``,
``/incidents/{id}/log_entries`` (paginated the same way) and
``/incidents/{id}/custom_fields/values``, ``/oncalls`` (since/until: the on-call entries
overlapping the range, a null start or end open-ended; ``escalation_policy_ids[]``) and the
account-wide ``/log_entries`` (since/until on created_at; ``team_ids[]``), paginated the
same way; ``Authorization: Token token=…``; PagerDuty's
error bodies ``{"error": {"message", "code", "errors"}}`` (e.g. ``2002`` "Arguments
Caused Error", HTTP 400), 429 with Retry-After, and 429 with only the
``ratelimit-limit`` / ``ratelimit-remaining`` / ``ratelimit-reset`` headers PagerDuty
sends (``429_reset``: reset in :attr:`FakePagerDuty.reset_s` seconds)."""

from __future__ import annotations

from datetime import datetime

from fakes._json_api import FakeAPI, q1


def _ts(v: str) -> datetime:
    return datetime.fromisoformat(v.replace("Z", "+00:00"))


class FakePagerDuty(FakeAPI):
    def __init__(
        self, incidents=None, alerts=None, custom_fields=None, log_entries=None, token: str = "pd_test_token",
        oncalls=None, account_log_entries=None,
    ):
        super().__init__()
        self.incidents = incidents or []
        self.alerts = alerts or {}
        self.custom_fields = custom_fields or {}
        self.log_entries = log_entries or {}
        self.oncalls = oncalls or []  # GET /oncalls entries
        self.account_log_entries = account_log_entries or []  # GET /log_entries (the whole account)
        self.token = token
        self.reset_s = 7  # ratelimit-reset of the "429_reset" fault

    def _page(self, key, query, items):
        limit = int(q1(query, "limit", 25))
        offset = int(q1(query, "offset", 0))
        if limit > 100:
            limit = 100  # PagerDuty caps limit at 100
        chunk = items[offset : offset + limit]
        total = len(items) if q1(query, "total") == "true" else None
        return (
            200,
            {},
            {
                key: chunk,
                "limit": limit,
                "offset": offset,
                "more": offset + len(chunk) < len(items),
                "total": total,
            },
        )

    def route(self, method, path, query, headers):
        if headers.get("authorization") != f"Token token={self.token}":
            return self.fault("401")
        parts = path.strip("/").split("/")
        if parts == ["incidents"]:
            since, until = q1(query, "since"), q1(query, "until")
            statuses = query.get("statuses[]")
            items = [
                i
                for i in self.incidents
                if (not since or _ts(i["created_at"]) >= _ts(since))
                and (not until or _ts(i["created_at"]) < _ts(until))
                and (not statuses or i["status"] in statuses)
            ]
            return self._page("incidents", query, items)
        if len(parts) == 3 and parts[0] == "incidents" and parts[2] == "alerts":
            return self._page("alerts", query, self.alerts.get(parts[1], []))
        if len(parts) == 3 and parts[0] == "incidents" and parts[2] == "log_entries":
            return self._page("log_entries", query, self.log_entries.get(parts[1], []))
        if parts == ["oncalls"]:
            since, until = q1(query, "since"), q1(query, "until")
            if since and until and _ts(since) > _ts(until):
                return self.fault("2002")
            policies = query.get("escalation_policy_ids[]")
            items = [
                o
                for o in self.oncalls
                if (not since or o.get("end") is None or _ts(o["end"]) > _ts(since))
                and (not until or o.get("start") is None or _ts(o["start"]) < _ts(until))
                and (not policies or (o.get("escalation_policy") or {}).get("id") in policies)
            ]
            return self._page("oncalls", query, items)
        if parts == ["log_entries"]:
            since, until = q1(query, "since"), q1(query, "until")
            teams = query.get("team_ids[]")
            items = [
                e
                for e in self.account_log_entries
                if (not since or _ts(e["created_at"]) >= _ts(since))
                and (not until or _ts(e["created_at"]) < _ts(until))
                and (not teams or any(t.get("id") in teams for t in e.get("teams") or []))
            ]
            return self._page("log_entries", query, items)
        if parts[:1] == ["incidents"] and parts[2:] == ["custom_fields", "values"]:
            return 200, {}, {"custom_fields": self.custom_fields.get(parts[1], [])}
        return self.fault("404")

    def fault(self, kind):
        if kind == "401":
            return 401, {}, {"error": {"message": "Authentication failed", "code": 2006}}
        if kind == "404":
            return 404, {}, {"error": {"message": "Not Found", "code": 2100}}
        if kind == "429":
            return 429, {"Retry-After": "1"}, {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
        if kind == "500":
            return 500, {}, {"error": {"message": "Internal Error", "code": 2000}}
        if kind == "2002":
            return 400, {}, {"error": {"message": "Arguments Caused Error", "code": 2002,
                                       "errors": ["Since cannot be after until."]}}
        if kind == "429_reset":
            return (429, {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": str(self.reset_s)},
                    {"error": {"message": "Rate Limit Exceeded", "code": 2020}})
        raise ValueError(kind)
