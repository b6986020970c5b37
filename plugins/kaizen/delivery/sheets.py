"""Google Sheets sink: upsert report rows into one spreadsheet through gspread.

One spreadsheet (connection ``kaizen_gsheets``, extra ``spreadsheet_id``) holds a tab
per grain, Scorecard, Incidents, Action items, Definitions and an ``About`` tab whose
A1/B1 say ``last sync (IST)`` and when. A sync costs three or four HTTP requests (retries
aside), at most two of them writes (the quota is 60 write requests per minute per user):

1. ``spreadsheets.get`` — which tabs exist and how big their grids are;
2. ``values.batchGet`` — every existing tab's values, once, unformatted;
3. ``spreadsheets.batchUpdate`` — only when something structural is needed: missing
   tabs, grids too small for the rows about to be written, header and number formats;
4. ``values.batchUpdate`` — exactly one, with every changed row and the sync time.

Rows are upserted by their key (the first ``key_columns`` cells): a row whose key is
already on the tab is overwritten in place, a new key is appended after the last row,
rows whose keys are absent from the new data are kept. ``key_columns=0`` replaces the
tab's content. Nothing ever uses ``values.append``, so a retried sync cannot append a
row twice.

User text can never become a formula: values are written with
``valueInputOption=RAW`` (Sheets stores the string as typed, it never parses it), and,
as a second guard, text whose first character would start a formula in a spreadsheet
(``= + - @``, tab, CR, LF) is prefixed with an apostrophe — see :func:`inert_text`.
Numbers are sent as JSON numbers, so they stay numbers (negative ones too).

HTTP 429 and 5xx answers (and connection errors) are retried a bounded number of times
with exponential backoff, honouring ``Retry-After``; gspread's own
``BackOffHTTPClient`` is not used because it never gives up on a permanent 429.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import gspread
import requests
from google.auth.exceptions import GoogleAuthError
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient

from kaizen import config
from kaizen.errors import KaizenError

log = logging.getLogger(__name__)

SHEETS_API_ROOT = "https://sheets.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
WRITE_QUOTA_TEXT = "60 write requests per minute per user"
READ_QUOTA_TEXT = "60 read requests per minute per user"

ABOUT_TAB = "About"
LAST_SYNC_LABEL = "last sync (IST)"

# New tabs get the API's default grid; grids grow with headroom so that a year of
# daily rows costs only a few resizes.
DEFAULT_ROWS = 1000
DEFAULT_COLS = 26
ROW_HEADROOM = 250

# Column formats. `_pct` KPI values are percentages 0–100 (docs/contracts.md), so a
# Sheets PERCENT format (which multiplies by 100) would be wrong: the % is a literal.
# ₹ amounts use the Indian digit grouping (lakh, crore) with the en-IN currency tag.
NUMBER_FORMATS: dict[str, dict[str, str]] = {
    "inr": {"type": "CURRENCY", "pattern": "[$₹-4009]#,##,##0.00"},
    "pct": {"type": "NUMBER", "pattern": '0.00"%"'},
    "int": {"type": "NUMBER", "pattern": "#,##,##0"},
    "float": {"type": "NUMBER", "pattern": "#,##,##0.00"},
    "text": {"type": "TEXT", "pattern": "@"},
}

# First characters that make a spreadsheet (Sheets with USER_ENTERED input, Excel or
# LibreOffice opening a CSV export) read a cell as a formula (OWASP "CSV injection").
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\n")


# ---------------------------------------------------------------------------- errors


class SheetsDeliveryError(KaizenError, RuntimeError):
    """A sync failed; the message says what failed and what to do."""


class SheetsAuthError(SheetsDeliveryError):
    """401/403: the service account cannot edit the spreadsheet."""


class SheetsNotFoundError(SheetsDeliveryError):
    """404: the spreadsheet id is wrong (or the sheet was deleted)."""


class SheetsQuotaError(SheetsDeliveryError):
    """429 that did not clear within the retry bound."""

    transient = True


class SheetsUnavailableError(SheetsDeliveryError):
    """5xx or connection errors that did not clear within the retry bound."""

    transient = True


class SheetsRequestError(SheetsDeliveryError):
    """400 and other answers that retrying cannot fix."""


# ---------------------------------------------------------------------------- models


@dataclass
class SheetTab:
    """One tab's content. ``rows`` hold plain Python values (str, int, float, bool,
    Decimal, date, datetime, None); the first ``key_columns`` cells of a row are its key
    (0 = the rows replace the whole tab)."""

    name: str
    header: list[str]
    rows: list[list] = field(default_factory=list)
    key_columns: int = 1
    number_formats: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 100:
            raise ValueError(f"tab name must be 1–100 characters, got {self.name!r}")
        if not self.header:
            raise ValueError(f"tab {self.name!r}: header is empty")
        if len(set(self.header)) != len(self.header):
            raise ValueError(f"tab {self.name!r}: duplicate column names in header {self.header}")
        if not 0 <= self.key_columns <= len(self.header):
            raise ValueError(
                f"tab {self.name!r}: key_columns={self.key_columns} outside 0..{len(self.header)}"
            )
        for column, kind in self.number_formats.items():
            if column not in self.header:
                raise ValueError(f"tab {self.name!r}: number format for unknown column {column!r}")
            if kind not in NUMBER_FORMATS:
                raise ValueError(
                    f"tab {self.name!r}: number format {kind!r} not one of {sorted(NUMBER_FORMATS)}"
                )
        for i, row in enumerate(self.rows):
            if len(row) > len(self.header):
                raise ValueError(
                    f"tab {self.name!r}: row {i} has {len(row)} cells for {len(self.header)} columns"
                )
            if len(row) < self.key_columns:
                raise ValueError(f"tab {self.name!r}: row {i} lacks its {self.key_columns} key cells")


@dataclass
class SyncResult:
    spreadsheet_id: str
    tabs_written: list[str]  # tabs that received at least one cell in this sync
    tabs_created: list[str]
    rows_updated: int  # existing rows overwritten with changed values
    rows_appended: int  # rows written below the previous last row
    rows_unchanged: int  # rows sent with values identical to the sheet: not written
    request_count: int  # HTTP requests sent, retries included
    write_request_count: int  # of which spreadsheets.batchUpdate / values.batchUpdate
    retries: int
    ranges: dict[str, str]  # tab → A1 range this sync wrote (for the delivery ledger)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retry of 429/5xx: at most ``max_attempts`` tries and ``max_wait_s``
    seconds of sleeping in total; a wait that would pass the bound is not taken."""

    max_attempts: int = 5
    max_wait_s: float = 60.0
    base_delay_s: float = 1.0
    max_delay_s: float = 32.0

    def backoff(self, attempt: int) -> float:
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return delay + random.uniform(0, min(1.0, delay / 4))


RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


# ---------------------------------------------------------------------------- HTTP client


class _RetryingHTTPClient(HTTPClient):
    """gspread's HTTPClient with a bounded retry and an optional API root (tests)."""

    def __init__(self, auth, session=None, *, base_url: str | None = None, retry: RetryPolicy | None = None):
        super().__init__(auth, session)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.retry = retry or RetryPolicy()
        self.sent = 0
        self.writes = 0
        self.retried = 0
        self.sleep = time.sleep

    def _url(self, endpoint: str) -> str:
        if self.base_url and endpoint.startswith(SHEETS_API_ROOT):
            return self.base_url + endpoint[len(SHEETS_API_ROOT) :]
        return endpoint

    def request(self, method, endpoint, params=None, data=None, json=None, files=None, headers=None):
        url = self._url(endpoint)
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            self.sent += 1
            if method.lower() != "get":
                self.writes += 1
            failure: str
            try:
                response = self.session.request(
                    method=method,
                    url=url,
                    json=json,
                    params=params,
                    data=data,
                    files=files,
                    headers=headers,
                    timeout=self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                response = None
                failure = f"{type(exc).__name__}"
                delay = self.retry.backoff(attempt)
                last_exc: Exception = exc
            else:
                if response.ok:
                    return response
                if response.status_code not in RETRYABLE_STATUS:
                    raise APIError(response)
                failure = f"HTTP {response.status_code}"
                delay = _retry_after(response) or self.retry.backoff(attempt)
                last_exc = APIError(response)
            if attempt >= self.retry.max_attempts or waited + delay > self.retry.max_wait_s:
                last_exc.attempts = attempt  # type: ignore[attr-defined]
                last_exc.waited_s = waited  # type: ignore[attr-defined]
                raise last_exc
            log.warning(
                "Google Sheets %s %s: %s, retry %d in %.1f s",
                method.upper(),
                _operation(method, endpoint),
                failure,
                attempt,
                delay,
            )
            self.retried += 1
            self.sleep(delay)
            waited += delay


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _operation(method: str, endpoint: str) -> str:
    if endpoint.endswith("/values:batchUpdate"):
        return "values.batchUpdate"
    if endpoint.endswith("/values:batchGet"):
        return "values.batchGet"
    if endpoint.endswith(":batchUpdate"):
        return "spreadsheets.batchUpdate"
    if "/values/" in endpoint:
        return f"values.{'get' if method.lower() == 'get' else 'update'}"
    return "spreadsheets.get" if method.lower() == "get" else method.upper()


def _explain(
    exc: Exception,
    spreadsheet_id: str,
    operation: str,
    conn_id: str = config.GSHEETS_CONN_ID,
    account: str | None = None,
) -> SheetsDeliveryError:
    """Turn a gspread/requests failure into an error that says what to do."""
    attempts = getattr(exc, "attempts", 1)
    waited = getattr(exc, "waited_s", 0.0)
    where = f"Google Sheets {operation} on spreadsheet {spreadsheet_id!r}"
    if not isinstance(exc, APIError):
        return SheetsUnavailableError(
            f"{where} failed after {attempts} attempt(s) and {waited:.1f} s of backoff: "
            f"{type(exc).__name__}: {exc}. Check network access to sheets.googleapis.com (or the base_url of "
            f"connection {conn_id!r}) and re-run the task."
        )
    status = exc.response.status_code
    message = str(exc.error.get("message", "")) if isinstance(exc.error, Mapping) else str(exc)
    who = f"service account {account!r}" if account else "the connection's service account"
    if status in (401, 403):
        return SheetsAuthError(
            f"{where} was refused (HTTP {status}: {message}). Connection {conn_id!r} must hold a valid "
            f"service-account key (extra 'keyfile_dict'), and {who} needs Editor access to the "
            f"spreadsheet: share the sheet with that e-mail address as an editor, and enable the "
            f"Google Sheets API in the key's project."
        )
    if status == 404:
        return SheetsNotFoundError(
            f"{where}: not found (HTTP 404). The spreadsheet id is wrong or the sheet was deleted: "
            f"check extra 'spreadsheet_id' of connection {conn_id!r} (the id is the part of the sheet's "
            f"URL between /d/ and /edit)."
        )
    if status == 429:
        quota, uses, verb = _quota_named(message, operation)
        return SheetsQuotaError(
            f"{where} was still rate-limited (HTTP 429: {message}) after {attempts} attempt(s) and "
            f"{waited:.1f} s of backoff. The Sheets API allows {quota}, shared by everything "
            f"using {who} (connection {conn_id!r}); kaizen spends {uses} per sync. Find what else "
            f"{verb} with this account (or a loop re-running syncs), wait a minute, then re-run the task or "
            f"re-deliver the period; raise the quota in the Google Cloud console if the load is legitimate."
        )
    if status >= 500:
        return SheetsUnavailableError(
            f"{where} failed with HTTP {status} ({message}) after {attempts} attempt(s) and {waited:.1f} s "
            f"of backoff: Google's side is failing, not connection {conn_id!r}. Re-run the task later: each "
            f"request is applied whole or not at all, and a re-run overwrites the same rows (it never "
            f"appends twice)."
        )
    return SheetsRequestError(
        f"{where} was rejected (HTTP {status}: {message}); retrying cannot help. Check the spreadsheet "
        f"(protected ranges, tabs renamed by hand) and connection {conn_id!r}; otherwise this is a bug in "
        f"kaizen.delivery.sheets."
    )


def _quota_named(message: str, operation: str) -> tuple[str, str, str]:
    """(the per-minute quota Google's 429 names, what one sync spends of it, the verb):
    Google's message says which limit ran out, e.g. "… limit 'Read requests per minute
    per user' …"; without that, the operation's kind decides."""
    text = message.lower()
    if "read requests" in text:
        kind = "read"
    elif "write requests" in text:
        kind = "write"
    else:
        kind = "read" if operation in ("spreadsheets.get", "values.batchGet", "values.get") else "write"
    if kind == "read":
        return READ_QUOTA_TEXT, "two or three reads (opening the spreadsheet included)", "reads"
    return WRITE_QUOTA_TEXT, "at most two writes", "writes"


def _token_failure(exc: Exception, conn_id: str) -> SheetsAuthError:
    # google.auth's messages may quote the token endpoint's answer: only the type is kept.
    return SheetsAuthError(
        f"connection {conn_id!r}: exchanging the service-account key for an access token failed "
        f"({type(exc).__name__}). If the key was revoked or deleted, issue a new key for the service "
        f"account and update extra 'keyfile_dict'; if Google's token endpoint was unreachable, re-run."
    )


# ---------------------------------------------------------------------------- opening


class _RootSession(requests.Session):
    """An unauthenticated session for a local fake (``base_url`` without a key)."""


def open_spreadsheet(
    conn: config.Conn | None = None, *, retry: RetryPolicy | None = None
) -> gspread.Spreadsheet:
    """The spreadsheet of connection ``kaizen_gsheets``.

    Extras: ``spreadsheet_id`` (required), ``keyfile_dict`` (service-account JSON as a
    string or a dict), ``base_url`` (an API root standing for https://sheets.googleapis.com,
    for tests; without a key the requests are unauthenticated). The key is never logged.
    """
    if conn is None:
        conn = config.get_connection(config.GSHEETS_CONN_ID)
        if conn is None:
            raise LookupError(
                f"Airflow connection {config.GSHEETS_CONN_ID!r} (Google Sheets) is not configured: define it "
                f"in the Airflow UI or as AIRFLOW_CONN_{config.GSHEETS_CONN_ID.upper()}."
            )
    extra = conn.extra or {}
    spreadsheet_id = str(extra.get("spreadsheet_id") or "").strip()
    if not spreadsheet_id:
        raise ValueError(f"connection {conn.conn_id!r} has no extra 'spreadsheet_id'")
    base_url = extra.get("base_url") or None
    keyfile = extra.get("keyfile_dict") or extra.get("keyfile_json")
    account = None
    if keyfile:
        from google.oauth2.service_account import Credentials

        try:
            info = json.loads(keyfile) if isinstance(keyfile, str) else dict(keyfile)
            credentials = Credentials.from_service_account_info(info, scopes=list(SCOPES))
        except (ValueError, KeyError, TypeError) as exc:
            # The message names the problem, never the key material.
            raise SheetsAuthError(
                f"connection {conn.conn_id!r}: extra 'keyfile_dict' is not a valid service-account key "
                f"({type(exc).__name__})"
            ) from None
        account = info.get("client_email")
        http = _RetryingHTTPClient(credentials, base_url=base_url, retry=retry)
    elif base_url:
        http = _RetryingHTTPClient(None, session=_RootSession(), base_url=base_url, retry=retry)
    else:
        raise SheetsAuthError(
            f"connection {conn.conn_id!r} has no extra 'keyfile_dict' (the service-account key JSON)"
        )
    http.set_timeout((10, 60))
    http.account = account
    http.conn_id = conn.conn_id
    try:
        return gspread.Spreadsheet(http, {"id": spreadsheet_id})
    except (APIError, requests.RequestException) as exc:
        raise _explain(exc, spreadsheet_id, "spreadsheets.get", conn.conn_id, account) from exc
    except GoogleAuthError as exc:
        raise _token_failure(exc, conn.conn_id) from None


# ---------------------------------------------------------------------------- reading tabs


@dataclass(frozen=True)
class TabsRead:
    """What :func:`read_tabs` read: ``values`` and ``titles`` hold only the tabs found."""

    spreadsheet_id: str
    properties: dict  # the spreadsheet's ``locale`` and ``timeZone`` (either may be absent)
    values: dict[str, list[list]]  # {title asked for: the tab's values, as people see them}
    titles: dict[str, str]  # {title asked for: the tab's own title}

    def location(self, title: str) -> str:
        """``spreadsheet <id> tab '<its own title>'`` of a tab found."""
        return f"spreadsheet {self.spreadsheet_id} tab {self.titles[title]!r}"


def read_tabs(conn: config.Conn, titles: Sequence[str], what: str, *, any_case: bool = False) -> TabsRead:
    """Read the tabs ``titles`` of the spreadsheet of ``conn`` (Kaizen's sources: the OKRs,
    the experiment registry, the team's tabs), with the sink's retries and errors.

    Two reads besides opening: the metadata (tab titles, locale, time zone), then the
    tabs found, formatted as people see them: ``values.get`` for one, one
    ``values.batchGet`` for several. A title matches a tab of that exact title, else, with
    ``any_case``, one that differs only in case and surrounding spaces. A missing tab is
    left out of the answer, not an error. A failure raises the :class:`SheetsDeliveryError`
    subclass of the cause (``transient`` kept) whose message starts
    ``Reading <what> (tab 'T' of connection 'c'): ``.
    """
    named = ", ".join(repr(t) for t in titles)
    prefix = f"Reading {what} ({'tab' if len(titles) == 1 else 'tabs'} {named} of connection {conn.conn_id!r}): "

    def failed(err: SheetsDeliveryError) -> SheetsDeliveryError:
        return type(err)(f"{prefix}{err}", transient=err.transient)

    try:
        spreadsheet = open_spreadsheet(conn)
    except SheetsDeliveryError as err:
        raise failed(err) from err
    account = getattr(spreadsheet.client, "account", None)

    def call(operation: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (APIError, requests.RequestException) as exc:
            raise failed(_explain(exc, spreadsheet.id, operation, conn.conn_id, account)) from exc
        except GoogleAuthError as exc:
            raise failed(_token_failure(exc, conn.conn_id)) from None

    meta = call("spreadsheets.get", spreadsheet.fetch_sheet_metadata,
                params={"includeGridData": "false", "fields": "properties(locale,timeZone),sheets.properties.title"})
    have = [s["properties"]["title"] for s in meta.get("sheets", [])]
    found: dict[str, str] = {}
    for title in titles:
        if title in have:
            found[title] = title
        elif any_case and (own := next((t for t in have if t.strip().lower() == title.lower()), None)):
            found[title] = own
    params = {"valueRenderOption": "FORMATTED_VALUE", "dateTimeRenderOption": "FORMATTED_STRING"}
    values: dict[str, list[list]] = {}
    if len(found) == 1:
        [(title, own)] = found.items()
        values[title] = call("values.get", spreadsheet.values_get, quote_title(own), params=params).get("values", [])
    elif found:
        got = call("values.batchGet", spreadsheet.values_batch_get, [quote_title(t) for t in found.values()],
                   params=params)
        for title, vr in zip(found, got.get("valueRanges", []), strict=True):
            values[title] = vr.get("values") or []
    return TabsRead(spreadsheet.id, meta.get("properties") or {}, values, found)


# ---------------------------------------------------------------------------- cell values


def inert_text(text: str) -> str:
    """``text`` such that no spreadsheet can read it as a formula.

    Writes use ``valueInputOption=RAW``, under which Sheets never parses input, so
    ``=HYPERLINK(…)`` would already be stored as a plain string. This is the second
    guard, for the places RAW does not reach: someone switching the sink to
    ``USER_ENTERED``, and the sheet's CSV/XLSX export opened in Excel or LibreOffice,
    which evaluate cells starting with ``= + - @`` or a tab/CR/LF. A leading apostrophe
    is the spreadsheet convention for "this is text": under USER_ENTERED Sheets hides it
    and stores the rest as text, Excel does the same on import, and under RAW it stays
    visible as one literal character — a small price, paid only by text that starts
    with one of those characters. Idempotent; numbers are never passed here (a negative
    number stays a number).
    """
    if text and text[0] in FORMULA_LEADS:
        return "'" + text
    return text


def _cell(value: Any) -> str | int | float | bool:
    """One value as it goes on the wire: JSON numbers for numbers, inert text for text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ""
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else ""
    if isinstance(value, datetime):
        return inert_text(value.isoformat(sep=" ", timespec="seconds"))
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str):  # numpy / pandas scalars
        try:
            return _cell(value.item())
        except (TypeError, ValueError):
            pass
    if value != value:  # NaN-like (pandas NA, NaT)
        return ""
    return inert_text(str(value))


def _norm(value: Any) -> Any:
    """A cell for comparison: integral floats equal ints, empty is ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _trim(row: Sequence) -> list:
    out = [_norm(v) for v in row]
    while out and out[-1] == "":
        out.pop()
    return out


def col_letters(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    out = ""
    n = index + 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def quote_title(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def a1(title: str, row0: int, col0: int, row1: int, col1: int) -> str:
    """0-based, end-exclusive bounds → ``'Tab'!A2:F9``."""
    return f"{quote_title(title)}!{col_letters(col0)}{row0 + 1}:{col_letters(col1 - 1)}{row1}"


# ---------------------------------------------------------------------------- sync


@dataclass
class _Plan:
    tab: SheetTab
    props: dict | None  # existing sheet properties, None when the tab is new
    sheet_id: int
    width: int
    header_changed: bool
    last_row: int  # rows in use after the write (header included)
    grid_rows_needed: int = 1
    data: list[dict] = field(default_factory=list)
    updated: int = 0
    appended: int = 0
    unchanged: int = 0


def _about_tab(last_sync_ist: str) -> SheetTab:
    return SheetTab(ABOUT_TAB, [LAST_SYNC_LABEL, last_sync_ist], [], key_columns=0)


def _plan_tab(tab: SheetTab, props: dict | None, sheet_id: int, existing: list[list]) -> _Plan:
    header = [_cell(h) for h in tab.header]
    old_header = _trim(existing[0]) if existing else []
    old_rows = existing[1:]
    old_width = max([len(old_header)] + [len(r) for r in old_rows]) if existing else 0
    width = len(header)
    new_rows = [[_cell(v) for v in row] + [""] * (width - len(row)) for row in tab.rows]
    plan = _Plan(tab, props, sheet_id, width, header_changed=_trim(header) != old_header, last_row=1)
    # Cells of a dropped column are blanked rather than left stale. A keyed tab may carry
    # an analyst's notes right of the old header: those columns are not ours to clear.
    clear_width = max(width, old_width if tab.key_columns == 0 else len(old_header))

    def pad(row: list) -> list:
        return row + [""] * (clear_width - len(row))

    if plan.header_changed:
        plan.data.append({"range": a1(tab.name, 0, 0, 1, clear_width), "values": [pad(header)]})

    if tab.key_columns == 0:
        # Replace: the new rows from row 2, blank rows below them down to the old last row.
        for i, row in enumerate(new_rows):
            if i < len(old_rows) and _trim(old_rows[i]) == _trim(row):
                plan.unchanged += 1
            elif i < len(old_rows) and _trim(old_rows[i]):
                plan.updated += 1
            else:
                plan.appended += 1
        if plan.updated or plan.appended or len(old_rows) > len(new_rows):
            block = [pad(r) for r in new_rows] + [
                [""] * clear_width for _ in range(len(old_rows) - len(new_rows))
            ]
            if block:
                plan.data.append({"range": a1(tab.name, 1, 0, 1 + len(block), clear_width), "values": block})
        plan.last_row = 1 + len(new_rows)
        plan.grid_rows_needed = 1 + max(len(new_rows), len(old_rows))
        return plan

    k = tab.key_columns
    where: dict[tuple, int] = {}
    for i, row in enumerate(old_rows):
        trimmed = _trim(row)
        key = tuple((trimmed + [""] * k)[:k])
        if any(part != "" for part in key):
            where.setdefault(key, i)  # a key duplicated by hand: the first row is the live one
    seen: set[tuple] = set()
    changed: dict[int, list] = {}
    appended: list[list] = []
    for row in new_rows:
        key = tuple(_norm(v) for v in row[:k])
        if all(part == "" for part in key):
            raise ValueError(f"tab {tab.name!r}: a row has an empty key (first {k} cell(s)): {row}")
        if key in seen:
            raise ValueError(f"tab {tab.name!r}: key {key} appears twice in the rows to write")
        seen.add(key)
        if key in where:
            i = where[key]
            if _trim(old_rows[i]) == _trim(row):
                plan.unchanged += 1
            else:
                changed[i] = row
        else:
            appended.append(row)
    plan.updated = len(changed)
    plan.appended = len(appended)
    # Contiguous runs of changed rows become one range each.
    run: list[int] = []
    for i in sorted(changed) + [None]:
        if run and (i is None or i != run[-1] + 1):
            plan.data.append(
                {
                    "range": a1(tab.name, 1 + run[0], 0, 2 + run[-1], clear_width),
                    "values": [pad(changed[j]) for j in run],
                }
            )
            run = []
        if i is not None:
            run.append(i)
    first_free = 1 + len(old_rows)  # `existing` is trimmed: old_rows ends at the last non-empty row
    if appended:
        plan.data.append(
            {
                "range": a1(tab.name, first_free, 0, first_free + len(appended), clear_width),
                "values": [pad(r) for r in appended],
            }
        )
    plan.last_row = first_free + len(appended)
    plan.grid_rows_needed = plan.last_row
    return plan


def _format_requests(plan: _Plan) -> list[dict]:
    sid = plan.sheet_id
    reqs: list[dict] = [
        {
            "repeatCell": {
                "range": {"sheetId": sid, "startRowIndex": 0, "endRowIndex": 1},
                "cell": {"userEnteredFormat": {"textFormat": {"bold": True}}},
                "fields": "userEnteredFormat.textFormat.bold",
            }
        }
    ]
    for column, kind in plan.tab.number_formats.items():
        c = plan.tab.header.index(column)
        reqs.append(
            {
                "repeatCell": {
                    "range": {
                        "sheetId": sid,
                        "startRowIndex": 1,
                        "startColumnIndex": c,
                        "endColumnIndex": c + 1,
                    },
                    "cell": {"userEnteredFormat": {"numberFormat": dict(NUMBER_FORMATS[kind])}},
                    "fields": "userEnteredFormat.numberFormat",
                }
            }
        )
    return reqs


def _new_sheet_id(title: str, taken: set[int]) -> int:
    """A stable id chosen by us, so one batchUpdate can add a tab and format it."""
    sid = zlib.crc32(title.encode()) & 0x3FFFFFFF
    while sid in taken or sid == 0:
        sid = (sid + 1) & 0x3FFFFFFF
    taken.add(sid)
    return sid


def _structure_requests(plans: list[_Plan], existing_count: int) -> list[dict]:
    reqs: list[dict] = []
    formats: list[dict] = []
    index = existing_count
    for plan in plans:
        rows_needed = max(plan.grid_rows_needed, 2)
        if plan.props is None:
            reqs.append(
                {
                    "addSheet": {
                        "properties": {
                            "sheetId": plan.sheet_id,
                            "title": plan.tab.name,
                            "index": index,
                            "gridProperties": {
                                "rowCount": max(DEFAULT_ROWS, rows_needed + ROW_HEADROOM),
                                "columnCount": max(DEFAULT_COLS, plan.width),
                                "frozenRowCount": 1,
                            },
                        }
                    }
                }
            )
            index += 1
            formats += _format_requests(plan)
            continue
        grid = plan.props.get("gridProperties", {})
        rows, cols = grid.get("rowCount", 0), grid.get("columnCount", 0)
        width_needed = max(plan.width, max((len(d["values"][0]) for d in plan.data), default=0))
        new_grid, fields = {}, []
        if rows_needed > rows:
            new_grid["rowCount"] = rows_needed + ROW_HEADROOM
            fields.append("gridProperties.rowCount")
        if width_needed > cols:
            new_grid["columnCount"] = width_needed
            fields.append("gridProperties.columnCount")
        if grid.get("frozenRowCount", 0) != 1:
            new_grid["frozenRowCount"] = 1
            fields.append("gridProperties.frozenRowCount")
        if fields:
            reqs.append(
                {
                    "updateSheetProperties": {
                        "properties": {"sheetId": plan.sheet_id, "gridProperties": new_grid},
                        "fields": ",".join(fields),
                    }
                }
            )
        # Formats cover the grid as it is: apply them again when the grid grew or the
        # columns may have moved (the bold header row does not depend on its text).
        if fields or (plan.header_changed and plan.tab.number_formats):
            formats += _format_requests(plan)
    return reqs + formats


def sync(spreadsheet: gspread.Spreadsheet, tabs: list[SheetTab], last_sync_ist: str) -> SyncResult:
    """Upsert ``tabs`` into ``spreadsheet`` and stamp ``last sync (IST)`` on the About tab.

    ``last_sync_ist`` is the run's time as text (e.g. ``2026-11-27 16:00 IST``), passed in
    rather than read from the clock. Raises a :class:`SheetsDeliveryError` subclass when
    Google refuses or keeps failing; nothing is half-written (each request is atomic).
    """
    if not isinstance(last_sync_ist, str) or not last_sync_ist.strip():
        raise ValueError("last_sync_ist must be a non-empty string")
    names = [t.name for t in tabs]
    if ABOUT_TAB in names:
        raise ValueError(f"tab {ABOUT_TAB!r} is written by sync itself")
    if len({n.lower() for n in names}) != len(names):
        raise ValueError(f"tab names must be unique (case-insensitive): {names}")
    all_tabs = [*tabs, _about_tab(last_sync_ist)]

    http = spreadsheet.client
    counters = (getattr(http, "sent", 0), getattr(http, "writes", 0), getattr(http, "retried", 0))
    sid = spreadsheet.id
    conn_id = getattr(http, "conn_id", config.GSHEETS_CONN_ID)
    account = getattr(http, "account", None)

    def call(operation: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (APIError, requests.RequestException) as exc:
            raise _explain(exc, sid, operation, conn_id, account) from exc
        except GoogleAuthError as exc:  # the hourly token refresh failed
            raise _token_failure(exc, conn_id) from None

    def plan() -> tuple[list[_Plan], list[dict]]:
        meta = call(
            "spreadsheets.get",
            spreadsheet.fetch_sheet_metadata,
            params={"includeGridData": "false", "fields": "sheets.properties"},
        )
        existing = {s["properties"]["title"]: s["properties"] for s in meta.get("sheets", [])}
        lower = {t.lower(): t for t in existing}
        for name in names:
            if name not in existing and name.lower() in lower:
                raise SheetsRequestError(
                    f"spreadsheet {sid!r} has a tab {lower[name.lower()]!r}; kaizen writes {name!r} "
                    "(tab titles differ only in case): rename the tab"
                )
        present = [t for t in all_tabs if t.name in existing]
        values: dict[str, list[list]] = {}
        if present:
            got = call(
                "values.batchGet",
                spreadsheet.values_batch_get,
                [quote_title(t.name) for t in present],
                params={"valueRenderOption": "UNFORMATTED_VALUE", "dateTimeRenderOption": "SERIAL_NUMBER"},
            )
            for t, vr in zip(present, got.get("valueRanges", []), strict=True):
                values[t.name] = vr.get("values", [])
        taken = {p["sheetId"] for p in existing.values()}
        plans = []
        for t in all_tabs:
            props = existing.get(t.name)
            sheet_id = props["sheetId"] if props else _new_sheet_id(t.name, taken)
            plans.append(_plan_tab(t, props, sheet_id, values.get(t.name, [])))
        return plans, _structure_requests(plans, len(existing))

    plans, structure = plan()
    if structure:
        try:
            call("spreadsheets.batchUpdate", spreadsheet.batch_update, {"requests": structure})
        except SheetsRequestError as exc:
            # "A sheet with the name … already exists": an earlier attempt was applied but
            # its answer was lost (or another sync ran): look again, once.
            if "already exists" not in str(exc):
                raise
            log.warning("Sheets %s: tabs changed while syncing (%s); planning again", sid, exc)
            plans, structure = plan()
            if structure:
                call("spreadsheets.batchUpdate", spreadsheet.batch_update, {"requests": structure})

    data = [d for p in plans for d in p.data]
    # The About tab's timestamp always differs from the last sync's or is rewritten
    # anyway, so `data` is never empty and every sync costs exactly one values write.
    if not any(d["range"].startswith(quote_title(ABOUT_TAB)) for d in data):
        data.append({"range": a1(ABOUT_TAB, 0, 0, 1, 2), "values": [[LAST_SYNC_LABEL, _cell(last_sync_ist)]]})
    call(
        "values.batchUpdate",
        spreadsheet.values_batch_update,
        {"valueInputOption": "RAW", "data": [{**d, "majorDimension": "ROWS"} for d in data]},
    )

    written = {d["range"].split("!")[0] for d in data}
    result = SyncResult(
        spreadsheet_id=sid,
        tabs_written=[p.tab.name for p in plans if quote_title(p.tab.name) in written],
        tabs_created=[p.tab.name for p in plans if p.props is None],
        rows_updated=sum(p.updated for p in plans),
        rows_appended=sum(p.appended for p in plans),
        rows_unchanged=sum(p.unchanged for p in plans),
        request_count=getattr(http, "sent", 0) - counters[0],
        write_request_count=getattr(http, "writes", 0) - counters[1],
        retries=getattr(http, "retried", 0) - counters[2],
        ranges={p.tab.name: a1(p.tab.name, 0, 0, max(p.last_row, 1), max(p.width, 1)) for p in plans},
    )
    log.info(
        "Sheets sync %s: %d row(s) updated, %d appended, %d unchanged; %d request(s), %d write(s), %d retr%s",
        sid,
        result.rows_updated,
        result.rows_appended,
        result.rows_unchanged,
        result.request_count,
        result.write_request_count,
        result.retries,
        "y" if result.retries == 1 else "ies",
    )
    return result
