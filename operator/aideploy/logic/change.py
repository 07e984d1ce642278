"""Change types (PROC-AI-DEPLOY-001 3.2), expedite, and the substantial-modification check (7.2).

The procedure treats an initial deployment, a major, a minor and a patch update
differently: only a patch may take the expedited path, and a major change of a high-risk
system must be assessed as a substantial modification or not. The model version is the
evidence for which one a change is, so the type is derived from semantic versions and a
declared `spec.changeType` is checked against it.

Rules:
- No last good release: `initial`. Otherwise the most significant of major, minor, patch
  that differs decides. Pre-release and build metadata differ below patch: 2.4.0-rc.1 to
  2.4.0 (or to -rc.2, or +build.7 to +build.8, or the same version again for a spec change
  that keeps the model) is a `patch` change, the smallest type the procedure knows.
- A version LOWER than the last good one (by semver precedence) is treated like a bump of
  the highest differing component (3.0.0 to 2.9.0 is major): going back through the normal
  procedure still changes the model by that much. A rollback by the operator is not a
  change and is not classified here.
- A declared type may be MORE significant than the versions say (declaring a minor bump
  `major` brings more scrutiny, never less), but not less significant, and `initial` only
  when there is no last good release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from aideploy.api.constants import RiskLevel, Role
from aideploy.api.spec import SEMVER_PATTERN, AIDeploymentSpec, ChangeType
from aideploy.logic.floor import required_roles

_SEMVER: Final = re.compile(SEMVER_PATTERN)
# More significant types bring more scrutiny; a declaration may not rank below the versions.
_RANK: Final = {
    ChangeType.PATCH: 0,
    ChangeType.MINOR: 1,
    ChangeType.MAJOR: 2,
    ChangeType.INITIAL: 3,
}
EXPEDITE_ROLES: Final = (Role.DEPLOYMENT_MANAGER,)


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...]
    build: str

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


def parse_version(text: str) -> Version:
    """Parse a semantic version; raises ValueError naming the version."""
    match = _SEMVER.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a semantic version (like 2.4.0 or 2.4.0-rc.1)")
    major, minor, patch, prerelease, build = match.groups()
    return Version(
        int(major),
        int(minor),
        int(patch),
        tuple(prerelease.split(".")) if prerelease else (),
        build or "",
    )


def _identifier_key(identifier: str) -> tuple[int, int, str]:
    # semver 11.4: numeric identifiers compare numerically and rank below alphanumeric ones.
    if identifier.isdigit():
        return (0, int(identifier), "")
    return (1, 0, identifier)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 by semver precedence (build metadata is ignored)."""
    left, right = parse_version(a), parse_version(b)
    if left.core != right.core:
        return -1 if left.core < right.core else 1
    if left.prerelease == right.prerelease:
        return 0
    if not left.prerelease or not right.prerelease:
        # A pre-release ranks below its release: 2.4.0-rc.1 < 2.4.0.
        return 1 if not left.prerelease else -1
    left_key = [_identifier_key(i) for i in left.prerelease]
    right_key = [_identifier_key(i) for i in right.prerelease]
    return -1 if left_key < right_key else 1


def derive_change_type(new_version: str, last_good_version: str | None) -> ChangeType:
    """The change type the versions show; see the module docstring for the rules.

    Raises ValueError when a version is not semver (the spec's is validated; a recorded
    last good version from an older operator might not be).
    """
    if last_good_version is None:
        return ChangeType.INITIAL
    new, old = parse_version(new_version), parse_version(last_good_version)
    if new.major != old.major:
        return ChangeType.MAJOR
    if new.minor != old.minor:
        return ChangeType.MINOR
    return ChangeType.PATCH


def describe(change_type: ChangeType) -> str:
    """'a minor change', 'an initial deployment': for messages."""
    if change_type is ChangeType.INITIAL:
        return "an initial deployment"
    return f"a {change_type.value} change"


def _transition(new_version: str, last_good_version: str) -> str:
    text = f"{last_good_version} → {new_version}"
    if compare_versions(new_version, last_good_version) < 0:
        text += " (a downgrade)"
    return text


def change_type_problem(
    declared: ChangeType | None, new_version: str, last_good_version: str | None
) -> str | None:
    """Why `spec.changeType` contradicts the versions, or None when it does not."""
    try:
        derived = derive_change_type(new_version, last_good_version)
    except ValueError as error:
        return f"The change type cannot be derived: {error}."
    if declared is None or declared is derived:
        return None
    if last_good_version is None:
        return (
            f"changeType is {declared.value} but there is no last good release to compare "
            f"{new_version} with, so this is an initial deployment."
        )
    transition = _transition(new_version, last_good_version)
    if declared is ChangeType.INITIAL:
        return (
            f"changeType is initial but {last_good_version} is already deployed; "
            f"{transition} is a {derived.value} change."
        )
    if _RANK[declared] < _RANK[derived]:
        return f"changeType is {declared.value} but {transition} is a {derived.value} change."
    return None


def effective_change_type(
    declared: ChangeType | None, new_version: str, last_good_version: str | None
) -> ChangeType:
    """The type the procedure applies: the declared one when it is acceptable, else derived.

    Call `change_type_problem` first to report a contradiction; this never lets a
    contradicting declaration lower the scrutiny.
    """
    derived = derive_change_type(new_version, last_good_version)
    if declared is None or change_type_problem(declared, new_version, last_good_version):
        return derived
    return declared


def expedite_problem(spec: AIDeploymentSpec, change_type: ChangeType) -> str | None:
    """Expedite is the procedure's path for critical fixes: patch changes only (3.2)."""
    if spec.expedite is None or change_type is ChangeType.PATCH:
        return None
    return (
        f"spec.expedite is set ({spec.expedite.reason}) but version {spec.model.version} is "
        f"{describe(change_type)}; only patch changes may be expedited. Remove "
        "spec.expedite to go through the deployment window."
    )


def expedite_extra_roles(spec: AIDeploymentSpec, lowered: bool = False) -> tuple[Role, ...]:
    """Roles an expedited change needs on top of the spec's required approvals.

    The deployment manager owns the decision to deploy outside the window, so an
    expedited change needs that approval even where the role matrix does not ask for it.
    """
    if spec.expedite is None:
        return ()
    required = set(required_roles(spec, lowered))
    return tuple(role for role in EXPEDITE_ROLES if role not in required)


def approval_roles(spec: AIDeploymentSpec, lowered: bool = False) -> tuple[Role, ...]:
    """Every role whose approval the gate counts for this spec, as `evaluate_gate` is
    called with it: the risk level's and the spec's, then an expedited change's. The CLI
    says whether an approval counts with this, so that it agrees with the gate."""
    return (*required_roles(spec, lowered), *expedite_extra_roles(spec, lowered))


def substantial_modification_problems(
    spec: AIDeploymentSpec,
    change_type: ChangeType,
    last_good_version: str | None,
    last_good_conformity_assessment: str | None,
) -> list[str]:
    """What PROC-AI-DEPLOY-001 7.2 still needs before a high-risk change may deploy.

    A major change of a high-risk system must say whether it is a substantial modification
    (EU AI Act art. 43(4)). When it is, whatever the change type, the new release needs a
    new conformity assessment: `spec.compliance.conformityAssessment` must name another
    one than the assessment recorded with the last good release. When no assessment was
    recorded with that release, the difference cannot be checked and is not reported.
    """
    if spec.risk_level is not RiskLevel.HIGH:
        return []
    compliance = spec.compliance
    substantial = compliance.substantial_modification if compliance else None
    problems: list[str] = []
    if substantial is None:
        if change_type is ChangeType.MAJOR:
            problems.append(
                "A major change of a high-risk system must state "
                "spec.compliance.substantialModification (true or false, from the "
                "substantial change assessment)."
            )
        return problems
    if not substantial:
        return problems
    assessment = (compliance.conformity_assessment or "").strip() if compliance else ""
    previous = (last_good_conformity_assessment or "").strip()
    if not assessment:
        problems.append(
            "substantialModification is true, so a new conformity assessment is required; "
            "spec.compliance.conformityAssessment does not name one."
        )
    elif previous and assessment == previous:
        recorded_with = (
            f"version {last_good_version}" if last_good_version else "the last good release"
        )
        problems.append(
            "substantialModification is true, so a new conformity assessment is required; "
            f"{previous} is the one recorded with {recorded_with}."
        )
    return problems
