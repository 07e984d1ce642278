"""The spec digest that approvals are bound to.

It is computed over the spec exactly as the apiserver stores it, in a canonical JSON form
(sorted keys, no insignificant whitespace, integral floats written as integers because the
apiserver turns `1.0` into `1`). So `kubectl aideploy digest -f manifest.yaml` gives the
same value before the object exists, and an auditor can recompute it from a backup.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

DIGEST_PREFIX: Final = "sha256:"
MIN_DIGEST_PREFIX_LENGTH: Final = 12
_HEX = re.compile(r"^[0-9a-f]+$")


def _normalise(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes of a JSON-like value."""
    return json.dumps(
        _normalise(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


def sha256_digest(value: Any) -> str:
    return DIGEST_PREFIX + hashlib.sha256(canonical_json(value)).hexdigest()


def spec_digest(spec: Mapping[str, Any]) -> str:
    """`sha256:<64 hex>` of the canonical spec."""
    return sha256_digest(spec)


def short_digest(digest: str) -> str:
    return digest.removeprefix(DIGEST_PREFIX)[:MIN_DIGEST_PREFIX_LENGTH]


def digest_matches(given: str, full: str) -> bool:
    """True when `given` (with or without `sha256:`) is a prefix of at least 12 hex
    characters of `full`. Shorter prefixes are refused: they would let one approval match
    too many specs."""
    candidate = given.strip().lower().removeprefix(DIGEST_PREFIX)
    if len(candidate) < MIN_DIGEST_PREFIX_LENGTH or not _HEX.match(candidate):
        return False
    return full.removeprefix(DIGEST_PREFIX).startswith(candidate)


def digest_problem(given: str) -> str | None:
    """Why `given` cannot name any spec (None when it is a digest or a long enough prefix
    of one), so that a typo is reported as a typo, not as an approval of an older spec."""
    candidate = given.strip().lower().removeprefix(DIGEST_PREFIX)
    shown = repr(given if len(given) <= 40 else given[:40] + "...")
    if not candidate or not _HEX.match(candidate):
        return f"{shown} is not a digest"
    if len(candidate) < MIN_DIGEST_PREFIX_LENGTH:
        return (
            f"{shown} is too short a digest: give at least {MIN_DIGEST_PREFIX_LENGTH} hex "
            "characters"
        )
    return None


RELEASE_ID_LENGTH: Final = 10


def release_id(digest: str) -> str:
    """The short name of a release: its Deployment is `<name>-<release id>`, and its pods
    carry it in the `aideploy.io/release` label."""
    return digest.removeprefix(DIGEST_PREFIX)[:RELEASE_ID_LENGTH]
