"""The operator's HMAC over a release it keeps in status (see logic/releases.py): here,
below both the decisions and the admission webhook, which both need to check it."""

from __future__ import annotations

import hashlib
import hmac

from aideploy.api.digest import canonical_json
from aideploy.api.status import Release

_CONTEXT = b"aideploy release v1\x00"
_ADDED_LATER = ("strategy",)


def release_signature(release: Release, key: bytes, uid: str) -> str:
    """Over every field of the release but the signature, and the uid of the object it
    belongs to: a signed release copied from another AIDeployment does not verify."""
    # Fields added after releases were first signed are left out while unset, so that a
    # release signed by an earlier version still verifies.
    later = {name for name in _ADDED_LATER if getattr(release, name) is None}
    body = {"uid": uid, **release.model_dump(mode="json", exclude={"signature", *later})}
    return hmac.new(_CONTEXT + key, canonical_json(body), hashlib.sha256).hexdigest()


def is_signed(release: Release, key: bytes, uid: str) -> bool:
    return release.signature is not None and hmac.compare_digest(
        release.signature, release_signature(release, key, uid)
    )
