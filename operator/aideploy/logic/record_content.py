"""What each record says: one pure builder per record type of PROC-AI-DEPLOY-001 section 8.

Builders take what the phase machine already holds (the parsed spec, the annotations, the
status models or plain dicts) and return plain JSON. They leave out absent values instead
of writing nulls, because the apiserver may drop a null and the record's hash must survive
the round trip. Times are RFC 3339 strings in UTC, to the second, like every other time
the operator writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aideploy.api.constants import (
    CHECKLIST_ITEMS,
    CHECKLIST_PREFIX,
    PROVENANCE_PREFIX,
    RiskLevel,
)
from aideploy.api.spec import AIDeploymentSpec, Probe
from aideploy.api.status import StatusModel
from aideploy.api.times import rfc3339
from aideploy.logic.floor import required_items, required_roles
from aideploy.logic.gate import GateResult, checklist_problem, evaluate_gate

Moment = datetime | str
WireLike = Mapping[str, Any] | StatusModel

PROBE_FIELDS = ("name", "kind", "result", "value", "message", "at")
RELEASE_FIELDS = ("version", "digest", "generation", "deployedAt", "replicas")


def _clean_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _clean(value)
    if isinstance(value, list | tuple):
        return [_clean_value(v) for v in value]
    return value


def _clean(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Drop None values from a mapping, recursively."""
    return {str(k): _clean_value(v) for k, v in mapping.items() if v is not None}


def _moment(value: Moment | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return rfc3339(value)


def _wire(value: WireLike) -> dict[str, Any]:
    return value.to_wire() if isinstance(value, StatusModel) else dict(value)


def _pick(value: WireLike, fields: Sequence[str]) -> dict[str, Any]:
    wire = _wire(value)
    return {f: wire[f] for f in fields if wire.get(f) is not None}


def probe_results(probes: Sequence[WireLike]) -> list[dict[str, Any]]:
    """{name, kind, result, value, message, at} of each probe outcome, in the given order."""
    results = []
    for probe in probes:
        picked = _pick(probe, PROBE_FIELDS)
        if "name" not in picked or "result" not in picked:
            raise ValueError(f"a probe result needs at least name and result, got {picked}")
        if "at" in picked:
            picked["at"] = _moment(picked["at"])
        results.append(picked)
    return results


def _release(release: WireLike | None) -> dict[str, Any] | None:
    """The identity of a release, without its pod template (the spec digest covers it)."""
    return None if release is None else _pick(release, RELEASE_FIELDS)


def _probe_plan(probes: Sequence[Probe]) -> list[dict[str, str]]:
    kinds = ("http", "inference", "prometheus")
    return [
        {"name": p.name, "kind": next(k for k in kinds if getattr(p, k) is not None)}
        for p in probes
    ]


def plan_content(
    spec: AIDeploymentSpec, *, spec_digest: str, change_type: str | None = None
) -> dict[str, Any]:
    """REC-AI-DEPLOY-001, the deployment plan accepted for this spec digest.

    `change_type` is the derived one when the spec leaves it out (None until derived).
    """
    derived = change_type if change_type is not None else spec.change_type
    window = spec.window.model_dump(mode="json", by_alias=True) if spec.window else None
    monitoring = spec.monitoring
    return _clean(
        {
            "specDigest": spec_digest,
            "system": spec.system,
            "model": {
                "name": spec.model.name,
                "version": spec.model.version,
                "uri": spec.model.uri,
            },
            "riskLevel": spec.risk_level.value,
            "changeType": str(derived) if derived is not None else None,
            "environment": spec.environment.value,
            "replicas": spec.replicas,
            "window": window,
            "promotion": ({"fromStaging": spec.promotion.from_staging} if spec.promotion else None),
            "expedite": {"reason": spec.expedite.reason} if spec.expedite else None,
            "verification": {
                "timeout": spec.verification.timeout,
                "amberPolicy": spec.verification.amber_policy.value,
                "probes": _probe_plan(spec.verification.probes),
            },
            "monitoring": (
                {
                    "duration": monitoring.duration,
                    "interval": monitoring.interval,
                    "signals": _probe_plan(monitoring.signals),
                }
                if monitoring
                else None
            ),
            "rollback": {"automatic": spec.rollback.automatic},
        }
    )


def _checklist_entry(
    item: str, value: str | None, risk: RiskLevel, required: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {"item": item, "title": CHECKLIST_ITEMS[item], "required": required}
    if value is None or not value.strip():
        return {**entry, "status": "missing", "accepted": False}
    verb, _, rest = value.strip().partition(" ")
    problem = checklist_problem(item, value, risk)
    status = verb.lower() if verb.lower() in ("yes", "n/a", "no") else "invalid"
    entry.update(status=status, accepted=problem is None)
    if status == "yes":
        entry["evidence"] = rest.strip()
    elif status == "n/a":
        entry["reason"] = rest.strip()
    else:
        entry["text"] = value.strip()
    if problem is not None:
        entry["problem"] = problem
    return entry


def approval_content(
    spec: AIDeploymentSpec,
    annotations: Mapping[str, str],
    *,
    spec_digest: str,
    observed_at: Moment,
    gate: GateResult | None = None,
) -> dict[str, Any]:
    """REC-AI-DEPLOY-002: every approval given (valid or stale) with who and for which
    digest, the roles required, every checklist item with its evidence, and for high risk
    the compliance fields. `observed_at` is when the operator saw the gate pass; `gate` is
    the gate's own verdict (with an expedite's extra roles and the approval policy), so the
    record says exactly what let the rollout through."""
    gate = gate if gate is not None else evaluate_gate(spec, annotations, spec_digest)
    required = set(gate.required_items or required_items(spec))
    annotated = {
        key.removeprefix(CHECKLIST_PREFIX)
        for key in annotations
        if key.startswith(CHECKLIST_PREFIX)
        and key.removeprefix(CHECKLIST_PREFIX) in CHECKLIST_ITEMS
    }
    checklist = [
        _checklist_entry(
            item, annotations.get(CHECKLIST_PREFIX + item), spec.risk_level, item in required
        )
        for item in CHECKLIST_ITEMS
        if item in required or item in annotated
    ]
    compliance = None
    if spec.risk_level is RiskLevel.HIGH and spec.compliance is not None:
        compliance = spec.compliance.model_dump(mode="json", by_alias=True, exclude_none=True)
    provenance = {
        key.removeprefix(PROVENANCE_PREFIX): value
        for key, value in sorted(annotations.items())
        if key.startswith(PROVENANCE_PREFIX)
    }
    return _clean(
        {
            "specDigest": spec_digest,
            "observedAt": _moment(observed_at),
            "riskLevel": spec.risk_level.value,
            "requiredRoles": gate.required_roles or [r.value for r in required_roles(spec)],
            "approvals": [a.to_wire() for a in gate.approvals],
            "missingRoles": gate.missing_roles or None,
            "checklist": checklist,
            "compliance": compliance,
            "missingCompliance": (
                gate.missing_compliance or None if spec.risk_level is RiskLevel.HIGH else None
            ),
            "provenance": provenance or None,
            "gateFloor": gate.floor.to_record() if gate.floor else None,
        }
    )


def _steps(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    cleaned = []
    for step in steps:
        if not step.get("step") or not step.get("at"):
            raise ValueError(f"a deployment-log step needs 'step' and 'at', got {dict(step)}")
        cleaned.append(
            {"step": str(step["step"]), "at": _moment(step["at"]), "detail": step.get("detail")}
        )
    return cleaned


def deployment_log_content(
    *,
    steps: Sequence[Mapping[str, Any]],
    probes: Sequence[WireLike],
    decision: str | None,
    release: WireLike | None = None,
    verification: str | None = None,
) -> dict[str, Any]:
    """REC-AI-DEPLOY-003: each step with its time ({step, at, detail}), every probe result,
    and the verification decision (GREEN / AMBER / RED; None if verification never ran).
    `verification` says plainly when there was none to run ("none configured"), so the log
    never reads as if a probe had decided."""
    return _clean(
        {
            "release": _release(release),
            "steps": _steps(steps),
            "verification": verification,
            "probes": probe_results(probes),
            "decision": decision,
        }
    )


def rollback_content(
    *,
    trigger: str,
    reason: str,
    from_version: str,
    from_digest: str,
    to_version: str | None,
    to_digest: str | None,
    verification: Sequence[WireLike] = (),
    restored_decision: str | None = None,
    red_at: Moment | None = None,
    started_at: Moment | None = None,
    completed_at: Moment | None = None,
) -> dict[str, Any]:
    """REC-AI-DEPLOY-004: what triggered the rollback (probe, signal, deadline, manual,
    amber), why, from which release to which, and how the restored release verified."""
    return _clean(
        {
            "trigger": trigger,
            "reason": reason,
            "from": {"version": from_version, "digest": from_digest},
            "to": (
                {"version": to_version, "digest": to_digest}
                if to_version is not None or to_digest is not None
                else None
            ),
            "redAt": _moment(red_at),
            "startedAt": _moment(started_at),
            "completedAt": _moment(completed_at),
            "verification": probe_results(verification),
            "restoredDecision": restored_decision,
        }
    )


def closure_content(
    *,
    final_phase: str,
    decision: str | None,
    monitoring_started_at: Moment | None,
    monitoring_ended_at: Moment | None,
    summary: str,
    release: WireLike | None = None,
    traffic_steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Closure (REC-AI-DEPLOY-CLOSE): how the deployment ended (Succeeded, RolledBack,
    Failed), the last decision, the monitoring window, a one-line summary and, for a
    canary, when its weight moved and why (`trafficSteps`)."""
    return _clean(
        {
            "finalPhase": str(final_phase),
            "decision": decision,
            "monitoring": {
                "startedAt": _moment(monitoring_started_at),
                "endedAt": _moment(monitoring_ended_at),
            },
            "release": _release(release),
            "summary": summary,
            "trafficSteps": traffic_steps or None,
        }
    )
