"""The plugin at its edges, run as users run it (`python -m aideploy.cli` in a process of
its own): no kubeconfig, a broken one, one naming a stopped cluster, a closed pipe. Each
ends with one line on stderr, never a traceback, and the documented exit status."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import ClusterHandle

pytestmark = pytest.mark.integration


def plugin(
    *argv: str, env: dict[str, str], stdout: int | None = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aideploy.cli", *argv],
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """No KUBECONFIG, an empty home (no ~/.kube/config), not in a pod."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "HOME"))}
    env["HOME"] = str(tmp_path / "home")
    return env


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_no_kubeconfig_at_all(bare_env: dict[str, str]) -> None:
    result = plugin("status", "x", env=bare_env)
    assert_one_line(result, 1, "no kubeconfig", "export KUBECONFIG")


def test_kubeconfig_variable_names_a_missing_file(bare_env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "kubeconfig"
    result = plugin("status", "x", env={**bare_env, "KUBECONFIG": str(missing)})
    assert_one_line(result, 1, f"KUBECONFIG names {missing}, which does not exist")


def test_kubeconfig_option_names_a_missing_file(bare_env: dict[str, str], tmp_path: Path) -> None:
    result = plugin("status", "x", "--kubeconfig", str(tmp_path / "nope"), env=bare_env)
    assert_one_line(result, 2, "does not exist: check --kubeconfig")


@pytest.mark.parametrize("text", ["{{{\n", "", "just a string\n"])
def test_kubeconfig_that_is_not_one(bare_env: dict[str, str], tmp_path: Path, text: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    result = plugin("status", "x", env={**bare_env, "KUBECONFIG": str(path)})
    assert_one_line(result, 1, f"cannot read kubeconfig {path}")


def test_stale_kubeconfig_of_a_stopped_local_cluster(
    bare_env: dict[str, str], kube_cluster: ClusterHandle, tmp_path: Path
) -> None:
    """What `make cluster-down` leaves: the local cluster's kubeconfig (CA, token) with
    nothing listening at its address any more."""
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    server = f"https://127.0.0.1:{closed_port()}"
    config["clusters"][0]["cluster"]["server"] = server
    path = tmp_path / "stale.kubeconfig"
    path.write_text(json.dumps(config))
    result = plugin("status", "x", env={**bare_env, "KUBECONFIG": str(path)})
    assert_one_line(
        result, 1, f"cannot reach the Kubernetes API server at {server} (connection refused)"
    )
    assert "start it again" in result.stderr


def test_broken_pipe_exits_141_quietly(
    bare_env: dict[str, str],
    kube_cluster: ClusterHandle,
    rest: Rest,
    namespace: str,
    crds: list[str],
) -> None:
    """`kubectl aideploy status -o json | head -c 10`, with the reader gone before the
    plugin writes: deterministic, where a real head races with the write."""
    aid.create(rest, namespace, aid.load_example("minimal-risk.yaml"))
    env = {**bare_env, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = plugin(
            "status", "churn-predictor", "-n", namespace, "-o", "json", env=env, stdout=write_end
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")


def test_head_closing_the_pipe_in_a_shell(
    bare_env: dict[str, str],
    kube_cluster: ClusterHandle,
    rest: Rest,
    namespace: str,
    crds: list[str],
) -> None:
    """The pipeline as typed: whichever way the race goes, no traceback, 10 bytes out."""
    aid.create(rest, namespace, aid.load_example("minimal-risk.yaml"))
    env = {**bare_env, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    command = (
        f"{sys.executable} -m aideploy.cli status churn-predictor -n {namespace} -o json "
        '| head -c 10; echo " ${PIPESTATUS[0]}"'
    )
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stderr == ""
    assert done.stdout.startswith("{") and done.stdout.split()[-1] in ("0", "141")
