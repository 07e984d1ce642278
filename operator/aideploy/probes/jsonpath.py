"""A tiny JSONPath subset for body expectations: `$.a.b[0].c`, `$['odd key'][-1]`.

Why not a library: probes only ever point at one value, so filters, wildcards and slices
would add a dependency without use. Anything outside the subset is rejected with a
message that shows the supported form, instead of being half-understood.
"""

from __future__ import annotations

import re
from typing import Any, Final

Step = str | int

_STEP: Final = re.compile(
    r"""\.(?P<name>[^.\[\]'"\s*]+)"""  # .name
    r"""|\[(?P<index>-?[0-9]+)\]"""  # [0], [-1]
    r"""|\[(?P<quote>['"])(?P<key>.*?)(?P=quote)\]"""  # ['key'], ["key"]
)


class _Missing:
    """Marks "no value there", which differs from a JSON null that is there."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def parse_json_path(path: str) -> tuple[Step, ...]:
    """The steps of `path`; raises ValueError naming the position it cannot read."""
    if not path.startswith("$"):
        raise ValueError(f"jsonPath {path!r} must start with $ (like $.status.ready)")
    steps: list[Step] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(
                f"jsonPath {path!r} cannot be read at position {position}: "
                "only $.name, [index] and ['key'] steps are supported"
            )
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            steps.append(match.group("key"))
        position = match.end()
    return tuple(steps)


def evaluate(document: Any, steps: tuple[Step, ...]) -> Any:
    """The value at `steps` in `document`, or MISSING when any step does not exist."""
    current = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return MISSING
            current = current[step]
        else:
            if not isinstance(current, dict) or step not in current:
                return MISSING
            current = current[step]
    return current


def find(document: Any, path: str) -> Any:
    """`evaluate(document, parse_json_path(path))`; raises ValueError for a bad path."""
    return evaluate(document, parse_json_path(path))
