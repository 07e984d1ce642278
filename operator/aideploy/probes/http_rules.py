"""How an HTTP probe's answer maps to GREEN / AMBER / RED.

Order of the rules, most severe first, the first one that fails decides:
1. the status code differs from `expectStatus`            -> RED, value: the status code;
2. a body expectation fails (not JSON, path missing, value differs) -> RED, value: the
   value found at the path;
3. the answer took longer than `amberLatency`             -> AMBER, value: the latency;
4. otherwise                                              -> GREEN, value: the latency.
A slow answer that is also wrong is RED: the wrong answer is the more important news.
"""

from __future__ import annotations

from aideploy.api.durations import parse_duration
from aideploy.api.spec import HttpProbe, Result
from aideploy.probes.base import (
    Exchange,
    Verdict,
    answered,
    format_seconds,
    json_equal,
    quote_json,
)
from aideploy.probes.jsonpath import MISSING, find


def map_http(spec: HttpProbe, exchange: Exchange, attempts: int = 1) -> Verdict:
    """The verdict on one answer; `attempts` > 1 is mentioned so retries are visible."""
    after = f" (after {attempts} attempts)" if attempts > 1 else ""
    latency = format_seconds(exchange.latency_seconds)
    if exchange.status != spec.expect_status:
        return Verdict(
            Result.RED,
            str(exchange.status),
            f"{answered(exchange)}, expected {spec.expect_status}{after}",
        )
    body_failure = check_body(spec, exchange)
    if body_failure is not None:
        value, problem = body_failure
        return Verdict(Result.RED, value, f"{exchange.request}: {problem}{after}")
    if spec.amber_latency is not None:
        limit = parse_duration(spec.amber_latency).total_seconds()
        if exchange.latency_seconds > limit:
            return Verdict(
                Result.AMBER,
                latency,
                f"{exchange.request} answered {exchange.status} in {latency}, "
                f"slower than amberLatency {spec.amber_latency}{after}",
            )
    return Verdict(
        Result.GREEN,
        latency,
        f"{exchange.request} answered {exchange.status} in {latency}{after}",
    )


def check_body(spec: HttpProbe, exchange: Exchange) -> tuple[str | None, str] | None:
    """The first failing body expectation as (value found, problem), or None if all hold."""
    if not spec.body:
        return None
    try:
        document = exchange.json()
    except ValueError:
        return None, f"the body is not JSON ({exchange.snippet() or 'empty'})"
    for expectation in spec.body:
        try:
            actual = find(document, expectation.json_path)
        except ValueError as exc:
            return None, str(exc)
        if actual is MISSING:
            return None, f"{expectation.json_path} is not in the body"
        if not json_equal(actual, expectation.equals):
            return (
                quote_json(actual),
                f"{expectation.json_path} is {quote_json(actual)}, "
                f"expected {quote_json(expectation.equals)}",
            )
    return None
