"""A CloudEvents receiver on loopback: every request is parsed with the CloudEvents SDK
(`from_http`), as a real consumer would, and kept in arrival order.

It can be taken down (its port closed, then opened again on the same port), answer a
status instead of 2xx (a 500 storm, a 4xx forever), and keeps any body it cannot parse as
a CloudEvent (a chat webhook's) as plain JSON.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from cloudevents.core.bindings.http import HTTPMessage, from_http_event


@dataclass(frozen=True)
class Received:
    id: str
    type: str
    data: Any
    headers: dict[str, str]


class CloudEventsReceiver:
    def __init__(self) -> None:
        self.events: list[Received] = []
        self.bodies: list[Any] = []
        self.requests = 0
        #: The status answered (after parsing): 2xx accepts, anything else refuses.
        self.status = 200
        #: Seconds each answer takes (a slow receiver).
        self.delay = 0.0
        #: The arrival (counted from 1) that is held unanswered until `release` is set:
        #: `holding` is set once it arrives, and `held_id` is its event's id.
        self.hold_arrival: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.held_id: str | None = None
        self._arrivals = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver._held(headers, body):
                    receiver.release.wait(timeout=120)
                if receiver.delay:
                    time.sleep(receiver.delay)
                receiver._take(headers, body)
                try:
                    self.send_response(receiver.status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the sender is gone (killed while it was held)
                    pass

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port: deliveries fail with a refused connection until start()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _held(self, headers: dict[str, str], body: bytes) -> bool:
        with self._lock:
            self._arrivals += 1
            if self._arrivals != self.hold_arrival:
                return False
        self.held_id = from_http_event(HTTPMessage(headers=headers, body=body)).get_id()
        self.holding.set()
        return True

    def _take(self, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self.requests += 1
            if self.status >= 300:
                return  # refused: not received
            if headers.get("content-type", "").startswith("application/cloudevents+json"):
                event = from_http_event(HTTPMessage(headers=headers, body=body))
                self.events.append(
                    Received(event.get_id(), event.get_type(), event.get_data(), headers)
                )
            else:
                self.bodies.append(json.loads(body))

    def ids(self) -> list[str]:
        with self._lock:
            return [e.id for e in self.events]

    def unique(self) -> list[Received]:
        """The events in first-arrival order, de-duplicated by id (at-least-once)."""
        seen: set[str] = set()
        out = []
        with self._lock:
            for event in self.events:
                if event.id not in seen:
                    seen.add(event.id)
                    out.append(event)
        return out

    def wait_for(self, check: Callable[[CloudEventsReceiver], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"receiver: not there after {timeout}s; got {self.types()}")
            time.sleep(0.05)

    def types(self) -> list[str]:
        return [e.type for e in self.unique()]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
