"""Thresholds like "<= 0.01" and how a measured number maps to GREEN / AMBER / RED.

Precedence: when a value satisfies both `green` and `red` (overlapping thresholds, e.g.
green "<= 0.1" and red ">= 0.05" at 0.07), the result is RED. A probe is a safety gate: a
contradictory configuration must not let a possibly bad release pass as healthy, and RED
makes the overlap visible at once instead of hiding it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aideploy.api.spec import Result

_THRESHOLD: Final = re.compile(
    r"^\s*(?P<op><=|>=|<|>|==|!=)\s*(?P<bound>-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)\s*$"
)
_OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Threshold:
    """A comparator and a bound: `Threshold(">", 0.05)` matches 0.06."""

    op: str
    bound: float

    def matches(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


def parse_threshold(text: str) -> Threshold:
    """Parse "<= 0.01"; raises ValueError showing the accepted form."""
    match = _THRESHOLD.match(text)
    if match is None:
        raise ValueError(
            f"threshold {text!r} is not a comparator and a number, like '<= 0.01' or '> 5'"
        )
    return Threshold(match.group("op"), float(match.group("bound")))


def classify(value: float, green: Threshold, red: Threshold) -> Result:
    """RED if `red` matches (even when `green` matches too), GREEN if `green` does, else AMBER."""
    if red.matches(value):
        return Result.RED
    if green.matches(value):
        return Result.GREEN
    return Result.AMBER
