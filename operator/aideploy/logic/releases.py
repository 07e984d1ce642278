"""Releases the operator can prove it made.

`status.currentRelease` and `status.lastGoodRelease` say what the operator deploys and
what a rollback restores. Anyone who may write `aideployments/status` could otherwise
make the operator run an unapproved spec, or restore an attacker's template under an
approved digest. So every release the operator keeps in status carries an HMAC, with
the key it already holds for approval provenance, over all of it and the object's uid
(admission/release_signature.py); a release without a valid one is neither deployed nor
restored.

Without a key (no admission webhook, no --provenance-key-file) nothing is signed and
nothing can be checked: docs/api.md's threat model says so.
"""

from __future__ import annotations

from aideploy.admission.release_signature import is_signed, release_signature
from aideploy.api.digest import short_digest
from aideploy.api.status import AIDeploymentStatus, Release

_FIELDS = {
    "current_release": "status.currentRelease",
    "last_good_release": "status.lastGoodRelease",
}


def signed(release: Release, key: bytes, uid: str) -> Release:
    signature = release_signature(release, key, uid)
    return release if release.signature == signature else release.replace(signature=signature)


def sign_releases(status: AIDeploymentStatus, key: bytes | None, uid: str) -> AIDeploymentStatus:
    """`status` with its releases signed (the operator's own, about to be written)."""
    if key is None:
        return status
    changes = {
        name: signed(release, key, uid)
        for name in _FIELDS
        if (release := getattr(status, name)) is not None
    }
    return status.replace(**changes) if changes else status


def distrust(
    status: AIDeploymentStatus, key: bytes | None, uid: str, adopt_unsigned: bool = False
) -> tuple[AIDeploymentStatus, list[str]]:
    """`status` without the releases this operator cannot prove it wrote, and a sentence
    for each one dropped. `adopt_unsigned` (an upgrade from a version that did not sign)
    keeps releases that carry no signature at all; a wrong signature is never kept."""
    if key is None:
        return status, []
    dropped: dict[str, None] = {}
    problems: list[str] = []
    for name, wire in _FIELDS.items():
        release = getattr(status, name)
        if release is None or (adopt_unsigned and release.signature is None):
            continue
        if not is_signed(release, key, uid):
            dropped[name] = None
            problems.append(
                f"{wire} (version {release.version}, digest {short_digest(release.digest)}) "
                "does not carry this operator's signature"
            )
    return (status.replace(**dropped) if dropped else status), problems
