"""The operator as a real process (`python -m aideploy`), so that tests can kill -9 it in
the middle of a rollout and start another one, exactly as a node failure would."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

READY_LINE = "aideploy operator started"
# Logged at DEBUG (the tests run the operator with --verbose) when a reconcile has finished.
RECONCILED = re.compile(r"reconciled (?P<key>\S+/\S+) resourceVersion=(?P<rv>\d+)")


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        log_path: Path,
        base_args: list[str] | None = None,
        verbose: bool = True,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        #: Given at every start, before the start's own args (which may override them).
        self.base_args = list(base_args or [])
        #: --verbose (DEBUG): the "reconciled" lines tests wait for; off for benchmarks.
        self.verbose = verbose
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started_at = 0  # where the current process's output begins in the log
        self.starts = 0

    def start(
        self,
        timeout: float = 30.0,
        env_extra: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> Self:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONUNBUFFERED": "1",
            **(env_extra or {}),
        }
        self._log = self.log_path.open("ab")
        self._started_at = self._log.tell()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aideploy",
                "--namespace",
                self.namespace,
                *(["--verbose"] if self.verbose else []),
                *self.base_args,
                *(args or []),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while READY_LINE not in self._output():
            if self._process.poll() is not None:
                raise RuntimeError(f"the operator exited at start:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the operator did not start:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)
        return self

    def wait_reconciled(
        self, namespace: str, name: str, resource_version: str | int, timeout: float = 30.0
    ) -> int:
        """Wait until this process (since its latest start) has finished a reconcile of the
        object that saw it at `resource_version` or later; return the version it saw.

        The evidence to wait for before asserting that the operator did *not* act on a
        change: write the change, pass the resourceVersion the write returned. A write that
        changes nothing (same version) needs no reconcile, and returns at once if the
        operator has already seen that version. resourceVersions are opaque by contract,
        but one etcd's are increasing integers, which is what the tests run against.
        """
        wanted = int(resource_version)
        key = f"{namespace}/{name}"
        deadline = time.monotonic() + timeout
        while True:
            seen = self.reconciled_versions(namespace, name)
            if seen and max(seen) >= wanted:
                return max(seen)
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(
                    f"the operator is not running; last reconcile of {key} seen: "
                    f"{max(seen, default=None)}\n{self.log_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the operator did not reconcile {key} at resourceVersion >= {wanted} "
                    f"within {timeout:g}s (last seen: {max(seen, default=None)}):\n"
                    f"{self.log_text()[-3000:]}"
                )
            time.sleep(0.05)

    def reconciled_versions(self, namespace: str, name: str) -> list[int]:
        """The resourceVersions this process (since its latest start) finished reconciling
        the object at, in order: empty for a replica that never worked on it."""
        key = f"{namespace}/{name}"
        return [int(m["rv"]) for m in RECONCILED.finditer(self._output()) if m["key"] == key]

    def wait_logged(self, text: str, timeout: float = 30.0) -> None:
        """Wait until this process (since its latest start) has logged `text`: kopf's own
        word for what it did (paused, resumed), where the operator has no other trace."""
        deadline = time.monotonic() + timeout
        while text not in self._output():
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"the operator is not running:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the operator did not log {text!r} within {timeout:g}s:\n"
                    f"{self.log_text()[-3000:]}"
                )
            time.sleep(0.05)

    def _output(self) -> str:
        """The current process's part of the log."""
        with self.log_path.open("rb") as log:
            log.seek(self._started_at)
            return log.read().decode(errors="replace")

    def wait_exit(self, timeout: float = 30.0) -> int:
        """For a process expected to die by itself (a failpoint)."""
        assert self._process is not None
        code = self._process.wait(timeout=timeout)
        self._close_log()
        return code

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers run, as when a node dies."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running(process: OperatorProcess) -> Iterator[OperatorProcess]:
    """`process` started for one test and stopped after it, its log tail printed (pytest
    shows it only when the test failed)."""
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print(f"---- operator log ({process.log_path}) ----\n{process.log_text()[-20000:]}")
