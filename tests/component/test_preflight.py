"""The operator's start with no cluster, or one that does not answer: words, no traceback.

Real processes and a real closed loopback port; no Kubernetes is needed to be absent."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from aideploy.kube import preflight
from tests.support.modelserver import free_port


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    """A kubeconfig for `server`, as the local control plane writes one (JSON is YAML)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    return path


def _operator(env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str] | str:
    """Run `python -m aideploy`; its result, or its stderr so far if it was still running
    at `timeout` (then it is killed)."""
    full = {
        k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
    }
    full.update(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "aideploy"],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        return err
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_no_kubeconfig_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    done = _operator({"HOME": str(tmp_path)}, timeout=60)
    assert isinstance(done, subprocess.CompletedProcess), f"still running: {done}"
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "no cluster is configured" in done.stderr and "set KUBECONFIG" in done.stderr


def test_a_kubeconfig_that_is_not_there_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "gone" / "kubeconfig"
    done = _operator({"KUBECONFIG": str(gone)}, timeout=60)
    assert isinstance(done, subprocess.CompletedProcess), f"still running: {done}"
    assert (done.returncode, "Traceback" in done.stderr) == (2, False)
    assert f"KUBECONFIG names {gone}, which does not exist" in done.stderr


def test_a_stale_kubeconfig_is_retried_in_words(tmp_path: Path) -> None:
    """What `make cluster-down` leaves behind: a kubeconfig whose apiserver is gone. The
    operator waits for it, saying so once per attempt, without a stack."""
    port = free_port()
    kubeconfig = _kubeconfig(tmp_path, f"https://127.0.0.1:{port}")
    stderr = _operator({"KUBECONFIG": str(kubeconfig)}, timeout=8)
    assert isinstance(stderr, str), "the operator gave up instead of waiting"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) >= 2, stderr
    assert "Traceback" not in stderr
    assert all(
        f"the apiserver at https://127.0.0.1:{port} does not answer" in line for line in lines
    ), stderr
    assert "Connection refused" in lines[0] and "retrying in 1s" in lines[0]


def test_wait_for_apiserver_backs_off_and_gives_up_when_told(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{free_port()}"))
    slept: list[float] = []
    with (
        caplog.at_level(logging.WARNING, logger=preflight.__name__),
        pytest.raises(TimeoutError, match="does not answer"),
    ):
        preflight.wait_for_apiserver(api, sleep=slept.append, attempts=6)
    assert slept == [1.0, 2.0, 4.0, 8.0, 10.0]
    ours = [record for record in caplog.records if record.name == preflight.__name__]
    assert len(ours) == 5
    assert all(record.exc_info is None for record in ours)
