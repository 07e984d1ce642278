"""http and inference probes against the real test model server in each of its modes.

Elapsed-time checks are correctness bounds (a probe must never hang past its timeout),
with a 1s margin for a loaded machine; they are not benchmarks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from aideploy.api.spec import Probe, Result
from aideploy.probes import ProbeResult, ProbeTarget, run_probe, run_probes, worst
from tests.support.modelserver import DEFAULT_MODEL, ModelServer, free_port

MARGIN = 1.0
GOLDEN_INPUT = [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2.5]}]
GOLDEN_OUTPUT = [{"name": "output-0", "data": [2, 5.0], "tolerance": 0.001}]


def ready_probe(**http: Any) -> Probe:
    spec = {"path": "/v2/health/ready", "body": [{"jsonPath": "$.ready", "equals": True}]}
    return Probe.model_validate({"name": "ready", "http": spec | http})


def golden_probe(**inference: Any) -> Probe:
    spec = {"inputs": GOLDEN_INPUT, "expect": GOLDEN_OUTPUT}
    return Probe.model_validate({"name": "golden", "inference": spec | inference})


def target(server: ModelServer) -> ProbeTarget:
    return ProbeTarget(base_url=server.url, model_name=DEFAULT_MODEL)


def refused_target() -> ProbeTarget:
    return ProbeTarget(base_url=f"http://127.0.0.1:{free_port()}", model_name=DEFAULT_MODEL)


def timed(probe: Probe, where: ProbeTarget) -> tuple[ProbeResult, float]:
    started = time.monotonic()
    result = asyncio.run(run_probe(probe, where))
    return result, time.monotonic() - started


def test_healthy_server_is_green(model_server: ModelServer) -> None:
    results = asyncio.run(run_probes([ready_probe(), golden_probe()], target(model_server)))
    assert [(r.name, r.kind, r.result) for r in results] == [
        ("ready", "http", Result.GREEN),
        ("golden", "inference", Result.GREEN),
    ], [r.message for r in results]
    assert worst(results) is Result.GREEN
    assert results[0].message.startswith(f"GET {model_server.url}/v2/health/ready answered 200")
    assert results[1].message.startswith("model test-model: 1 expected output(s) match")


def test_slow_answer_beyond_amber_latency_is_amber(model_server: ModelServer) -> None:
    model_server.set_mode("slow", delay=0.4)
    result, _ = timed(ready_probe(amberLatency="100ms"), target(model_server))
    assert result.result is Result.AMBER, result.message
    assert "slower than amberLatency 100ms" in result.message
    assert result.value is not None and result.value.endswith("ms")


def test_slow_answer_beyond_timeout_is_red_within_it(model_server: ModelServer) -> None:
    model_server.set_mode("slow", delay=5)
    result, elapsed = timed(ready_probe(timeout="500ms"), target(model_server))
    assert result.result is Result.RED
    assert result.message.endswith("/v2/health/ready: timed out after 500ms")
    assert elapsed < 0.5 + MARGIN


def test_failing_server_is_red(model_server: ModelServer) -> None:
    model_server.set_mode("failing")
    http, golden = asyncio.run(run_probes([ready_probe(), golden_probe()], target(model_server)))
    assert (http.result, http.value) == (Result.RED, "500")
    assert (
        "answered 500: internal error (modelserver in failing mode), expected 200" in http.message
    )
    assert golden.result is Result.RED
    assert "model test-model is not ready" in golden.message and "500" in golden.message


def test_wrong_answers_are_red_naming_the_output(model_server: ModelServer) -> None:
    model_server.set_mode("wrong")
    result, _ = timed(golden_probe(), target(model_server))
    assert (result.result, result.value) == (Result.RED, "1002.0")
    assert result.message == "model test-model: output output-0[0] is 1002.0, expected 2 ± 0.001"


def test_fp32_rounding_needs_a_tolerance(model_server: ModelServer) -> None:
    """2 x 0.1 in FP32 is 0.20000000298...: exact comparison is RED, a tolerance GREEN."""
    tensor = [{"name": "x", "datatype": "FP32", "shape": [1], "data": [0.1]}]
    exact = golden_probe(inputs=tensor, expect=[{"name": "output-0", "data": [0.2]}])
    tolerant = golden_probe(
        inputs=tensor, expect=[{"name": "output-0", "data": [0.2], "tolerance": 1e-6}]
    )
    results = asyncio.run(run_probes([exact, tolerant], target(model_server)))
    assert [r.result for r in results] == [Result.RED, Result.GREEN]


def test_not_ready_server_is_red(model_server: ModelServer) -> None:
    model_server.set_mode("not-ready")
    http, golden = asyncio.run(run_probes([ready_probe(), golden_probe()], target(model_server)))
    assert (http.result, http.value) == (Result.RED, "503")
    assert (golden.result, golden.value) == (Result.RED, "503")
    assert golden.message.startswith("model test-model is not ready: GET ")


def test_unknown_model_is_red(model_server: ModelServer) -> None:
    result, _ = timed(golden_probe(model="other"), target(model_server))
    assert result.result is Result.RED
    assert "answered 404: model other not found" in result.message


@pytest.mark.parametrize(
    ("probe", "bound"),
    [
        (ready_probe(timeout="1s"), 1.0),
        (ready_probe(timeout="1s", retries=1), 2.0),  # retries x timeout on top
        (golden_probe(timeout="1s"), 1.0),  # readiness and inference share the timeout
    ],
    ids=["http", "http-retries", "inference"],
)
def test_hanging_server_is_red_within_the_timeout(
    model_server: ModelServer, probe: Probe, bound: float
) -> None:
    model_server.set_mode("hang")
    result, elapsed = timed(probe, target(model_server))
    assert result.result is Result.RED
    assert "timed out after 1s" in result.message
    assert elapsed < bound + MARGIN, f"took {elapsed:.2f}s"


def test_probes_run_concurrently(model_server: ModelServer) -> None:
    model_server.set_mode("hang")
    probes = [ready_probe(timeout="1s").model_copy(update={"name": f"p{i}"}) for i in range(3)]
    started = time.monotonic()
    results = asyncio.run(run_probes(probes, target(model_server)))
    elapsed = time.monotonic() - started
    assert [r.name for r in results] == ["p0", "p1", "p2"]
    assert worst(results) is Result.RED
    assert elapsed < 1.0 + MARGIN, f"3 hanging probes took {elapsed:.2f}s: not concurrent"


@pytest.mark.parametrize(
    "probe",
    [ready_probe(timeout="2s"), ready_probe(timeout="2s", retries=2), golden_probe(timeout="2s")],
    ids=["http", "http-retries", "inference"],
)
def test_refused_connection_is_red_promptly(probe: Probe) -> None:
    result, elapsed = timed(probe, refused_target())
    assert result.result is Result.RED
    assert "connection refused" in result.message
    assert result.value is None
    # Refusals are retried after a short pause, never waited out to the timeout.
    assert elapsed < 1.0 + MARGIN, f"took {elapsed:.2f}s"


def test_probe_url_overrides_the_target(model_server: ModelServer) -> None:
    results = asyncio.run(
        run_probes(
            [ready_probe(url=model_server.url), golden_probe(url=model_server.url)],
            refused_target(),
        )
    )
    assert [r.result for r in results] == [Result.GREEN, Result.GREEN], [r.message for r in results]


def test_invalid_url_is_red() -> None:
    result, _ = timed(ready_probe(url="http://[::1"), refused_target())
    assert result.result is Result.RED
    assert "invalid URL" in result.message


def test_retries_recover_when_the_server_recovers(model_server: ModelServer) -> None:
    """The server fails exactly the next two requests, then is healthy: deterministic."""
    model_server.set_mode("failing", count=2)
    result, _ = timed(ready_probe(retries=2), target(model_server))
    assert result.result is Result.GREEN, result.message
    assert result.message.endswith("(after 3 attempts)")


def test_retries_give_up_and_the_last_attempt_decides(model_server: ModelServer) -> None:
    model_server.set_mode("failing", count=2)
    result, _ = timed(ready_probe(retries=1), target(model_server))
    assert (result.result, result.value) == (Result.RED, "500")
    assert result.message.endswith("(after 2 attempts)")


def test_retry_after_a_timeout_recovers(model_server: ModelServer) -> None:
    model_server.set_mode("hang", count=1)
    result, elapsed = timed(ready_probe(timeout="1s", retries=1), target(model_server))
    assert result.result is Result.GREEN, result.message
    assert elapsed < 2.0 + MARGIN


def test_no_retry_for_a_client_error(model_server: ModelServer) -> None:
    """A 404 does not change by asking again: one attempt, RED at once."""
    result, _ = timed(ready_probe(path="/nowhere", retries=3), target(model_server))
    assert (result.result, result.value) == (Result.RED, "404")
    assert "attempts" not in result.message
