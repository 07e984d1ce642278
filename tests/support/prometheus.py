"""A real Prometheus (Debian's package, unpacked by hack/fetch-prometheus.sh) for tests.

Why real: the prometheus probe must be right about Prometheus's actual answers (vector and
scalar results, parse errors, empty results), which only the real query engine gives.
Nothing here skips: if Prometheus cannot be fetched or started, `PrometheusUnavailableError`
says why, and the test fails with that reason.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from tests.support.modelserver import free_port
from tests.support.paths import HACK_DIR

FETCH_SCRIPT = HACK_DIR / "fetch-prometheus.sh"


class PrometheusUnavailableError(RuntimeError):
    """Prometheus could not be fetched, started or queried; the message says why."""


@functools.cache
def prometheus_bin_dir() -> Path:
    """The directory holding `prometheus` and `promtool` (fetched once per machine)."""
    try:
        done = subprocess.run(
            ["bash", str(FETCH_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrometheusUnavailableError(f"{FETCH_SCRIPT.name} could not run: {exc}") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise PrometheusUnavailableError(
            f"{FETCH_SCRIPT.name} failed (exit {done.returncode}):\n{done.stderr.strip()}"
        )
    bin_dir = Path(lines[-1])
    for name in ("prometheus", "promtool"):
        if not os.access(bin_dir / name, os.X_OK):
            raise PrometheusUnavailableError(f"{FETCH_SCRIPT.name} left no {name} in {bin_dir}")
    return bin_dir


def promtool_path() -> Path:
    """`promtool` from the same package, e.g. for `promtool test rules` / `check rules`."""
    return prometheus_bin_dir() / "promtool"


def _wait_until_stopped(pid: int, timeout: float = 10.0) -> None:
    """Block until every thread of `pid` is in the stopped state.

    Why: kill(SIGSTOP) returns before the kernel has stopped a multi-threaded process; on a
    busy machine a Go thread that is already running can still answer a request or two.
    /proc says when the group stop is complete ('T' in each thread's stat)."""
    deadline = time.monotonic() + timeout
    while True:
        states = [_thread_state(stat) for stat in Path(f"/proc/{pid}/task").glob("*/stat")]
        if states and all(state in ("T", "t") for state in states if state):
            return
        if time.monotonic() > deadline:
            raise PrometheusUnavailableError(f"prometheus (pid {pid}) did not stop: {states}")
        time.sleep(0.01)


def _thread_state(stat: Path) -> str:
    """The state letter of one /proc/PID/task/TID/stat ('' if the thread has gone)."""
    try:
        text = stat.read_text()
    except OSError:
        return ""
    return text[text.rfind(")") + 2 :][:1]


class PrometheusServer:
    """Prometheus on a free loopback port, scraping `targets` (host:port) every second."""

    def __init__(
        self,
        targets: Sequence[str],
        workdir: Path,
        *,
        scrape_interval: str = "1s",
        metrics_path: str = "/metrics",
    ) -> None:
        self.targets = list(targets)
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        self.metrics_path = metrics_path
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def write_config(self) -> Path:
        """prometheus.yml (JSON is YAML): one job `model` over all targets."""
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": "model",
                    "metrics_path": self.metrics_path,
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self, timeout: float = 60.0, *, wait_for_targets: bool = True) -> Self:
        """Start and wait for `/-/ready`; then, by default, until every target has been
        scraped once. Prometheus 2.42 hands discovered targets to its scrapers only every
        5 s (hard-coded), so the first samples arrive about 5-6 s after start."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        binary = prometheus_bin_dir() / "prometheus"
        config = self.write_config()
        self.port = free_port()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self._process.poll() is not None:
                raise PrometheusUnavailableError(
                    f"prometheus exited with {self._process.returncode} at start:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise PrometheusUnavailableError(
                    f"prometheus was not ready within {timeout:g}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        if wait_for_targets and self.targets:
            self.wait_for_data(
                "up", lambda values: len(values) >= len(self.targets), timeout=timeout
            )
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """A Prometheus that hangs: SIGSTOPped, its listening socket still accepts (the
        kernel's backlog) and nothing ever answers, until the block ends."""
        if self._process is None or self._process.poll() is not None:
            raise PrometheusUnavailableError("prometheus is not running; nothing to pause")
        self._process.send_signal(signal.SIGSTOP)
        try:
            _wait_until_stopped(self._process.pid)
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)

    def reload(self) -> None:
        """Re-read prometheus.yml (after `targets` changed and `write_config()`)."""
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def query(self, expr: str) -> dict[str, Any]:
        """The `data` of an instant query; raises PrometheusUnavailableError on an error."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise PrometheusUnavailableError(
                f"query {expr!r} failed: {exc.code} {exc.read().decode(errors='replace')}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusUnavailableError(f"query {expr!r} failed: {exc}") from exc
        data: dict[str, Any] = payload["data"]
        return data

    def wait_for_data(
        self,
        expr: str,
        predicate: Callable[[list[float]], bool] = bool,
        timeout: float = 30.0,
    ) -> list[float]:
        """Poll `expr` until its values (one per series, or the scalar) satisfy `predicate`
        (default: there is at least one); returns them. Raises with the last answer."""
        deadline = time.monotonic() + timeout
        values: list[float] = []
        while True:
            values = _values(self.query(expr))
            if predicate(values):
                return values
            if time.monotonic() > deadline:
                raise PrometheusUnavailableError(
                    f"{expr!r} did not reach the expected data within {timeout:g}s "
                    f"(last values: {values}); prometheus log:\n{self.log_tail(1000)}"
                )
            time.sleep(0.2)


def _values(data: dict[str, Any]) -> list[float]:
    if data.get("resultType") == "scalar":
        return [float(data["result"][1])]
    return [float(series["value"][1]) for series in data.get("result", [])]
