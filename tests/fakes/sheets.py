"""A local Google Sheets API v4 server for tests, driven by the real gspread client.

It speaks the endpoints ``kaizen.delivery.sheets`` and gspread use, with the wire
shapes of https://developers.google.com/sheets/api/reference/rest :

    GET  /v4/spreadsheets/{id}                        spreadsheets.get (metadata)
    POST /v4/spreadsheets/{id}:batchUpdate            addSheet, updateSheetProperties,
                                                      repeatCell, updateDimensionProperties,
                                                      appendDimension, deleteSheet
    GET  /v4/spreadsheets/{id}/values:batchGet        ranges=…&valueRenderOption=…
    POST /v4/spreadsheets/{id}/values:batchUpdate     data[] + valueInputOption
    GET  /v4/spreadsheets/{id}/values/{range}         values.get
    PUT  /v4/spreadsheets/{id}/values/{range}         values.update
    POST /token                                       OAuth2 JWT-bearer token exchange

Cells are stored typed: numbers stay numbers, RAW strings stay strings, and
``USER_ENTERED`` input is parsed like the Sheets UI does (a leading ``=`` — or a
leading ``+``/``-``/``@`` that is not a number — becomes ``{"formula": …}``, a leading
``'`` marks text and is dropped, numeric strings become numbers), so a test can prove
that RAW input keeps user text inert. Writes past a sheet's grid answer 400 "exceeds
grid limits" as the real API does. Every request is recorded; faults (429 with or
without ``Retry-After``, permanent 429 — on the write or the read quota, see
:data:`QUOTA_MESSAGES` —, 5xx, 403, 404) can be switched on.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_ROWS = 1000
DEFAULT_COLS = 26

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
}
_MESSAGES = {
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per "
    "minute per user' of service 'sheets.googleapis.com' for consumer 'project_number:0'.",
    500: "Internal error encountered.",
    502: "Bad Gateway",
    503: "The service is currently unavailable.",
}
# Google's 429 names the quota that ran out: pass one as ``fail(429, message=…)``.
QUOTA_MESSAGES = {
    "write": _MESSAGES[429],
    "read": "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' "
    "of service 'sheets.googleapis.com' for consumer 'project_number:0'.",
}


class ApiError(Exception):
    def __init__(self, code: int, message: str | None = None):
        super().__init__(message or _MESSAGES.get(code, "error"))
        self.code = code
        self.message = message or _MESSAGES.get(code, "error")

    def body(self) -> dict:
        return {
            "error": {"code": self.code, "message": self.message, "status": _STATUS.get(self.code, "UNKNOWN")}
        }


# ---------------------------------------------------------------------------- A1 notation


def col_letters(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    out = ""
    n = index + 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def col_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def quote_title(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


_CELL = re.compile(r"^([A-Za-z]*)(\d*)$")


@dataclass
class Range:
    """A parsed A1 range: 0-based, end-exclusive; ``None`` means unbounded."""

    title: str | None
    r0: int | None
    c0: int | None
    r1: int | None
    c1: int | None


def parse_a1(text: str) -> Range:
    text = text.strip()
    title: str | None = None
    cells = ""
    if text.startswith("'"):
        i, buf = 1, []
        while i < len(text):
            if text[i] == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    buf.append("'")
                    i += 2
                    continue
                break
            buf.append(text[i])
            i += 1
        else:
            raise ApiError(400, f"Unable to parse range: {text}")
        title = "".join(buf)
        rest = text[i + 1 :]
        if rest and not rest.startswith("!"):
            raise ApiError(400, f"Unable to parse range: {text}")
        cells = rest[1:]
    elif "!" in text:
        title, cells = text.split("!", 1)
    else:
        # Either a sheet title or a bare cell range on the first sheet.
        if re.fullmatch(r"[A-Za-z]{0,3}\d*(:[A-Za-z]{0,3}\d*)?", text) and any(c.isdigit() for c in text):
            cells = text
        else:
            title = text
    if not cells:
        return Range(title, None, None, None, None)
    parts = cells.split(":")
    if len(parts) > 2:
        raise ApiError(400, f"Unable to parse range: {text}")
    start = _CELL.match(parts[0])
    end = _CELL.match(parts[1]) if len(parts) == 2 else start
    if not start or not end:
        raise ApiError(400, f"Unable to parse range: {text}")
    c0 = col_index(start.group(1)) if start.group(1) else None
    r0 = int(start.group(2)) - 1 if start.group(2) else None
    c1 = col_index(end.group(1)) + 1 if end.group(1) else None
    r1 = int(end.group(2)) if end.group(2) else None
    return Range(title, r0, c0, r1, c1)


# ---------------------------------------------------------------------------- model


@dataclass
class Sheet:
    sheet_id: int
    title: str
    index: int
    row_count: int = DEFAULT_ROWS
    column_count: int = DEFAULT_COLS
    frozen_rows: int = 0
    cells: dict = field(default_factory=dict)  # (row, col) -> str | int | float | bool | {"formula": str}
    formats: list = field(default_factory=list)  # repeatCell requests as applied
    dimension_props: list = field(default_factory=list)

    def properties(self) -> dict:
        grid = {"rowCount": self.row_count, "columnCount": self.column_count}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": self.index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }

    def values(self) -> list[list]:
        """Typed values from A1 to the last non-empty cell, rows right-trimmed."""
        if not self.cells:
            return []
        last_row = max(r for r, _ in self.cells)
        rows: list[list] = [[] for _ in range(last_row + 1)]
        by_row: dict[int, dict[int, object]] = {}
        for (r, c), v in self.cells.items():
            by_row.setdefault(r, {})[c] = v
        for r, cols in by_row.items():
            width = max(cols) + 1
            rows[r] = [cols.get(c, "") for c in range(width)]
        return rows


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str
    sheets: list[Sheet] = field(default_factory=list)
    next_sheet_id: int = 1

    def sheet(self, title: str | None) -> Sheet:
        if title is None:
            return sorted(self.sheets, key=lambda s: s.index)[0]
        for s in self.sheets:
            if s.title == title:
                return s
        raise ApiError(400, f"Unable to parse range: {quote_title(title)}")

    def sheet_by_id(self, sheet_id: int) -> Sheet:
        for s in self.sheets:
            if s.sheet_id == sheet_id:
                return s
        raise ApiError(400, f"Invalid requests: No grid with id: {sheet_id}")

    def metadata(self) -> dict:
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {
                "title": self.title,
                "locale": "en_IN",
                "autoRecalc": "ON_CHANGE",
                "timeZone": "Asia/Calcutta",
            },
            "sheets": [{"properties": s.properties()} for s in sorted(self.sheets, key=lambda s: s.index)],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_user_entered(value):
    """How the Sheets UI parses typed input (the part that matters for safety)."""
    if not isinstance(value, str):
        return value
    if value.startswith("'"):
        return value[1:]  # the quote prefix marks text and is not stored
    if value.startswith("="):
        return {"formula": value}
    if _NUMBER.match(value.strip()):
        number = float(value)
        return (
            int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        )
    if value[:1] in ("+", "-", "@"):
        # Spreadsheet apps treat these leads as the start of a formula.
        return {"formula": "=" + value.lstrip("@")}
    return value


@dataclass
class Fault:
    status: int
    remaining: int | None  # None: permanent
    retry_after: str | None = None
    ops: tuple[str, ...] | None = None  # only these operations; None: all
    message: str | None = None
    after_apply: bool = False  # apply the request, then answer the error (a lost response)


# ---------------------------------------------------------------------------- server


class FakeSheetsServer:
    """Start with ``with FakeSheetsServer() as fake:``; ``fake.base_url`` is the root
    to give the client (it stands for ``https://sheets.googleapis.com``)."""

    def __init__(self, require_token: str | None = None):
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.requests: list[dict] = []
        self.faults: list[Fault] = []
        self.require_token = require_token
        self.token_requests: list[dict] = []
        self.refuse_tokens = False  # the token endpoint answers invalid_grant (a revoked key)
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> FakeSheetsServer:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-sheets", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeSheetsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_uri(self) -> str:
        return self.base_url + "/token"

    # -- setup and inspection
    def create_spreadsheet(
        self, spreadsheet_id: str, title: str = "Kaizen", sheets=(("Sheet1", DEFAULT_ROWS, DEFAULT_COLS),)
    ):
        with self.lock:
            ss = Spreadsheet(spreadsheet_id, title)
            for i, (name, rows, cols) in enumerate(sheets):
                ss.sheets.append(Sheet(ss.next_sheet_id, name, i, rows, cols))
                ss.next_sheet_id += 1
            self.spreadsheets[spreadsheet_id] = ss
            return ss

    def sheet(self, spreadsheet_id: str, title: str) -> Sheet:
        return self.spreadsheets[spreadsheet_id].sheet(title)

    def values(self, spreadsheet_id: str, title: str) -> list[list]:
        with self.lock:
            return copy.deepcopy(self.sheet(spreadsheet_id, title).values())

    def fail(
        self,
        status: int,
        times: int | None = 1,
        retry_after: str | int | None = None,
        ops=None,
        message=None,
        after_apply: bool = False,
    ):
        """Answer the next ``times`` requests (all of them when ``None``) with ``status``.
        ``ops`` limits the fault to operations named as in :meth:`op_of`; ``after_apply``
        performs the request first, as when a response is lost on the way back."""
        with self.lock:
            self.faults.append(
                Fault(
                    status,
                    times,
                    None if retry_after is None else str(retry_after),
                    tuple(ops) if ops else None,
                    message,
                    after_apply,
                )
            )

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def calls(self, op: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if op is None or r["op"] == op]

    @staticmethod
    def op_of(method: str, path: str) -> str:
        if path.endswith("/values:batchUpdate"):
            return "values.batchUpdate"
        if path.endswith("/values:batchGet"):
            return "values.batchGet"
        if path.endswith(":batchUpdate"):
            return "batchUpdate"
        if "/values/" in path:
            return "values.get" if method == "GET" else "values.update"
        return "get" if method == "GET" else "unknown"

    # -- request handling (called from the handler thread)
    def handle(self, method: str, raw_path: str, headers, body_bytes: bytes) -> tuple[int, dict, dict]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        body = None
        if body_bytes:
            try:
                body = json.loads(body_bytes)
            except ValueError:
                body = body_bytes.decode("utf-8", "replace")
        if path == "/token" and method == "POST":
            with self.lock:
                self.token_requests.append({"body": body_bytes.decode()})
            if self.refuse_tokens:
                return 400, {}, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            return (
                200,
                {},
                {
                    "access_token": self.require_token or "fake-token",
                    "expires_in": 3600,
                    "token_type": "Bearer",
                },
            )
        op = self.op_of(method, path)
        record = {
            "method": method,
            "path": path,
            "query": query,
            "body": body,
            "op": op,
            "authorization": headers.get("Authorization"),
        }
        with self.lock:
            self.requests.append(record)
            fault = self._take_fault(op)
        if fault is not None and not fault.after_apply:
            record["status"] = fault.status
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return fault.status, extra, ApiError(fault.status, fault.message).body()
        if self.require_token and headers.get("Authorization") != f"Bearer {self.require_token}":
            record["status"] = 401
            return 401, {}, ApiError(401).body()
        try:
            with self.lock:
                status, payload = self._dispatch(method, path, query, body)
        except ApiError as exc:
            record["status"] = exc.code
            return exc.code, {}, exc.body()
        if fault is not None:  # applied, but the client is told it failed
            record["status"] = fault.status
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return fault.status, extra, ApiError(fault.status, fault.message).body()
        record["status"] = status
        return status, {}, payload

    def _take_fault(self, op: str) -> Fault | None:
        for fault in self.faults:
            if fault.ops and op not in fault.ops:
                continue
            if fault.remaining is None:
                return fault
            if fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _dispatch(self, method, path, query, body):
        m = re.fullmatch(r"/v4/spreadsheets/([^/:]+)(.*)", path)
        if not m:
            raise ApiError(404)
        sid, rest = m.group(1), m.group(2)
        ss = self.spreadsheets.get(sid)
        if ss is None:
            raise ApiError(404)
        if rest == "" and method == "GET":
            return 200, ss.metadata()
        if rest == ":batchUpdate" and method == "POST":
            return 200, self._batch_update(ss, body or {})
        if rest == "/values:batchGet" and method == "GET":
            opt = (query.get("valueRenderOption") or ["FORMATTED_VALUE"])[0]
            return 200, {
                "spreadsheetId": sid,
                "valueRanges": [self._read(ss, r, opt) for r in query.get("ranges", [])],
            }
        if rest == "/values:batchUpdate" and method == "POST":
            return 200, self._values_batch_update(ss, body or {})
        if rest.startswith("/values/"):
            a1 = rest[len("/values/") :]
            if method == "GET":
                opt = (query.get("valueRenderOption") or ["FORMATTED_VALUE"])[0]
                return 200, self._read(ss, a1, opt)
            if method == "PUT":
                option = (query.get("valueInputOption") or [None])[0]
                data = [{"range": a1, "values": (body or {}).get("values", [])}]
                result = self._values_batch_update(ss, {"valueInputOption": option, "data": data})
                return 200, result["responses"][0]
        raise ApiError(404)

    # -- spreadsheets.batchUpdate (atomic: applied to a copy, swapped in on success)
    def _batch_update(self, ss: Spreadsheet, body: dict) -> dict:
        work = copy.deepcopy(ss)
        replies = []
        for i, req in enumerate(body.get("requests", [])):
            if len(req) != 1:
                raise ApiError(400, f"Invalid requests[{i}]: exactly one request kind expected")
            kind, spec = next(iter(req.items()))
            handler = getattr(self, f"_req_{kind}", None)
            if handler is None:
                raise ApiError(400, f"Invalid requests[{i}]: unsupported request {kind} (fake)")
            try:
                replies.append(handler(work, spec) or {})
            except ApiError as exc:
                raise ApiError(400, f"Invalid requests[{i}].{kind}: {exc.message}") from None
        self.spreadsheets[ss.spreadsheet_id] = work
        return {"spreadsheetId": ss.spreadsheet_id, "replies": replies}

    def _req_addSheet(self, ss: Spreadsheet, spec: dict):
        props = spec.get("properties", {})
        title = props.get("title") or f"Sheet{ss.next_sheet_id}"
        if any(s.title.lower() == title.lower() for s in ss.sheets):
            raise ApiError(400, f'A sheet with the name "{title}" already exists. Please enter another name.')
        sheet_id = props.get("sheetId")
        if sheet_id is None:
            sheet_id = ss.next_sheet_id
        if any(s.sheet_id == sheet_id for s in ss.sheets):
            raise ApiError(400, f"A sheet with the id {sheet_id} already exists.")
        ss.next_sheet_id = max(ss.next_sheet_id, int(sheet_id) + 1)
        grid = props.get("gridProperties", {})
        index = props.get("index", len(ss.sheets))
        index = max(0, min(index, len(ss.sheets)))
        for s in ss.sheets:
            if s.index >= index:
                s.index += 1
        sheet = Sheet(
            int(sheet_id),
            title,
            index,
            grid.get("rowCount", DEFAULT_ROWS),
            grid.get("columnCount", DEFAULT_COLS),
            grid.get("frozenRowCount", 0),
        )
        ss.sheets.append(sheet)
        return {"addSheet": {"properties": sheet.properties()}}

    def _req_deleteSheet(self, ss: Spreadsheet, spec: dict):
        sheet = ss.sheet_by_id(spec["sheetId"])
        if len(ss.sheets) == 1:
            raise ApiError(400, "You can't remove all the sheets in a document.")
        ss.sheets.remove(sheet)
        for s in ss.sheets:
            if s.index > sheet.index:
                s.index -= 1

    def _req_updateSheetProperties(self, ss: Spreadsheet, spec: dict):
        props = spec.get("properties", {})
        sheet = ss.sheet_by_id(props.get("sheetId", 0))
        fields = [f.strip() for f in spec.get("fields", "").split(",") if f.strip()]
        if not fields:
            raise ApiError(400, "At least one field must be updated, but none specified.")
        grid = props.get("gridProperties", {})
        for f in fields:
            if f == "title":
                sheet.title = props["title"]
            elif f in (
                "gridProperties.rowCount",
                "gridProperties.columnCount",
                "gridProperties.frozenRowCount",
                "gridProperties",
            ):
                keys = (
                    ["rowCount", "columnCount", "frozenRowCount"]
                    if f == "gridProperties"
                    else [f.split(".")[1]]
                )
                for k in keys:
                    if k not in grid:
                        continue
                    v = int(grid[k])
                    if k == "rowCount":
                        if v < 1:
                            raise ApiError(400, "rowCount must be positive")
                        self._truncate(sheet, rows=v)
                        sheet.row_count = v
                    elif k == "columnCount":
                        self._truncate(sheet, cols=v)
                        sheet.column_count = v
                    else:
                        sheet.frozen_rows = v
            elif f == "index":
                sheet.index = props["index"]
            else:
                raise ApiError(400, f"unsupported field {f} (fake)")
        if sheet.frozen_rows >= sheet.row_count:
            raise ApiError(400, "You can't freeze all visible rows on the sheet.")

    @staticmethod
    def _truncate(sheet: Sheet, rows: int | None = None, cols: int | None = None):
        for r, c in list(sheet.cells):
            if (rows is not None and r >= rows) or (cols is not None and c >= cols):
                del sheet.cells[(r, c)]

    def _req_appendDimension(self, ss: Spreadsheet, spec: dict):
        sheet = ss.sheet_by_id(spec["sheetId"])
        n = int(spec["length"])
        if n < 1:
            raise ApiError(400, "length must be positive")
        if spec.get("dimension") == "ROWS":
            sheet.row_count += n
        elif spec.get("dimension") == "COLUMNS":
            sheet.column_count += n
        else:
            raise ApiError(400, "dimension must be ROWS or COLUMNS")

    def _grid_range(self, ss: Spreadsheet, grid: dict) -> Sheet:
        sheet = ss.sheet_by_id(grid.get("sheetId", 0))
        for k, limit in (
            ("startRowIndex", sheet.row_count),
            ("endRowIndex", sheet.row_count),
            ("startColumnIndex", sheet.column_count),
            ("endColumnIndex", sheet.column_count),
        ):
            if k in grid and not 0 <= int(grid[k]) <= limit:
                raise ApiError(
                    400,
                    f"Range ({grid}) exceeds grid limits. Max rows: {sheet.row_count}, max columns: {sheet.column_count}",
                )
        return sheet

    def _req_repeatCell(self, ss: Spreadsheet, spec: dict):
        if "fields" not in spec:
            raise ApiError(400, "fields is required")
        sheet = self._grid_range(ss, spec.get("range", {}))
        sheet.formats.append(copy.deepcopy(spec))

    def _req_updateDimensionProperties(self, ss: Spreadsheet, spec: dict):
        rng = spec.get("range", {})
        sheet = ss.sheet_by_id(rng.get("sheetId", 0))
        sheet.dimension_props.append(copy.deepcopy(spec))

    # -- values
    def _resolve(self, ss: Spreadsheet, a1: str) -> tuple[Sheet, Range]:
        rng = parse_a1(a1)
        return ss.sheet(rng.title), rng

    def _read(self, ss: Spreadsheet, a1: str, render: str) -> dict:
        sheet, rng = self._resolve(ss, a1)
        r0 = rng.r0 or 0
        c0 = rng.c0 or 0
        r1 = min(rng.r1 if rng.r1 is not None else sheet.row_count, sheet.row_count)
        c1 = min(rng.c1 if rng.c1 is not None else sheet.column_count, sheet.column_count)
        rows = []
        # Only the used part of the grid can hold values.
        used_r = max((r for r, _ in sheet.cells), default=-1) + 1
        used_c = max((c for _, c in sheet.cells), default=-1) + 1
        for r in range(r0, min(r1, used_r)):
            row = []
            for c in range(c0, min(c1, used_c)):
                row.append(self._render(sheet.cells.get((r, c), ""), render))
            while row and row[-1] == "":
                row.pop()
            rows.append(row)
        while rows and not rows[-1]:
            rows.pop()
        out = {
            "range": f"{quote_title(sheet.title)}!{col_letters(c0)}{r0 + 1}:{col_letters(c1 - 1)}{r1}",
            "majorDimension": "ROWS",
        }
        if rows:
            out["values"] = rows
        return out

    @staticmethod
    def _render(value, render: str):
        if value == "":
            return ""
        if isinstance(value, dict):  # formula: the fake does not evaluate it
            return value["formula"] if render == "FORMULA" else "#NAME?"
        if render in ("UNFORMATTED_VALUE", "FORMULA"):
            return value
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def _values_batch_update(self, ss: Spreadsheet, body: dict) -> dict:
        option = body.get("valueInputOption")
        if option not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, "Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED")
        planned = []
        for item in body.get("data", []):
            sheet, rng = self._resolve(ss, item["range"])
            values = item.get("values", [])
            if item.get("majorDimension", "ROWS") != "ROWS":
                raise ApiError(400, "only ROWS is supported (fake)")
            r0, c0 = rng.r0 or 0, rng.c0 or 0
            height = len(values)
            width = max((len(row) for row in values), default=0)
            if rng.r1 is not None and r0 + height > rng.r1 or rng.c1 is not None and c0 + width > rng.c1:
                raise ApiError(
                    400,
                    f"Requested writing within range [{item['range']}], but tried writing to row "
                    f"[{r0 + height}] column [{c0 + width}]",
                )
            if r0 + height > sheet.row_count or c0 + width > sheet.column_count:
                raise ApiError(
                    400,
                    f"Range ({item['range']}) exceeds grid limits. Max rows: {sheet.row_count}, "
                    f"max columns: {sheet.column_count}",
                )
            for row in values:
                for v in row:
                    if not (v is None or isinstance(v, (str, int, float, bool))):
                        raise ApiError(400, f"Invalid value at 'data.values': {json.dumps(v)}")
            planned.append((sheet, r0, c0, values, item["range"], height, width))
        responses = []
        total_cells = 0
        for sheet, r0, c0, values, _a1, height, width in planned:
            cells = 0
            for i, row in enumerate(values):
                for j, v in enumerate(row):
                    if v is None:
                        continue  # null: leave the cell as it is
                    stored = parse_user_entered(v) if option == "USER_ENTERED" else v
                    if stored == "":
                        sheet.cells.pop((r0 + i, c0 + j), None)
                    else:
                        sheet.cells[(r0 + i, c0 + j)] = stored
                    cells += 1
            total_cells += cells
            responses.append(
                {
                    "spreadsheetId": ss.spreadsheet_id,
                    "updatedRange": f"{quote_title(sheet.title)}!{col_letters(c0)}{r0 + 1}:"
                    f"{col_letters(c0 + max(width, 1) - 1)}{r0 + max(height, 1)}",
                    "updatedRows": height,
                    "updatedColumns": width,
                    "updatedCells": cells,
                }
            )
        return {
            "spreadsheetId": ss.spreadsheet_id,
            "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
            "totalUpdatedColumns": max((r["updatedColumns"] for r in responses), default=0),
            "totalUpdatedCells": total_cells,
            "totalUpdatedSheets": len({p[0].sheet_id for p in planned}),
            "responses": responses,
        }


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeSheetsServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, *args):  # keep test output quiet
        pass

    def _serve(self, method: str):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server_fake.handle(method, self.path, self.headers, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")
