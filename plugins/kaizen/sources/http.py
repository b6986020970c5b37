"""A small JSON-over-HTTP client shared by the Prometheus, GitHub and PagerDuty
sources: timeouts, bounded retries with backoff, and errors that name the service, the
URL path (never the query string or a token), the connection and what to do.

Permanent or transient (``HttpError.transient``, see :mod:`kaizen.errors`):

- retried with backoff, then a transient error: connection errors, timeouts, 5xx
  (honouring ``Retry-After``), 429 and rate-limit answers (honouring ``Retry-After``,
  PagerDuty's ``ratelimit-reset`` seconds, ``X-RateLimit-Reset`` epochs and the
  source's own rule, e.g. GitHub's rate-limit 403s), a body cut off before its end
  (a truncated or undecodable answer), an answer that is not JSON (an HTML proxy page
  with status 200), and an answer not complete within the request's total deadline;
- permanent at once (no retry): any other 4xx — a revoked token, a missing resource,
  a query the service refuses (Prometheus ``bad_data``, PagerDuty error 2002 …).

The body is read inside the attempt, in pieces, against a monotonic deadline
(:data:`TOTAL_DEADLINE_S`): a server trickling a byte every few seconds no longer keeps
a request alive for ever by never letting a read time out; the deadline is checked
after every piece (so a request ends at most one read timeout past it), the answer is
cut off, and the attempt is retried."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from kaizen.sources.base import SourceError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30       # longest silence between two reads
TOTAL_DEADLINE_S = 60.0   # longest one request may take, headers and body included
MAX_ATTEMPTS = 5
BACKOFF_S = 1.0          # first retry wait; doubles each attempt
MAX_WAIT_S = 120.0       # never sleep longer than this for one retry
READ_CHUNK = 64 * 1024   # most bytes taken from the socket per read
EPOCH_MIN = 1_000_000_000  # a rate-limit reset above this is a Unix time, below it seconds

_sleep = time.sleep      # tests replace this to record waits instead of sleeping


class HttpError(SourceError):
    def __init__(self, message: str, status: int | None = None, *, transient: bool = False):
        super().__init__(message, transient=transient)
        self.status = status


class _BadAnswer(Exception):
    """An attempt whose answer could not be read whole, in time, or as JSON (retried).
    ``kind`` is one of "truncated", "deadline", "not_json"."""

    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind = kind


def api_message(resp: requests.Response) -> str:
    """The error text of a response body as the service spells it."""
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or "").strip()[:200] or resp.reason or ""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # PagerDuty {"error": {"message", "code", "errors"}}
            msg = str(err.get("message", ""))
            code = err.get("code")
            details = err.get("errors") or []
            if not isinstance(details, list):
                details = [details]
            extra = [f"error code {code}"] if code is not None else []
            if details:
                extra.append("errors: " + "; ".join(map(str, details)))
            return msg + (f" ({', '.join(extra)})" if extra else "")
        if body.get("status") == "error":  # Prometheus {"status","errorType","error"}
            return f"{body.get('errorType', '')}: {body.get('error', '')}"
        if "message" in body:  # GitHub {"message","documentation_url"}
            return str(body["message"])
        if isinstance(err, str):
            return err
    return str(body)[:200]


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(resp: requests.Response, *, rate_limited: bool = True) -> float | None:
    """Seconds the service asks to wait: ``Retry-After`` (seconds or an HTTP date); for a
    rate-limited answer also ``RateLimit-Reset`` / ``ratelimit-reset`` (PagerDuty, the
    IETF draft: seconds until the limit resets), else ``X-RateLimit-Reset`` when
    ``X-RateLimit-Remaining`` is 0 (GitHub: the Unix time it resets)."""
    value = resp.headers.get("Retry-After")
    if value is not None:
        seconds = _seconds(value)
        if seconds is not None:
            return max(0.0, seconds)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    if not rate_limited:  # e.g. a 5xx: PagerDuty sends its rate-limit headers on every answer
        return None
    reset = _seconds(resp.headers.get("RateLimit-Reset"))  # headers are case-insensitive
    if reset is None and resp.headers.get("X-RateLimit-Remaining", "0") == "0":
        reset = _seconds(resp.headers.get("X-RateLimit-Reset"))
    if reset is None:
        return None
    if reset >= EPOCH_MIN:  # a Unix time (GitHub), not a delay
        reset = reset - time.time() + 1
    return max(0.0, reset)


class JsonClient:
    """GET JSON from one service. ``conn_id`` is named in every error.

    ``total_deadline_s`` bounds one request (connect, headers and the whole body);
    a slower answer is cut off and retried like a timeout."""

    def __init__(
        self,
        service: str,
        conn_id: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        max_wait_s: float = MAX_WAIT_S,
        total_deadline_s: float = TOTAL_DEADLINE_S,
        rate_limit_wait: Callable[[requests.Response], float | None] | None = None,
    ):
        self.service = service
        self.conn_id = conn_id
        self.base_url = base_url.rstrip("/") + "/"
        self.session = requests.Session()
        self.session.headers.update(headers or {})
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.total_deadline_s = total_deadline_s
        self.rate_limit_wait = rate_limit_wait  # extra "this 4xx is a rate limit" rule
        self.requests_made = 0

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    def get(self, path_or_url: str, params=None) -> requests.Response:
        """The response of a GET whose status is below 400 and whose body was read
        whole, in time, and parsed as JSON (``resp.json()`` works; :meth:`get_json`
        returns the parsed body). Raises :class:`HttpError`."""
        url = self.url(path_or_url)
        path = urlsplit(url).path or "/"
        what = f"{self.service} GET {path}"
        last, last_kind = "", "down"
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            deadline = time.monotonic() + self.total_deadline_s
            try:
                self.requests_made += 1
                resp = self.session.get(
                    url, params=params, stream=True,
                    timeout=(CONNECT_TIMEOUT_S, min(READ_TIMEOUT_S, self.total_deadline_s)),
                )
                try:
                    self._read_body(resp, deadline)
                finally:
                    resp.close()
                if resp.status_code < 400 and resp.status_code != 204:
                    self._parse(resp)
            except requests.Timeout as exc:
                last = f"{type(exc).__name__}"
                last_kind = "down" if isinstance(exc, requests.ConnectTimeout) else "deadline"
                wait = self._backoff(attempt)
            except requests.ConnectionError as exc:
                last, last_kind = f"{type(exc).__name__}", "down"
                wait = self._backoff(attempt)
            except _BadAnswer as exc:
                last, last_kind = str(exc), exc.kind
                wait = self._backoff(attempt)
            else:
                if resp.status_code < 400:
                    return resp
                limited = self.rate_limit_wait(resp) if self.rate_limit_wait else None
                if resp.status_code == 429 or limited is not None:
                    last, last_kind = f"HTTP {resp.status_code} (rate limited)", "limited"
                    wait = limited if limited is not None else _retry_after(resp)
                    if wait is None:
                        wait = self._backoff(attempt)
                    if wait > self.max_wait_s:
                        raise HttpError(
                            f"{what}: rate limited for {wait:.0f} s more (longer than the "
                            f"{self.max_wait_s:.0f} s this task waits); re-run the task later, or use a "
                            f"token with a larger quota in connection {self.conn_id!r}.",
                            resp.status_code, transient=True,
                        )
                elif resp.status_code >= 500:
                    last, last_kind = f"HTTP {resp.status_code}: {api_message(resp)}", "down"
                    wait = _retry_after(resp, rate_limited=False)
                    if wait is None or wait > self.max_wait_s:
                        wait = self._backoff(attempt)
                else:
                    raise self._client_error(what, resp)
            if attempt == self.max_attempts:
                break
            log.warning("%s: %s; retry %d/%d in %.1f s", what, last, attempt, self.max_attempts - 1, wait)
            _sleep(wait)
        raise HttpError(
            f"{what} still failing after {self.max_attempts} attempts (last: {last}); "
            f"{self._advice(last_kind, url)}", transient=True,
        )

    def get_json(self, path_or_url: str, params=None):
        resp = self.get(path_or_url, params)
        if resp.status_code == 204:
            return None
        return resp._kaizen_json  # parsed once, inside the attempt

    # -- one attempt's body

    def _read_body(self, resp: requests.Response, deadline: float) -> None:
        """Read the whole body into ``resp`` (``resp.content`` / ``resp.json()`` then
        work) by pieces of at most :data:`READ_CHUNK`, each returned as soon as the
        socket has bytes; raises :class:`_BadAnswer` when the body is cut off, cannot
        be decoded, or is not complete by ``deadline``."""
        raw, parts, size = resp.raw, [], 0
        while True:
            if time.monotonic() > deadline:
                raise _BadAnswer("deadline", f"no complete answer within the {self.total_deadline_s:g} s "
                                             f"deadline ({size} bytes of the body read)")
            try:
                data = raw.read1(READ_CHUNK, decode_content=True)
            except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
                raise _BadAnswer("deadline", f"read timed out after {size} bytes of the body "
                                             f"({type(exc).__name__})") from None
            except (urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError) as exc:
                enc = resp.headers.get("Content-Encoding")
                raise _BadAnswer("truncated", f"body could not be decoded (Content-Encoding {enc!r}: "
                                              f"{type(exc).__name__})") from None
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                expected = resp.headers.get("Content-Length")
                of = f" of {expected}" if expected else ""
                raise _BadAnswer("truncated", f"body cut off after {size}{of} bytes "
                                              f"({type(exc).__name__})") from None
            if not data:
                break
            parts.append(data)
            size += len(data)
        resp._content = b"".join(parts)
        resp._content_consumed = True

    def _parse(self, resp: requests.Response) -> None:
        try:
            resp._kaizen_json = resp.json()
        except ValueError:
            ctype = resp.headers.get("Content-Type")
            start = resp.content[:60].decode("utf-8", "replace").strip().replace("\n", " ")
            raise _BadAnswer("not_json", f"HTTP {resp.status_code} answer is not JSON (content-type {ctype!r}, "
                                         f"{len(resp.content)} bytes starting {start!r})") from None

    # -- wording

    def _advice(self, kind: str, url: str) -> str:
        host = urlsplit(url).netloc
        if kind == "not_json":
            return (f"check that the host in connection {self.conn_id!r} ({host}) is the {self.service} API "
                    "itself, not a proxy, login or error page; if it is, retry later.")
        if kind == "truncated":
            return (f"{self.service} at {host} keeps cutting its answers off (a proxy or the server failing "
                    f"mid-answer): retry later, or check what sits between Kaizen and the host in "
                    f"connection {self.conn_id!r}.")
        if kind == "deadline":
            return (f"{self.service} at {host} answers too slowly (each request may take at most "
                    f"{self.total_deadline_s:g} s): retry later, or check the host's load and the network "
                    f"to the host in connection {self.conn_id!r}.")
        if kind == "limited":
            return (f"{self.service} kept rate-limiting the token of connection {self.conn_id!r}: re-run the "
                    "task later, or find what else uses this token.")
        return (f"{self.service} at {host} may be down or overloaded: retry later, "
                f"or check the host in connection {self.conn_id!r}.")

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_wait_s)

    def _client_error(self, what: str, resp: requests.Response) -> HttpError:
        msg = api_message(resp)
        code = resp.status_code
        if code == 401:
            hint = f"check the token in connection {self.conn_id!r} (missing, expired or revoked)."
        elif code == 403:
            hint = f"the token in connection {self.conn_id!r} lacks permission for this resource."
        elif code == 404:
            hint = f"check the host and the resource names (repo, ids) in connection {self.conn_id!r}."
        elif code in (400, 422):
            hint = (f"{self.service} refused the request itself (a query or parameter it cannot accept): "
                    f"retrying cannot help. Check the query settings and that the host in connection "
                    f"{self.conn_id!r} runs a supported {self.service} version; otherwise this is a bug "
                    "in kaizen.sources.")
        else:
            hint = (f"the request was refused; retrying cannot help. Check connection {self.conn_id!r}; "
                    "otherwise this is a bug in kaizen.sources or an API change.")
        return HttpError(f"{what} failed with HTTP {code}: {msg}. {hint}", code)
