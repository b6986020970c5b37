"""A tiny threaded HTTP server base for the fake APIs: real sockets on 127.0.0.1 with
an ephemeral port, a request log, and switchable faults consumed one per request.
GET requests go to ``route``; POST, PUT and PATCH, with their parsed JSON body, to
``route_write`` (405 unless a fake implements it); the log records method and body.

Besides each service's own error answers (``fault(kind)`` of the subclass), every fake
knows the transport faults of :data:`TRANSPORT_FAULTS`, answered over the wire as a
broken server or proxy would:

- ``truncated``: status 200 and a Content-Length, then half the JSON body and a close;
- ``truncated_chunked``: chunked transfer encoding, one chunk of JSON, then a close
  before the last chunk;
- ``bad_gzip``: ``Content-Encoding: gzip`` over bytes that are not gzip;
- ``html``: status 200 with an HTML page (a proxy's login or error page);
- ``trickle``: status 200 and a JSON body sent one byte every :attr:`FakeAPI.trickle_s`
  seconds (a server that never times out a read but never finishes either)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TRANSPORT_FAULTS = frozenset({"truncated", "truncated_chunked", "bad_gzip", "html", "trickle"})

HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Sign in - Corporate Proxy</title></head>\n"
    "<body><h1>Authentication required</h1><form action=\"/login\"></form></body></html>\n"
)
PARTIAL_JSON = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {"job": "x"}, "values": [[1790000000 + 60 * i, "1"] for i in range(40)]}]}}).encode()


class FakeAPI:
    """Subclasses implement ``route(method, path, query, headers) -> (status, headers, body)``
    and ``fault(kind) -> (status, headers, body)`` for the service's real error bodies."""

    def __init__(self):
        self.requests: list[dict] = []
        self.faults: list[str] = []  # consumed first-in first-out, one per request
        self.always: str | None = None  # a permanent fault, e.g. "401"
        self.trickle_s = 0.2  # the pause between two bytes of a "trickle" answer
        self._httpd = None
        self._thread = None

    # -- lifecycle
    def start(self) -> FakeAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per response

            def do_GET(self):  # noqa: N802
                self.serve("GET")

            def do_POST(self):  # noqa: N802
                self.serve("POST")

            def do_PUT(self):  # noqa: N802
                self.serve("PUT")

            def do_PATCH(self):  # noqa: N802
                self.serve("PATCH")

            def serve(self, method):
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                headers = {k.lower(): v for k, v in self.headers.items()}
                sent = None
                if method != "GET":
                    raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    try:
                        sent = json.loads(raw) if raw else None
                    except ValueError:
                        sent = raw
                fake.requests.append({"method": method, "path": parts.path, "query": query, "headers": headers,
                                      "body": sent})
                kind = fake.always or (fake.faults.pop(0) if fake.faults else None)
                if kind in TRANSPORT_FAULTS:
                    self.transport_fault(kind)
                    return
                if kind:
                    status, hdrs, body = fake.fault(kind)
                elif method == "GET":
                    status, hdrs, body = fake.route("GET", parts.path, query, headers)
                else:
                    status, hdrs, body = fake.route_write(method, parts.path, query, headers, sent)
                data = (
                    body
                    if isinstance(body, bytes)
                    else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
                )
                self.send_response(status)
                hdrs = {"Content-Type": "application/json; charset=utf-8", **(hdrs or {})}
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def transport_fault(self, kind):
                if kind == "html":
                    self._send_head(200, {"Content-Type": "text/html; charset=utf-8",
                                          "Content-Length": str(len(HTML_PAGE.encode()))})
                    self.wfile.write(HTML_PAGE.encode())
                    return
                self.close_connection = True
                try:
                    if kind == "truncated":
                        self._send_head(200, {"Content-Type": "application/json",
                                              "Content-Length": str(len(PARTIAL_JSON))})
                        self.wfile.write(PARTIAL_JSON[: len(PARTIAL_JSON) // 2])
                    elif kind == "truncated_chunked":
                        self._send_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
                        part = PARTIAL_JSON[: len(PARTIAL_JSON) // 2]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    elif kind == "bad_gzip":
                        junk = b"this is not gzip at all" * 10
                        self._send_head(200, {"Content-Type": "application/json", "Content-Encoding": "gzip",
                                              "Content-Length": str(len(junk))})
                        self.wfile.write(junk)
                    elif kind == "trickle":
                        body = json.dumps({"status": "success", "padding": "x" * 4096}).encode()
                        self._send_head(200, {"Content-Type": "application/json",
                                              "Content-Length": str(len(body))})
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(fake.trickle_s)
                    self.wfile.flush()
                except OSError:  # the client gave up and closed: what the fault is for
                    pass

            def _send_head(self, status, headers):
                self.send_response(status)
                if self.close_connection:  # say so, or a client may reuse the socket this closes
                    self.send_header("Connection", "close")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- to implement
    def route(self, method, path, query, headers):  # pragma: no cover - abstract
        raise NotImplementedError

    def fault(self, kind):  # pragma: no cover - abstract
        raise NotImplementedError

    def route_write(self, method, path, query, headers, body):
        """A POST/PUT/PATCH with its parsed JSON ``body``; a fake that takes none answers 405."""
        return 405, {}, {"message": f"{method} not supported by this fake"}

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]


def q1(query: dict, name: str, default=None):
    v = query.get(name)
    return v[0] if v else default
