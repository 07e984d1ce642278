"""`kubectl aideploy` refuses what the operator would ignore, and its messages are true:
rollback and go-live only when the operator acts on them (exit 1, nothing written
otherwise), approve with the gate's roles and an honest digest message, check with
several items or a file in one write. Against the real apiserver; the status the operator
would have written is written directly, so that each phase is reached at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aideploy.api.digest import spec_digest
from aideploy.cli.session import Session
from aideploy.kube.rest import Rest
from tests.support import aid

pytestmark = pytest.mark.integration

NAME = "churn-predictor"  # examples/minimal-risk.yaml
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def example(rest: Rest, namespace: str, crds: list[str]) -> dict[str, Any]:
    return aid.create(rest, namespace, aid.load_example("minimal-risk.yaml"))


def annotations(rest: Rest, namespace: str, name: str = NAME) -> dict[str, str]:
    return dict(aid.get(rest, namespace, name)["metadata"].get("annotations") or {})


def in_phase(
    rest: Rest, namespace: str, obj: dict[str, Any], phase: str, last_good: str | None = "1.3.0"
) -> None:
    """The status of `obj`'s current spec rolled out as 1.4.0 and now in `phase`."""
    release = {"version": "1.4.0", "digest": spec_digest(obj["spec"])}
    status: dict[str, Any] = {"phase": phase, "currentRelease": release}
    if last_good is not None:
        status["lastGoodRelease"] = {"version": last_good, "digest": "sha256:" + "0" * 64}
    if phase == "Succeeded":
        status["lastGoodRelease"] = release
    aid.set_status(rest, namespace, NAME, status)


# rollback


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (None, "nothing has been rolled out yet"),
        ("Succeeded", "completed its watch and is the last good release"),
        ("RolledBack", "already rolled back"),
    ],
)
def test_rollback_refused_when_the_operator_would_ignore_it(
    run: Run,
    rest: Rest,
    namespace: str,
    example: dict[str, Any],
    phase: str | None,
    expected: str,
) -> None:
    if phase is not None:
        in_phase(rest, namespace, example, phase)
    code, out, err = run("rollback", NAME, "--reason", "bad answers")
    assert (code, out) == (1, "")
    assert err.startswith(f"error: cannot roll back aideployment {NAME}: ") and expected in err
    assert "nothing was written" in err and len(err.strip().splitlines()) == 1
    assert "aideploy.io/rollback" not in annotations(rest, namespace)


def test_rollback_refused_once_the_spec_changed(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    in_phase(rest, namespace, example, "Monitoring")
    aid.merge_patch(rest, namespace, NAME, {"spec": {"replicas": 3}})
    code, _, err = run("rollback", NAME, "--reason", "bad answers")
    assert code == 1 and "spec changed since version 1.4.0 was rolled out" in err
    assert "aideploy.io/rollback" not in annotations(rest, namespace)


def test_rollback_while_monitoring_is_written(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    in_phase(rest, namespace, example, "Monitoring")
    code, out, err = run("rollback", NAME, "--reason", "bad answers")
    assert (code, err) == (0, "")
    assert f"rollback requested for aideployment {NAME} from 1.4.0 to 1.3.0: bad answers" in out
    assert annotations(rest, namespace)["aideploy.io/rollback"] == "bad answers"


def test_rollback_of_a_first_deployment_warns_that_nothing_will_serve(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    in_phase(rest, namespace, example, "Verifying", last_good=None)
    code, _, err = run("rollback", NAME, "--reason", "bad answers")
    assert code == 0 and "no earlier good release to restore" in err
    assert annotations(rest, namespace)["aideploy.io/rollback"] == "bad answers"


# go-live


@pytest.mark.parametrize(
    ("phase", "expected"),
    [(None, "nothing has been rolled out yet"), ("Monitoring", "it is Monitoring, not Held")],
)
def test_go_live_refused_unless_held(
    run: Run,
    rest: Rest,
    namespace: str,
    example: dict[str, Any],
    phase: str | None,
    expected: str,
) -> None:
    if phase is not None:
        in_phase(rest, namespace, example, phase)
    code, out, err = run("go-live", NAME, "proceed")
    assert (code, out) == (1, "")
    assert expected in err and len(err.strip().splitlines()) == 1
    assert "aideploy.io/go-live" not in annotations(rest, namespace)


def test_go_live_on_held_is_written(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    in_phase(rest, namespace, example, "Held")
    code, out, err = run("go-live", NAME, "rollback")
    assert (code, err) == (0, "")
    assert "go-live decision for aideployment churn-predictor of version 1.4.0: rollback" in out
    assert annotations(rest, namespace)["aideploy.io/go-live"] == "rollback"


# approve


def test_expedite_counts_the_deployment_manager(
    run: Run, rest: Rest, namespace: str, crds: list[str]
) -> None:
    """examples/expedited-patch.yaml: high risk, expedited, so the deployment manager's
    approval counts though the high-risk matrix does not list the role."""
    aid.create(rest, namespace, aid.load_example("expedited-patch.yaml"))
    code, out, err = run("approve", "fraud-scorer", "--role", "deployment-manager", "--by", "dm")
    assert (code, err) == (0, "")
    assert "approved aideployment fraud-scorer as deployment-manager" in out
    code, _, err = run("approve", "fraud-scorer", "--role", "qa-lead", "--by", "qa")
    assert (code, err) == (0, "")


def test_a_mistyped_digest_is_not_called_a_changed_spec(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    current = spec_digest(example["spec"])
    code, out, err = run("approve", NAME, "--role", "system-owner", "--digest", "0123456789ab")
    assert (code, out) == (1, "")
    assert "--digest 0123456789ab does not match the digest of the current spec" in err
    assert current in err and f"kubectl get aid {NAME} -o yaml" in err
    assert "changed since" not in err and len(err.strip().splitlines()) == 1
    assert "approval.aideploy.io/system-owner" not in annotations(rest, namespace)


# check: several items, a file


def count_patches(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    patches: list[dict[str, Any]] = []
    original = Session.patch_deployment

    def counted(self: Session, name: str, patch: dict[str, Any], hint: str) -> dict[str, Any]:
        patches.append(patch)
        return original(self, name, patch, hint)

    monkeypatch.setattr(Session, "patch_deployment", counted)
    return patches


def test_check_several_items_in_one_write(
    run: Run,
    rest: Rest,
    namespace: str,
    example: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patches = count_patches(monkeypatch)
    code, out, err = run("check", NAME, "1.1", "1.2", "1.3", "--evidence", "https://ci/run/7")
    assert (code, err) == (0, "")
    assert len(patches) == 1 and len(out.strip().splitlines()) == 3
    found = annotations(rest, namespace)
    for item in ("1.1", "1.2", "1.3"):
        assert found[f"checklist.aideploy.io/{item}"] == "yes https://ci/run/7"


def test_check_file_writes_all_or_nothing(
    run: Run,
    rest: Rest,
    namespace: str,
    example: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    patches = count_patches(monkeypatch)
    path = tmp_path / "checklist.yaml"
    path.write_text("2.1: yes https://ci/run/42\n2.2: n/a no system test\n4.1: n/a minimal\n")
    code, out, err = run("check", NAME, "-f", str(path))
    assert (code, out) == (2, "")
    assert "2.2 (System testing complete) cannot be n/a for section 2" in err
    assert "nothing was written" in err and len(err.strip().splitlines()) == 1
    assert patches == []
    assert not any(k.startswith("checklist.aideploy.io/") for k in annotations(rest, namespace))
    path.write_text("2.1: yes https://ci/run/42\n2.2: yes https://ci/run/43\n4.1: n/a minimal\n")
    code, out, err = run("check", NAME, "-f", str(path))
    assert (code, err) == (0, "")
    assert len(patches) == 1
    found = annotations(rest, namespace)
    assert found["checklist.aideploy.io/2.2"] == "yes https://ci/run/43"
    assert found["checklist.aideploy.io/4.1"] == "n/a minimal"
