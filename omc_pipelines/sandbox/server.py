"""The sandbox's HTTP server: routes, injected faults, the control API.

Each source adds its routes (see ``coinspot.py``); the server adds what is common
to all of them: faults that hit any path prefix, a log of the requests served (and
``arrivals``, of every request as it arrives, a stalled one too), and
``/_sandbox/...`` endpoints to steer it from outside the process.

The faults: ``429``, ``403``, ``500``, ``502``, ``503`` (that status, ``retry_after``
as its header); ``stall`` (no answer for ``seconds``, then a 503); ``malformed`` (HTML
labelled JSON); ``disconnect`` (closed without a word); and, made from the route's real
answer, ``truncated`` (cut in half), ``drip`` (headers, then the body a byte every
``seconds``), ``empty`` (a 200 with no body) and ``wrong_shape`` (the JSON mutated by
``variant``, see :func:`wrong_shape`); ``oversized`` is a 200 of ``size`` bytes, sent in
chunks, its length ``declared`` or not (``chunked``). Where nothing should listen at
all, :func:`unreachable_url`.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("429", "403", "500", "502", "503", "stall", "malformed", "truncated", "disconnect",
               "drip", "empty", "wrong_shape", "oversized")
# The kinds that come in variants; the first is the default.
FAULT_VARIANTS = {"wrong_shape": ("missing", "types", "negative", "zero"), "oversized": ("declared", "chunked")}
# Faults made from the route's real answer.
FROM_THE_ROUTE = ("truncated", "drip", "empty", "wrong_shape")
STALL_SECONDS = 30.0
DRIP_SECONDS = 2.0
# Twice the HTTP layer's default cap (omc_pipelines.sources.http.MAX_BYTES): well past it.
OVERSIZED_BYTES = 64 * 1024 * 1024
OVERSIZED_CHUNK = 64 * 1024


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
    """Answer requests whose path starts with ``path`` badly, ``times`` times (0: until cleared).

    ``seconds``: how long a stall lasts (30 s), or the pause between two bytes of a drip (2 s);
    ``variant``: see ``FAULT_VARIANTS``; ``size``: the bytes of an oversized answer."""

    path: str
    kind: str
    times: int = 1
    retry_after: float | None = None
    seconds: float | None = None
    variant: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        variants = FAULT_VARIANTS.get(self.kind, ())
        if self.variant is not None and not variants:
            raise ValueError(f"fault kind {self.kind!r} has no variants")
        if self.variant is not None and self.variant not in variants:
            raise ValueError(f"unknown {self.kind} variant {self.variant!r}; known: {', '.join(variants)}")
        self.variant = self.variant or (variants[0] if variants else None)
        if self.size is not None and (self.kind != "oversized" or not isinstance(self.size, int) or self.size < 1):
            raise ValueError("size is the bytes of an oversized answer, a whole number, 1 at least")
        if self.kind == "oversized" and self.size is None:
            self.size = OVERSIZED_BYTES
        if self.seconds is not None and self.seconds < 0:
            raise ValueError("seconds cannot be negative")
        if self.seconds is None:
            self.seconds = DRIP_SECONDS if self.kind == "drip" else STALL_SECONDS


_NUMBER_TEXT = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def wrong_shape(value: Any, variant: str) -> Any:
    """Decoded JSON mutated the same way all through, for any source: ``missing`` drops the
    (alphabetically) first field of every object; ``types`` turns numbers into words ("n/a")
    and text into numbers (its value when it reads as one, else its length); ``negative`` and
    ``zero`` negate or zero every number, and numeric text alike (prices often come as text)."""
    if isinstance(value, dict):
        dropped = min(value, default=None) if variant == "missing" else None
        return {key: wrong_shape(item, variant) for key, item in value.items() if key != dropped}
    if isinstance(value, list):
        return [wrong_shape(item, variant) for item in value]
    if variant == "missing" or value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return {"types": "n/a", "negative": -value, "zero": 0}[variant]
    numeric = _NUMBER_TEXT.fullmatch(value) is not None
    if variant == "types":
        return (int(value) if value.lstrip("-").isdigit() else float(value)) if numeric else len(value)
    if not numeric:
        return value
    if variant == "zero":
        return "0"
    return value[1:] if value.startswith("-") else f"-{value}"


def unreachable_url() -> str:
    """A URL where nothing listens, so that connecting is refused: a free port, closed again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


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
        # Every request as it arrives: ``requests`` logs one when it is answered, which for a
        # stall is long after the client gave up on it.
        self.arrivals: list[dict[str, Any]] = []
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

            def handle(self) -> None:
                try:
                    super().handle()
                except ConnectionResetError:
                    # A client that stops reading an answer (too big, too slow) resets the
                    # connection: the next read of a request fails, and there is nothing to report.
                    self.close_connection = True

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
                server.arrivals.append({"method": request.method, "path": request.path, "at": time.time()})
                fault = server._take_fault(request.path)
                response = server._answer(request, fault)
                server.requests.append(
                    {"method": request.method, "path": request.path, "status": response.status if response else None,
                     "fault": fault.kind if fault else None, "at": time.time()}
                )
                if response is None:  # disconnect: close without a word
                    self.close_connection = True
                    return
                body = response.encoded()
                oversized = fault.size if fault and fault.kind == "oversized" else None
                chunked = oversized is not None and fault.variant == "chunked"
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(oversized or len(body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                try:
                    self.end_headers()
                    if oversized:
                        self._send_oversized(oversized, chunked)
                    elif fault and fault.kind == "drip":
                        self._drip(body, fault.seconds)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up first (what a stall is for): not a server
                    # error worth a traceback on stderr in the middle of a test run.
                    self.close_connection = True

            def _drip(self, body: bytes, seconds: float) -> None:
                for i in range(len(body)):
                    if i and server._stop.wait(seconds):  # the server stops: cut the answer short
                        self.close_connection = True
                        return
                    self.wfile.write(body[i:i + 1])

            def _send_oversized(self, size: int, chunked: bool) -> None:
                # Chunk by chunk, so that neither end need hold the whole answer.
                for sent in range(0, size, OVERSIZED_CHUNK):
                    chunk = b"x" * min(OVERSIZED_CHUNK, size - sent)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_DELETE = _serve

        return _Handler

    def _answer(self, request: Request, fault: Fault | None) -> Response | None:
        """The answer to send: the route's, the route's made faulty, or the fault's own (None: disconnect)."""
        if fault is None:
            return self._dispatch(request)
        if fault.kind not in FROM_THE_ROUTE:
            return self._faulty(fault)
        response = self._dispatch(request)
        if fault.kind == "truncated":
            body = response.encoded()
            return Response(response.status, body[: len(body) // 2], response.headers, response.content_type)
        if fault.kind == "empty":
            return Response(200, b"", content_type=response.content_type)
        if fault.kind == "wrong_shape":
            return _reshaped(response, fault.variant)
        return response  # drip: the real answer, delivered slowly

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
        if fault.kind == "oversized":
            return Response(200, b"")  # its body is streamed as it is sent
        return None  # disconnect


def _reshaped(response: Response, variant: str) -> Response:
    """A JSON answer mutated by ``wrong_shape``; any other answer as it is."""
    payload = response.body
    if isinstance(payload, (bytes, str)):
        if "json" not in response.content_type:
            return response
        try:
            payload = json.loads(payload)
        except ValueError:
            return response
    return Response(response.status, wrong_shape(payload, variant), response.headers, response.content_type)
