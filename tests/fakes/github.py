"""Fake GitHub REST API: deployments (environment filter), deployment statuses and
compare, issues (``labels`` ANDed, ``state``, ``since`` on updated_at; pull requests
listed too, as the real endpoint does), paginated with ``per_page``/``page`` and RFC 8288 ``Link`` headers
(rel="next"/"last"/"first"/"prev") like api.github.com; GitHub's error bodies
(``{"message", "documentation_url", "status"}``), 429 with Retry-After, the
secondary-rate-limit 403, and the primary-rate-limit 429 with only
``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset`` (a Unix time
:attr:`FakeGitHub.reset_s` seconds ahead) (``429_reset``)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from fakes._json_api import FakeAPI, q1

DOCS = "https://docs.github.com/rest"


class FakeGitHub(FakeAPI):
    def __init__(
        self,
        repo: str = "desk/trading-api",
        deployments=None,
        statuses=None,
        compares=None,
        token: str = "ghp_test",
        issues=None,
    ):
        """deployments newest first; statuses {id: [...] newest first}; compares {"a...b": body}."""
        super().__init__()
        self.repo = repo
        self.deployments = deployments or []
        self.statuses = statuses or {}
        self.compares = compares or {}
        self.token = token
        self.issues = issues or []  # newest first, as GET /repos/{o}/{r}/issues sorts by default
        self.reset_s = 5  # x-ratelimit-reset of the "429_reset" fault, seconds from now

    def _page(self, path, query, items):
        per_page = min(int(q1(query, "per_page", 30)), 100)
        page = int(q1(query, "page", 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        base = {k: v[0] for k, v in query.items() if k != "page"}

        def link(p, rel):
            return f'<{self.url}{path}?{urlencode({**base, "page": p})}>; rel="{rel}"'

        links = []
        if page > 1:
            links += [link(page - 1, "prev")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first")]
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def route(self, method, path, query, headers):
        if headers.get("authorization") != f"Bearer {self.token}":
            return self.fault("401")
        prefix = f"/repos/{self.repo}/"
        if not path.startswith(prefix):
            return self.fault("404")
        rest = path[len(prefix) :].split("/")
        if rest == ["deployments"]:
            env = q1(query, "environment")
            items = [d for d in self.deployments if env is None or d.get("environment") == env]
            chunk, hdrs = self._page(path, query, items)
            return 200, hdrs, chunk
        if rest == ["issues"]:
            wanted = [x for x in (q1(query, "labels") or "").split(",") if x]
            state = q1(query, "state", "open")
            since = q1(query, "since")
            items = [
                i
                for i in self.issues
                if all(w in [lab["name"] for lab in i.get("labels", [])] for w in wanted)
                and (state == "all" or i.get("state") == state)
                and (since is None or i.get("updated_at", "") >= since)  # ISO-8601 Z text sorts
            ]
            chunk, hdrs = self._page(path, query, items)
            return 200, hdrs, chunk
        if len(rest) == 3 and rest[0] == "deployments" and rest[2] == "statuses":
            chunk, hdrs = self._page(path, query, self.statuses.get(rest[1], []))
            return 200, hdrs, chunk
        if len(rest) == 2 and rest[0] == "compare":
            body = self.compares.get(rest[1])
            if body is None:
                return self.fault("404")
            chunk, hdrs = self._page(path, query, body.get("commits", []))
            return 200, hdrs, {**body, "commits": chunk}
        return self.fault("404")

    def fault(self, kind):
        if kind == "401":
            return 401, {}, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
        if kind == "404":
            return 404, {}, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        if kind == "429":
            return (
                429,
                {"Retry-After": "1"},
                {"message": "API rate limit exceeded", "documentation_url": DOCS, "status": "429"},
            )
        if kind == "secondary":
            return (
                403,
                {"retry-after": "1"},
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
                    "you try again.",
                    "documentation_url": DOCS,
                    "status": "403",
                },
            )
        if kind == "403":
            return (
                403,
                {},
                {
                    "message": "Resource not accessible by personal access token",
                    "documentation_url": DOCS,
                    "status": "403",
                },
            )
        if kind == "500":
            return 500, {}, {"message": "Server Error", "status": "500"}
        if kind == "429_reset":
            return (
                429,
                {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                 "x-ratelimit-reset": str(int(time.time()) + self.reset_s)},
                {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS, "status": "429"},
            )
        raise ValueError(kind)
