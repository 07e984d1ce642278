"""How an Open Inference Protocol (v2) golden-input check maps to GREEN / RED.

Two answers are judged in turn:
1. `GET /v2/models/{model}/ready`: anything but 200 (or a 200 whose JSON says
   `"ready": false`) is RED: a model that is not ready cannot be verified.
2. `POST /v2/models/{model}/infer`: a non-200 answer, a body without `outputs`, a missing
   expected output, a length or shape mismatch, or an element outside `tolerance` is RED,
   naming the output, the index, the expected and the actual value. Otherwise GREEN with
   the inference latency as value.
Numbers compare within `tolerance` (absolute); booleans and strings (BYTES) compare
exactly. Nested data (some servers nest by shape) is flattened in row-major order first.
"""

from __future__ import annotations

import math
from typing import Any

from aideploy.api.spec import InferenceProbe, OutputExpectation, Result
from aideploy.probes.base import Exchange, Verdict, answered, format_seconds, quote_json


def infer_request(spec: InferenceProbe) -> dict[str, Any]:
    """The OIP v2 request body for the probe's inputs."""
    return {"inputs": [tensor.model_dump(mode="json") for tensor in spec.inputs]}


def map_model_ready(model: str, exchange: Exchange) -> Verdict | None:
    """RED if the readiness answer says the model is not ready; None means go on."""
    if exchange.status != 200:
        return Verdict(
            Result.RED,
            str(exchange.status),
            f"model {model} is not ready: {answered(exchange)}",
        )
    try:
        payload = exchange.json()
    except ValueError:
        return None  # Triton answers 200 with an empty body: the status is the answer.
    if isinstance(payload, dict) and payload.get("ready") is False:
        return Verdict(
            Result.RED, "false", f"model {model} is not ready: {exchange.request} said ready=false"
        )
    return None


def map_inference(spec: InferenceProbe, model: str, exchange: Exchange) -> Verdict:
    """The verdict on the infer answer against every `expect` entry."""
    if exchange.status != 200:
        return Verdict(
            Result.RED,
            str(exchange.status),
            f"inference on model {model} failed: {answered(exchange)}",
        )
    try:
        payload = exchange.json()
    except ValueError:
        return Verdict(
            Result.RED,
            None,
            f"{exchange.request}: the answer is not JSON ({exchange.snippet() or 'empty'})",
        )
    outputs = payload.get("outputs") if isinstance(payload, dict) else None
    if not isinstance(outputs, list):
        return Verdict(Result.RED, None, f"{exchange.request}: the answer has no outputs list")
    by_name = {
        o["name"]: o for o in outputs if isinstance(o, dict) and isinstance(o.get("name"), str)
    }
    for expectation in spec.expect:
        failure = _check_output(expectation, by_name)
        if failure is not None:
            value, problem = failure
            return Verdict(Result.RED, value, f"model {model}: {problem}")
    latency = format_seconds(exchange.latency_seconds)
    checked = f"{len(spec.expect)} expected output(s) match" if spec.expect else "it answered"
    return Verdict(Result.GREEN, latency, f"model {model}: {checked}, in {latency}")


def _check_output(
    expectation: OutputExpectation, outputs: dict[str, dict[str, Any]]
) -> tuple[str | None, str] | None:
    name = expectation.name
    output = outputs.get(name)
    if output is None:
        present = ", ".join(sorted(outputs)) or "none"
        return None, f"output {name} is missing from the answer (outputs: {present})"
    actual = flatten(output.get("data"))
    if actual is None:
        return None, f"output {name} has no data list"
    expected = flatten(expectation.data) or []
    shape = output.get("shape")
    if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
        size = math.prod(shape)
        if size != len(actual):
            return (
                str(len(actual)),
                f"output {name} has shape {shape} ({size} values) but {len(actual)} data values",
            )
    if len(actual) != len(expected):
        return str(len(actual)), f"output {name} has {len(actual)} values, expected {len(expected)}"
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if not _close(got, want, expectation.tolerance):
            within = f" ± {expectation.tolerance:g}" if _is_number(want) else ""
            return (
                quote_json(got),
                f"output {name}[{index}] is {quote_json(got)}, expected {quote_json(want)}{within}",
            )
    return None


def flatten(data: Any) -> list[Any] | None:
    """Row-major flattening of nested lists; None if `data` is not a list at all."""
    if not isinstance(data, list):
        return None
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _close(actual: Any, expected: Any, tolerance: float) -> bool:
    if _is_number(actual) and _is_number(expected):
        if actual == expected:  # also +Inf == +Inf, where the difference is NaN
            return True
        if math.isnan(expected):
            return math.isnan(actual)
        return bool(abs(actual - expected) <= tolerance)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return type(actual) is type(expected) and bool(actual == expected)
