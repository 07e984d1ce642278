"""The drawing loop of `status --watch`, fed as the watch threads feed it: a frame per
change, none for a change that draws the same, cleared and coloured on a terminal only,
and the ways it ends (the phase asked for, the object deleted, the object unreadable)."""

from __future__ import annotations

import copy
import io
import json
import queue
from pathlib import Path
from typing import Any

import pytest

from aideploy.api.times import parse_time
from aideploy.cli.session import CliError
from aideploy.cli.watch import _loop, _Screen

CASE = json.loads(
    (Path(__file__).parent / "golden" / "status" / "awaiting_approval.json").read_text()
)
NOW = parse_time(CASE["now"])


def in_phase(phase: str) -> dict[str, Any]:
    obj = copy.deepcopy(CASE["object"])
    obj["status"]["phase"] = phase
    return obj


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(out: io.StringIO, items: list[tuple[str, Any]], until: str | None) -> tuple[int, list[str]]:
    updates: queue.Queue[Any] = queue.Queue()
    for item in items:
        updates.put(item)
    state: dict[str, Any] = {
        "object": [in_phase("AwaitingApproval")],
        "deployments": [],
        "events": [],
    }
    code = _loop(_Screen(out), state, updates, "fraud-scorer", until, lambda: NOW)
    return code, out.getvalue().split("\n\nName:")


def test_a_burst_is_drawn_once_and_never_past_the_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    items = [
        ("object", [in_phase("Deploying")]),
        ("deployments", []),
        ("object", [in_phase("Succeeded")]),
        ("object", [in_phase("Failed")]),  # never read: --until was reached
    ]
    code, frames = run(io.StringIO(), items, until="Succeeded")
    assert code == 0
    assert [f.split("Phase:", 1)[1].split()[1] for f in frames] == [
        "AwaitingApproval",
        "Succeeded",
    ]
    assert "\x1b" not in "".join(frames)  # a pipe: no clearing, no colour


def test_into_a_pipe_a_frame_is_appended_only_when_it_changed() -> None:
    out = io.StringIO()
    screen = _Screen(out)
    screen.draw(["a", "b"])
    screen.draw(["a", "b"])
    screen.draw(["a", "c"])
    assert out.getvalue() == "a\nb\n\na\nc\n"


def test_on_a_terminal_each_frame_replaces_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = _Tty()
    code, _ = run(out, [("object", [in_phase("Succeeded")])], until="Succeeded")
    assert code == 0
    text = out.getvalue()
    assert text.count("\x1b[H\x1b[2J") == 2 and "\x1b[32m✔ Succeeded\x1b[0m" in text


def test_no_color_on_a_terminal_still_redraws_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = _Tty()
    run(out, [("object", [in_phase("Succeeded")])], until="Succeeded")
    assert out.getvalue().count("\x1b[H\x1b[2J") == 2 and "\x1b[3" not in out.getvalue()


def test_unreadable_events_are_said_not_fatal() -> None:
    code, frames = run(
        io.StringIO(),
        [("events", CliError("permission denied")), ("object", [in_phase("Succeeded")])],
        until="Succeeded",
    )
    assert code == 0 and "Events could not be read" in frames[-1]


def test_deleted_before_the_phase_is_exit_1() -> None:
    out = io.StringIO()
    code, _ = run(out, [("object", [])], until="Succeeded")
    assert code == 1 and out.getvalue().endswith("aideployment fraud-scorer was deleted\n")


def test_losing_the_object_watch_is_the_command_failing() -> None:
    with pytest.raises(CliError, match="cannot reach"):
        run(io.StringIO(), [("object", CliError("cannot reach the API server"))], until=None)
