"""What every probe rule works on and produces, free of I/O.

The rules (http, inference, prometheus) are pure functions from an `Exchange` (what a
server answered) to a `Verdict` (GREEN/AMBER/RED, the measured value, one sentence), so
that each mapping can be tested from a table without a server, and the I/O layer stays a
thin shell that only turns network trouble into RED verdicts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from aideploy.api.spec import Result

# Values quoted in messages are cut here: a status message is read by people, not parsed.
_QUOTE_LIMIT: Final = 80


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and the complete answer to it."""

    method: str
    url: str
    status: int
    body: bytes
    latency_seconds: float

    def json(self) -> Any:
        """The body as JSON; raises ValueError (json.JSONDecodeError) if it is not JSON."""
        return json.loads(self.body.decode("utf-8", errors="replace"))

    def snippet(self) -> str:
        """The start of the body on one line, to quote a non-JSON answer in a message."""
        text = " ".join(self.body.decode("utf-8", errors="replace").split())
        return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 3] + "..."

    @property
    def request(self) -> str:
        return f"{self.method} {self.url}"


@dataclass(frozen=True)
class Verdict:
    """A probe's outcome before the runner adds its name, kind and duration."""

    result: Result
    value: str | None
    message: str


def worst_result(results: Iterable[Result]) -> Result | None:
    """The most severe of `results`; None when there are none (nothing was measured)."""
    found = list(results)
    return max(found, key=lambda r: r.severity) if found else None


def format_seconds(seconds: float) -> str:
    """A duration as people read it: "2s", "1.3s", "42ms"."""
    if seconds >= 100:
        return f"{seconds:.0f}s"
    if seconds >= 1:
        return f"{seconds:.3g}s"
    return f"{seconds * 1000:.3g}ms"


def format_number(value: float) -> str:
    """A measured number without float noise: 0.042, 17, 1.5e-07, NaN, +Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.6g}"


def quote_json(value: Any) -> str:
    """A JSON value as it would appear in the document (true, "x", [1, 2]), shortened."""
    try:
        text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 3] + "..."


def json_equal(actual: Any, expected: Any) -> bool:
    """Equality as JSON means it: 1 equals 1.0, but true is not 1 (Python says it is)."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return actual == expected
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            json_equal(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            json_equal(actual[k], expected[k]) for k in actual
        )
    return type(actual) is type(expected) and bool(actual == expected)


def server_error_text(exchange: Exchange) -> str:
    """What a failed answer says: the `error` field of a JSON body, else the body's start.

    Open Inference Protocol and Prometheus both answer errors as `{"error": "..."}`.
    """
    try:
        payload = exchange.json()
    except ValueError:
        return exchange.snippet()
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return str(payload["error"])
    return exchange.snippet()


def answered(exchange: Exchange) -> str:
    """ "GET http://x/y answered 503" plus the server's own words when it gave any."""
    detail = server_error_text(exchange)
    suffix = f": {detail}" if detail else ""
    return f"{exchange.request} answered {exchange.status}{suffix}"
