"""The admission webhook's policy as a table of requests and verdicts, and the gate's use of
the provenance it stamps."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from aideploy.admission.config import ApproversConfig
from aideploy.admission.policy import Requester, review
from aideploy.admission.provenance import SPEC_CHANGED_BY, Provenance, parse_provenance, value_hash
from aideploy.admission.release_signature import release_signature
from aideploy.api.digest import spec_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.status import Release
from aideploy.logic.gate import ApprovalPolicy, evaluate_gate

from .factories import NOW, full_checklist, make_spec

CONFIG = ApproversConfig.model_validate(
    {
        "roles": {
            "qa-lead": {"groups": ["qa"]},
            "compliance-officer": {"users": ["bob"]},
            "system-owner": {"users": ["carol"]},
            "deployment-manager": {"users": ["carol"]},
        },
        "goLive": {"groups": ["sre"]},
        "registration": {"users": ["bob"]},
        "operator": {"users": ["system:serviceaccount:aideploy:operator"]},
    }
)
KEY = b"operator-signing-key-for-tests!!"
ALICE = Requester("alice", ("qa", "system:authenticated"))
BOB = Requester("bob", ("compliance",))
CAROL = Requester("carol", ("developers",))
OPERATOR = Requester("system:serviceaccount:aideploy:operator", ())


def obj(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"annotations": dict(annotations or {})}, "spec": copy.deepcopy(spec)}


def approve(spec: dict[str, Any], role: str, by: str = "someone") -> tuple[str, str]:
    return f"approval.aideploy.io/{role}", f"{spec_digest(spec)}; by={by}; fine"


HIGH = make_spec("high")
MINIMAL = make_spec("minimal")


def with_author(spec: dict[str, Any], user: str) -> dict[str, str]:
    stamp = Provenance(user=user, groups=(), at="2026-11-26T11:00:00Z", digest=spec_digest(spec))
    return {SPEC_CHANGED_BY: stamp.to_annotation(KEY, SPEC_CHANGED_BY)}


def test_a_holder_approves_and_is_recorded_under_the_real_name() -> None:
    key, value = approve(HIGH, "qa-lead", by="the-cto")  # the text lies about the name
    author = with_author(HIGH, "carol")
    verdict = review(
        "UPDATE", ALICE, obj(HIGH, author), obj(HIGH, {**author, key: value}), CONFIG, NOW, KEY
    )
    assert verdict.allowed
    stamp = parse_provenance(
        verdict.set_annotations["provenance.aideploy.io/qa-lead"],
        KEY,
        "provenance.aideploy.io/qa-lead",
    )
    assert stamp is not None
    assert stamp.user == "alice" and "qa" in stamp.groups
    assert stamp.digest == spec_digest(HIGH) and stamp.value == value_hash(value)
    assert SPEC_CHANGED_BY not in verdict.set_annotations  # the spec did not change


DENIALS = [
    # (what, requester, old annotations, new annotations, words in the message)
    (
        "not a holder of the role",
        ALICE,
        {},
        dict([approve(HIGH, "compliance-officer")]),
        ["alice", "compliance-officer", "users bob"],
    ),
    (
        "nobody holds the role",
        ALICE,
        {},
        dict([approve(HIGH, "risk-manager")]),
        ["risk-manager", "nobody"],
    ),
    (
        "forging provenance",
        ALICE,
        {},
        {"provenance.aideploy.io/qa-lead": "{}"},
        ["provenance.aideploy.io/qa-lead", "admission webhook"],
    ),
    (
        "removing provenance",
        ALICE,
        {"provenance.aideploy.io/qa-lead": "{}"},
        {},
        ["provenance.aideploy.io/qa-lead"],
    ),
    ("go-live by a non-SRE", ALICE, {}, {"aideploy.io/go-live": "proceed"}, ["goLive", "sre"]),
    (
        "rollback by a non-SRE",
        BOB,
        {},
        {"aideploy.io/rollback": "because"},
        ["aideploy.io/rollback"],
    ),
    (
        "registration id recorded by someone not in approvers.registration",
        ALICE,
        {},
        {"aideploy.io/eu-registration": "EU-DB-1; by=alice"},
        ["aideploy.io/eu-registration", "registration", "users bob"],
    ),
    (
        "registration id changed by someone not in approvers.registration",
        CAROL,
        {"aideploy.io/eu-registration": "EU-DB-1; by=bob"},
        {"aideploy.io/eu-registration": "EU-DB-2; by=carol"},
        ["aideploy.io/eu-registration"],
    ),
    (
        "registration id removed by someone not in approvers.registration",
        CAROL,
        {"aideploy.io/eu-registration": "EU-DB-1; by=bob"},
        {},
        ["aideploy.io/eu-registration"],
    ),
]


@pytest.mark.parametrize(("what", "requester", "old", "new", "words"), DENIALS)
def test_denials(
    what: str, requester: Requester, old: dict[str, str], new: dict[str, str], words: list[str]
) -> None:
    verdict = review("UPDATE", requester, obj(HIGH, old), obj(HIGH, new), CONFIG, NOW, KEY)
    assert not verdict.allowed, what
    for word in words:
        assert word in verdict.message, (what, verdict.message)


def test_the_spec_author_may_not_approve_a_high_risk_spec() -> None:
    key, value = approve(HIGH, "system-owner")
    old = obj(HIGH, with_author(HIGH, "carol"))
    new = obj(HIGH, {**with_author(HIGH, "carol"), key: value})
    verdict = review("UPDATE", CAROL, old, new, CONFIG, NOW, KEY)
    assert not verdict.allowed
    assert "separation of duties" in verdict.message


def test_changing_the_spec_and_approving_in_one_request_is_the_same_conflict() -> None:
    changed = make_spec("high", version="1.1.0")
    key, value = approve(changed, "system-owner")
    verdict = review("UPDATE", CAROL, obj(HIGH), obj(changed, {key: value}), CONFIG, NOW, KEY)
    assert not verdict.allowed and "separation of duties" in verdict.message


def test_separation_of_duties_is_off_for_minimal_risk_by_default_and_per_role_on() -> None:
    key, value = approve(MINIMAL, "system-owner")
    old = obj(MINIMAL, with_author(MINIMAL, "carol"))
    new = obj(MINIMAL, {**with_author(MINIMAL, "carol"), key: value})
    assert review("UPDATE", CAROL, old, new, CONFIG, NOW, KEY).allowed
    strict = CONFIG.model_copy(
        update={
            "separation_of_duties": CONFIG.separation_of_duties.model_copy(
                update={"roles": {"system-owner": True}}
            )
        }
    )
    assert not review("UPDATE", CAROL, old, new, strict, NOW, KEY).allowed


def test_a_spec_change_is_stamped_with_its_author() -> None:
    changed = make_spec("high", version="1.1.0")
    verdict = review("UPDATE", CAROL, obj(HIGH), obj(changed), CONFIG, NOW, KEY)
    assert verdict.allowed
    stamp = parse_provenance(verdict.set_annotations[SPEC_CHANGED_BY], KEY, SPEC_CHANGED_BY)
    assert stamp is not None and stamp.user == "carol" and stamp.digest == spec_digest(changed)


def test_create_stamps_the_author_and_checks_approvals_given_at_creation() -> None:
    key, value = approve(MINIMAL, "qa-lead")
    verdict = review("CREATE", ALICE, None, obj(MINIMAL, {key: value}), CONFIG, NOW, KEY)
    assert verdict.allowed
    assert {SPEC_CHANGED_BY, "provenance.aideploy.io/qa-lead"} <= set(verdict.set_annotations)
    # For high risk, creating an object is changing its spec: its creator may not approve it.
    key, value = approve(HIGH, "qa-lead")
    denied = review("CREATE", ALICE, None, obj(HIGH, {key: value}), CONFIG, NOW, KEY)
    assert not denied.allowed and "separation of duties" in denied.message


def test_removing_an_approval_removes_its_provenance() -> None:
    key, value = approve(HIGH, "qa-lead")
    old = obj(HIGH, {key: value, "provenance.aideploy.io/qa-lead": "{}"})
    new = obj(HIGH, {"provenance.aideploy.io/qa-lead": "{}"})
    verdict = review("UPDATE", CAROL, old, new, CONFIG, NOW, KEY)
    assert verdict.allowed
    assert verdict.set_annotations == {"provenance.aideploy.io/qa-lead": None}


def test_checklist_items_are_stamped_and_unrestricted_unless_configured() -> None:
    verdict = review(
        "UPDATE",
        CAROL,
        obj(HIGH),
        obj(HIGH, {"checklist.aideploy.io/2.3": "yes UAT-1"}),
        CONFIG,
        NOW,
        KEY,
    )
    assert verdict.allowed
    assert "provenance.aideploy.io/checklist-2.3" in verdict.set_annotations
    restricted = CONFIG.model_copy(update={"checklist": CONFIG.holders("qa-lead")})
    denied = review(
        "UPDATE",
        CAROL,
        obj(HIGH),
        obj(HIGH, {"checklist.aideploy.io/2.3": "yes UAT-1"}),
        restricted,
        NOW,
        KEY,
    )
    assert not denied.allowed and "checklist" in denied.message


def test_a_holder_of_registration_records_the_id_and_nobody_is_restricted_unless_configured() -> (
    None
):
    registered = obj(HIGH, {"aideploy.io/eu-registration": "EU-DB-1; by=bob"})
    assert review("UPDATE", BOB, obj(HIGH), registered, CONFIG, NOW, KEY).allowed
    unrestricted = CONFIG.model_copy(update={"registration": None})
    assert review("UPDATE", ALICE, obj(HIGH), registered, unrestricted, NOW, KEY).allowed
    # Unchanged, it is no one's business: another change by a non-holder passes.
    approved = obj(HIGH, {"aideploy.io/eu-registration": "EU-DB-1; by=bob", "x": "y"})
    assert review("UPDATE", ALICE, registered, approved, CONFIG, NOW, KEY).allowed


def test_the_operator_may_do_anything() -> None:
    old = obj(HIGH, {"aideploy.io/go-live": "proceed", "provenance.aideploy.io/qa-lead": "{}"})
    assert review("UPDATE", OPERATOR, old, obj(HIGH), CONFIG, NOW, KEY).allowed


def _gate_with(annotations: dict[str, str], policy: ApprovalPolicy):  # type: ignore[no-untyped-def]
    spec = AIDeploymentSpec.model_validate(MINIMAL)
    keyed = ApprovalPolicy(
        require_authenticated=policy.require_authenticated,
        separation=policy.separation,
        provenance_key=KEY,
    )
    return evaluate_gate(
        spec, {**full_checklist(), **annotations}, spec_digest(MINIMAL), policy=keyed
    )


def _vouched(role: str, user: str) -> dict[str, str]:
    key, value = approve(MINIMAL, role, by="typed-name")
    verdict = review(
        "UPDATE",
        Requester(user, ()),
        obj(MINIMAL),
        obj(MINIMAL, {key: value}),
        ApproversConfig.model_validate({"roles": {role: {"users": [user]}}}),
        NOW,
        KEY,
    )
    assert verdict.allowed
    return {key: value, **{k: v for k, v in verdict.set_annotations.items() if v is not None}}


def test_gate_uses_the_authenticated_identity() -> None:
    annotations = {**_vouched("system-owner", "carol"), **_vouched("deployment-manager", "dave")}
    result = _gate_with(annotations, ApprovalPolicy())
    assert result.passed
    by_role = {a.role: a for a in result.approvals}
    assert by_role["system-owner"].by == "carol" and by_role["system-owner"].authenticated
    assert by_role["deployment-manager"].by == "dave"


def test_gate_marks_unvouched_approvals_and_can_require_authentication() -> None:
    key, value = approve(MINIMAL, "system-owner", by="carol")
    key2, value2 = approve(MINIMAL, "deployment-manager", by="dave")
    annotations = {key: value, key2: value2}
    relaxed = _gate_with(annotations, ApprovalPolicy())
    assert relaxed.passed and not any(a.authenticated for a in relaxed.approvals)
    strict = _gate_with(annotations, ApprovalPolicy(require_authenticated=True))
    assert not strict.passed
    assert strict.missing_roles == ["system-owner", "deployment-manager"]
    assert "not authenticated" in strict.approvals_message(spec_digest(MINIMAL))


def test_gate_rejects_a_vouched_approval_edited_without_the_webhook() -> None:
    annotations = _vouched("system-owner", "carol")
    key = "approval.aideploy.io/system-owner"
    annotations[key] = annotations[key] + " (edited)"
    result = _gate_with(annotations, ApprovalPolicy(require_authenticated=True))
    record = next(a for a in result.approvals if a.role == "system-owner")
    assert not record.authenticated and not record.valid


def test_gate_enforces_separation_of_duties_from_provenance() -> None:
    from aideploy.admission.config import SeparationOfDuties

    annotations = {
        **_vouched("system-owner", "carol"),
        **_vouched("deployment-manager", "dave"),
        **with_author(MINIMAL, "carol"),
    }
    policy = ApprovalPolicy(separation=SeparationOfDuties(risk_levels=["minimal"]))  # type: ignore[list-item]
    result = _gate_with(annotations, policy)
    assert result.missing_roles == ["system-owner"]
    assert "who changed this spec" in result.approvals_message(spec_digest(MINIMAL))


def test_forged_or_unsigned_provenance_is_not_trusted() -> None:
    key, value = approve(MINIMAL, "system-owner", by="carol")
    key2, value2 = approve(MINIMAL, "deployment-manager", by="dave")
    forged = Provenance(
        user="the-cto",
        groups=(),
        at="2026-11-26T11:00:00Z",
        digest=spec_digest(MINIMAL),
        value=value_hash(value),
    )
    for text in (
        forged.to_annotation(
            b"a key someone guessed, not ours!", "provenance.aideploy.io/system-owner"
        ),
        forged.to_annotation(KEY, "provenance.aideploy.io/deployment-manager"),  # copied across
        json.dumps(
            {"user": "the-cto", "groups": [], "at": "x", "digest": "y", "value": value_hash(value)}
        ),  # unsigned
    ):
        annotations = {key: value, key2: value2, "provenance.aideploy.io/system-owner": text}
        result = _gate_with(annotations, ApprovalPolicy(require_authenticated=True))
        record = next(a for a in result.approvals if a.role == "system-owner")
        assert not record.authenticated and record.by == "carol" and not record.valid


def test_a_non_ascii_signature_is_no_provenance_not_a_crash() -> None:
    from aideploy.admission.provenance import parse_provenance as parse

    text = json.dumps({"user": "x", "groups": [], "at": "t", "digest": "d", "sig": "é"})
    assert parse(text, KEY, "provenance.aideploy.io/qa-lead") is None


def test_provenance_brought_by_a_create_is_dropped_not_refused() -> None:
    restored = obj(
        MINIMAL, {"provenance.aideploy.io/qa-lead": "{}", "provenance.aideploy.io/x": "1"}
    )
    verdict = review("CREATE", CAROL, None, restored, CONFIG, NOW, KEY)
    assert verdict.allowed
    assert verdict.set_annotations["provenance.aideploy.io/qa-lead"] is None
    assert verdict.set_annotations["provenance.aideploy.io/x"] is None
    assert verdict.set_annotations[SPEC_CHANGED_BY] is not None


def test_an_unknown_spec_author_blocks_approvals_where_separation_of_duties_applies() -> None:
    key, value = approve(HIGH, "qa-lead")
    verdict = review("UPDATE", ALICE, obj(HIGH), obj(HIGH, {key: value}), CONFIG, NOW, KEY)
    assert not verdict.allowed and "Nobody knows who wrote spec" in verdict.message
    # Signed with another key (rotated, or forged): just as unknown.
    other = Provenance(user="carol", groups=(), at="t", digest=spec_digest(HIGH))
    forged = {
        SPEC_CHANGED_BY: other.to_annotation(b"some other key, not the operator", SPEC_CHANGED_BY)
    }
    verdict = review(
        "UPDATE", ALICE, obj(HIGH, forged), obj(HIGH, {**forged, key: value}), CONFIG, NOW, KEY
    )
    assert not verdict.allowed
    # Where it does not apply (minimal risk by default), the author need not be known.
    key, value = approve(MINIMAL, "qa-lead")
    assert review(
        "UPDATE", ALICE, obj(MINIMAL), obj(MINIMAL, {key: value}), CONFIG, NOW, KEY
    ).allowed


def _apply(before: dict[str, Any], verdict: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The object as stored after an admitted change: the verdict's annotations applied."""
    annotations = dict(before["metadata"]["annotations"])
    for key, value in verdict.set_annotations.items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    return obj(spec, annotations)


def _change(who: Requester, stored: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    verdict = review(
        "UPDATE", who, stored, obj(spec, stored["metadata"]["annotations"]), CONFIG, NOW, KEY
    )
    assert verdict.allowed, verdict.message
    return _apply(stored, verdict, spec)


def test_an_accomplices_toggle_does_not_launder_the_author() -> None:
    """Issue 11, attack 5: carol writes the spec, bob toggles replicas 2 -> 3 -> 2 and is the
    last to change it, and carol would approve her own spec."""
    created = review("CREATE", CAROL, None, obj(HIGH), CONFIG, NOW, KEY)
    stored = _apply(obj(HIGH), created, HIGH)
    toggled = _change(BOB, stored, {**HIGH, "replicas": 3})
    back = _change(BOB, toggled, HIGH)
    stamp = parse_provenance(back["metadata"]["annotations"][SPEC_CHANGED_BY], KEY, SPEC_CHANGED_BY)
    assert stamp is not None and stamp.user == "bob" and stamp.changed_by == ("carol", "bob")
    key, value = approve(HIGH, "system-owner", by="carol")
    annotations = {**back["metadata"]["annotations"], key: value}
    verdict = review("UPDATE", CAROL, back, obj(HIGH, annotations), CONFIG, NOW, KEY)
    assert not verdict.allowed and "separation of duties" in verdict.message
    # The gate, reading the same provenance, refuses it too.
    forged_in = {
        **annotations,
        "provenance.aideploy.io/system-owner": Provenance(
            user="carol",
            groups=(),
            at="2026-11-26T12:00:00Z",
            digest=spec_digest(HIGH),
            value=value_hash(value),
        ).to_annotation(KEY, "provenance.aideploy.io/system-owner"),
    }
    policy = ApprovalPolicy(separation=CONFIG.separation_of_duties, provenance_key=KEY)
    gate = evaluate_gate(
        AIDeploymentSpec.model_validate(HIGH), forged_in, spec_digest(HIGH), policy=policy
    )
    (owner,) = [a for a in gate.approvals if a.role == "system-owner"]
    assert not owner.valid and owner.problem is not None and "carol" in owner.problem


def test_an_approval_by_someone_else_does_not_reset_the_authors() -> None:
    """The toggle after another role approved: the approval stays on the object, so it
    must not count as the spec having gone through the gate."""
    created = review("CREATE", CAROL, None, obj(HIGH), CONFIG, NOW, KEY)
    stored = _apply(obj(HIGH), created, HIGH)
    key, value = approve(HIGH, "qa-lead", by="alice")
    with_approval = obj(HIGH, {**stored["metadata"]["annotations"], key: value})
    approved = review("UPDATE", ALICE, stored, with_approval, CONFIG, NOW, KEY)
    assert approved.allowed, approved.message
    stored = _apply(with_approval, approved, HIGH)
    back = _change(BOB, _change(BOB, stored, {**HIGH, "replicas": 3}), HIGH)
    key, value = approve(HIGH, "system-owner", by="carol")
    own = review(
        "UPDATE",
        CAROL,
        back,
        obj(HIGH, {**back["metadata"]["annotations"], key: value}),
        CONFIG,
        NOW,
        KEY,
    )
    assert not own.allowed and "separation of duties" in own.message


def rolled_out(stored: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """`stored` as the operator left it after rolling `spec` out (a signed release)."""
    release = Release(version="1.0.0", digest=spec_digest(spec))
    signed = release.replace(signature=release_signature(release, KEY, ""))
    return {**stored, "status": {"currentRelease": signed.to_wire()}}


def test_authors_reset_once_the_spec_was_rolled_out() -> None:
    created = review("CREATE", CAROL, None, obj(HIGH), CONFIG, NOW, KEY)
    stored = rolled_out(_apply(obj(HIGH), created, HIGH), HIGH)
    changed = _change(BOB, stored, {**HIGH, "replicas": 3})
    stamp = parse_provenance(
        changed["metadata"]["annotations"][SPEC_CHANGED_BY], KEY, SPEC_CHANGED_BY
    )
    assert stamp is not None and stamp.changed_by == ("bob",)
    # A release in status that the operator did not sign resets nothing.
    forged = {
        **stored,
        "status": {
            "currentRelease": {
                "version": "1.0.0",
                "digest": spec_digest(HIGH),
                "signature": "0" * 64,
            }
        },
    }
    changed = _change(BOB, forged, {**HIGH, "replicas": 3})
    stamp = parse_provenance(
        changed["metadata"]["annotations"][SPEC_CHANGED_BY], KEY, SPEC_CHANGED_BY
    )
    assert stamp is not None and stamp.changed_by == ("carol", "bob")
