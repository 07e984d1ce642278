"""The approval annotation's value, as the contract spells it: `"<digest>; by=<who>;
<comment>"`. Read by the gate and by the admission webhook alike, so it lives with the API."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParsedApproval:
    digest: str
    by: str
    comment: str


def parse_approval(value: str) -> ParsedApproval:
    """`by=` and the comment are optional; an absent `by=` reads as "unknown"."""
    parts = [p.strip() for p in value.split(";")]
    digest = parts[0] if parts else ""
    by = ""
    comments: list[str] = []
    for part in parts[1:]:
        if part.startswith("by=") and not by:
            by = part.removeprefix("by=").strip()
        elif part:
            comments.append(part)
    return ParsedApproval(digest=digest, by=by or "unknown", comment="; ".join(comments))
