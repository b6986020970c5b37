"""A local Slack Web API for tests: a real HTTP server on 127.0.0.1 (ephemeral port,
own thread) that the real ``slack_sdk.WebClient`` talks to through ``base_url``.

Implements ``auth.test``, ``chat.postMessage`` (with ``metadata``), ``chat.update``,
``conversations.info``, ``conversations.history`` and ``conversations.replies`` (newest
first / thread order, ``limit``, ``oldest``, metadata with ``include_all_metadata``) and
the v2 upload flow (``files.getUploadURLExternal``, the
returned upload URL, ``files.completeUploadExternal``). Answers like Slack: HTTP 200
with ``{"ok": false, "error": …}`` for API errors, HTTP 429 + ``Retry-After`` when rate
limited. Block Kit limits are checked (≤ 50 blocks, section text ≤ 3,000, header
≤ 150, fields ≤ 10 × 2,000) and violations answered ``invalid_blocks``.

Every call is recorded in :attr:`FakeSlack.calls` (method, parsed JSON or form body,
auth header). Faults are queued per method with :meth:`FakeSlack.fail`::

    slack.fail("chat.postMessage", "ratelimited", times=1)   # 429, Retry-After: 0
    slack.fail("chat.postMessage", "server_error")            # HTTP 500
    slack.fail("chat.postMessage", "lost_answer")             # processed, then HTTP 500:
                                                              # the client cannot know it posted
    slack.fail("*", "invalid_auth")                           # any method
    slack.fail("chat.postMessage", "channel_not_found")
    slack.fail("chat.postMessage", "ratelimited:7")           # 429, Retry-After: 7
    slack.fail("chat.postMessage", "invalid_blocks")          # with errors[] and
                                                              # response_metadata.messages

Faults named in :data:`DETAILED_FAULTS` answer with the details real Slack sends along
(``errors[]`` and ``response_metadata.messages`` naming the bad block by json-pointer);
any other name answers ``{"ok": false, "error": <name>}``.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VALID_TOKEN = "xoxb-test"
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000

# Faults answered with the details real Slack gives for them.
DETAILED_FAULTS = {
    "invalid_blocks": {
        "errors": ["must be less than 3001 characters [json-pointer:/blocks/1/text/text]"],
        "response_metadata": {"messages": ["[ERROR] must be less than 3001 characters "
                                           "[json-pointer:/blocks/1/text/text]"]},
    },
    "invalid_blocks_format": {
        "errors": ["invalid_blocks_format: must provide an object [json-pointer:/blocks/0/text]"],
        "response_metadata": {"messages": ["[ERROR] must provide an object [json-pointer:/blocks/0/text]"]},
    },
    "invalid_arguments": {
        "response_metadata": {"messages": ["[ERROR] missing required field: channel"]},
    },
    "msg_too_long": {},
    "too_many_attachments": {},
    "no_text": {},
    "missing_scope": {"needed": "chat:write", "provided": "channels:read"},
}


def _error_body(error: str, problems: list[str] | None = None) -> dict:
    """Slack's answer to a refused call: ``errors`` and the ``[ERROR]`` messages."""
    body = {"ok": False, "error": error}
    if problems:
        body["errors"] = list(problems)
        body["response_metadata"] = {"messages": [f"[ERROR] {p}" for p in problems]}
    return body


@dataclass
class Call:
    method: str
    body: dict
    auth: str | None
    http_status: int = 200
    response: dict = field(default_factory=dict)


def block_kit_problems(blocks) -> list[str]:
    problems = []
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"more than {MAX_BLOCKS} items [json-pointer:/blocks]")
    for i, b in enumerate(blocks):
        text = (b.get("text") or {}).get("text", "") if isinstance(b.get("text"), dict) else ""
        if b.get("type") == "header":
            if (b.get("text") or {}).get("type") != "plain_text":
                problems.append(f"header text must be plain_text [json-pointer:/blocks/{i}/text]")
            if len(text) > MAX_HEADER_TEXT:
                problems.append(
                    f"must be less than {MAX_HEADER_TEXT + 1} characters [json-pointer:/blocks/{i}/text]"
                )
        if b.get("type") == "section":
            if len(text) > MAX_SECTION_TEXT:
                problems.append(
                    f"must be less than {MAX_SECTION_TEXT + 1} characters [json-pointer:/blocks/{i}/text]"
                )
            fields = b.get("fields") or []
            if len(fields) > MAX_FIELDS:
                problems.append(f"must have at most {MAX_FIELDS} items [json-pointer:/blocks/{i}/fields]")
            for j, f in enumerate(fields):
                if len(f.get("text", "")) > MAX_FIELD_TEXT:
                    problems.append(f"too long [json-pointer:/blocks/{i}/fields/{j}/text]")
    return problems


class FakeSlack:
    def __init__(self, token: str = VALID_TOKEN, team: str = "T0KAIZEN"):
        self.token = token
        self.team = team
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict] = {}  # (channel, ts) -> message
        self.uploads: dict[str, bytes] = {}
        self.channels = {
            "C0DAILY01": "kaizen-daily",
            "C0REVIEW1": "kaizen-reviews",
            "C0OPS0001": "kaizen-ops",
        }
        self._faults: dict[str, list[str]] = {}
        self._ts = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ test helpers
    def fail(self, method: str, fault: str, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` calls of ``method`` ("*": any)."""
        with self._lock:
            self._faults.setdefault(method, []).extend([fault] * times)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def top_level_posts(self) -> list[Call]:
        return [
            c
            for c in self.calls_to("chat.postMessage")
            if not c.body.get("thread_ts") and c.http_status == 200 and c.response.get("ok")
        ]

    def thread_replies(self) -> list[Call]:
        return [
            c for c in self.calls_to("chat.postMessage") if c.body.get("thread_ts") and c.response.get("ok")
        ]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # ------------------------------------------------------------ API
    def _next_fault(self, method: str) -> str | None:
        with self._lock:
            for key in (method, "*"):
                queue = self._faults.get(key)
                if queue:
                    return queue.pop(0)
        return None

    def _new_ts(self) -> str:
        return f"1790000000.{next(self._ts):06d}"

    def handle(self, method: str, body: dict, auth: str | None) -> tuple[int, dict, dict]:
        """(HTTP status, JSON body, extra headers)."""
        fault = self._next_fault(method)
        if fault == "ratelimited" or (fault or "").startswith("ratelimited:"):
            after = fault.partition(":")[2] or "0"
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": after}
        if fault == "server_error":
            return 500, {"ok": False, "error": "internal_error"}, {}
        if fault == "lost_answer":  # Slack did the work; the answer never arrives
            self.handle(method, body, auth)
            return 500, {"ok": False, "error": "internal_error"}, {}
        if fault in DETAILED_FAULTS:
            return 200, {"ok": False, "error": fault, **json.loads(json.dumps(DETAILED_FAULTS[fault]))}, {}
        if fault:
            return 200, {"ok": False, "error": fault}, {}
        token = (auth or "").removeprefix("Bearer ").strip() or body.get("token")
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        return 200, handler(body), {}

    def _channel(self, body):
        ch = body.get("channel") or body.get("channel_id")
        return ch if ch in self.channels else None

    def api_auth_test(self, body):
        return {
            "ok": True,
            "url": "https://kaizen.slack.test/",
            "team": "Kaizen",
            "user": "kaizen",
            "team_id": self.team,
            "user_id": "U0KAIZEN",
            "bot_id": "B0KAIZEN",
        }

    def api_conversations_info(self, body):
        ch = self._channel(body)
        if ch is None:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {"id": ch, "name": self.channels[ch], "is_channel": True, "is_member": True},
        }

    def _check_message(self, body):
        if "blocks" in body:
            blocks = body["blocks"]
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            problems = block_kit_problems(blocks)
            if problems:
                return _error_body("invalid_blocks", problems)
        elif not body.get("text"):
            return {"ok": False, "error": "no_text"}
        return None

    def api_chat_postMessage(self, body):
        ch = self._channel(body)
        if ch is None:
            return {"ok": False, "error": "channel_not_found"}
        bad = self._check_message(body)
        if bad:
            return bad
        if body.get("thread_ts") and (ch, body["thread_ts"]) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        ts = self._new_ts()
        metadata = body.get("metadata")
        msg = {
            "ts": ts,
            "text": body.get("text"),
            "blocks": body.get("blocks"),
            "thread_ts": body.get("thread_ts"),
            "metadata": json.loads(metadata) if isinstance(metadata, str) else metadata,
        }
        self.messages[(ch, ts)] = msg
        return {"ok": True, "channel": ch, "ts": ts, "message": msg}

    def _listed(self, msg: dict, body: dict) -> dict:
        out = {k: v for k, v in msg.items() if v is not None and k != "metadata"}
        if msg.get("metadata") and str(body.get("include_all_metadata", "")).lower() in ("1", "true"):
            out["metadata"] = msg["metadata"]
        return out

    def api_conversations_history(self, body):
        """Top-level messages, newest first; ``oldest`` (ts) and ``limit`` (default 100)."""
        ch = self._channel(body)
        if ch is None:
            return {"ok": False, "error": "channel_not_found"}
        oldest, limit = float(body.get("oldest") or 0), int(body.get("limit") or 100)
        msgs = sorted((m for (c, _), m in self.messages.items() if c == ch and not m.get("thread_ts")
                       and float(m["ts"]) >= oldest), key=lambda m: float(m["ts"]), reverse=True)
        return {"ok": True, "messages": [self._listed(m, body) for m in msgs[:limit]],
                "has_more": len(msgs) > limit}

    def api_conversations_replies(self, body):
        """The thread of ``ts``: its parent, then the replies in order; ``limit``."""
        ch = self._channel(body)
        if ch is None:
            return {"ok": False, "error": "channel_not_found"}
        ts, limit = body.get("ts"), int(body.get("limit") or 1000)
        if (ch, ts) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        thread = [self.messages[(ch, ts)]] + sorted(
            (m for (c, _), m in self.messages.items() if c == ch and m.get("thread_ts") == ts),
            key=lambda m: float(m["ts"]))
        return {"ok": True, "messages": [self._listed(m, body) for m in thread[:limit]],
                "has_more": len(thread) > limit}

    def api_chat_update(self, body):
        ch = self._channel(body)
        if ch is None:
            return {"ok": False, "error": "channel_not_found"}
        if (ch, body.get("ts")) not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        bad = self._check_message(body)
        if bad:
            return bad
        msg = self.messages[(ch, body["ts"])]
        msg.update(text=body.get("text"), blocks=body.get("blocks"))
        return {"ok": True, "channel": ch, "ts": body["ts"], "text": body.get("text"), "message": msg}

    def api_files_getUploadURLExternal(self, body):
        if not body.get("filename") or not body.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._file_ids):08d}"
        return {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
            "file_id": file_id,
        }

    def api_files_completeUploadExternal(self, body):
        files = json.loads(body.get("files") or "[]")
        if not files:
            return {"ok": False, "error": "invalid_arguments"}
        out = []
        for f in files:
            if f.get("id") not in self.uploads:
                return {"ok": False, "error": "file_not_found"}
            out.append({"id": f["id"], "title": f.get("title"), "size": len(self.uploads[f["id"]])})
        ch = body.get("channel_id")
        if ch and ch not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if ch:  # shared: the file appears as a message of the channel (or of the thread)
            thread_ts = body.get("thread_ts") or None
            if thread_ts and (ch, thread_ts) not in self.messages:
                return {"ok": False, "error": "thread_not_found"}
            ts = self._new_ts()
            self.messages[(ch, ts)] = {"ts": ts, "text": "", "blocks": None, "thread_ts": thread_ts,
                                       "metadata": None, "files": [{"id": f["id"], "title": f["title"]} for f in out]}
        return {"ok": True, "files": out}

    def shared_files(self) -> list[str]:
        """Ids of the files shared, once per share (a duplicate upload shows twice)."""
        return [f["id"] for m in self.messages.values() for f in m.get("files") or []]

    # ------------------------------------------------------------ HTTP
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status, doc, headers=None):
                raw = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _serve(self, verb):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if parts.path.startswith("/upload/"):
                    file_id = parts.path.rsplit("/", 1)[-1]
                    fake.uploads[file_id] = raw
                    fake.calls.append(Call("upload", {"file_id": file_id, "bytes": len(raw)}, None))
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return
                if not parts.path.startswith("/api/"):
                    self._reply(404, {"ok": False, "error": "not_found"})
                    return
                method = parts.path[len("/api/") :]
                ctype = self.headers.get("Content-Type", "")
                if "application/json" in ctype:
                    body = json.loads(raw or b"{}")
                else:
                    body = {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
                body.update({k: v[-1] for k, v in parse_qs(parts.query).items()})
                call = Call(method, body, self.headers.get("Authorization"))
                with fake._lock:
                    fake.calls.append(call)
                status, doc, headers = fake.handle(method, body, call.auth)
                call.http_status, call.response = status, doc
                self._reply(status, doc, headers)

            def do_POST(self):
                self._serve("POST")

            def do_GET(self):
                self._serve("GET")

        return Handler
