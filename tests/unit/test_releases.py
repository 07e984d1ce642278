"""Only releases the operator signed are deployed or restored (issue 11, attack 2)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aideploy.api.constants import Phase
from aideploy.api.digest import spec_digest
from aideploy.api.status import AIDeploymentStatus, Release
from aideploy.logic.gate import ApprovalPolicy
from aideploy.logic.machine import decide
from aideploy.logic.plan import Observation
from aideploy.logic.releases import distrust, is_signed, sign_releases

from .factories import full_checklist, gate_annotations, make_spec
from .simulator import Simulator
from .test_machine import child_from, cond, observe
from .test_verification import live, second_release, spec_with

KEY = b"operator-signing-key-for-tests!!"
UID = "uid-1"  # test_machine.OWNER
POLICY = ApprovalPolicy(provenance_key=KEY)


def keyed(obs: Observation) -> Observation:
    return dataclasses.replace(obs, approval_policy=POLICY)


def test_the_operator_signs_the_releases_it_writes() -> None:
    spec = make_spec("minimal")
    plan = decide(keyed(observe(spec, gate_annotations(spec))))
    assert plan.status.phase == Phase.DEPLOYING
    release = plan.status.current_release
    assert release is not None and is_signed(release, KEY, UID)
    for changed in (
        release.replace(went_live_at="2026-11-26T12:05:00Z"),  # would make it a rollback target
        release.replace(template={"spec": {"containers": []}}),
        release.replace(digest="sha256:" + "e" * 64),
    ):
        assert not is_signed(changed, KEY, UID)
    assert not is_signed(release, b"another key", UID)
    assert not is_signed(release, KEY, "uid-of-another-object")  # not copied across objects


def _forged_deploying(spec: dict[str, Any], signature: str | None) -> AIDeploymentStatus:
    digest = spec_digest(spec)
    release = Release(
        version="2.0.0",
        digest=digest,
        generation=1,
        template=spec["template"],
        replicas=2,
        signature=signature,
    )
    return AIDeploymentStatus(phase=Phase.DEPLOYING, spec_digest=digest, current_release=release)


def test_a_release_written_into_status_by_someone_else_is_not_deployed() -> None:
    unapproved = make_spec("minimal", version="2.0.0")
    for signature in (None, "0" * 64):
        status = _forged_deploying(unapproved, signature)
        plan = decide(keyed(observe(unapproved, full_checklist(), status=status)))
        assert plan.apply is None, "the forged release must not be deployed"
        assert plan.status.phase == Phase.FAILED
        assert cond(plan, "Ready") == ("False", "ReleaseUntrusted")
        assert cond(plan, "ReleasesTrusted") == ("False", "ReleaseUntrusted")
        assert [e.reason for e in plan.events if e.type == "Warning"] == [
            "Failed",
            "ReleaseUntrusted",
        ]
        assert plan.status.current_release is None


def test_without_a_key_nothing_is_signed_or_checked() -> None:
    unapproved = make_spec("minimal", version="2.0.0")
    status = _forged_deploying(unapproved, None)
    assert distrust(status, None, UID) == (status, [])
    assert sign_releases(status, None, UID) == status


def test_a_tampered_last_good_release_is_never_restored_and_says_so_until_a_rollout() -> None:
    spec = make_spec("minimal")
    plan = decide(keyed(observe(spec, gate_annotations(spec))))
    good = plan.status.current_release
    assert good is not None
    evil = good.replace(
        template={"spec": {"containers": [{"name": "m", "image": "evil.example.com/miner:latest"}]}}
    )
    status = plan.status.replace(last_good_release=evil)
    kept, problems = distrust(status, KEY, UID)
    assert kept.last_good_release is None and kept.current_release == good
    assert problems and "status.lastGoodRelease" in problems[0]
    after = decide(
        keyed(
            observe(spec, gate_annotations(spec), status=status, deployment=child_from(plan, True))
        )
    )
    assert "evil.example.com" not in after.status.model_dump_json()
    assert after.status.phase == Phase.FAILED and after.apply is None  # stopped safely
    assert cond(after, "ReleasesTrusted") == ("False", "ReleaseUntrusted")
    again = decide(
        keyed(
            observe(
                spec, gate_annotations(spec), status=after.status, deployment=child_from(plan, True)
            )
        )
    )
    assert cond(again, "ReleasesTrusted") == ("False", "ReleaseUntrusted")  # still visible
    assert again.status.phase == Phase.FAILED and again.apply is None  # until the spec changes
    assert not [e for e in again.events if e.reason == "ReleaseUntrusted"]  # one Event
    newer = make_spec("minimal", version="1.1.0")
    rollout = decide(
        keyed(observe(newer, gate_annotations(newer), status=again.status, generation=2))
    )
    assert rollout.status.phase == Phase.DEPLOYING
    assert cond(rollout, "ReleasesTrusted") == ("True", "ReleasesSigned")


def test_an_upgrade_adopts_unsigned_releases_once_asked_and_never_wrong_ones() -> None:
    spec = make_spec("minimal", version="2.0.0")
    unsigned = _forged_deploying(spec, None)
    adopting = dataclasses.replace(POLICY, adopt_unsigned_releases=True)
    kept, problems = distrust(unsigned, KEY, UID, adopt_unsigned=True)
    assert kept == unsigned and problems == []
    plan = decide(
        dataclasses.replace(
            observe(spec, full_checklist(), status=unsigned), approval_policy=adopting
        )
    )
    assert plan.status.current_release is not None and is_signed(
        plan.status.current_release, KEY, UID
    )
    wrong = _forged_deploying(spec, "0" * 64)
    assert distrust(wrong, KEY, UID, adopt_unsigned=True)[0].current_release is None


def _signed_sim() -> Simulator:
    sim = Simulator(spec_with())
    sim.policy = POLICY
    live(sim)
    assert sim.phase() == "Succeeded"
    return sim


def test_a_whole_lifecycle_with_a_key_rolls_back_to_the_signed_release() -> None:
    sim = _signed_sim()
    v1 = sim.status.current_release
    assert v1 is not None and is_signed(v1, KEY, UID)
    second_release(sim)
    sim.probe_script = {"golden": "RED"}
    sim.settle()
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    rollback = sim.status.rollback
    assert rollback is not None and rollback.to_digest == v1.digest
    assert sim.child is not None
    assert sim.child["spec"]["template"]["spec"]["containers"] == v1.template["spec"]["containers"]  # type: ignore[index]
    for release in (sim.status.current_release, sim.status.last_good_release):
        assert release is None or is_signed(release, KEY, UID)
    assert sim.status.condition("ReleasesTrusted") is None  # nothing was ever set aside


def test_red_never_restores_a_tampered_rollback_target() -> None:
    sim = _signed_sim()
    second_release(sim)
    sim.settle()  # v2 goes live; v1 is its rollback target
    target = sim.wire_status["lastGoodRelease"]
    target["template"]["spec"]["containers"][0]["image"] = "evil.example.com/miner:latest"
    sim.probe_script = {"golden": "RED"}
    sim.settle()
    assert all("evil.example.com" not in str(applied) for applied in sim.applied)
    assert sim.phase() == "Failed"
    assert sim.condition("ReleasesTrusted") == ("False", "ReleaseUntrusted")
