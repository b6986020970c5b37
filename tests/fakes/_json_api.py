"""A tiny threaded HTTP server base for the fake APIs: real sockets on 127.0.0.1 with
an ephemeral port, a request log, and switchable faults consumed one per request."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeAPI:
    """Subclasses implement ``route(method, path, query, headers) -> (status, headers, body)``
    and ``fault(kind) -> (status, headers, body)`` for the service's real error bodies."""

    def __init__(self):
        self.requests: list[dict] = []
        self.faults: list[str] = []  # consumed first-in first-out, one per request
        self.always: str | None = None  # a permanent fault, e.g. "401"
        self._httpd = None
        self._thread = None

    # -- lifecycle
    def start(self) -> FakeAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per response

            def do_GET(self):  # noqa: N802
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append({"path": parts.path, "query": query, "headers": headers})
                kind = fake.always or (fake.faults.pop(0) if fake.faults else None)
                if kind:
                    status, hdrs, body = fake.fault(kind)
                else:
                    status, hdrs, body = fake.route("GET", parts.path, query, headers)
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

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
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

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]


def q1(query: dict, name: str, default=None):
    v = query.get(name)
    return v[0] if v else default
