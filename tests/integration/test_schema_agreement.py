"""The CRD schema (enforced by the real apiserver) and the pydantic models agree: the same
manifests go to both, and both accept or both reject them. A handful of rules that no
structural schema can express are checked by the models only; they are listed below and
the operator reports them as an InvalidSpec condition (tested in test_gate_lifecycle)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from aideploy.api.spec import AIDeploymentSpec
from aideploy.kube.rest import ApiError, Rest
from tests.support import aid
from tests.unit.factories import make_spec

pytestmark = pytest.mark.integration

PROBES = [
    {
        "name": "ready",
        "http": {
            "url": "http://127.0.0.1:9000",
            "path": "/v2/health/ready",
            "expectStatus": 200,
            "body": [{"jsonPath": "$.ready", "equals": True}],
            "amberLatency": "500ms",
            "timeout": "5s",
            "retries": 2,
        },
    },
    {
        "name": "golden",
        "inference": {
            "model": "m",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2.5]}],
            "expect": [{"name": "y", "data": [2, 5.0], "tolerance": 0.001}],
            "timeout": "5s",
        },
    },
    {
        "name": "error-rate",
        "prometheus": {
            "url": "http://prometheus:9090",
            "query": "sum(rate(errors_total[1m]))",
            "green": "<= 0.01",
            "red": "> 0.05",
            "noData": "AMBER",
        },
    },
]

FULL = make_spec(
    "high",
    version="2.0.0-rc.1+build.5",
    changeType="major",
    environment="production",
    approvals={"required": ["system-owner", "qa-lead"]},
    checklist={"required": ["1.1", "5.5"]},
    window={
        "schedule": "0 22 * * 1-5",
        "duration": "4h",
        "timeZone": "Europe/Berlin",
        "freezes": [
            {
                "start": "2026-12-20T00:00:00Z",
                "end": "2027-01-05T00:00:00Z",
                "reason": "year-end freeze",
            }
        ],
    },
    promotion={"fromStaging": "fraud-scorer-staging"},
    verification={"timeout": "10m", "amberPolicy": "hold", "probes": PROBES},
    monitoring={"duration": "24h", "interval": "30s", "signals": PROBES[2:]},
    rollback={"automatic": False},
    expedite={"reason": "CVE-2026-1234 fix"},
)


def variant(path: str, value: Any) -> dict[str, Any]:
    """FULL with one field set (value None deletes it); path is dotted, [i] for list items."""
    spec = copy.deepcopy(FULL)
    parts = path.replace("[", ".").replace("]", "").split(".")
    target: Any = spec
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is None:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return spec


ACCEPTED = [
    ("the full spec", FULL),
    ("a minimal spec", make_spec("minimal")),
    ("optional fields left out", variant("window", None)),
]

REJECTED = [
    ("unknown risk level", variant("riskLevel", "extreme"), "riskLevel"),
    ("version is not semver", variant("model.version", "1.0"), "version"),
    ("model missing", variant("model", None), "model"),
    ("template missing", variant("template", None), "template"),
    ("negative replicas", variant("replicas", -1), "replicas"),
    ("port out of range", variant("serving.port", 70000), "port"),
    ("unknown protocol", variant("serving.protocol", "grpc"), "protocol"),
    ("unknown role", variant("approvals.required", ["ceo"]), "required"),
    ("empty role list", variant("approvals.required", []), "required"),
    ("duplicate role", variant("approvals.required", ["qa-lead", "qa-lead"]), "required"),
    ("unknown checklist item", variant("checklist.required", ["1.6"]), "required"),
    ("duration in words", variant("verification.timeout", "10 minutes"), "timeout"),
    ("unknown amber policy", variant("verification.amberPolicy", "maybe"), "amberPolicy"),
    ("cron in words", variant("window.schedule", "daily"), "schedule"),
    ("window without duration", variant("window.duration", None), "duration"),
    ("freeze without reason", variant("window.freezes[0].reason", None), "reason"),
    ("threshold in words", variant("verification.probes[2].prometheus.green", "about 5"), "green"),
    ("probe name with capitals", variant("verification.probes[0].name", "Ready_Probe"), "name"),
    (
        "probe of two kinds",
        variant("verification.probes[0].prometheus", PROBES[2]["prometheus"]),
        "probes",
    ),
    ("probe of no kind", variant("verification.probes[0].http", None), "probes"),
    ("duplicate probe names", variant("verification.probes[1].name", "ready"), "probes"),
    ("interval without unit", variant("monitoring.interval", "30"), "interval"),
    ("unknown change type", variant("changeType", "hotfix"), "changeType"),
    ("unknown environment", variant("environment", "dev"), "environment"),
    ("system id with spaces", variant("system", "Fraud Scorer"), "system"),
    ("expedite without reason", variant("expedite", {}), "reason"),
    ("promotion without source", variant("promotion", {}), "fromStaging"),
    (
        "unknown datatype",
        variant("verification.probes[1].inference.inputs[0].datatype", "FP8"),
        "datatype",
    ),
    ("inference without inputs", variant("verification.probes[1].inference.inputs", []), "inputs"),
    (
        "negative tolerance",
        variant("verification.probes[1].inference.expect[0].tolerance", -1),
        "tolerance",
    ),
]

# Rules only the models can check; the operator turns them into an InvalidSpec condition.
MODEL_ONLY = [
    (
        "freeze ending before it starts",
        variant("window.freezes[0].end", "2026-12-01T00:00:00Z"),
        "ends before it starts",
    ),
]


def pydantic_accepts(spec: dict[str, Any]) -> bool:
    try:
        AIDeploymentSpec.model_validate(spec)
    except ValidationError:
        return False
    return True


def apiserver_answer(rest: Rest, namespace: str, spec: dict[str, Any]) -> ApiError | None:
    try:
        aid.create(rest, namespace, aid.manifest("schema-check", spec), dry_run=True)
    except ApiError as error:
        return error
    return None


@pytest.mark.parametrize(("what", "spec"), ACCEPTED)
def test_both_accept(
    rest: Rest, crds: list[str], namespace: str, what: str, spec: dict[str, Any]
) -> None:
    assert pydantic_accepts(spec), what
    assert apiserver_answer(rest, namespace, spec) is None, what


@pytest.mark.parametrize(("what", "spec", "field"), REJECTED)
def test_both_reject_with_a_message_naming_the_field(
    rest: Rest, crds: list[str], namespace: str, what: str, spec: dict[str, Any], field: str
) -> None:
    assert not pydantic_accepts(spec), f"pydantic accepted: {what}"
    error = apiserver_answer(rest, namespace, spec)
    assert error is not None, f"the apiserver accepted: {what}"
    assert error.status == 422, error
    assert field in error.message, error.message


@pytest.mark.parametrize(("what", "spec", "words"), MODEL_ONLY)
def test_rules_only_the_models_check(
    rest: Rest, crds: list[str], namespace: str, what: str, spec: dict[str, Any], words: str
) -> None:
    assert apiserver_answer(rest, namespace, spec) is None, what
    with pytest.raises(ValidationError, match=words):
        AIDeploymentSpec.model_validate(spec)
