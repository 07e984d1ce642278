"""Status is not trusted as the truth (issue 11, attack 2): a release written into status
by someone who may write `aideployments/status` is neither deployed nor restored."""

from __future__ import annotations

import pytest

from aideploy.api.digest import spec_digest
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import wait_for
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration


def test_a_release_patched_into_status_is_not_deployed(
    rest: Rest, namespace: str, keyed_operator: OperatorProcess
) -> None:
    unapproved = make_spec("minimal", version="2.0.0")
    aid.create(rest, namespace, aid.manifest("fraud", unapproved, full_checklist()))
    aid.wait_phase(rest, namespace, "fraud", "AwaitingApproval")
    forged = {
        "status": {
            "phase": "Deploying",
            "specDigest": spec_digest(unapproved),
            "currentRelease": {
                "version": "2.0.0",
                "digest": spec_digest(unapproved),
                "generation": 1,
                "template": unapproved["template"],
                "replicas": 2,
            },
        }
    }
    rest.request(
        "PATCH",
        f"{aid.collection(namespace)}/fraud/status",
        body=forged,
        content_type="application/merge-patch+json",
    )

    def distrusted() -> dict[str, object] | None:
        status = aid.status(rest, namespace, "fraud")
        trusted = [c for c in status.get("conditions", []) if c["type"] == "ReleasesTrusted"]
        return status if trusted and trusted[0]["status"] == "False" else None

    status = wait_for(distrusted, message="the operator to refuse the forged release")
    assert status["phase"] == "Failed"
    assert aid.condition(status, "Ready")["reason"] == "ReleaseUntrusted"
    assert "currentRelease" not in status
    message = aid.condition(status, "ReleasesTrusted")["message"]
    assert "does not carry this operator's signature" in message
    assert "nothing is rolled out until the spec changes" in message
    assert aid.emitted(rest, namespace, "fraud")["ReleaseUntrusted"] == 1
    obj = aid.settled(rest, keyed_operator, namespace, "fraud")
    assert aid.child_deployment(rest, namespace, "fraud") is None
    assert obj["status"]["phase"] == "Failed"  # stopped until the spec changes
