"""How a Prometheus instant query's answer maps to GREEN / AMBER / RED.

- A Prometheus error (`"status": "error"`, or any non-200 answer) is RED with Prometheus's
  own message: a query that cannot be evaluated verifies nothing.
- `vector` results: each series is classified by the thresholds (see `thresholds`; red wins
  when both match) and the worst series decides; value and message name that series.
- `scalar` results are one value.
- An empty vector, or values that are all NaN (e.g. 0/0 in a ratio without traffic), is "no
  data": the probe's `noData` result (AMBER by default). NaN series are ignored next to
  real values, because NaN compares false with every threshold and would otherwise be
  called AMBER for no reason.
- `matrix` and `string` results cannot be compared with a threshold: RED, saying so.
"""

from __future__ import annotations

import math
from typing import Any

from aideploy.api.spec import PrometheusProbe, Result
from aideploy.probes.base import Exchange, Verdict, answered, format_number
from aideploy.probes.thresholds import Threshold, classify, parse_threshold


def map_prometheus(spec: PrometheusProbe, exchange: Exchange) -> Verdict:
    """The verdict on the answer of `GET /api/v1/query`."""
    try:
        payload = exchange.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("status") == "error":
        kind = payload.get("errorType")
        prefix = f"{kind}: " if isinstance(kind, str) and kind else ""
        return Verdict(
            Result.RED,
            None,
            f"Prometheus rejected {spec.query!r}: {prefix}{payload.get('error', 'no message')}",
        )
    if exchange.status != 200:
        return Verdict(Result.RED, None, f"Prometheus query failed: {answered(exchange)}")
    data = payload.get("data") if isinstance(payload, dict) else None
    if (
        not isinstance(payload, dict)
        or payload.get("status") != "success"
        or not isinstance(data, dict)
    ):
        return Verdict(
            Result.RED,
            None,
            f"{exchange.request}: not a Prometheus query answer ({exchange.snippet()})",
        )
    return map_query_data(spec, data)


def map_query_data(spec: PrometheusProbe, data: dict[str, Any]) -> Verdict:
    """The verdict on the `data` of a successful answer: {resultType, result}."""
    try:
        green = parse_threshold(spec.green)
        red = parse_threshold(spec.red)
    except ValueError as exc:
        return Verdict(Result.RED, None, f"cannot judge {spec.query!r}: {exc}")
    kind = data.get("resultType")
    result = data.get("result")
    samples: list[tuple[str, float]] = []
    if kind == "scalar":
        value = _sample_value(result)
        if value is None:
            return _malformed(spec)
        samples.append(("", value))
    elif kind == "vector" and isinstance(result, list):
        for series in result:
            if not isinstance(series, dict):
                return _malformed(spec)
            value = _sample_value(series.get("value"))
            if value is None:
                return _malformed(spec)
            samples.append((_labels(series.get("metric")), value))
    elif kind in ("matrix", "string"):
        return Verdict(
            Result.RED,
            None,
            f"{spec.query!r} returns a {kind}, which cannot be compared with a threshold; "
            "write an instant vector or scalar query",
        )
    else:
        return _malformed(spec)
    return _judge(spec, [(labels, v) for labels, v in samples if not math.isnan(v)], green, red)


def _judge(
    spec: PrometheusProbe, samples: list[tuple[str, float]], green: Threshold, red: Threshold
) -> Verdict:
    if not samples:
        return Verdict(
            spec.no_data,
            None,
            f"{spec.query!r} returned no data; noData is {spec.no_data.value}",
        )
    judged = [(classify(value, green, red), labels, value) for labels, value in samples]
    # The worst series decides; the first one listed among equally bad ones is reported.
    result, labels, value = max(judged, key=lambda j: j[0].severity)
    series = f"{spec.query!r} series {labels}" if labels else repr(spec.query)
    others = f" (worst of {len(samples)} series)" if len(samples) > 1 else ""
    number = format_number(value)
    if result is Result.RED:
        reason = f"matches red {red}"
    elif result is Result.GREEN:
        reason = f"within green {green}"
    else:
        reason = f"neither green ({green}) nor red ({red})"
    return Verdict(result, number, f"{series} = {number}: {reason}{others}")


def _sample_value(sample: Any) -> float | None:
    """The number of a `[timestamp, "value"]` pair; None if it is not one."""
    if not isinstance(sample, list) or len(sample) != 2 or not isinstance(sample[1], str):
        return None
    try:
        return float(sample[1])  # also "NaN", "+Inf", "-Inf", as Prometheus writes them
    except ValueError:
        return None


def _labels(metric: Any) -> str:
    if not isinstance(metric, dict) or not metric:
        return ""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _malformed(spec: PrometheusProbe) -> Verdict:
    return Verdict(
        Result.RED, None, f"the answer to {spec.query!r} is not a well-formed Prometheus result"
    )
