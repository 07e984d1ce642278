"""`kubectl aideploy register` and `close`: the post-deployment steps 18 (the EU database
registration id) and 20 (the retrospective), each a checked write of the annotation the
operator turns into a record (logic/postdeploy.py)."""

from __future__ import annotations

import json
from typing import Final

from aideploy.api.constants import (
    REGISTRATION_ANNOTATION,
    RETROSPECTIVE_ANNOTATION,
    ConditionType,
    Phase,
)
from aideploy.api.status import AIDeploymentStatus
from aideploy.cli.actions import DECIDE_HINT, request_action
from aideploy.cli.session import CliError, Session, UsageError
from aideploy.cli.terminal import printable
from aideploy.logic.postdeploy import MAX_LESSONS

MAX_ID_LENGTH: Final = 253
_LIVE: Final = (Phase.MONITORING, Phase.SUCCEEDED)
_ENDED: Final = (Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED)


def _who(session: Session, by: str | None) -> str:
    who = (by or session.user or "").strip()
    if not who:
        raise UsageError("cannot tell who you are from the kubeconfig: pass --by NAME")
    if ";" in who:
        raise UsageError(f"--by {who!r} must not contain ';'")
    return who


def check_registration_id(registration_id: str) -> str:
    cleaned = registration_id.strip()
    if not cleaned or ";" in cleaned or len(cleaned) > MAX_ID_LENGTH or not cleaned.isprintable():
        raise UsageError(
            f"--id {registration_id!r} is not a registration id: give the id the EU database "
            f"gave, printable, without ';', at most {MAX_ID_LENGTH} characters"
        )
    return cleaned


def _registration_refusal(status: AIDeploymentStatus, _digest: str) -> str | None:
    if status.phase in _LIVE or status.last_good_release is not None:
        return None
    phase = status.phase.value if status.phase else "not yet reconciled"
    return (
        f"no release of it has gone live yet (phase {phase}); the EU database registration "
        "is recorded after go-live"
    )


def register(session: Session, name: str, registration_id: str, by: str | None) -> int:
    """`aideploy.io/eu-registration: <id>; by=<who>`; refused for a system that needs no
    registration or has not gone live. The operator records it (REC-AI-DEPLOY-REG)."""
    cleaned = check_registration_id(registration_id)
    who = _who(session, by)
    obj = session.get_deployment(name, DECIDE_HINT)
    spec = obj.get("spec") or {}
    if spec.get("riskLevel") != "high" or spec.get("environment", "production") != "production":
        raise CliError(
            f"aideployment {name} is {spec.get('riskLevel')} risk in "
            f"{spec.get('environment', 'production')}: EU database registration applies to "
            "high-risk systems in production; nothing was written"
        )
    request_action(
        session,
        name,
        {REGISTRATION_ANNOTATION: f"{cleaned}; by={who}"},
        _registration_refusal,
        "record the registration of",
    )
    print(
        printable(
            f"registration {cleaned} recorded for aideployment {name} (by {who}); the operator "
            "writes it to the records (REC-AI-DEPLOY-REG)"
        )
    )
    return 0


def _close_refusal(status: AIDeploymentStatus, _digest: str) -> str | None:
    if status.phase not in _ENDED:
        phase = status.phase.value if status.phase else "not yet reconciled"
        return (
            f"its rollout has not ended (phase {phase}): close it once it is Succeeded, "
            "RolledBack or Failed"
        )
    closed = status.condition(ConditionType.CLOSED)
    if (
        closed is not None
        and closed.status == "True"
        and closed.observed_generation == status.observed_generation
    ):
        return "its retrospective is already on record"
    return None


def close(session: Session, name: str, retrospective: str, lessons: str, by: str | None) -> int:
    """`aideploy.io/retrospective`, consumed by the operator once recorded
    (REC-AI-DEPLOY-CLOSE, type retrospective)."""
    url = retrospective.strip()
    if not url:
        raise UsageError("--retrospective must name the retrospective (URL or document id)")
    if len(lessons.strip()) > MAX_LESSONS:
        raise UsageError(f"--lessons is longer than {MAX_LESSONS} characters: link a document")
    who = _who(session, by)
    value = json.dumps({"url": url, "lessons": lessons.strip(), "by": who}, sort_keys=True)
    request_action(session, name, {RETROSPECTIVE_ANNOTATION: value}, _close_refusal, "close")
    print(
        printable(
            f"retrospective {url} sent for aideployment {name} (by {who}); the operator "
            "appends it to the closure record"
        )
    )
    return 0
