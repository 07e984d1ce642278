"""`kubectl aideploy check`: record CHK-AI-DEPLOY-001 items, one, several, or a file of them.

Every entry is checked with the gate's own rule (`checklist_problem`) before anything is
written, and all of them go in one patch: either the whole checklist is recorded or, when
any entry would not count, nothing is, and every bad entry is named at once.

The file is a YAML map from item to annotation value, the same text the annotation holds:

    1.1: yes https://git.example.com/churn/compare/1.3.0...1.4.0
    2.1: yes https://ci.example.com/run/42
    4.1: n/a minimal-risk system
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aideploy.api.constants import CHECKLIST_ITEMS, CHECKLIST_PREFIX, RiskLevel
from aideploy.api.spec import AIDeploymentSpec
from aideploy.cli.session import Session, UsageError
from aideploy.cli.suggest import did_you_mean, suggest_item
from aideploy.cli.terminal import printable
from aideploy.logic.floor import required_items
from aideploy.logic.gate import checklist_problem

CHECK_HINT = "recording an item needs RBAC permission to get and patch aideployments.aideploy.io"


def _unknown_items(items: Sequence[str]) -> str | None:
    """One message naming every unknown item with its suggestion, or None."""
    unknown = [i for i in items if i not in CHECKLIST_ITEMS]
    if not unknown:
        return None
    named = "; ".join(
        f"{i!r} is not a CHK-AI-DEPLOY-001 item{did_you_mean(suggest_item(i))}" for i in unknown
    )
    listing = "; ".join(f"{i} {title}" for i, title in CHECKLIST_ITEMS.items())
    return f"{named}; nothing was written. The items are: {listing}"


def check_items(items: Sequence[str]) -> list[str]:
    """The items named on the command line, in order, once each; refused (exit 2) before
    connecting when any is unknown."""
    problem = _unknown_items(items)
    if problem is not None:
        raise UsageError(problem)
    return list(dict.fromkeys(items))


def entries_from_arguments(
    items: Sequence[str], evidence: str | None, na_reason: str | None
) -> dict[str, str]:
    """`check NAME 1.1 1.2 --evidence X`: the same value for every item named."""
    if not items:
        raise UsageError("name the items to record (e.g. check NAME 2.1 2.2), or pass -f FILE")
    if evidence is None and na_reason is None:
        raise UsageError("say how the items are met: --evidence WHERE or --na REASON")
    value = (
        f"yes {evidence.strip()}" if evidence is not None else f"n/a {(na_reason or '').strip()}"
    )
    return {item: value for item in check_items(items)}


def entries_from_file(file_name: str) -> dict[str, str]:
    """The checklist file (or `-`, stdin): a YAML map item -> "yes <evidence>" or
    "n/a <reason>". Read with YAML's base loader so that `1.10`-like keys and values stay
    the text that was written, never numbers."""
    where = "stdin" if file_name == "-" else file_name
    try:
        text = sys.stdin.read() if file_name == "-" else Path(file_name).read_text()
        loaded: Any = yaml.load(text, Loader=yaml.BaseLoader)
    except OSError as error:
        raise UsageError(f"cannot read {where}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{where} is not YAML{at}: give a map of item: 'yes <evidence>'") from None
    if not isinstance(loaded, Mapping) or not loaded:
        raise UsageError(
            f"{where} must be a YAML map of checklist items, e.g. `2.1: yes https://ci/run/42`"
        )
    problem = _unknown_items([str(k) for k in loaded])
    if problem is not None:
        raise UsageError(f"{where}: {problem}")
    not_text = [str(k) for k, v in loaded.items() if not isinstance(v, str)]
    if not_text:
        raise UsageError(
            f"{where}: {', '.join(not_text)} must be text ('yes <evidence>' or 'n/a <reason>'); "
            "nothing was written"
        )
    return {str(k): str(v).strip() for k, v in loaded.items()}


def _risk_and_spec(obj: Mapping[str, Any]) -> tuple[RiskLevel, AIDeploymentSpec | None]:
    try:
        spec = AIDeploymentSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        spec = None
    try:
        risk = spec.risk_level if spec else RiskLevel(str(obj["spec"]["riskLevel"]))
    except (KeyError, ValueError):
        risk = RiskLevel.HIGH  # unknown: apply the strictest rule
    return risk, spec


def _fix(item: str, value: str, risk: RiskLevel) -> str:
    """What to do about an entry the gate would not accept."""
    if value.lower().startswith("yes"):
        return "give the evidence after 'yes' (--evidence)"
    if value.lower().startswith("n/a") and checklist_problem(item, "n/a reason", risk) is None:
        return "give the reason after 'n/a' (--na)"
    return "record it as 'yes <evidence>' (--evidence)"


def check(session: Session, name: str, entries: Mapping[str, str]) -> int:
    """Write every `checklist.aideploy.io/<item>` in one patch, once each is known to count."""
    obj = session.get_deployment(name, CHECK_HINT)
    risk, spec = _risk_and_spec(obj)
    problems = [
        f"{problem}: {_fix(item, value, risk)}"
        for item, value in entries.items()
        if (problem := checklist_problem(item, value, risk)) is not None
    ]
    if problems:
        raise UsageError("; ".join(problems) + "; nothing was written")
    if spec is not None:
        extra = [item for item in entries if item not in required_items(spec)]
        if extra:
            print(
                printable(
                    f"warning: aideployment {name} does not require {', '.join(extra)}; "
                    "recorded anyway"
                ),
                file=sys.stderr,
            )
    session.annotate(
        name, {CHECKLIST_PREFIX + item: value for item, value in entries.items()}, CHECK_HINT
    )
    for item, value in entries.items():
        print(
            printable(f"recorded {item} ({CHECKLIST_ITEMS[item]}) on aideployment {name}: {value}")
        )
    return 0
