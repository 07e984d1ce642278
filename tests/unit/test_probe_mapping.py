"""The probe rules as tables: an answer in, GREEN / AMBER / RED, a value and a sentence out."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from aideploy.api.spec import HttpProbe, InferenceProbe, PrometheusProbe, Result
from aideploy.probes import ProbeResult, join_url, worst
from aideploy.probes.base import Exchange, format_number, format_seconds, json_equal
from aideploy.probes.http_rules import map_http
from aideploy.probes.inference_rules import (
    flatten,
    infer_request,
    map_inference,
    map_model_ready,
)
from aideploy.probes.jsonpath import MISSING, find, parse_json_path
from aideploy.probes.prometheus_rules import map_prometheus, map_query_data
from aideploy.probes.thresholds import Threshold, classify, parse_threshold
from aideploy.probes.transport import describe

GREEN, AMBER, RED = Result.GREEN, Result.AMBER, Result.RED


def answer(
    status: int = 200,
    body: Any = None,
    *,
    raw: bytes | None = None,
    latency: float = 0.01,
    method: str = "GET",
    url: str = "http://model:8080/v2/health/ready",
) -> Exchange:
    payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return Exchange(method, url, status, payload, latency)


# --- thresholds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "op", "bound"),
    [
        ("<= 0.01", "<=", 0.01),
        (">0.05", ">", 0.05),
        ("  >=  -3 ", ">=", -3.0),
        ("< 1e-3", "<", 0.001),
        ("== 0", "==", 0.0),
        ("!= 2.5E2", "!=", 250.0),
    ],
)
def test_parse_threshold(text: str, op: str, bound: float) -> None:
    assert parse_threshold(text) == Threshold(op, bound)


@pytest.mark.parametrize("text", ["", "0.01", "=< 1", "<= x", "<= 1 2", "≤ 1", "<= .5"])
def test_parse_threshold_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="comparator and a number"):
        parse_threshold(text)


@pytest.mark.parametrize(
    ("value", "green", "red", "expected"),
    [
        (0.0, "<= 0.01", "> 0.05", GREEN),
        (0.01, "<= 0.01", "> 0.05", GREEN),  # bounds are inclusive as written
        (0.03, "<= 0.01", "> 0.05", AMBER),  # between the two
        (0.05, "<= 0.01", "> 0.05", AMBER),
        (0.0500001, "<= 0.01", "> 0.05", RED),
        (0.99, ">= 0.95", "< 0.9", GREEN),  # "higher is better" (availability)
        (0.92, ">= 0.95", "< 0.9", AMBER),
        (0.5, ">= 0.95", "< 0.9", RED),
        (0.07, "<= 0.1", ">= 0.05", RED),  # overlap: both match, red takes precedence
        (0.0, "== 0", "!= 0", GREEN),
        (1.0, "== 0", "!= 0", RED),
        (math.inf, "<= 0.01", "> 0.05", RED),
    ],
)
def test_classify(value: float, green: str, red: str, expected: Result) -> None:
    assert classify(value, parse_threshold(green), parse_threshold(red)) is expected


# --- JSONPath and JSON equality --------------------------------------------------------

DOC = {"a": {"b": [{"c": 1}, {"c": 2}]}, "ready": True, "odd key": [10, 20], "n": None}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOC),
        ("$.ready", True),
        ("$.a.b[0].c", 1),
        ("$.a.b[1].c", 2),
        ("$.a.b[-1].c", 2),
        ("$['odd key'][1]", 20),
        ('$["odd key"][0]', 10),
        ("$.n", None),  # present and null: not missing
        ("$.missing", MISSING),
        ("$.a.b[2]", MISSING),
        ("$.a.b[-3]", MISSING),
        ("$.ready.x", MISSING),  # a step into a non-object
        ("$.a[0]", MISSING),  # an index into an object
        ("$.a.b.c", MISSING),  # a name into a list
    ],
)
def test_json_path(path: str, expected: Any) -> None:
    actual = find(DOC, path)
    assert actual is expected if expected is MISSING else actual == expected


@pytest.mark.parametrize(
    "path", ["ready", ".ready", "$..a", "$.a[*]", "$.a[", "$.a[0", "$[?(@.x)]"]
)
def test_json_path_rejects_what_it_does_not_support(path: str) -> None:
    with pytest.raises(ValueError, match="jsonPath"):
        parse_json_path(path)


@pytest.mark.parametrize(
    ("actual", "expected", "equal"),
    [
        (True, True, True),
        (True, 1, False),  # JSON's true is not the number 1
        (0, False, False),
        (1, 1.0, True),
        ("1", 1, False),
        (None, None, True),
        (None, False, False),
        ([1, {"a": True}], [1.0, {"a": True}], True),
        ([1, 2], [1, 2, 3], False),
        ({"a": 1}, {"a": 1, "b": 2}, False),
    ],
)
def test_json_equal(actual: Any, expected: Any, equal: bool) -> None:
    assert json_equal(actual, expected) is equal


# --- http ------------------------------------------------------------------------------

READY_BODY = [{"jsonPath": "$.ready", "equals": True}]


# fmt: off
HTTP_CASES = [
    ({}, answer(200, latency=0.042), GREEN, "42ms", "answered 200 in 42ms"),
    ({}, answer(503, {"error": "warming up"}), RED, "503", "answered 503: warming up, expected 200"),
    ({"expectStatus": 204}, answer(200), RED, "200", "expected 204"),
    ({"expectStatus": 503}, answer(503), GREEN, "10ms", "answered 503"),
    ({"body": READY_BODY}, answer(200, {"ready": True}), GREEN, "10ms", "answered 200"),
    ({"body": READY_BODY}, answer(200, {"ready": False}), RED, "false", "$.ready is false, expected true"),
    ({"body": READY_BODY}, answer(200, {"ready": 1}), RED, "1", "$.ready is 1, expected true"),
    ({"body": READY_BODY}, answer(200, {}), RED, None, "$.ready is not in the body"),
    ({"body": READY_BODY}, answer(200, raw=b"<html>ok</html>"), RED, None, "not JSON (<html>ok</html>)"),
    ({"body": READY_BODY}, answer(200, raw=b""), RED, None, "not JSON (empty)"),
    ({"body": [{"jsonPath": "$.models[0].name", "equals": "churn"}]}, answer(200, {"models": [{"name": "fraud"}]}), RED, '"fraud"', '$.models[0].name is "fraud", expected "churn"'),
    ({"body": [{"jsonPath": "$..x", "equals": 1}]}, answer(200, {"x": 1}), RED, None, "jsonPath '$..x'"),
    ({"amberLatency": "500ms"}, answer(200, latency=1.3), AMBER, "1.3s", "slower than amberLatency 500ms"),
    ({"amberLatency": "500ms"}, answer(200, latency=0.5), GREEN, "500ms", "in 500ms"),  # not slower
    ({"amberLatency": "500ms"}, answer(500, latency=2.0), RED, "500", "answered 500"),  # wrong beats slow
    ({"amberLatency": "500ms", "body": READY_BODY}, answer(200, {"ready": False}, latency=2.0), RED, "false", "$.ready is false"),
]
# fmt: on


@pytest.mark.parametrize(("spec", "exchange", "result", "value", "message_part"), HTTP_CASES)
def test_http_mapping(
    spec: dict[str, Any],
    exchange: Exchange,
    result: Result,
    value: str | None,
    message_part: str,
) -> None:
    verdict = map_http(HttpProbe.model_validate(spec), exchange)
    assert (verdict.result, verdict.value) == (result, value), verdict.message
    assert message_part in verdict.message
    assert verdict.message.startswith("GET http://model:8080/v2/health/ready")


def test_http_mapping_mentions_attempts() -> None:
    verdict = map_http(HttpProbe(), answer(200), attempts=3)
    assert verdict.result is GREEN
    assert verdict.message.endswith("(after 3 attempts)")


# --- inference -------------------------------------------------------------------------


def inference(expect: list[dict[str, Any]] | None = None) -> InferenceProbe:
    return InferenceProbe.model_validate(
        {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2.5]}],
            "expect": expect if expect is not None else [],
        }
    )


def outputs(*tensors: dict[str, Any]) -> Exchange:
    return answer(
        200,
        {"model_name": "m", "outputs": list(tensors)},
        method="POST",
        url="http://m/v2/models/m/infer",
    )


def tensor(name: str, data: list[Any], shape: list[int] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": "FP32",
        "shape": shape if shape is not None else [len(data)],
        "data": data,
    }


def test_infer_request_is_oip_v2() -> None:
    assert infer_request(inference()) == {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2.5]}]
    }


# fmt: off
READY_CASES = [
    (answer(200, {"name": "m", "ready": True}), None, ""),
    (answer(200, raw=b""), None, ""),  # Triton: the status is the answer
    (answer(200, {"name": "m", "ready": False}), RED, "model m is not ready"),
    (answer(503, {"error": "loading"}), RED, "model m is not ready: GET http://model:8080/v2/health/ready answered 503: loading"),
    (answer(404, {"error": "model m not found"}), RED, "answered 404: model m not found"),
]
# fmt: on


@pytest.mark.parametrize(("exchange", "result", "message_part"), READY_CASES)
def test_model_ready(exchange: Exchange, result: Result | None, message_part: str) -> None:
    verdict = map_model_ready("m", exchange)
    assert (verdict.result if verdict else None) is result
    if verdict is not None:
        assert message_part in verdict.message


EXPECT_0 = [{"name": "output-0", "data": [2, 5.0], "tolerance": 0.001}]


# fmt: off
INFERENCE_CASES = [
    (EXPECT_0, outputs(tensor("output-0", [2.0, 5.0])), GREEN, "10ms", "1 expected output(s) match"),
    (EXPECT_0, outputs(tensor("output-0", [2.0005, 4.9995])), GREEN, "10ms", "match"),
    (EXPECT_0, outputs(tensor("output-0", [2.0, 5.01])), RED, "5.01", "output output-0[1] is 5.01, expected 5.0 ± 0.001"),
    ([{"name": "output-0", "data": [2, 5]}], outputs(tensor("output-0", [2.0, 5.0000001])), RED, "5.0000001", "output-0[1]"),
    (EXPECT_0, outputs(tensor("output-0", [1002.0, 1005.0])), RED, "1002.0", "output-0[0] is 1002.0, expected 2 ± 0.001"),
    (EXPECT_0, outputs(tensor("output-1", [2.0, 5.0])), RED, None, "output output-0 is missing from the answer (outputs: output-1)"),
    (EXPECT_0, outputs(), RED, None, "(outputs: none)"),
    (EXPECT_0, outputs(tensor("output-0", [2.0, 5.0, 7.0])), RED, "3", "output output-0 has 3 values, expected 2"),
    (EXPECT_0, outputs(tensor("output-0", [2.0, 5.0], shape=[3])), RED, "2", "has shape [3] (3 values) but 2 data values"),
    (EXPECT_0, outputs(tensor("output-0", [[2.0], [5.0]], shape=[2, 1])), GREEN, "10ms", "match"),  # nested data
    (EXPECT_0, outputs({"name": "output-0", "shape": [2]}), RED, None, "output-0 has no data list"),
    (EXPECT_0, outputs(tensor("output-0", ["2", 5.0])), RED, '"2"', 'output-0[0] is "2", expected 2'),
    ([{"name": "label", "data": ["cat", True]}], outputs(tensor("label", ["cat", True])), GREEN, "10ms", "match"),
    ([{"name": "label", "data": ["cat", True]}], outputs(tensor("label", ["cat", 1])), RED, "1", "label[1] is 1, expected true"),
    ([], outputs(tensor("output-0", [0.0])), GREEN, "10ms", "it answered"),
    ([*EXPECT_0, {"name": "output-1", "data": [1]}], outputs(tensor("output-0", [2.0, 5.0]), tensor("output-1", [0])), RED, "0", "output-1[0] is 0, expected 1 ± 0"),
    (EXPECT_0, answer(500, {"error": "CUDA out of memory"}, method="POST", url="http://m/v2/models/m/infer"), RED, "500", "inference on model m failed: POST http://m/v2/models/m/infer answered 500: CUDA out of memory"),
    (EXPECT_0, answer(200, raw=b"not json"), RED, None, "the answer is not JSON (not json)"),
    (EXPECT_0, answer(200, {"result": [1]}), RED, None, "the answer has no outputs list"),
    (EXPECT_0, answer(200, [1, 2]), RED, None, "no outputs list"),
]
# fmt: on


@pytest.mark.parametrize(("expect", "exchange", "result", "value", "message_part"), INFERENCE_CASES)
def test_inference_mapping(
    expect: list[dict[str, Any]],
    exchange: Exchange,
    result: Result,
    value: str | None,
    message_part: str,
) -> None:
    verdict = map_inference(inference(expect), "m", exchange)
    assert (verdict.result, verdict.value) == (result, value), verdict.message
    assert message_part in verdict.message


@pytest.mark.parametrize(
    ("got", "want", "tolerance", "result"),
    [
        (math.nan, math.nan, 0.0, GREEN),
        (math.nan, 1.0, 10.0, RED),
        (math.inf, math.inf, 0.0, GREEN),
        (math.inf, 1e308, 1e308, RED),
        (-0.0, 0.0, 0.0, GREEN),
    ],
)
def test_inference_special_floats(
    got: float, want: float, tolerance: float, result: Result
) -> None:
    spec = inference([{"name": "y", "data": [want], "tolerance": tolerance}])
    exchange = Exchange(
        "POST", "u", 200, json.dumps({"outputs": [tensor("y", [got])]}).encode(), 0.0
    )
    assert map_inference(spec, "m", exchange).result is result


def test_flatten_is_row_major() -> None:
    assert flatten([[1, [2, 3]], [], [4]]) == [1, 2, 3, 4]
    assert flatten("x") is None


# --- prometheus ------------------------------------------------------------------------


def prom(no_data: str = "AMBER", green: str = "<= 0.01", red: str = "> 0.05") -> PrometheusProbe:
    return PrometheusProbe.model_validate(
        {"url": "http://prom:9090", "query": "err", "green": green, "red": red, "noData": no_data}
    )


def vector(*samples: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "resultType": "vector",
        "result": [{"metric": m, "value": [1700000000.1, v]} for m, v in samples],
    }


def success(data: dict[str, Any]) -> Exchange:
    return answer(200, {"status": "success", "data": data}, url="http://prom:9090/api/v1/query")


# fmt: off
PROMETHEUS_CASES = [
    (vector(({}, "0.004")), "AMBER", GREEN, "0.004", "'err' = 0.004: within green <= 0.01"),
    (vector(({}, "0.03")), "AMBER", AMBER, "0.03", "neither green (<= 0.01) nor red (> 0.05)"),
    (vector(({}, "0.09")), "AMBER", RED, "0.09", "'err' = 0.09: matches red > 0.05"),
    ({"resultType": "scalar", "result": [1700000000, "0.042"]}, "AMBER", AMBER, "0.042", "'err' = 0.042"),
    ({"resultType": "scalar", "result": [1700000000, "0"]}, "AMBER", GREEN, "0", "within green"),
    (vector(), "AMBER", AMBER, None, "'err' returned no data; noData is AMBER"),
    (vector(), "RED", RED, None, "noData is RED"),
    (vector(), "GREEN", GREEN, None, "noData is GREEN"),
    (vector(({}, "NaN")), "AMBER", AMBER, None, "no data"),  # 0/0 without traffic
    ({"resultType": "scalar", "result": [1, "NaN"]}, "RED", RED, None, "no data"),
    (vector(({"pod": "a"}, "NaN"), ({"pod": "b"}, "0.001")), "RED", GREEN, "0.001", 'series {pod="b"}'),
    (vector(({"pod": "a"}, "0.001"), ({"pod": "b"}, "0.2"), ({"pod": "c"}, "0.03")), "AMBER", RED, "0.2", """'err' series {pod="b"} = 0.2: matches red > 0.05 (worst of 3 series)"""),
    (vector(({"pod": "a"}, "0.001"), ({"pod": "c"}, "0.03")), "AMBER", AMBER, "0.03", 'series {pod="c"}'),
    (vector(({}, "+Inf")), "AMBER", RED, "+Inf", "= +Inf"),
    ({"resultType": "matrix", "result": []}, "AMBER", RED, None, "returns a matrix"),
    ({"resultType": "string", "result": [1, "x"]}, "AMBER", RED, None, "returns a string"),
    ({"resultType": "vector", "result": [{"metric": {}, "value": [1, 0.5]}]}, "AMBER", RED, None, "not a well-formed"),
    ({"resultType": "vector", "result": [{"metric": {}, "value": [1, "abc"]}]}, "AMBER", RED, None, "not a well-formed"),
    ({"resultType": "scalar", "result": None}, "AMBER", RED, None, "not a well-formed"),
    ({"resultType": "vector", "result": ["x"]}, "AMBER", RED, None, "not a well-formed"),
    ({}, "AMBER", RED, None, "not a well-formed"),
]
# fmt: on


@pytest.mark.parametrize(("data", "no_data", "result", "value", "message_part"), PROMETHEUS_CASES)
def test_prometheus_results(
    data: dict[str, Any], no_data: str, result: Result, value: str | None, message_part: str
) -> None:
    verdict = map_prometheus(prom(no_data), success(data))
    assert (verdict.result, verdict.value) == (result, value), verdict.message
    assert message_part in verdict.message


def test_prometheus_overlapping_thresholds_are_red() -> None:
    verdict = map_query_data(prom(green="<= 0.1", red=">= 0.05"), vector(({}, "0.07")))
    assert verdict.result is RED


# fmt: off
PROMETHEUS_ERROR_CASES = [
    (answer(400, { "status": "error", "errorType": "bad_data", "error": "1:5: parse error: unclosed left parenthesis", }), "Prometheus rejected 'err': bad_data: 1:5: parse error: unclosed left parenthesis"),
    (answer(503, { "status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation", }), "timeout: query timed out"),
    (answer(404, raw=b"404 page not found"), "Prometheus query failed: GET http://model:8080/v2/health/ready answered 404: 404 page not found"),
    (answer(502, raw=b"<html>Bad Gateway</html>"), "answered 502: <html>Bad Gateway</html>"),
    (answer(200, raw=b"<html>login</html>"), "not a Prometheus query answer (<html>login</html>)"),
    (answer(200, {"status": "success"}), "not a Prometheus query answer"),
]
# fmt: on


@pytest.mark.parametrize(("exchange", "message_part"), PROMETHEUS_ERROR_CASES)
def test_prometheus_errors_are_red(exchange: Exchange, message_part: str) -> None:
    verdict = map_prometheus(prom(), exchange)
    assert verdict.result is RED
    assert verdict.value is None
    assert message_part in verdict.message


# --- combining and wording -------------------------------------------------------------


def probe_result(result: Result) -> ProbeResult:
    return ProbeResult("p", "http", result, None, "", 0.0)


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([], None),
        ([GREEN], GREEN),
        ([GREEN, AMBER, GREEN], AMBER),
        ([AMBER, RED, GREEN], RED),
        ([RED, RED], RED),
    ],
)
def test_worst(results: list[Result], expected: Result | None) -> None:
    assert worst(probe_result(r) for r in results) is expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (2.0, "2s"),
        (1.3, "1.3s"),
        (12.345, "12.3s"),
        (600.0, "600s"),
        (0.5, "500ms"),
        (0.0423, "42.3ms"),
        (0.0, "0ms"),
    ],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.042, "0.042"), (17.0, "17"), (1.5e-7, "1.5e-07"), (math.nan, "NaN"), (-math.inf, "-Inf")],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "connection refused"),
        (
            OSError(
                "Multiple exceptions: [Errno 111] Connect call failed ('::1', 1, 0, 0), "
                "[Errno 111] Connect call failed ('127.0.0.1', 1)"
            ),
            "connection refused",
        ),
        (
            OSError("Multiple exceptions: [Errno 111] a, [Errno 113] b"),
            "Multiple exceptions: [Errno 111] a, [Errno 113] b",
        ),
    ],
)
def test_describe_os_errors(error: OSError, text: str) -> None:
    assert describe(error) == text


@pytest.mark.parametrize(
    ("base", "path", "url"),
    [
        ("http://m:8080", "/v2/health/ready", "http://m:8080/v2/health/ready"),
        ("http://m:8080/", "v2/health/ready", "http://m:8080/v2/health/ready"),
        ("http://gw/prefix/", "/v2", "http://gw/prefix/v2"),
        ("http://m", "", "http://m"),
    ],
)
def test_join_url(base: str, path: str, url: str) -> None:
    assert join_url(base, path) == url
