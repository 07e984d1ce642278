""" "Did you mean" for roles and checklist items: the misspellings people make."""

from __future__ import annotations

import pytest

from aideploy.cli.suggest import did_you_mean, suggest_item, suggest_role


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("system_owner", "system-owner"),
        ("System Owner", "system-owner"),
        ("qa", "qa-lead"),
        ("compliance", "compliance-officer"),
        ("dm", "deployment-manager"),
        ("risk-manger", "risk-manager"),
        ("governance-comittee", "governance-committee"),
        ("ceo", None),
        ("", None),
    ],
)
def test_suggest_role(given: str, expected: str | None) -> None:
    assert suggest_role(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2,1", "2.1"),
        ("2-1", "2.1"),
        ("21", "2.1"),
        (" 2.1 ", "2.1"),
        ("2.7", "2.6"),  # one past the end of section 2
        ("1.11", "1.1"),
        ("integration testing", "2.1"),
        ("UAT", "2.3"),
        ("rollback plan", "5.5"),
        ("7.1", None),  # no section 7: nothing is close enough to guess
        ("x", None),
    ],
)
def test_suggest_item(given: str, expected: str | None) -> None:
    assert suggest_item(given) == expected


def test_did_you_mean() -> None:
    assert did_you_mean("2.1") == " (did you mean 2.1?)"
    assert did_you_mean(None) == ""
