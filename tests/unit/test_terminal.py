"""Text from the cluster cannot drive the reader's terminal (issue 11, item 7)."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.api.digest import spec_digest
from aideploy.cli.terminal import printable, printable_tree
from aideploy.cli.tree import Observed, render_tree
from tests.unit.factories import NOW, make_spec


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("looks good", "looks good"),
        ("naïve 模型 ✓", "naïve 模型 ✓"),
        ("\x1b[2J\x1b[32mGREEN", "\\x1b[2J\\x1b[32mGREEN"),
        ("ding\a", "ding\\x07"),
        ("evil\u202egpj.exe", "evil\\u202egpj.exe"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("two\nlines\r", "two\\x0alines\\x0d"),
        ("C1 \x9b31m", "C1 \\x9b31m"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_tree_reaches_keys_and_nested_values() -> None:
    tree: Any = {"a\x1b": ["b\a", {"c": "\u202e"}], "n": 3, "none": None}
    assert printable_tree(tree) == {"a\\x1b": ["b\\x07", {"c": "\\u202e"}], "n": 3, "none": None}


def test_status_view_prints_annotations_and_messages_inert() -> None:
    spec = make_spec("minimal")
    obj = {
        "metadata": {"name": "churn", "namespace": "ml", "generation": 1},
        "spec": spec,
        "status": {
            "observedGeneration": 1,
            "specDigest": spec_digest(spec),
            "phase": "AwaitingApproval",
            "message": "Waiting\x1b[2K\r for nothing",
            "approvals": [
                {
                    "role": "system-owner",
                    "by": "mallory\a",
                    "digest": spec_digest(spec),
                    "comment": "fine \x1b[32mGREEN\x1b[0m \u202e",
                    "valid": True,
                    "authenticated": False,
                },
                {
                    "role": "deployment-manager",
                    "by": "carol",
                    "digest": spec_digest(spec),
                    "valid": True,
                    "authenticated": True,
                },
            ],
            "conditions": [],
        },
    }
    text = "\n".join(render_tree(Observed(obj), NOW, colour=True))
    assert "\a" not in text and "\u202e" not in text and "\r" not in text
    # The only escapes are the view's own colours; the ones in the comment are shown.
    assert "\\x1b[32mGREEN" in text and "mallory\\x07" in text
    assert "\x1b[2K" not in text and "Waiting\\x1b[2K\\x0d for nothing" in text
    mallory = next(line for line in text.splitlines() if "mallory" in line)
    carol = next(line for line in text.splitlines() if "carol" in line)
    assert "not authenticated" in mallory
    assert "authenticated" in carol and "not authenticated" not in carol
