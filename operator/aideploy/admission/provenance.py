"""The webhook's bookkeeping annotations, `provenance.aideploy.io/*`.

Each holds compact JSON: the authenticated identity of the request that set an approval
(or checklist item, or changed the spec), when, for which spec digest, and a hash of the
annotation value it vouches for, so that an approval edited while the webhook was absent
is not attributed to the person who approved the earlier text.

Each is signed (HMAC-SHA256) with a key only the operator holds, over the annotation it
sits in and every field: where the webhook is absent, or lets a request through, anyone who
can annotate could otherwise write provenance naming anyone. Unsigned or wrongly signed
provenance is no provenance.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aideploy.api.constants import PROVENANCE_PREFIX

SPEC_CHANGED_BY: Final = PROVENANCE_PREFIX + "spec-changed-by"
_KEY_CONTEXT: Final = b"aideploy-provenance\0"


def role_key(role: str) -> str:
    return PROVENANCE_PREFIX + role


def checklist_key(item: str) -> str:
    return PROVENANCE_PREFIX + "checklist-" + item


def value_hash(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Provenance:
    user: str
    groups: tuple[str, ...]
    at: str
    digest: str
    value: str = ""  # value_hash of the annotation it vouches for ("" for spec changes)
    # For a spec change: everyone who changed the spec since a digest was last approved, so
    # that an accomplice's toggle (2 -> 3 -> 2 replicas) cannot launder the real author.
    authors: tuple[str, ...] = ()

    @property
    def changed_by(self) -> tuple[str, ...]:
        """Every identity barred from approving the spec this stamp is about."""
        return self.authors or (self.user,)

    def _body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "user": self.user,
            "groups": list(self.groups),
            "at": self.at,
            "digest": self.digest,
        }
        if self.value:
            body["value"] = self.value
        if self.authors:
            body["authors"] = list(self.authors)
        return body

    def signature(self, key: bytes, annotation: str) -> str:
        message = json.dumps(
            {"annotation": annotation, **self._body()}, sort_keys=True, separators=(",", ":")
        ).encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def to_annotation(self, key: bytes, annotation: str) -> str:
        """The JSON to store under `annotation`, signed with the operator's key."""
        body = {**self._body(), "sig": self.signature(key, annotation)}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def vouches_for(self, annotation_value: str) -> bool:
        return self.value == value_hash(annotation_value)


def parse_provenance(text: str | None, key: bytes | None, annotation: str) -> Provenance | None:
    """None for absent, malformed, unsigned or wrongly signed bookkeeping, and always when
    there is no key to check it with."""
    if not text or key is None:
        return None
    try:
        body = json.loads(text)
        found = Provenance(
            user=str(body["user"]),
            groups=tuple(str(g) for g in body.get("groups", [])),
            at=str(body["at"]),
            digest=str(body["digest"]),
            value=str(body.get("value", "")),
            authors=tuple(str(a) for a in body.get("authors", [])),
        )
        signature = str(body["sig"]).encode("utf-8")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not hmac.compare_digest(signature, found.signature(key, annotation).encode("ascii")):
        return None
    return found


def approval_provenance(
    annotations: Mapping[str, str], role: str, value: str, key: bytes | None
) -> Provenance | None:
    """The provenance of the approval annotation of `role` if it vouches for `value`."""
    found = parse_provenance(annotations.get(role_key(role)), key, role_key(role))
    return found if found is not None and found.vouches_for(value) else None


def spec_author(
    annotations: Mapping[str, str], digest: str, key: bytes | None
) -> Provenance | None:
    """Who changed the spec to `digest`, if the webhook saw it."""
    found = parse_provenance(annotations.get(SPEC_CHANGED_BY), key, SPEC_CHANGED_BY)
    return found if found is not None and found.digest == digest else None


def derive_key(secret: bytes) -> bytes:
    return hashlib.sha256(_KEY_CONTEXT + secret).digest()


def load_key(key_file: str | None, fallback_file: str | None) -> bytes | None:
    """The signing key: from the given file, else derived from the webhook's TLS private
    key (present wherever the webhook runs, readable only by the operator); None without
    either, and then no provenance is trusted."""
    for path in (key_file, fallback_file):
        if path:
            with open(path, "rb") as handle:
                return derive_key(handle.read())
    return None
