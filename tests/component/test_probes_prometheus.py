"""prometheus probes against a real Prometheus that scrapes the test model server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from aideploy.api.spec import Probe, Result
from aideploy.probes import ProbeResult, ProbeTarget, run_probe
from tests.support.modelserver import DEFAULT_MODEL, ModelServer, free_port
from tests.support.prometheus import PrometheusServer, promtool_path

ERROR_RATE = "sum(rate(model_errors_total[30s]))"


def prometheus_probe(url: str, query: str, **extra: Any) -> Probe:
    spec = {"url": url, "query": query, "green": "<= 0.01", "red": "> 0.05"} | extra
    return Probe.model_validate({"name": "signal", "prometheus": spec})


def run(probe: Probe) -> ProbeResult:
    return asyncio.run(run_probe(probe, ProbeTarget("http://unused.invalid", DEFAULT_MODEL)))


def infer(server: ModelServer, times: int) -> None:
    body = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}
    ).encode()
    for _ in range(times):
        request = urllib.request.Request(
            f"{server.url}/v2/models/{DEFAULT_MODEL}/infer", data=body, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5):
                pass
        except urllib.error.HTTPError:
            pass  # failing mode answers 500: that is the point


def test_error_rate_green_while_healthy_red_when_failing(
    prometheus: PrometheusServer, healthy_scraped_model: ModelServer
) -> None:
    # rate() needs two scrapes; wait until Prometheus has a value at all.
    prometheus.wait_for_data(ERROR_RATE)
    healthy = run(prometheus_probe(prometheus.url, ERROR_RATE))
    assert (healthy.result, healthy.value) == (Result.GREEN, "0"), healthy.message
    assert healthy.kind == "prometheus"

    healthy_scraped_model.set_mode("failing")
    infer(healthy_scraped_model, 20)
    prometheus.wait_for_data(ERROR_RATE, lambda values: bool(values) and values[0] > 0.05)
    failing = run(prometheus_probe(prometheus.url, ERROR_RATE))
    assert failing.result is Result.RED, failing.message
    assert failing.value is not None and float(failing.value) > 0.05
    assert "matches red > 0.05" in failing.message


def test_no_data_maps_to_no_data_result(prometheus: PrometheusServer) -> None:
    query = "sum(rate(model_metric_that_does_not_exist_total[30s]))"
    default = run(prometheus_probe(prometheus.url, query))
    assert (default.result, default.value) == (Result.AMBER, None)
    assert "returned no data; noData is AMBER" in default.message
    strict = run(prometheus_probe(prometheus.url, query, noData="RED"))
    assert strict.result is Result.RED


def test_malformed_query_is_red_with_prometheus_error(prometheus: PrometheusServer) -> None:
    result = run(prometheus_probe(prometheus.url, "sum(rate(model_errors_total[30s])"))
    assert result.result is Result.RED
    assert "Prometheus rejected" in result.message
    assert "bad_data: " in result.message and "parse error" in result.message


def test_scalar_result(prometheus: PrometheusServer, healthy_scraped_model: ModelServer) -> None:
    prometheus.wait_for_data("up")
    result = run(prometheus_probe(prometheus.url, "scalar(sum(up))", green=">= 1", red="< 1"))
    assert (result.result, result.value) == (Result.GREEN, "1"), result.message


def test_range_vector_is_red(prometheus: PrometheusServer) -> None:
    result = run(prometheus_probe(prometheus.url, "model_errors_total[1m]"))
    assert result.result is Result.RED
    assert "returns a matrix" in result.message


def test_unreachable_prometheus_is_red() -> None:
    result = run(prometheus_probe(f"http://127.0.0.1:{free_port()}", "up", timeout="2s"))
    assert result.result is Result.RED
    assert "/api/v1/query: connection refused" in result.message


def test_promtool_checks_the_generated_config(prometheus: PrometheusServer) -> None:
    done = subprocess.run(
        [str(promtool_path()), "check", "config", str(prometheus.workdir / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# Faults a real Prometheus can answer with: the probe must decide, never crash or wait.


def test_nan_answers_are_no_data(prometheus: PrometheusServer) -> None:
    """0/0 is what an error ratio answers without traffic: NaN, neither good nor bad."""
    for query in ("0/0", "vector(0) / 0"):
        result = run(prometheus_probe(prometheus.url, query))
        assert (result.result, result.value) == (Result.AMBER, None), (query, result.message)
        assert "returned no data" in result.message


def test_nan_series_next_to_real_values_are_ignored(prometheus: PrometheusServer) -> None:
    query = 'label_replace(vector(0) / 0, "pod", "idle", "", "") or vector(0.2)'
    result = run(prometheus_probe(prometheus.url, query))
    assert (result.result, result.value) == (Result.RED, "0.2"), result.message


def test_a_string_answer_is_red(prometheus: PrometheusServer) -> None:
    result = run(prometheus_probe(prometheus.url, '"not a number"'))
    assert result.result is Result.RED
    assert "returns a string" in result.message


def test_the_worst_of_many_series_decides_and_is_named(
    prometheus: PrometheusServer, healthy_scraped_model: ModelServer
) -> None:
    buckets = "model_request_duration_seconds_bucket * 0"
    prometheus.wait_for_data(buckets, lambda values: len(values) > 5)
    count = len(prometheus.query(buckets)["result"])
    query = f'({buckets}) or label_replace(vector(0.2), "pod", "bad", "", "")'
    result = run(prometheus_probe(prometheus.url, query))
    assert (result.result, result.value) == (Result.RED, "0.2"), result.message
    assert 'pod="bad"' in result.message
    assert f"(worst of {count + 1} series)" in result.message


def test_a_hanging_prometheus_is_red_within_the_timeout(prometheus: PrometheusServer) -> None:
    with prometheus.paused():
        started = time.monotonic()
        result = run(prometheus_probe(prometheus.url, "vector(0)", timeout="1s"))
        elapsed = time.monotonic() - started
    assert result.result is Result.RED
    assert "timed out after 1s" in result.message
    assert elapsed < 3, f"took {elapsed:.2f}s"
