"""`make run` (hack/run.sh) as a newcomer meets it: the local control plane started for
them, one operator per checkout, and Ctrl-C that says what is still running."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO

import pytest

from tests.support.cluster import ClusterHandle, wait_for
from tests.support.localcluster import LocalCluster
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.integration

RUN_SCRIPT = REPO_ROOT / "hack" / "run.sh"


class _Collected:
    """A stream read to the end in a thread, so that waiting on its text needs no sleep."""

    def __init__(self, stream: IO[str]) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.text += line

    def join(self) -> str:
        self._thread.join(timeout=30)
        return self.text


def _run(state: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["AIDEPLOY_LOCAL_DIR"] = str(state)
    return subprocess.Popen(
        ["bash", str(RUN_SCRIPT), *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job is
    )


def test_make_run_starts_the_plane_refuses_a_second_and_says_how_to_stop(
    kube_cluster: ClusterHandle, tmp_path: Path
) -> None:
    if kube_cluster.local is None:
        pytest.skip("starts a local control plane of its own")
    state = tmp_path / "local"
    first = _run(state)
    assert first.stderr is not None
    output = _Collected(first.stderr)
    try:
        wait_for(
            lambda: "aideploy operator started" in output.text or first.poll() is not None,
            timeout=120,
            message="the operator's start line",
        )
        assert first.poll() is None, output.text
        assert f"export KUBECONFIG={state}/kubeconfig" in output.text
        operator_pid = int((state / "operator.pid").read_text())

        second = subprocess.run(
            ["bash", str(RUN_SCRIPT)],
            cwd=REPO_ROOT,
            env={**os.environ, "AIDEPLOY_LOCAL_DIR": str(state)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert (
            f"an operator of this checkout is already running (pid {operator_pid})" in second.stderr
        )
        assert "Traceback" not in second.stderr

        os.killpg(first.pid, signal.SIGINT)  # Ctrl-C in its terminal
        first.wait(timeout=60)
        text = output.join()
        assert "the local control plane is still running; 'make cluster-down' stops it" in text
        assert "Traceback" not in text
        assert not (state / "operator.pid").exists()
        assert LocalCluster(state).is_running()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        LocalCluster(state).stop()
