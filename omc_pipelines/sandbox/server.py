"""The sandbox's HTTP server: routes, injected faults, the control API.

Each source adds its routes (see ``coinspot.py``); the server adds what is common
to all of them: faults that hit any path prefix, a log of the requests served, and
``/_sandbox/...`` endpoints to steer it from outside the process.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("429", "403", "500", "502", "503", "stall", "malformed", "truncated", "disconnect")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes or str
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Fault:
    """Answer requests whose path starts with ``path`` badly, ``times`` times (0: until cleared)."""

    path: str
    kind: str
    times: int = 1
    retry_after: float | None = None
    seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")


Handler = Callable[[Request, re.Match], Response]


def serve(*sources) -> SandboxServer:
    """A server of its own for the given sources (each has ``install``), for tests of one
    source; use it as a context manager. ``Sandbox`` serves them all."""
    server = SandboxServer()
    for source in sources:
        source.install(server)
    return server


class SandboxServer:
    """A threaded HTTP server on 127.0.0.1; ``port=0`` picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._routes: list[tuple[str, re.Pattern, Handler]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.route("POST", r"/_sandbox/faults", self._add_fault)
        self.route("DELETE", r"/_sandbox/faults", self._clear_faults)
        self.route("GET", r"/_sandbox/requests", lambda req, m: Response(body=self.requests))

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern + r"/?$"), handler))

    def start(self) -> SandboxServer:
        # stop() returns only when the serve loop next polls for shutdown: at the
        # default 0.5 s every test that starts a sandbox paid half a second to stop it.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="omc-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # release stalled requests
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests_to(self, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith(prefix)]

    def _add_fault(self, request: Request, _m) -> Response:
        try:
            self.inject(Fault(**request.json()))
        except (TypeError, ValueError) as exc:
            return Response(400, {"status": "error", "message": str(exc)})
        return Response(body={"status": "ok"})

    def _clear_faults(self, _request, _m) -> Response:
        self.clear_faults()
        return Response(body={"status": "ok"})

    def _take_fault(self, path: str) -> Fault | None:
        if path.startswith("/_sandbox"):
            return None
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path):
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _dispatch(self, request: Request) -> Response:
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                try:
                    return handler(request, match)
                except (ValueError, KeyError, TypeError) as exc:
                    return Response(400, {"status": "error", "message": f"bad request: {exc}"})
        return Response(404, {"status": "error", "message": "not found"})

    def _handler_class(server):  # noqa: N805 - the handler closes over the server
        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the body waits for
            # the client's delayed ACK and every keep-alive request took ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                fault = server._take_fault(request.path)
                if fault and fault.kind != "truncated":
                    response = server._faulty(fault)
                else:
                    response = server._dispatch(request)
                server.requests.append(
                    {"method": request.method, "path": request.path, "status": response.status if response else None,
                     "fault": fault.kind if fault else None, "at": time.time()}
                )
                if response is None:  # disconnect: close without a word
                    self.close_connection = True
                    return
                body = response.encoded()
                if fault and fault.kind == "truncated":
                    body = body[: len(body) // 2]  # a body cut short, length and all
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                try:
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up first (what a stall is for): not a server
                    # error worth a traceback on stderr in the middle of a test run.
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = _serve

        return _Handler

    def _faulty(self, fault: Fault) -> Response | None:
        if fault.kind in ("429", "403", "500", "502", "503"):
            # Retry-After carries whole seconds (or an HTTP date), never "0.5" or "1e+06".
            headers = {"Retry-After": str(math.ceil(fault.retry_after))} if fault.retry_after is not None else {}
            return Response(int(fault.kind), {"status": "error", "message": f"sandbox fault {fault.kind}"}, headers)
        if fault.kind == "stall":
            self._stop.wait(fault.seconds)
            return Response(503, {"status": "error", "message": "sandbox stall ended"})
        if fault.kind == "malformed":
            return Response(200, b"<html><body>Service temporarily unavailable</body></html>", content_type="application/json")
        return None  # disconnect
