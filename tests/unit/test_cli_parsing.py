"""The kubectl plugin without a cluster: the command line, what it refuses before
connecting (exit 2), `digest -f`, the status view, and the generated CRD file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aideploy.api.crd import render
from aideploy.api.digest import spec_digest
from aideploy.cli.checklist import entries_from_file
from aideploy.cli.main import build_parser, main
from aideploy.cli.tree import Observed, render_tree
from aideploy.cli.views import status_summary
from tests.support.paths import CRDS_DIR
from tests.unit.factories import NOW, make_spec


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Any attempt to reach a cluster fails loudly: these tests must not need one."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))


def test_help_and_missing_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "approve" in out and "verify" in out
    code, _, err = run(capsys)
    assert code == 2 and "COMMAND" in err


def test_connection_options_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["-n", "a", "--kubeconfig", "k", "status", "x"])
    after = parser.parse_args(["status", "x", "-n", "a", "--kubeconfig", "k"])
    neither = parser.parse_args(["status", "x"])
    assert (
        (before.namespace, before.kubeconfig) == (after.namespace, after.kubeconfig) == ("a", "k")
    )
    assert (neither.namespace, neither.kubeconfig) == (None, None)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["approve", "x", "--role", "cto"], "unknown role 'cto': the roles are system-owner, "),
        (["approve", "x", "--role", "qa-lead", "--digest", "abc"], "is not a spec digest"),
        (
            ["approve", "x", "--role", "qa-lead", "--digest", "sha256:xyz123456789"],
            "not a spec digest",
        ),
        (["check", "x", "9.9", "--evidence", "e"], "'9.9' is not a CHK-AI-DEPLOY-001 item"),
    ],
)
def test_refused_before_connecting(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and expected in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_item_lists_the_items(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(capsys, "check", "x", "6.1", "--evidence", "e")
    assert "1.1 All code changes complete" in err and "5.6 Support team briefed" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "x", "1.1", "--evidence", "a", "--na", "b"],
        ["check", "x", "1.1", "--evidence", "a", "-f", "c.yaml"],
        ["go-live", "x", "maybe"],
        ["rollback", "x"],
        ["approve", "x"],
        ["status", "x", "-o", "yaml"],
        ["digest"],
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and "usage:" in err


def test_missing_kubeconfig_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "status", "x", "--kubeconfig", str(tmp_path / "nope"))
    assert code == 2
    assert "does not exist: check --kubeconfig" in err


# digest -f

MANIFESTS = """\
apiVersion: aideploy.io/v1alpha1
kind: AIDeployment
metadata: {name: first}
spec:
  system: first
  riskLevel: minimal
  model: {name: first, version: 1.0.0, uri: null}
  replicas: 2.0
  template: {metadata: {labels: null}, spec: {containers: [{name: s, image: i, extra: kept}]}}
  window:
    schedule: "0 22 * * *"
    duration: 4h
    freezes:
      - {start: 2026-12-20T00:00:00Z, end: 2027-01-05T00:00:00Z, reason: year-end}
  typo: dropped by the apiserver
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-an-aideployment}
---
apiVersion: aideploy.io/v1alpha1
kind: AIDeployment
metadata: {name: second-with-a-longer-name}
spec: {system: second, riskLevel: high, model: {name: m, version: 2.0.0}, template: {}}
"""


def first_stored_spec() -> dict[str, Any]:
    """The first spec as the apiserver stores it: timestamps as written, unknown field
    pruned, a null for a known field dropped, a null in the free-form template kept, 2.0
    as 2 (that last one is canonical_json's job)."""
    return {
        "system": "first",
        "riskLevel": "minimal",
        "model": {"name": "first", "version": "1.0.0"},
        "replicas": 2,
        "template": {
            "metadata": {"labels": None},
            "spec": {"containers": [{"name": "s", "image": "i", "extra": "kept"}]},
        },
        "window": {
            "schedule": "0 22 * * *",
            "duration": "4h",
            "freezes": [
                {
                    "start": "2026-12-20T00:00:00Z",
                    "end": "2027-01-05T00:00:00Z",
                    "reason": "year-end",
                }
            ],
        },
    }


def test_digest_of_a_multi_document_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFESTS)
    code, out, err = run(capsys, "digest", "-f", str(path))
    assert code == 0
    second = {
        "system": "second",
        "riskLevel": "high",
        "model": {"name": "m", "version": "2.0.0"},
        "template": {},
    }
    assert out.splitlines() == [
        f"first                      {spec_digest(first_stored_spec())}",
        f"second-with-a-longer-name  {spec_digest(second)}",
    ]
    assert "first: spec.typo is not in the AIDeployment schema" in err


def test_digest_of_a_single_manifest_is_the_bare_digest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(MANIFESTS.split("---\n")[0])
    code, out, _ = run(capsys, "digest", "-f", str(path))
    assert code == 0 and out == spec_digest(first_stored_spec()) + "\n"


def test_digest_without_an_aideployment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, _, err = run(capsys, "digest", "-f", str(path))
    assert code == 1 and "no AIDeployment" in err
    code, _, err = run(capsys, "digest", "-f", str(tmp_path / "absent.yaml"))
    assert code == 2 and "cannot read" in err
    path.write_text("a: [")
    code, _, err = run(capsys, "digest", "-f", str(path))
    assert code == 1 and "not valid YAML" in err


# status view


def test_status_view_and_json() -> None:
    spec = make_spec("minimal")
    obj = {
        "metadata": {"name": "churn", "namespace": "ml", "generation": 2},
        "spec": spec,
        "status": {
            "observedGeneration": 2,
            "specDigest": spec_digest(spec),
            "phase": "AwaitingApproval",
            "gate": {
                "missingApprovals": ["deployment-manager"],
                "missingChecklist": ["2.1"],
                "invalidChecklist": ["2.2 (System testing complete) is marked no"],
                "blockedBy": ["approvals", "checklist"],
                "window": {"open": False, "nextOpen": "2026-11-26T22:00:00Z"},
            },
            "verification": {
                "digest": "sha256:aa",
                "startedAt": "2026-11-26T11:59:00Z",
                "probes": [
                    {
                        "name": "ready",
                        "kind": "http",
                        "result": "GREEN",
                        "message": "ok",
                        "at": "2026-11-26T11:59:01Z",
                    }
                ],
            },
            "currentRelease": {"version": "1.0.0", "digest": "sha256:aa", "template": {"big": 1}},
            "conditions": [
                {
                    "type": "Approved",
                    "status": "False",
                    "reason": "ApprovalsMissing",
                    "message": "m",
                    "lastTransitionTime": "t",
                }
            ],
        },
    }
    summary = status_summary(obj)
    assert summary["statusUpToDate"] is True
    assert summary["currentRelease"] == {"version": "1.0.0", "digest": "sha256:aa"}
    json.dumps(summary)
    lines = render_tree(Observed(obj), NOW)
    text = "\n".join(lines)
    assert "AwaitingApproval" in text

    def line(*words: str) -> str:
        return next(li for li in lines if all(w in li for w in words))

    assert "missing" in line("✖ deployment-manager")
    assert "is marked no" in line("✖ 2.2 System testing complete")
    assert "missing" in line("✖ 2.1 Integration testing complete")
    assert "closed" in line("◷ Window")  # a window in status, whatever its shape, in words
    assert "http  GREEN" in line("✔ ready")
    assert "\033[" not in text  # no colour unless asked
    stale = status_summary({**obj, "metadata": {**obj["metadata"], "generation": 3}})
    assert stale["statusUpToDate"] is False
    stale_obj = {**obj, "metadata": {**obj["metadata"], "generation": 3}}
    assert "has not processed this one yet" in "\n".join(render_tree(Observed(stale_obj), NOW))


# CRDs


def test_committed_crds_are_generated() -> None:
    assert (CRDS_DIR / "aideployment.yaml").read_text() == render(), (
        "crds/ is stale: run 'make crds'"
    )


def test_every_crd_is_rendered() -> None:
    documents = list(yaml.safe_load_all(render()))
    assert [d["metadata"]["name"] for d in documents] == [
        "aideployments.aideploy.io",
        "aideploymentrecords.aideploy.io",
        "aideploymentnotifiers.aideploy.io",
    ]
    record = documents[1]["spec"]
    assert record["names"]["shortNames"] == ["aidr"]
    version = record["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Deployment",
        "Type",
        "Record",
        "Sequence",
        "Created",
    ]
    assert "subresources" not in version
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["content"]["x-kubernetes-preserve-unknown-fields"] is True


# did you mean, and check with several items or a file, all refused before connecting


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["approve", "x", "--role", "system_owner"], "(did you mean system-owner?)"),
        (["check", "x", "2.7", "--evidence", "e"], "'2.7' is not a CHK-AI-DEPLOY-001 item (did"),
        (["check", "x", "1.1", "2,2", "--na", "r"], "'2,2' is not a CHK-AI-DEPLOY-001 item (did "),
        (["check", "x", "--evidence", "e"], "name the items to record"),
        (["check", "x", "1.1"], "--evidence WHERE or --na REASON"),
        (["check", "x", "1.1", "-f", "c.yaml"], "not both"),
        (["check", "x", "-f", "no-such-file.yaml"], "cannot read no-such-file.yaml"),
    ],
)
def test_check_and_role_refusals_before_connecting(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2.1: [yes]\n", "2.1 must be text"),
        ("- 2.1\n", "must be a YAML map of checklist items"),
        ("", "must be a YAML map of checklist items"),
        ("2.1: yes x\n  bad: [\n", "is not YAML at line"),
        ("2.1: yes ci\n2.7: yes ci\nuat: yes sign-off\n", "'2.7' is not a CHK-AI-DEPLOY-001 item"),
    ],
)
def test_check_file_refusals_before_connecting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "checklist.yaml"
    path.write_text(text)
    code, out, err = run(capsys, "check", "x", "-f", str(path))
    assert (code, out) == (2, "")
    assert expected in err and len(err.strip().splitlines()) == 1, err


def test_check_file_names_every_unknown_item_with_a_suggestion(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "checklist.yaml"
    path.write_text("2.1: yes ci\n2.7: yes ci\nuat: yes sign-off\n")
    _, _, err = run(capsys, "check", "x", "-f", str(path))
    assert "'2.7' is not a CHK-AI-DEPLOY-001 item (did you mean 2.6?)" in err
    assert "'uat' is not a CHK-AI-DEPLOY-001 item (did you mean 2.3?)" in err
    assert "nothing was written" in err


def test_checklist_file_keeps_the_text_as_written(tmp_path: Path) -> None:
    """Keys and values are read as text, never as numbers or booleans."""
    path = tmp_path / "checklist.yaml"
    path.write_text("1.1: yes https://git.example.com/c/1\n4.1: n/a minimal risk\n5.4: yes\n")
    assert entries_from_file(str(path)) == {
        "1.1": "yes https://git.example.com/c/1",
        "4.1": "n/a minimal risk",
        "5.4": "yes",
    }
