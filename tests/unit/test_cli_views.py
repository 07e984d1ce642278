"""The parts of the plugin's views that are not the tree itself: ages, colour, the
de-duplication of messages, and `list`'s rows."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest

from aideploy.api.times import rfc3339
from aideploy.cli.ages import relative, seconds, span
from aideploy.cli.listing import list_rows
from aideploy.cli.terminal import colour_wanted, styled
from aideploy.cli.tree import _Said
from tests.unit.factories import NOW


@pytest.mark.parametrize(
    ("elapsed", "shown"),
    [
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (125, "2m5s"),
        (180, "3m"),
        (3599, "59m"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (40 * 86400, "40d"),
    ],
)
def test_span_reads_like_kubectl_age(elapsed: int, shown: str) -> None:
    assert span(elapsed) == shown


def test_relative_says_ago_and_in() -> None:
    assert relative(rfc3339(NOW - timedelta(minutes=3)), NOW) == "3m ago"
    assert relative(rfc3339(NOW + timedelta(hours=2)), NOW) == "in 120m"
    assert relative(rfc3339(NOW + timedelta(milliseconds=500)), NOW) == "0s ago"  # clock skew
    assert relative(None, NOW) == "-" and relative("not a time", NOW) == "-"


def test_probe_durations() -> None:
    assert [seconds(v) for v in (0.0123, 1.734, 125, None, True)] == [
        "12ms",
        "1.7s",
        "2m5s",
        "-",
        "-",
    ]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "no_color", "wanted"),
    [
        (_Tty(), None, True),
        (_Tty(), "1", False),
        (_Tty(), "", True),  # no-color.org: set *and not empty*
        (io.StringIO(), None, False),  # a pipe or a file
    ],
)
def test_colour_only_on_a_terminal_without_no_color(
    stream: io.StringIO, no_color: str | None, wanted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    if no_color is not None:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert colour_wanted(stream) is wanted
    painted = styled("GREEN", "ok").render(colour_wanted(stream))
    assert ("\x1b[" in painted) is wanted


def test_each_sentence_is_said_once() -> None:
    said = _Said()
    summary = "Waiting for approval by qa-lead for spec 0123. Checklist items missing: 2.3."
    assert said.new(summary) == summary
    assert said.new("Waiting for approval by qa-lead for spec 0123.") == ""
    assert said.new("Checklist items missing: 2.3. Another thing.") == "Another thing."


def _aid(name: str, namespace: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": rfc3339(NOW - timedelta(minutes=5)),
        },
        "spec": {"model": {"version": "2.0.0"}},
        "status": status,
    }


def test_list_rows_name_what_blocks() -> None:
    items = [
        _aid(
            "b",
            "ml",
            {"phase": "AwaitingApproval", "gate": {"blockedBy": ["approvals", "checklist"]}},
        ),
        _aid(
            "a",
            "ml",
            {
                "phase": "Monitoring",
                "decision": "GREEN",
                "stableRelease": {"id": "x", "version": "1.0.0"},
                # Left from the gate of an earlier spec: not what holds it now.
                "gate": {"blockedBy": ["window"]},
            },
        ),
        _aid("c", "prod", {}),
    ]
    headers, rows = list_rows(items, all_namespaces=False, now=NOW)
    assert headers == ["NAME", "VERSION", "SERVING", "PHASE", "DECISION", "BLOCKED-BY", "AGE"]
    assert rows == [
        ["a", "2.0.0", "1.0.0", "Monitoring", "GREEN", "-", "5m"],
        ["b", "2.0.0", "-", "AwaitingApproval", "-", "approvals,checklist", "5m"],
        ["c", "2.0.0", "-", "-", "-", "-", "5m"],
    ]
    headers, rows = list_rows(items, all_namespaces=True, now=NOW)
    assert headers[0] == "NAMESPACE" and [r[:2] for r in rows] == [
        ["ml", "a"],
        ["ml", "b"],
        ["prod", "c"],
    ]
