"""A small, real Open Inference Protocol (v2) model server for tests, with failure modes.

Why a real server: probes must be tested against sockets that refuse, hang and answer
slowly, which no mock reproduces faithfully. It is built on the standard library
(`http.server` in a thread), not on aiohttp, so the probe client is tested against a
different HTTP implementation than its own; it runs inside synchronous pytest tests
(`ModelServer().start()`) or standalone (`python -m tests.support.modelserver --port 9000`).

Endpoints: `GET /v2/health/ready`, `GET /v2/health/live`, `GET /v2/models/{name}/ready`,
`POST /v2/models/{name}/infer` (output-i = 2 x input-i as FP32, same shape), `GET /metrics`
(Prometheus text: `model_requests_total`, `model_errors_total`,
`model_request_duration_seconds`), and `GET|POST /control` to read or switch the mode.

Modes (they act on the model API under /v2; /metrics and /control always answer at once,
so a test can watch and steer a misbehaving server):
- `healthy`;
- `failing`: every /v2 request answers 500 and counts in `model_errors_total`;
- `slow`: answers normally after `delay` seconds (default 1);
- `wrong`: inference answers 2 x input + 1000;
- `hang`: accepts the connection, reads the request, never answers (until stop());
- `not-ready`: readiness endpoints and inference answer 503; liveness stays 200.
With `count=N` a mode applies to the next N /v2 requests only, then the server is healthy
again: a deterministic "recovers between two attempts".
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Final, Literal, Self, cast, get_args

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Mode = Literal["healthy", "failing", "slow", "wrong", "hang", "not-ready"]
MODES: Final[tuple[str, ...]] = get_args(Mode)
WRONG_OFFSET: Final = 1000.0
DEFAULT_MODEL: Final = "test-model"
READY_LINE: Final = "modelserver listening on"

_MODEL_PATH: Final = re.compile(r"^/v2/models/(?P<name>[^/]+)/(?P<action>ready|infer)$")


def free_port() -> int:
    """A loopback TCP port that nobody listens on (bound, then released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Behaviour:
    mode: Mode = "healthy"
    delay: float = 1.0
    remaining: int | None = None  # None: the mode lasts until changed


class _Metrics:
    """One registry per server, so that two servers in one test process do not mix."""

    def __init__(self, models: Sequence[str]) -> None:
        self.registry = CollectorRegistry()
        labels = ["model", "endpoint"]
        self.requests = Counter(
            "model_requests",
            "Requests to the model API, by model, endpoint and status code.",
            [*labels, "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "model_errors",
            "Requests to the model API that failed with a server error (500).",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "model_request_duration_seconds",
            "Time to answer a request to the model API.",
            labels,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=self.registry,
        )
        for model in models:  # so that an error rate is 0, not "no data", before any error
            for endpoint in ("ready", "infer"):
                self.errors.labels(model, endpoint)

    def observe(self, model: str, endpoint: str, code: int, seconds: float) -> None:
        self.requests.labels(model, endpoint, str(code)).inc()
        self.latency.labels(model, endpoint).observe(seconds)
        if code == 500:
            self.errors.labels(model, endpoint).inc()


class ModelServer:
    """The server on a loopback port; `url` is its base URL once started."""

    def __init__(
        self,
        models: Sequence[str] = (DEFAULT_MODEL,),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        mode: Mode = "healthy",
        delay: float = 1.0,
    ) -> None:
        self.models = tuple(models)
        self.host = host
        self._requested_port = port
        self._behaviour = _Behaviour(mode, delay)
        self._lock = threading.Lock()
        self.released = threading.Event()  # set at stop(): hanging requests give up
        self.metrics = _Metrics(self.models)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> Self:
        self.released.clear()
        self._server = _Server((self.host, self._requested_port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),  # poll interval: stop() returns within it
            name=f"modelserver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the model server is not started")
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """host:port, as a Prometheus scrape target."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    # --- modes ---------------------------------------------------------------------
    def set_mode(self, mode: str, *, delay: float | None = None, count: int | None = None) -> None:
        """Switch behaviour; `count` limits it to the next N model API requests."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._behaviour.mode = cast(Mode, mode)
            self._behaviour.remaining = count
            if delay is not None:
                self._behaviour.delay = delay

    @property
    def mode(self) -> Mode:
        with self._lock:
            return self._behaviour.mode

    def describe(self) -> dict[str, Any]:
        with self._lock:
            b = self._behaviour
            return {"mode": b.mode, "delay": b.delay, "count": b.remaining}

    def take(self) -> tuple[Mode, float]:
        """The behaviour for one model API request; counts down a limited mode."""
        with self._lock:
            b = self._behaviour
            mode, delay = b.mode, b.delay
            if b.remaining is not None:
                b.remaining -= 1
                if b.remaining <= 0:
                    b.mode, b.remaining = "healthy", None
            return mode, delay

    # --- the model -----------------------------------------------------------------
    def infer(self, model: str, request: Any, wrong: bool) -> tuple[int, dict[str, Any]]:
        """output-i = 2 x input-i, rounded to FP32 as a real FP32 model would."""
        inputs = request.get("inputs") if isinstance(request, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return 400, {"error": "the request has no inputs"}
        outputs = []
        for i, tensor in enumerate(inputs):
            shape = tensor.get("shape") if isinstance(tensor, dict) else None
            data = _flatten(tensor.get("data")) if isinstance(tensor, dict) else None
            if not isinstance(shape, list) or data is None:
                return 400, {"error": f"input {i} needs a shape and a data list"}
            if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in data):
                return 400, {"error": f"input {i}: this model only takes numbers"}
            if math.prod(shape) != len(data):
                return 400, {"error": f"input {i}: shape {shape} does not hold {len(data)} values"}
            offset = WRONG_OFFSET if wrong else 0.0
            outputs.append(
                {
                    "name": f"output-{i}",
                    "datatype": "FP32",
                    "shape": shape,
                    "data": [_fp32(2 * x + offset) for x in data],
                }
            )
        answer: dict[str, Any] = {"model_name": model, "model_version": "1", "outputs": outputs}
        if isinstance(request, dict) and "id" in request:
            answer["id"] = request["id"]
        return 200, answer


def _fp32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def _flatten(data: Any) -> list[Any] | None:
    if not isinstance(data, list):
        return None
    flat: list[Any] = []
    for item in data:
        inner = _flatten(item) if isinstance(item, list) else [item]
        if inner is None:
            return None
        flat.extend(inner)
    return flat


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: ModelServer
    ) -> None:
        self.app = app
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read results, not access logs."""

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        if path == "/metrics" and method == "GET":
            self._send(200, generate_latest(app.metrics.registry), CONTENT_TYPE_LATEST)
        elif path == "/control":
            self._control(method, body)
        elif path in ("/v2/health/ready", "/v2/health/live") and method == "GET":
            self._model_api("", path.rsplit("/", 1)[1], body)
        elif (match := _MODEL_PATH.match(path)) is not None:
            wanted = "GET" if match.group("action") == "ready" else "POST"
            if method != wanted:
                self._json(405, {"error": f"use {wanted} for {path}"})
            else:
                self._model_api(match.group("name"), match.group("action"), body)
        else:
            self._json(404, {"error": f"no route for {method} {path}"})

    def _control(self, method: str, body: bytes) -> None:
        app = self.server.app
        if method == "POST":
            try:
                request = json.loads(body or b"{}")
                app.set_mode(
                    request["mode"], delay=request.get("delay"), count=request.get("count")
                )
            except (ValueError, KeyError, TypeError) as exc:
                self._json(400, {"error": f"expected {{'mode': one of {list(MODES)}}}: {exc}"})
                return
        self._json(200, app.describe())

    def _model_api(self, model: str, endpoint: str, body: bytes) -> None:
        app = self.server.app
        started = time.monotonic()
        mode, delay = app.take()
        if mode == "hang":
            app.released.wait()
            self.close_connection = True
            return
        if mode == "slow" and app.released.wait(delay):
            return
        code, answer = self._answer(model, endpoint, body, mode)
        self._json(code, answer)
        app.metrics.observe(model, endpoint, code, time.monotonic() - started)

    def _answer(self, model: str, endpoint: str, body: bytes, mode: Mode) -> tuple[int, Any]:
        app = self.server.app
        if mode == "failing":
            return 500, {"error": "internal error (modelserver in failing mode)"}
        if model and model not in app.models:
            return 404, {"error": f"model {model} not found"}
        not_ready = mode == "not-ready"
        if endpoint == "live":
            return 200, {"live": True}
        if endpoint == "ready":
            answer = {"ready": not not_ready} | ({"name": model} if model else {})
            return (503 if not_ready else 200), answer
        if not_ready:
            return 503, {"error": f"model {model} is not ready"}
        try:
            request = json.loads(body)
        except ValueError:
            return 400, {"error": "the request body is not JSON"}
        return app.infer(model, request, wrong=mode == "wrong")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _json(self, code: int, payload: Any) -> None:
        self._send(code, json.dumps(payload).encode(), "application/json")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout); nothing to answer to


def main(argv: Sequence[str] | None = None) -> None:
    """Run standalone until SIGTERM or Ctrl-C; prints READY_LINE and the URL when up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--model", action="append", help=f"served model (default {DEFAULT_MODEL})")
    parser.add_argument("--mode", default="healthy", choices=MODES)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds added in slow mode")
    args = parser.parse_args(argv)
    server = ModelServer(
        args.model or [DEFAULT_MODEL],
        host=args.host,
        port=args.port,
        mode=cast(Mode, args.mode),
        delay=args.delay,
    )
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with server:
        print(f"{READY_LINE} {server.url}", flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
