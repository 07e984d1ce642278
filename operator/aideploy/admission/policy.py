"""The admission webhook's decision, as a pure function of the request.

- `approval.aideploy.io/<role>` may be added or changed only by a holder of that role; the
  webhook stamps `provenance.aideploy.io/<role>` with the request's authenticated identity.
- Separation of duties: whoever last changed the spec may not approve that spec where it
  applies (high risk by default, per-role overrides).
- Checklist items and go-live/rollback annotations are restricted the same way when the
  configuration names who may set them.
- `provenance.aideploy.io/*` is the webhook's own bookkeeping: nobody but the operator may
  add, change or remove it.
Removing an approval is allowed to anyone who may update the object: it can only lower
what the gate lets through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from aideploy.admission.config import ApproversConfig, Subjects
from aideploy.admission.provenance import (
    SPEC_CHANGED_BY,
    Provenance,
    checklist_key,
    parse_provenance,
    role_key,
    spec_author,
    value_hash,
)
from aideploy.admission.release_signature import is_signed
from aideploy.api.approvals import parse_approval
from aideploy.api.constants import (
    APPROVAL_PREFIX,
    CHECKLIST_PREFIX,
    GO_LIVE_ANNOTATION,
    PROVENANCE_PREFIX,
    REGISTRATION_ANNOTATION,
    ROLLBACK_ANNOTATION,
    Role,
)
from aideploy.api.digest import short_digest, spec_digest
from aideploy.api.status import Release
from aideploy.api.times import rfc3339


@dataclass(frozen=True)
class Requester:
    username: str
    groups: tuple[str, ...] = ()

    @classmethod
    def from_userinfo(cls, userinfo: Mapping[str, Any]) -> Requester:
        return cls(
            username=str(userinfo.get("username", "")),
            groups=tuple(str(g) for g in userinfo.get("groups") or ()),
        )

    def describe(self) -> str:
        visible = [g for g in self.groups if not g.startswith("system:authenticated")]
        return self.username + (f" (groups {', '.join(visible)})" if visible else "")


@dataclass(frozen=True)
class Review:
    allowed: bool
    message: str = ""
    # Annotations to set (a value) or remove (None) on the admitted object.
    set_annotations: dict[str, str | None] = field(default_factory=dict)


def _annotations(obj: Mapping[str, Any] | None) -> dict[str, str]:
    if obj is None:
        return {}
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _changed(old: Mapping[str, str], new: Mapping[str, str], prefix: str) -> list[str]:
    keys = {k for k in (*old, *new) if k.startswith(prefix)}
    return sorted(k for k in keys if old.get(k) != new.get(k))


def _deny(message: str) -> Review:
    return Review(allowed=False, message=message)


class _DeniedError(Exception):
    """Raised inside one review to end it with a denial; never escapes `review`."""

    def __init__(self, review: Review) -> None:
        super().__init__(review.message)
        self.review = review


@dataclass(frozen=True)
class _Request:
    """What every check of one admission request needs to know."""

    requester: Requester
    config: ApproversConfig
    signing_key: bytes
    stamp: Provenance
    author: Provenance | None
    risk: str

    def sign(self, key: str, digest: str, value: str) -> str:
        """Provenance of `requester` having written `value` under `key`."""
        return Provenance(
            user=self.requester.username,
            groups=self.requester.groups,
            at=self.stamp.at,
            digest=digest,
            value=value_hash(value),
        ).to_annotation(self.signing_key, key)


def review(
    operation: str,
    requester: Requester,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    config: ApproversConfig,
    now: datetime,
    signing_key: bytes,
) -> Review:
    """`signing_key` signs the provenance this admission stamps (see provenance.py)."""
    old_annotations, new_annotations = _annotations(old), _annotations(new)
    if config.operator.include(requester.username, requester.groups):
        return Review(allowed=True)
    updates: dict[str, str | None] = {}
    if operation == "CREATE":
        # A restored or re-created object (Velero, exported YAML) brings provenance of its
        # past: none of it can be trusted for the new object, so drop it, do not refuse.
        updates.update(dict.fromkeys(k for k in new_annotations if k.startswith(PROVENANCE_PREFIX)))
        new_annotations = {
            k: v for k, v in new_annotations.items() if not k.startswith(PROVENANCE_PREFIX)
        }
    forged = _changed(old_annotations, new_annotations, PROVENANCE_PREFIX)
    if forged:
        return _deny(
            f"{', '.join(forged)} may be written only by the aideploy admission webhook; "
            "leave provenance.aideploy.io/* annotations out of your change."
        )
    digest = spec_digest(new.get("spec") or {})
    spec_changed = operation == "CREATE" or (
        old is not None and spec_digest(old.get("spec") or {}) != digest
    )
    stamp = Provenance(
        user=requester.username,
        groups=requester.groups,
        at=rfc3339(now),
        digest=digest,
        authors=(
            _authors_since_rollout(old, requester.username, signing_key) if spec_changed else ()
        ),
    )
    request = _Request(
        requester=requester,
        config=config,
        signing_key=signing_key,
        stamp=stamp,
        author=stamp if spec_changed else spec_author(old_annotations, digest, signing_key),
        risk=str((new.get("spec") or {}).get("riskLevel", "")),
    )
    try:
        updates.update(_review_approvals(request, old_annotations, new_annotations))
        updates.update(_review_checklist(request, old_annotations, new_annotations))
        _review_go_live(request, old_annotations, new_annotations)
        _review_registration(request, old_annotations, new_annotations)
    except _DeniedError as denied:
        return denied.review
    if spec_changed:
        updates[SPEC_CHANGED_BY] = stamp.to_annotation(signing_key, SPEC_CHANGED_BY)
    return Review(allowed=True, set_annotations=updates)


def _authors_since_rollout(old: Mapping[str, Any] | None, user: str, key: bytes) -> tuple[str, ...]:
    """Who has changed the spec since it last went through the gate, `user` included: the
    previous spec's authors carry over unless that spec is the release the operator rolled
    out (its signed status.currentRelease). An approval alone does not reset them: it stays
    on the object while the spec changes, and would let a toggle launder the author."""
    if old is None:
        return (user,)
    annotations = _annotations(old)
    previous = parse_provenance(annotations.get(SPEC_CHANGED_BY), key, SPEC_CHANGED_BY)
    if previous is None or _rolled_out(old, previous.digest, key):
        return (user,)
    return tuple(dict.fromkeys((*previous.changed_by, user)))


def _rolled_out(obj: Mapping[str, Any], digest: str, key: bytes) -> bool:
    raw = (obj.get("status") or {}).get("currentRelease")
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    if not isinstance(raw, Mapping) or raw.get("digest") != digest:
        return False
    try:
        release = Release.model_validate(Release.known_fields(raw)[0])
    except ValidationError:
        return False
    return is_signed(release, key, uid)


def _review_approvals(
    request: _Request, old: Mapping[str, str], new: Mapping[str, str]
) -> dict[str, str | None]:
    """Only holders of a role approve as it, never the spec's own author where separation
    of duties applies; each approval admitted gets its signed provenance."""
    updates: dict[str, str | None] = {}
    known_roles = {r.value for r in Role}
    for key in _changed(old, new, APPROVAL_PREFIX):
        role = key.removeprefix(APPROVAL_PREFIX)
        value = new.get(key)
        if role not in known_roles:
            continue
        if value is None:
            updates[role_key(role)] = None
            continue
        _check_approver(request, role)
        updates[role_key(role)] = request.sign(role_key(role), parse_approval(value).digest, value)
    return updates


def _check_approver(request: _Request, role: str) -> None:
    requester, author, risk = request.requester, request.author, request.risk
    digest = request.stamp.digest
    holders = request.config.holders(role)
    if not holders.include(requester.username, requester.groups):
        raise _DeniedError(
            _deny(
                f"{requester.describe()} may not approve as {role}: that role is held by "
                f"{holders.describe()} (approvers.roles.{role} in the operator's "
                "configuration). Ask a holder of the role, or an administrator to grant it."
            )
        )
    if not request.config.separation_of_duties.applies(role, risk):
        return
    if author is None:
        raise _DeniedError(
            _deny(
                f"Nobody knows who wrote spec {short_digest(digest)} (it changed while the "
                "webhook was not in place), so separation of duties cannot be checked for "
                f"{role} at {risk} risk. Have the spec's author re-apply it with any change, "
                "then approve."
            )
        )
    if requester.username in author.changed_by:
        raise _DeniedError(
            _deny(
                f"{requester.username} changed spec {short_digest(digest)} (or a version of it "
                "since the last approved one) and so may not "
                f"approve it as {role} (separation of duties for {risk} risk); ask another "
                "holder of the role."
            )
        )


def _review_checklist(
    request: _Request, old: Mapping[str, str], new: Mapping[str, str]
) -> dict[str, str | None]:
    updates: dict[str, str | None] = {}
    for key in _changed(old, new, CHECKLIST_PREFIX):
        item = key.removeprefix(CHECKLIST_PREFIX)
        value = new.get(key)
        if value is None:
            updates[checklist_key(item)] = None
            continue
        denial = _restricted(request.config.checklist, request.requester, key, "checklist")
        if denial is not None:
            raise _DeniedError(denial)
        updates[checklist_key(item)] = request.sign(
            checklist_key(item), request.stamp.digest, value
        )
    return updates


def _review_go_live(request: _Request, old: Mapping[str, str], new: Mapping[str, str]) -> None:
    for key in (GO_LIVE_ANNOTATION, ROLLBACK_ANNOTATION):
        if old.get(key) != new.get(key) and key in new:
            denial = _restricted(request.config.go_live, request.requester, key, "goLive")
            if denial is not None:
                raise _DeniedError(denial)


def _review_registration(request: _Request, old: Mapping[str, str], new: Mapping[str, str]) -> None:
    """Recording, changing or removing the id: all are the registration holders'."""
    key = REGISTRATION_ANNOTATION
    if old.get(key) != new.get(key):
        denial = _restricted(request.config.registration, request.requester, key, "registration")
        if denial is not None:
            raise _DeniedError(denial)


def _restricted(
    subjects: Subjects | None, requester: Requester, key: str, setting: str
) -> Review | None:
    if subjects is None or subjects.include(requester.username, requester.groups):
        return None
    return _deny(
        f"{requester.describe()} may not set {key}: it is restricted to "
        f"{subjects.describe()} ({setting} in the operator's approvers configuration)."
    )
