"""`kubectl aideploy status --watch` against the real apiserver and the real operator, run
as users run it (a process of its own, its output read as it comes): it draws the tree
again on each change the watch API reports, through the phases, and stops cleanly.

Into a pipe, each frame is appended after a blank line and only when it changed, so the
test reads the frames as they arrive and waits for the evidence of each phase; it never
sleeps to let the view catch up.
"""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import IO

import pytest

from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import ClusterHandle, wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

NAME = "churn"


class Watcher:
    """The plugin in a process of its own, its stdout collected line by line by a thread."""

    def __init__(self, kubeconfig: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aideploy.cli", "status", NAME, "--watch", *args],
            env={**env, "KUBECONFIG": str(kubeconfig)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._err: str | None = None
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def frames(self) -> list[str]:
        """Frames so far: each starts with its `Name:` line."""
        text = "\n".join(self.lines)
        return [f"Name:{frame}" for frame in text.split("Name:")[1:]]

    def wait_frame(self, *evidence: str, timeout: float = 45) -> str:
        """The first frame showing every piece of `evidence`."""

        def found() -> str | None:
            assert self.process.poll() is None or self.frames(), self.stderr()
            return next((f for f in self.frames() if all(e in f for e in evidence)), None)

        return wait_for(found, timeout=timeout, message=f"a frame showing {evidence}")

    def stderr(self) -> str:
        """What it wrote on stderr, once it has ended."""
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        if self._err is None:
            self._err = self.process.stderr.read()
        return self._err


@pytest.fixture
def watcher(
    kube_cluster: ClusterHandle, namespace: str, crds: list[str]
) -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def start(*args: str) -> Watcher:
        found = Watcher(kube_cluster.kubeconfig, "-n", namespace, *args)
        started.append(found)
        return found

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
        running.process.wait(timeout=10)


def line_with(frame: str, label: str) -> str:
    return next(line for line in frame.splitlines() if label in line)


def phase_line(phase: str) -> str:
    return f" {phase} since "


def test_watch_redraws_through_the_phases_and_stops_at_until(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    simulated_node: SimulatedNode,
    watcher: Callable[..., Watcher],
) -> None:
    simulated_node.pause()  # the rollout stays Deploying until the node plays its part
    aid.create(rest, namespace, aid.manifest(NAME, make_spec("minimal"), full_checklist()))
    view = watcher("--until", "Succeeded")

    waiting = view.wait_frame(phase_line("AwaitingApproval"), "✖ deployment-manager")
    assert "blocked by approvals" in waiting and "✖ system-owner" in waiting

    aid.approve_all(rest, namespace, NAME, ["system-owner", "deployment-manager"])
    deploying = view.wait_frame(phase_line("Deploying"), "⧉ Deployment churn-", "0/2 ready")
    assert "deployment-manager@example.com" in line_with(deploying, "✔ deployment-manager")
    assert "✔ passed" in deploying

    simulated_node.resume()
    succeeded = view.wait_frame(phase_line("Succeeded"), "2/2 ready")
    assert "100% of traffic" in succeeded
    assert view.process.wait(timeout=30) == 0  # --until: it stops by itself
    assert "Traceback" not in view.stderr() and view.stderr() == ""
    # Each frame differs from the one before it: a pipe gets a history, not a flood.
    frames = view.frames()
    assert all(a != b for a, b in pairwise(frames))


def test_ctrl_c_ends_the_watch_with_0_and_no_traceback(
    rest: Rest, namespace: str, watcher: Callable[..., Watcher]
) -> None:
    aid.create(rest, namespace, aid.manifest(NAME, make_spec("minimal"), full_checklist()))
    view = watcher()
    view.wait_frame("AIDeployment churn")
    view.process.send_signal(signal.SIGINT)
    assert view.process.wait(timeout=30) == 0
    assert view.stderr() == ""


def test_watch_of_an_object_that_does_not_exist_is_one_line(
    namespace: str, watcher: Callable[..., Watcher]
) -> None:
    view = watcher()
    assert view.process.wait(timeout=30) == 1
    err = view.stderr()
    assert "not found" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_on_a_terminal_frames_are_redrawn_in_place_in_colour(
    kube_cluster: ClusterHandle, rest: Rest, namespace: str, crds: list[str]
) -> None:
    """A pseudo-terminal, as a person's shell gives it: cleared and drawn from the top, in
    colour; Ctrl-C ends it with 0 and no traceback."""
    aid.create(rest, namespace, aid.manifest(NAME, make_spec("minimal"), full_checklist()))
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    aid.set_status(
        rest, namespace, NAME, {"phase": "AwaitingApproval", "phaseTransitionTime": since}
    )
    main_fd, terminal_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    process = subprocess.Popen(
        [sys.executable, "-m", "aideploy.cli", "status", NAME, "--watch", "-n", namespace],
        env={**env, "KUBECONFIG": str(kube_cluster.kubeconfig)},
        stdout=terminal_fd,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(terminal_fd)
    seen: list[bytes] = []

    def read() -> None:
        with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
            while chunk := os.read(main_fd, 65536):
                seen.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(
            lambda: b"AwaitingApproval" in b"".join(seen),
            timeout=30,
            message="the first frame on the terminal",
        )
        wait_for(
            lambda: b"".join(seen).count(b"\x1b[H\x1b[2J") >= 2,
            timeout=30,
            message="a second frame (ages move on every second on a terminal)",
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        reader.join(timeout=10)
        os.close(main_fd)
    shown = b"".join(seen).decode("utf-8", "replace")
    assert "\x1b[33m◷ AwaitingApproval\x1b[0m" in shown
    assert process.stderr is not None and process.stderr.read() == ""
