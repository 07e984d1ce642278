"""The README's walkthrough, run as a newcomer would: the code blocks between its
`walkthrough` markers, literally. The first block (`make demo`) runs in the background as
in a first terminal; the others run in order in one shell, as in a second terminal at the
repository root. Nothing here knows what the blocks say: change the README and this test
runs the new text.

The second terminal is a directory of its own, with the repository's `examples` and
`.venv` linked in, so that `$PWD/.local` is this test's control plane and not the
developer's (`make demo` is pointed at it with AIDEPLOY_LOCAL_DIR)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.cluster import ClusterHandle, wait_for
from tests.support.localcluster import LocalCluster
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.integration

README = REPO_ROOT / "README.md"
_SECTION = re.compile(r"<!-- walkthrough:start -->(.*?)<!-- walkthrough:end -->", re.S)
_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def walkthrough_blocks(text: str) -> list[str]:
    section = _SECTION.search(text)
    assert section is not None, "README.md has no walkthrough markers"
    return _BLOCK.findall(section.group(1))


def test_the_readme_walkthrough_reaches_succeeded_rolled_back_and_held(
    kube_cluster: ClusterHandle, tmp_path: Path
) -> None:
    if kube_cluster.local is None:
        pytest.skip("the walkthrough starts a local control plane of its own")
    first, *rest = walkthrough_blocks(README.read_text())
    assert first.strip() == "make demo"
    assert rest, "the walkthrough has no commands after make demo"

    terminal = tmp_path / "terminal"
    terminal.mkdir()
    for name in ("examples", ".venv"):
        (terminal / name).symlink_to(REPO_ROOT / name)
    state = terminal / ".local"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        ["make", "--no-print-directory", "demo"],
        cwd=REPO_ROOT,
        env={**env, "AIDEPLOY_LOCAL_DIR": str(state)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: (
                "aideploy operator started" in (tmp_path / "demo.log").read_text()
                or demo.poll() is not None
            ),
            timeout=180,
            message="make demo's operator to start",
        )
        assert demo.poll() is None, (tmp_path / "demo.log").read_text()
        script = "set -euo pipefail\n" + "\n".join(rest)
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=terminal,
            env={**env, "PWD": str(terminal)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (
            f"the walkthrough failed:\n{done.stdout}\n{done.stderr}\n"
            f"make demo said:\n{(tmp_path / 'demo.log').read_text()[-3000:]}"
        )
        assert "Traceback" not in done.stderr
        # What a newcomer reads at each step.
        assert re.search(r"^Phase: +✔ Succeeded since ", done.stdout, re.MULTILINE)
        assert re.search(r"churn-demo .* 1\.1\.0 .* 1\.0\.0 +RolledBack +RED", done.stdout)
        assert "REC-AI-DEPLOY-004" in done.stdout  # the rollback's record, in history
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C in the first terminal
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
        log.close()
        LocalCluster(state).stop()
