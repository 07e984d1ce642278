"""The status tree, rendered from captured objects and compared with golden files.

Each `golden/status/<case>.json` holds an AIDeployment as the operator wrote it (captured
from the unit simulator, which runs the real decisions and reconciler, then frozen), its
Deployments, its Events and the `now` it is viewed at; `<case>.txt` is what a person sees
in a pipe, `<case>.colour.txt` on a terminal (ESC written as `\\e`, so the file can be
read). After a deliberate change of the view, regenerate them with
`AIDEPLOY_UPDATE_GOLDEN=1 pytest tests/unit/test_status_tree.py` and read the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from aideploy.api.times import parse_time
from aideploy.cli.tree import Observed, render_tree

GOLDEN = Path(__file__).parent / "golden" / "status"
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))
UPDATE = os.environ.get("AIDEPLOY_UPDATE_GOLDEN") == "1"


def load(case: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN / f"{case}.json").read_text())
    return loaded


def render(case: str, colour: bool) -> str:
    data = load(case)
    observed = Observed(data["object"], data["deployments"], data["events"])
    lines = render_tree(observed, parse_time(data["now"]), colour)
    return "\n".join(lines).replace("\x1b", "\\e") + "\n"


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
@pytest.mark.parametrize("case", CASES)
def test_tree_matches_golden(case: str, colour: bool) -> None:
    path = GOLDEN / (f"{case}.colour.txt" if colour else f"{case}.txt")
    shown = render(case, colour)
    if UPDATE:
        path.write_text(shown)
    assert shown == path.read_text()


def test_every_phase_the_issue_names_has_a_golden_case() -> None:
    phases = {load(case)["object"]["status"]["phase"] for case in CASES}
    assert {
        "AwaitingApproval",
        "AwaitingWindow",
        "Verifying",
        "Held",
        "Monitoring",
        "RolledBack",
    } <= phases


def test_plain_output_has_no_escape_codes() -> None:
    for case in CASES:
        assert "\\e" not in render(case, colour=False)
