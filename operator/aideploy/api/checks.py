"""The checks of `AIDeployment.spec`: probes (http, inference, prometheus), verification
before users reach a release, and monitoring after go-live. One probe shape serves both
lists, so a monitoring signal reads like a verification probe.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from aideploy.api.durations import Duration
from aideploy.api.spec_base import (
    LIST_BY_NAME,
    THRESHOLD_PATTERN,
    AmberPolicy,
    Name,
    NonEmpty,
    Result,
    SpecModel,
    about,
)


class BodyExpectation(SpecModel):
    json_path: Annotated[NonEmpty, about("A JSONPath into the answer, e.g. $.ready.")]
    equals: Annotated[Any, about("The value found there must equal this one exactly.")]


class HttpProbe(SpecModel):
    url: Annotated[
        str | None,
        about("Base URL; omitted, the candidate's own Service on serving.port."),
    ] = None
    method: Annotated[Literal["GET", "POST", "HEAD", "PUT"], about("The HTTP method.")] = "GET"
    path: Annotated[str, about("Added to the base URL.")] = "/"
    expect_status: Annotated[int, Field(ge=100, le=599, description="Any other status is RED.")] = (
        200
    )
    body: Annotated[
        list[BodyExpectation],
        Field(
            default_factory=list,
            description="Values the JSON answer must hold; any mismatch is RED.",
        ),
    ]
    amber_latency: Annotated[
        Duration | None, about("An answer slower than this is AMBER, not GREEN.")
    ] = None
    timeout: Annotated[Duration, about("Per attempt; an attempt with no answer by then fails.")] = (
        "5s"
    )
    retries: Annotated[
        int,
        Field(ge=0, le=10, description="Attempts after a failed one before the probe is RED."),
    ] = 0


class Tensor(SpecModel):
    name: Annotated[NonEmpty, about("The input's name, as the model declares it.")]
    datatype: Literal[
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
    ] = Field(description="The Open Inference Protocol datatype of the data.")
    shape: Annotated[list[Annotated[int, Field(ge=0)]], about("The tensor's dimensions.")]
    data: Annotated[list[Any], about("The values, flattened in row-major order.")]


class OutputExpectation(SpecModel):
    name: Annotated[NonEmpty, about("The output's name; a missing output is RED.")]
    data: Annotated[list[Any], about("The expected values, in row-major order.")]
    tolerance: Annotated[
        float,
        Field(ge=0, description="How far a number may be from its expected value (absolute)."),
    ] = 0.0


class InferenceProbe(SpecModel):
    url: Annotated[
        str | None,
        about("Base URL; omitted, the candidate's own Service on serving.port."),
    ] = None
    model: Annotated[str | None, about("The model to call; omitted, spec.model.name.")] = None
    inputs: Annotated[list[Tensor], Field(min_length=1, description="The request's input tensors.")]
    expect: Annotated[
        list[OutputExpectation],
        Field(
            default_factory=list, description="Outputs the answer must hold; any mismatch is RED."
        ),
    ]
    timeout: Annotated[Duration, about("For the readiness request and the inference together.")] = (
        "5s"
    )


_THRESHOLD = "a comparator and a number, e.g. '<= 0.01'"


class PrometheusProbe(SpecModel):
    url: Annotated[NonEmpty, about("The Prometheus server's base URL.")]
    query: Annotated[
        NonEmpty, about("A PromQL instant query; with several series, the worst decides.")
    ]
    green: Annotated[
        str, Field(pattern=THRESHOLD_PATTERN, description=f"GREEN when met: {_THRESHOLD}")
    ]
    red: Annotated[
        str,
        Field(
            pattern=THRESHOLD_PATTERN,
            description=f"RED when met: {_THRESHOLD}; neither green nor red is AMBER",
        ),
    ]
    no_data: Annotated[Result, about("The result when the query returns nothing.")] = Result.AMBER
    timeout: Annotated[Duration, about("For the request; also Prometheus's own query timeout.")] = (
        "5s"
    )


class Probe(SpecModel):
    # The CRD says "exactly one kind" as far as a schema can; _exactly_one_kind says why.
    model_config = ConfigDict(
        json_schema_extra={
            "description": "Exactly one of http, inference, prometheus.",
            "oneOf": [{"required": [kind]} for kind in ("http", "inference", "prometheus")],
        }
    )

    name: Annotated[Name, about("Unique in its list; names the result in status.")]
    http: Annotated[HttpProbe | None, about("An HTTP request and what its answer must be.")] = None
    inference: Annotated[
        InferenceProbe | None,
        about("An Open Inference Protocol v2 request with known inputs and expected outputs."),
    ] = None
    prometheus: Annotated[
        PrometheusProbe | None, about("A PromQL query compared with thresholds.")
    ] = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Probe:
        kinds = [k for k in ("http", "inference", "prometheus") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"probe {self.name!r} must set exactly one of http, inference, prometheus"
            )
        return self


def _unique_names(probes: list[Probe], where: str) -> None:
    names = [p.name for p in probes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where} has duplicate names: {', '.join(duplicates)}")


class Verification(SpecModel):
    timeout: Annotated[
        Duration,
        about("Verification not finished by then is RED; it also bounds every probe."),
    ] = "10m"
    probes: Annotated[
        list[Probe],
        Field(
            default_factory=list,
            json_schema_extra=LIST_BY_NAME,
            description="Checks run once the rollout is done.",
        ),
    ]
    amber_policy: Annotated[
        AmberPolicy, Field(description="What an AMBER verification leads to.")
    ] = AmberPolicy.HOLD

    @model_validator(mode="after")
    def _names(self) -> Verification:
        _unique_names(self.probes, "verification.probes")
        return self


class Monitoring(SpecModel):
    duration: Annotated[
        Duration, about("How long after go-live the signals are watched (the procedure's 24-72h).")
    ] = "24h"
    interval: Annotated[Duration, about("Time between checks; at least 1s.")] = "30s"
    signals: Annotated[
        list[Probe],
        Field(
            default_factory=list,
            json_schema_extra=LIST_BY_NAME,
            description="Checks repeated every interval.",
        ),
    ]

    @model_validator(mode="after")
    def _names(self) -> Monitoring:
        _unique_names(self.signals, "monitoring.signals")
        return self
