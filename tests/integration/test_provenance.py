"""Approval provenance with real authentication: users from the apiserver's token file act
through their own kubeconfigs, the operator's admission webhook (called by the real
apiserver over TLS) decides who may approve, and records who really did."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config

from aideploy.api.digest import spec_digest
from aideploy.kube.records import list_records
from aideploy.kube.rest import ApiError, Rest
from tests.support import aid
from tests.support.cluster import (
    ClusterHandle,
    create_namespace,
    delete_namespace,
    namespace_name_for,
    wait_for,
)
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import free_port
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

APPROVERS = {
    "roles": {
        "qa-lead": {"groups": ["qa"]},
        "compliance-officer": {"groups": ["compliance"]},
        "system-owner": {"users": ["carol"]},
        "risk-manager": {"users": ["bob"]},
        "governance-committee": {"users": ["bob"]},
        "deployment-manager": {"users": ["carol"]},
    },
    "goLive": {"groups": ["compliance"]},
    "separationOfDuties": {"riskLevels": ["high"]},
}
WEBHOOK_API = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
VALIDATING_API = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "webhook.crt", directory / "webhook.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def webhook_in_effect(rest: Rest, namespace: str) -> bool:
    """True once the apiserver calls the webhook: a dry-run create comes back stamped.

    The webhook configuration exists (with no webhooks) before kopf fills it in, and the
    apiserver picks up a filled-in configuration a moment later; only the stamp proves it.
    """
    probe = aid.manifest("webhook-probe", make_spec("high"), full_checklist())
    try:
        created = aid.create(rest, namespace, probe, dry_run=True)
    except ApiError:  # registered, but its server is not answering yet
        return False
    annotations = created["metadata"].get("annotations") or {}
    return "provenance.aideploy.io/spec-changed-by" in annotations


@pytest.fixture
def webhook_operator(
    kube_cluster: ClusterHandle,
    namespace: str,
    crds: list[str],
    tmp_path: Path,
    rest: Rest,
) -> Iterator[OperatorProcess]:
    """The operator with its webhook on 127.0.0.1, registered for this test only."""
    cert, key = make_certificate(tmp_path)
    approvers = tmp_path / "approvers.yaml"
    approvers.write_text(yaml.safe_dump(APPROVERS))
    name = f"{namespace}.aideploy.io"  # kopf names the webhook "provenance.<name>"
    process = OperatorProcess(kube_cluster.kubeconfig, namespace, tmp_path / "operator.log")
    process.start(
        args=[
            "--webhook-port",
            str(free_port()),
            "--webhook-addr",
            "127.0.0.1",
            "--webhook-host",
            "127.0.0.1",
            "--webhook-cert",
            str(cert),
            "--webhook-key",
            str(key),
            "--webhook-managed",
            name,
            "--approvers-config",
            str(approvers),
        ]
    )
    try:
        wait_for(
            lambda: webhook_in_effect(rest, namespace),
            message="the apiserver to call the provenance webhook",
        )
        yield process
    finally:
        process.stop()
        rest.request("DELETE", f"{WEBHOOK_API}/{name}")
        with contextlib.suppress(ApiError):  # kopf creates it once a validating handler exists
            rest.request("DELETE", f"{VALIDATING_API}/{name}")
        print(f"---- operator log ----\n{process.log_text()[-20000:]}")


@pytest.fixture
def as_user(
    user_kubeconfig: Callable[[str], Path], rest: Rest, namespace: str
) -> Callable[[str], Rest]:
    """A REST client authenticated as that user, who may edit AIDeployments here."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "aideployment-editor"},
        "rules": [
            {
                "apiGroups": ["aideploy.io"],
                "resources": ["aideployments"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            }
        ],
    }
    rest.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles", role)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "aideployment-editors"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "aideployment-editor",
        },
        "subjects": [
            {"kind": "User", "name": u, "apiGroup": "rbac.authorization.k8s.io"}
            for u in ("alice", "bob", "carol")
        ],
    }
    rest.request(
        "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", binding
    )

    def make(user: str) -> Rest:
        return Rest(kube_config.new_client_from_config(config_file=str(user_kubeconfig(user))))  # type: ignore[no-untyped-call]

    return make


def approve_as(client: Rest, namespace: str, name: str, role: str, typed_name: str) -> None:
    digest = spec_digest(aid.get(client, namespace, name)["spec"])
    aid.annotate(
        client,
        namespace,
        name,
        {f"approval.aideploy.io/{role}": f"{digest}; by={typed_name}; looks good"},
    )


def approval_in_status(rest: Rest, namespace: str, name: str, role: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        for approval in aid.status(rest, namespace, name).get("approvals") or []:
            if approval["role"] == role:
                return dict(approval)
        return None

    return wait_for(probe, message=f"the {role} approval in status")


def test_a_qa_user_approves_as_qa_lead_and_is_recorded_under_the_real_name(
    rest: Rest,
    namespace: str,
    webhook_operator: OperatorProcess,
    as_user: Callable[[str], Rest],
) -> None:
    aid.create(rest, namespace, aid.manifest("fraud", make_spec("high"), full_checklist()))
    alice = as_user("alice")
    approve_as(alice, namespace, "fraud", "qa-lead", typed_name="the-cto")  # lies about the name
    approval = approval_in_status(rest, namespace, "fraud", "qa-lead")
    assert approval["by"] == "alice"
    assert approval["authenticated"] is True
    assert "qa" in approval["groups"]
    assert approval["valid"] is True
    provenance = aid.get(rest, namespace, "fraud")["metadata"]["annotations"][
        "provenance.aideploy.io/qa-lead"
    ]
    assert '"user":"alice"' in provenance


def test_a_namespace_it_does_not_watch_is_not_judged_by_its_rules(
    rest: Rest, kube_api: client.ApiClient, webhook_operator: OperatorProcess
) -> None:
    """A CREATE whose body names no namespace is judged by the request's namespace: one
    the operator does not watch is none of its business (attack 4 of issue 11)."""
    elsewhere = namespace_name_for("elsewhere")
    create_namespace(kube_api, elsewhere)
    try:
        spec = make_spec("high")
        body = aid.manifest(
            "fraud",
            spec,
            {"approval.aideploy.io/compliance-officer": f"{spec_digest(spec)}; by=admin; ok"},
        )
        assert "namespace" not in body["metadata"]
        created = aid.create(rest, elsewhere, body)  # the admin is no compliance officer
        annotations = created["metadata"].get("annotations") or {}
        assert not [key for key in annotations if key.startswith("provenance.aideploy.io/")]
    finally:
        delete_namespace(kube_api, elsewhere)


def test_the_same_user_is_denied_another_role(
    rest: Rest,
    namespace: str,
    webhook_operator: OperatorProcess,
    as_user: Callable[[str], Rest],
) -> None:
    aid.create(rest, namespace, aid.manifest("fraud", make_spec("high"), full_checklist()))
    with pytest.raises(ApiError) as denied:
        approve_as(as_user("alice"), namespace, "fraud", "compliance-officer", typed_name="bob")
    assert denied.value.status == 403
    assert (
        "compliance-officer" in denied.value.message and "groups compliance" in denied.value.message
    )
    annotations = aid.get(rest, namespace, "fraud")["metadata"].get("annotations") or {}
    assert "approval.aideploy.io/compliance-officer" not in annotations


def test_the_author_of_a_spec_change_cannot_approve_it(
    rest: Rest,
    namespace: str,
    webhook_operator: OperatorProcess,
    as_user: Callable[[str], Rest],
) -> None:
    aid.create(rest, namespace, aid.manifest("fraud", make_spec("high"), full_checklist()))
    carol = as_user("carol")
    aid.merge_patch(carol, namespace, "fraud", {"spec": {"replicas": 3}})
    author = aid.get(rest, namespace, "fraud")["metadata"]["annotations"][
        "provenance.aideploy.io/spec-changed-by"
    ]
    assert '"user":"carol"' in author
    with pytest.raises(ApiError) as denied:
        approve_as(carol, namespace, "fraud", "system-owner", typed_name="carol")
    assert denied.value.status == 403 and "separation of duties" in denied.value.message
    # Another holder of a role may approve it.
    approve_as(as_user("alice"), namespace, "fraud", "qa-lead", typed_name="alice")


def test_an_accomplices_toggle_does_not_launder_the_author(
    rest: Rest,
    namespace: str,
    webhook_operator: OperatorProcess,
    as_user: Callable[[str], Rest],
) -> None:
    """Issue 11, attack 5: bob toggles replicas 2 -> 3 -> 2 after carol wrote the spec, so
    bob is its last author; carol is still barred from approving it."""
    carol, bob = as_user("carol"), as_user("bob")
    aid.create(carol, namespace, aid.manifest("fraud", make_spec("high"), full_checklist()))
    aid.merge_patch(bob, namespace, "fraud", {"spec": {"replicas": 3}})
    aid.merge_patch(bob, namespace, "fraud", {"spec": {"replicas": 2}})
    author = aid.get(rest, namespace, "fraud")["metadata"]["annotations"][
        "provenance.aideploy.io/spec-changed-by"
    ]
    assert '"user":"bob"' in author and '"authors":["carol","bob"]' in author
    with pytest.raises(ApiError) as denied:
        approve_as(carol, namespace, "fraud", "system-owner", typed_name="carol")
    assert denied.value.status == 403 and "separation of duties" in denied.value.message


def test_records_cannot_be_edited_or_deleted_even_by_an_admin(
    rest: Rest,
    namespace: str,
    webhook_operator: OperatorProcess,
    simulated_node: SimulatedNode,
    as_user: Callable[[str], Rest],
) -> None:
    """Issue 11, attack 3: whoever RBAC lets update records (here a cluster admin) cannot
    rewrite the evidence; the webhook refuses UPDATE and DELETE."""
    spec = make_spec("minimal")
    aid.create(rest, namespace, aid.manifest("fraud", spec, full_checklist()))
    aid.approve_all(as_user("carol"), namespace, "fraud", ["system-owner", "deployment-manager"])
    plan = wait_for(
        lambda: next(
            (r for r in list_records(rest, namespace, "fraud") if r["spec"]["type"] == "plan"),
            None,
        ),
        message="the plan record",
    )
    path = f"/apis/aideploy.io/v1alpha1/namespaces/{namespace}/aideploymentrecords"
    path += f"/{plan['metadata']['name']}"

    def refused_edit() -> ApiError | None:
        try:
            rest.request(
                "PATCH",
                path,
                body={"spec": {"content": {"summary": "nothing to see"}}},
                content_type="application/merge-patch+json",
            )
        except ApiError as error:
            return error if error.status == 403 else None
        raise AssertionError("the record was edited")

    edit = wait_for(refused_edit, message="the webhook to refuse a record edit")
    assert "records are written once by the operator" in edit.message
    with pytest.raises(ApiError) as deleted:
        rest.request("DELETE", path)
    assert deleted.value.status == 403 and "records are evidence" in deleted.value.message
    assert rest.request("GET", path) is not None


def test_provenance_cannot_be_forged_or_removed(
    rest: Rest,
    namespace: str,
    webhook_operator: OperatorProcess,
    as_user: Callable[[str], Rest],
) -> None:
    aid.create(rest, namespace, aid.manifest("fraud", make_spec("high"), full_checklist()))
    alice = as_user("alice")
    approve_as(alice, namespace, "fraud", "qa-lead", typed_name="alice")
    forged = '{"user":"bob","groups":["compliance"],"at":"2026-01-01T00:00:00Z","digest":"x"}'
    for who in ("alice", "bob"):
        with pytest.raises(ApiError) as denied:
            aid.annotate(
                as_user(who),
                namespace,
                "fraud",
                {"provenance.aideploy.io/compliance-officer": forged},
            )
        assert denied.value.status == 403
    with pytest.raises(ApiError):
        aid.annotate(alice, namespace, "fraud", {"provenance.aideploy.io/qa-lead": None})


def test_go_live_is_restricted_where_configured(
    rest: Rest,
    namespace: str,
    webhook_operator: OperatorProcess,
    as_user: Callable[[str], Rest],
) -> None:
    aid.create(rest, namespace, aid.manifest("fraud", make_spec("high"), full_checklist()))
    with pytest.raises(ApiError) as denied:
        aid.annotate(as_user("alice"), namespace, "fraud", {"aideploy.io/rollback": "I say so"})
    assert denied.value.status == 403 and "goLive" in denied.value.message
    aid.annotate(as_user("bob"), namespace, "fraud", {"aideploy.io/go-live": "proceed"})


def test_the_approval_record_names_the_authenticated_approvers(
    rest: Rest,
    namespace: str,
    webhook_operator: OperatorProcess,
    as_user: Callable[[str], Rest],
    simulated_node: SimulatedNode,
) -> None:
    aid.create(rest, namespace, aid.manifest("scorer", make_spec("limited"), full_checklist()))
    approve_as(as_user("alice"), namespace, "scorer", "qa-lead", typed_name="x")
    approve_as(as_user("carol"), namespace, "scorer", "system-owner", typed_name="y")
    approve_as(as_user("carol"), namespace, "scorer", "deployment-manager", typed_name="z")
    wait_for(
        lambda: aid.status(rest, namespace, "scorer").get("phase") == "Succeeded",
        message="the rollout",
    )
    approval = next(
        r for r in list_records(rest, namespace, "scorer") if r["spec"]["type"] == "approval"
    )
    by_role = {a["role"]: a for a in approval["spec"]["content"]["approvals"]}
    assert by_role["qa-lead"]["by"] == "alice" and by_role["qa-lead"]["authenticated"] is True
    assert by_role["system-owner"]["by"] == "carol"


def test_webhook_down_denies_approvals_but_not_deletes(
    rest: Rest,
    namespace: str,
    webhook_operator: OperatorProcess,
    as_user: Callable[[str], Rest],
) -> None:
    aid.create(rest, namespace, aid.manifest("fraud", make_spec("high"), full_checklist()))
    webhook_operator.kill()
    with pytest.raises(ApiError) as denied:
        approve_as(as_user("alice"), namespace, "fraud", "qa-lead", typed_name="alice")
    assert denied.value.status >= 500 or "webhook" in denied.value.message
    as_user("alice").request("DELETE", f"{aid.collection(namespace)}/fraud")
    wait_for(
        lambda: rest.request("GET", f"{aid.collection(namespace)}/fraud") is None,
        message="the delete to go through",
    )


def test_without_the_webhook_approvals_are_unauthenticated_and_can_be_required(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
) -> None:
    aid.create(rest, namespace, aid.manifest("scorer", make_spec("minimal"), full_checklist()))
    aid.approve_all(rest, namespace, "scorer", ["system-owner", "deployment-manager"])
    approval = approval_in_status(rest, namespace, "scorer", "system-owner")
    assert approval["authenticated"] is False
    operator.stop()
    aid.create(rest, namespace, aid.manifest("strict", make_spec("minimal"), full_checklist()))
    aid.approve_all(rest, namespace, "strict", ["system-owner", "deployment-manager"])
    operator.start(args=["--require-authenticated-approvals"])

    def blocked() -> dict[str, Any] | None:
        status = aid.status(rest, namespace, "strict")
        return status if (status.get("gate") or {}).get("rejectedApprovals") else None

    status = wait_for(blocked, message="unauthenticated approvals to be rejected")
    assert status["phase"] == "AwaitingApproval"
    # Without the webhook anyone can write provenance; unsigned, it is not believed.
    digest = spec_digest(aid.get(rest, namespace, "strict")["spec"])
    forged = json.dumps(
        {
            "at": "2026-11-26T00:00:00Z",
            "digest": digest,
            "groups": [],
            "sig": "00",
            "user": "the-cto",
            "value": "x",
        }
    )
    written = aid.annotate(
        rest, namespace, "strict", {"provenance.aideploy.io/system-owner": forged}
    )
    # Judge the status the operator wrote after it saw the forgery, not the one before.
    operator.wait_reconciled(namespace, "strict", written["metadata"]["resourceVersion"])
    status = aid.status(rest, namespace, "strict")
    approval = next(a for a in status.get("approvals") or [] if a["role"] == "system-owner")
    assert approval["authenticated"] is False and approval["by"] != "the-cto"
    assert "not authenticated" in aid.condition(status, "Approved")["message"]
    assert status["phase"] == "AwaitingApproval"
    assert aid.child_deployment(rest, namespace, "strict") is None
