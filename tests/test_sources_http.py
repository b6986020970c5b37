"""kaizen.sources.http: the shared JSON client (retry rules, Retry-After forms, error
texts, truncated / non-JSON / trickled answers, the total deadline) against a small
local server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from fakes import _json_api
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
            "Invalid Input Provided (error code 2001, errors: Limit must be <= 100)",
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


def test_non_json_body_is_retried_then_explained(waits):
    page = (200, {"Content-Type": "text/html"}, "<html>login</html>")
    with Scripted([page] * 5) as s:
        with pytest.raises(http.HttpError) as exc:
            client(s.url).get_json("/x")
    msg = str(exc.value)
    assert exc.value.transient is True
    assert msg.startswith("Svc GET /x still failing after 5 attempts (last: HTTP 200 answer is not JSON "
                          "(content-type 'text/html', 18 bytes starting '<html>login</html>'))")
    assert "check that the host in connection 'kaizen_svc'" in msg and "not a proxy, login or error page" in msg
    assert len(s.requests) == 5 and waits == [1.0, 2.0, 4.0, 8.0]


# what each broken answer is called in the error, and the advice given
BROKEN = {
    "truncated": ("body cut off after ", "keeps cutting its answers off"),
    "truncated_chunked": ("body cut off after ", "keeps cutting its answers off"),
    "bad_gzip": ("body could not be decoded (Content-Encoding 'gzip'", "keeps cutting its answers off"),
    "html": ("HTTP 200 answer is not JSON (content-type 'text/html; charset=utf-8'", "is the Svc API itself"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_answer_is_retried_like_a_5xx(waits, kind):
    with Scripted([]) as s:
        s.faults = [kind]
        assert client(s.url).get_json("/x") == {"ok": True}
    assert len(s.requests) == 2 and waits == [1.0]


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_answer_that_persists_fails_transient_naming_service_path_and_connection(waits, kind):
    with Scripted([]) as s:
        s.always = kind
        with pytest.raises(http.HttpError) as exc:
            client(s.url, max_attempts=3).get("/api/v1/query_range", {"query": "up"})
    msg, (last, advice) = str(exc.value), BROKEN[kind]
    assert exc.value.transient is True
    assert msg.startswith(f"Svc GET /api/v1/query_range still failing after 3 attempts (last: {last}")
    assert advice in msg and "connection 'kaizen_svc'" in msg and "query=" not in msg
    assert len(s.requests) == 3 and waits == [1.0, 2.0]


def test_truncation_names_the_bytes_read_and_expected(waits):
    with Scripted([]) as s:
        s.always = "truncated"
        with pytest.raises(http.HttpError) as exc:
            client(s.url, max_attempts=1).get("/x")
    full = len(_json_api.PARTIAL_JSON)
    assert f"body cut off after {full // 2} of {full} bytes" in str(exc.value)


def test_a_trickled_body_is_cut_off_at_the_total_deadline(waits):
    with Scripted([]) as s:
        s.always, s.trickle_s = "trickle", 0.05  # a byte every 50 ms: no read ever times out
        t0 = time.monotonic()
        with pytest.raises(http.HttpError) as exc:
            client(s.url, max_attempts=2, total_deadline_s=0.5).get_json("/x")
        elapsed = time.monotonic() - t0
    msg = str(exc.value)
    assert exc.value.transient is True
    assert msg.startswith("Svc GET /x still failing after 2 attempts (last: no complete answer within the 0.5 s "
                          "deadline (")
    assert "answers too slowly (each request may take at most 0.5 s)" in msg and "'kaizen_svc'" in msg
    assert elapsed < 2.5  # two attempts of 0.5 s, not the 4 kB body at 20 bytes/s (200 s)
    assert len(s.requests) == 2 and waits == [1.0]


def test_the_default_deadline_bounds_every_request():
    c = http.JsonClient("Svc", "kaizen_svc", "http://127.0.0.1:9")
    assert c.total_deadline_s == http.TOTAL_DEADLINE_S == 60.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "7"}, 7.0),  # PagerDuty
        ({"RateLimit-Reset": "12"}, 12.0),
        ({"Retry-After": "3", "ratelimit-reset": "40"}, 3.0),  # Retry-After first
    ],
)
def test_429_waits_what_the_rate_limit_headers_say(waits, headers, expected):
    with Scripted([(429, headers, {"error": {"message": "Rate Limit Exceeded", "code": 2020}})]) as s:
        assert client(s.url).get_json("/x") == {"ok": True}
    assert waits == [expected] and len(s.requests) == 2


def test_429_with_an_x_ratelimit_reset_epoch_waits_until_then(waits):
    reset = int(time.time()) + 30
    with Scripted([(429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}, {"message": "slow"})]) as s:
        assert client(s.url).get_json("/x") == {"ok": True}
    assert len(waits) == 1 and 28 <= waits[0] <= 32


def test_an_x_ratelimit_reset_with_requests_remaining_is_not_a_wait(waits):
    """GitHub's secondary limit: x-ratelimit-reset is the primary window's end, an hour
    away, while requests remain: back off instead of failing at once."""
    reset = str(int(time.time()) + 3600)
    with Scripted([(429, {"x-ratelimit-remaining": "4000", "x-ratelimit-reset": reset}, {"message": "slow"})]) as s:
        assert client(s.url).get_json("/x") == {"ok": True}
    assert waits == [1.0]


def test_a_5xx_ignores_the_rate_limit_headers_pagerduty_sends_on_every_answer(waits):
    with Scripted([(500, {"ratelimit-remaining": "900", "ratelimit-reset": "45"}, "oops")]) as s:
        assert client(s.url).get_json("/x") == {"ok": True}
    assert waits == [1.0]


def test_503_honours_retry_after(waits):
    with Scripted([(503, {"Retry-After": "3"}, "busy")]) as s:
        assert client(s.url).get_json("/x") == {"ok": True}
    assert waits == [3.0]


def test_pagerduty_2002_is_permanent_with_its_code_and_errors(waits):
    body = {"error": {"message": "Arguments Caused Error", "code": 2002, "errors": ["Since cannot be after until."]}}
    with Scripted([(400, {}, body)]) as s:
        with pytest.raises(http.HttpError) as exc:
            client(s.url).get_json("/incidents")
    msg = str(exc.value)
    assert exc.value.transient is False and exc.value.status == 400
    assert msg.startswith("Svc GET /incidents failed with HTTP 400: Arguments Caused Error (error code 2002, "
                          "errors: Since cannot be after until.). Svc refused the request itself")
    assert "retrying cannot help" in msg and "connection 'kaizen_svc'" in msg
    assert len(s.requests) == 1 and waits == []


def test_get_reads_and_parses_the_body_inside_the_attempt(waits):
    with Scripted([(200, {}, [{"id": 1}])]) as s:
        resp = client(s.url).get("/x")
    assert resp.json() == [{"id": 1}] and resp.content == b'[{"id": 1}]'  # usable after the connection is gone
