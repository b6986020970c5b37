"""kaizen.sources.http: the shared JSON client (retry rules, Retry-After forms, error
texts) against a small local server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from fakes._json_api import FakeAPI
from kaizen.sources import http


class Scripted(FakeAPI):
    """Answers each request with the next scripted (status, headers, body)."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)

    def route(self, method, path, query, headers):
        return self.script.pop(0) if self.script else (200, {}, {"ok": True})


def client(url, **kw):
    return http.JsonClient("Svc", "kaizen_svc", url, {"Authorization": "Bearer s3cret"}, **kw)


def test_retry_after_http_date(waits):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with Scripted([(429, {"Retry-After": when}, {"message": "slow down"})]) as s:
        assert client(s.url).get_json("/x") == {"ok": True}
    assert len(waits) == 1 and 25 <= waits[0] <= 31


def test_backoff_doubles_on_5xx(waits):
    with Scripted([(502, {}, "bad gateway"), (503, {}, "x"), (500, {}, "x")]) as s:
        assert client(s.url, backoff_s=0.5).get_json("/x") == {"ok": True}
    assert waits == [0.5, 1.0, 2.0]


def test_retry_after_beyond_limit_fails_at_once(waits):
    with Scripted([(429, {"Retry-After": "3600"}, {})]) as s:
        with pytest.raises(http.HttpError, match="rate limited for 3600 s more"):
            client(s.url).get("/x")
    assert waits == []


@pytest.mark.parametrize(
    ("status", "body", "text"),
    [
        (404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, "Not Found"),
        (
            400,
            {
                "error": {
                    "message": "Invalid Input Provided",
                    "code": 2001,
                    "errors": ["Limit must be <= 100"],
                }
            },
            "Invalid Input Provided (Limit must be <= 100)",
        ),
        (
            422,
            {"status": "error", "errorType": "execution", "error": "too many samples"},
            "execution: too many samples",
        ),
        (400, "plain text failure", "plain text failure"),
    ],
)
def test_client_errors_name_service_path_and_message(waits, status, body, text):
    with Scripted([(status, {}, body)]) as s:
        with pytest.raises(http.HttpError) as exc:
            client(s.url).get("/api/v1/thing", {"token": "s3cret", "q": "1"})
    msg = str(exc.value)
    assert msg.startswith(f"Svc GET /api/v1/thing failed with HTTP {status}: {text}")
    assert "s3cret" not in msg and "q=1" not in msg
    assert exc.value.status == status
    assert waits == []


def test_non_json_body_is_explained(waits):
    with Scripted([(200, {"Content-Type": "text/html"}, "<html>login</html>")]) as s:
        with pytest.raises(http.HttpError, match="not JSON .* connection 'kaizen_svc'"):
            client(s.url).get_json("/x")
