"""A small JSON-over-HTTP client shared by the Prometheus, GitHub and PagerDuty
sources: timeouts, bounded retries with backoff (429 honouring ``Retry-After``, 5xx,
connection errors, GitHub's rate-limit 403s), and errors that name the service, the
URL path (never the query string or a token) and what to do about it."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import requests

from kaizen.sources.base import SourceError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
MAX_ATTEMPTS = 5
BACKOFF_S = 1.0          # first retry wait; doubles each attempt
MAX_WAIT_S = 120.0       # never sleep longer than this for one retry

_sleep = time.sleep      # tests replace this to record waits instead of sleeping


class HttpError(SourceError):
    def __init__(self, message: str, status: int | None = None, *, transient: bool = False):
        super().__init__(message, transient=transient)
        self.status = status


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
            details = err.get("errors") or []
            return msg + (f" ({'; '.join(map(str, details))})" if details else "")
        if body.get("status") == "error":  # Prometheus {"status","errorType","error"}
            return f"{body.get('errorType', '')}: {body.get('error', '')}"
        if "message" in body:  # GitHub {"message","documentation_url"}
            return str(body["message"])
        if isinstance(err, str):
            return err
    return str(body)[:200]


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class JsonClient:
    """GET JSON from one service. ``conn_id`` is named in every error."""

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
        self.rate_limit_wait = rate_limit_wait  # extra "this 4xx is a rate limit" rule
        self.requests_made = 0

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    def get(self, path_or_url: str, params=None) -> requests.Response:
        url = self.url(path_or_url)
        path = urlsplit(url).path or "/"
        what = f"{self.service} GET {path}"
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            try:
                self.requests_made += 1
                resp = self.session.get(url, params=params, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}"
                wait = self._backoff(attempt)
            else:
                if resp.status_code < 400:
                    return resp
                limited = self.rate_limit_wait(resp) if self.rate_limit_wait else None
                if resp.status_code == 429 or limited is not None:
                    last = f"HTTP {resp.status_code} (rate limited)"
                    wait = limited if limited is not None else _retry_after(resp)
                    if wait is None:
                        wait = self._backoff(attempt)
                    if wait > self.max_wait_s:
                        raise HttpError(
                            f"{what}: rate limited for {wait:.0f} s more (longer than the "
                            f"{self.max_wait_s:.0f} s this task waits); re-run the task later.",
                            resp.status_code, transient=True,
                        )
                elif resp.status_code >= 500:
                    last = f"HTTP {resp.status_code}: {api_message(resp)}"
                    wait = self._backoff(attempt)
                else:
                    raise self._client_error(what, resp)
            if attempt == self.max_attempts:
                break
            log.warning("%s: %s; retry %d/%d in %.1f s", what, last, attempt, self.max_attempts - 1, wait)
            _sleep(wait)
        raise HttpError(
            f"{what} still failing after {self.max_attempts} attempts (last: {last}); "
            f"{self.service} at {urlsplit(url).netloc} may be down or overloaded: retry later, "
            f"or check the host in connection {self.conn_id!r}.", transient=True,
        )

    def get_json(self, path_or_url: str, params=None):
        resp = self.get(path_or_url, params)
        try:
            return resp.json()
        except ValueError:
            raise HttpError(
                f"{self.service} GET {urlsplit(resp.url).path}: response is not JSON "
                f"(content-type {resp.headers.get('Content-Type')!r}); check that the host in "
                f"connection {self.conn_id!r} is the {self.service} API."
            ) from None

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
        else:
            hint = "the request was refused; this is likely a bug in kaizen.sources or an API change."
        return HttpError(f"{what} failed with HTTP {code}: {msg}. {hint}", code)
