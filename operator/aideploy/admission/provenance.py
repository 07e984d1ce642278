"""The webhook's bookkeeping annotations, `provenance.aideploy.io/*`.

Each holds compact JSON: the authenticated identity of the request that set an approval
(or checklist item, or changed the spec), when, for which spec digest, and a hash of the
annotation value it vouches for, so that an approval edited while the webhook was absent
is not attributed to the person who approved the earlier text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aideploy.api.constants import PROVENANCE_PREFIX

SPEC_CHANGED_BY: Final = PROVENANCE_PREFIX + "spec-changed-by"


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

    def to_annotation(self) -> str:
        body = {
            "user": self.user,
            "groups": list(self.groups),
            "at": self.at,
            "digest": self.digest,
        }
        if self.value:
            body["value"] = self.value
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def vouches_for(self, annotation_value: str) -> bool:
        return self.value == value_hash(annotation_value)


def parse_provenance(text: str | None) -> Provenance | None:
    """None for absent or malformed bookkeeping (treated as no provenance at all)."""
    if not text:
        return None
    try:
        body = json.loads(text)
        return Provenance(
            user=str(body["user"]),
            groups=tuple(str(g) for g in body.get("groups", [])),
            at=str(body["at"]),
            digest=str(body["digest"]),
            value=str(body.get("value", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def approval_provenance(annotations: Mapping[str, str], role: str, value: str) -> Provenance | None:
    """The provenance of the approval annotation of `role` if it vouches for `value`."""
    found = parse_provenance(annotations.get(role_key(role)))
    return found if found is not None and found.vouches_for(value) else None


def spec_author(annotations: Mapping[str, str], digest: str) -> Provenance | None:
    """Who changed the spec to `digest`, if the webhook saw it."""
    found = parse_provenance(annotations.get(SPEC_CHANGED_BY))
    return found if found is not None and found.digest == digest else None
