#!/usr/bin/env python3
"""A real, local Kubernetes control plane for development and integration tests.

Runs etcd, kube-apiserver and kube-controller-manager (Kubernetes v1.20.2, built once per
machine by ``hack/build-control-plane.sh``) as local processes. There is no scheduler and no
kubelet: Pods never run. The controller-manager runs without its deployment and replicaset
controllers, so a test helper can write Deployment status as a node would (see
``tests/support/kubelet.py``); garbage collection and namespace deletion still work.

Usable as a library::

    with LocalCluster(tmp_dir) as cluster:
        ...  # cluster.kubeconfig, cluster.server, cluster.admin_token

and as a command line tool::

    python -m tests.support.localcluster up [--dir DIR]      # prints `export KUBECONFIG=...`
    python -m tests.support.localcluster status [--dir DIR]
    python -m tests.support.localcluster kubeconfig [--dir DIR] [--user alice]
    python -m tests.support.localcluster down [--dir DIR] [--purge]

The default state directory is ``.local/`` in the operator directory (gitignored). Each
state directory is one independent cluster on freely chosen loopback ports, so several can
run side by side (a developer's cluster and a test session's, for instance).

Standard library only; ``openssl`` is used to make the service-account signing key.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

K8S_VERSION: Final = "1.20.2"
#: The repository root (this file is tests/support/localcluster.py).
REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR: Final = REPO_ROOT / ".local"
BUILD_SCRIPT: Final = REPO_ROOT / "hack" / "build-control-plane.sh"

#: Ordinary (non-admin) users put in the token file, with their groups. They have no
#: permissions until a test binds roles to them: that is what security tests need.
DEFAULT_USERS: Final[Mapping[str, tuple[str, ...]]] = {
    "alice": ("qa",),
    "bob": ("compliance",),
    "carol": ("developers",),
}

ADMIN_USER: Final = "admin"
CONTROLLER_MANAGER_USER: Final = "system:kube-controller-manager"
CONTEXT_NAME: Final = "aideploy-local"
#: A /16: room for bursts of thousands of Services (`make bench`); a superset of the
#: old /24, so a kept etcd still holds valid addresses.
SERVICE_CLUSTER_IP_RANGE: Final = "10.0.0.0/16"
SERVICE_ACCOUNT_ISSUER: Final = "https://kubernetes.default.svc.cluster.local"
#: Controllers that would fight a test's simulated node are off; everything else is on.
CONTROLLERS: Final = "*,-deployment,-replicaset"

BINARIES: Final = ("etcd", "kube-apiserver", "kube-controller-manager")
#: Seconds a stateless component gets to exit on SIGTERM before SIGKILL. kube-apiserver
#: 1.20 waits for open watches (a running operator's) to end, which held `cluster-down`
#: for its whole timeout and let `cluster-up` right after it meet the old apiserver; it
#: keeps no state, so a short grace is enough. etcd gets the full stop_timeout.
STATELESS_GRACE: Final[Mapping[str, float]] = {
    "kube-apiserver": 3.0,
    "kube-controller-manager": 3.0,
}
# Start order; stop in reverse.
COMPONENTS: Final = ("etcd", "kube-apiserver", "kube-controller-manager")

MARKER_FILE: Final = ".aideploy-localcluster"
#: Starts each component's run in its log file.
START_HEADER: Final = "\n==== "
STATE_FILE: Final = "cluster.json"

_PR_SET_PDEATHSIG: Final = 1


class LocalClusterError(RuntimeError):
    """The control plane could not be built, started, reached or stopped."""


def _log(message: str) -> None:
    print(f"[localcluster] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Binaries


def cache_root() -> Path:
    """Where ``build-control-plane.sh`` caches its output (same rules as the script)."""
    explicit = os.environ.get("AIDEPLOY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "aideploy"


def default_bin_dir() -> Path:
    return cache_root() / "control-plane" / f"v{K8S_VERSION}"


def _is_executable_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError:
        return False
    return magic == b"\x7fELF" and os.access(path, os.X_OK)


def _binaries_present(bin_dir: Path) -> bool:
    return all(_is_executable_elf(bin_dir / name) for name in BINARIES)


def ensure_binaries(bin_dir: Path | None = None, *, build_log: Path | None = None) -> Path:
    """Return the directory holding etcd, kube-apiserver and kube-controller-manager.

    Runs ``build-control-plane.sh`` (minutes, once per machine) when the default cache is
    empty. An explicitly given ``bin_dir`` is never built into: it must be complete.
    """
    if bin_dir is not None:
        if not _binaries_present(bin_dir):
            raise LocalClusterError(f"{bin_dir} lacks one of {', '.join(BINARIES)}")
        return bin_dir
    target = default_bin_dir()
    if _binaries_present(target):
        return target
    if not BUILD_SCRIPT.is_file():
        raise LocalClusterError(f"build script missing: {BUILD_SCRIPT}")
    _log(f"building the control plane v{K8S_VERSION} (first run only, ~5 minutes)")
    with contextlib.ExitStack() as stack:
        stderr: Any = None
        if build_log is not None:
            build_log.parent.mkdir(parents=True, exist_ok=True)
            stderr = stack.enter_context(build_log.open("ab"))
            _log(f"build log: {build_log}")
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if proc.returncode != 0:
        tail = _tail(build_log) if build_log is not None else ""
        raise LocalClusterError(
            f"build-control-plane.sh failed with exit code {proc.returncode}"
            + (f"; end of {build_log}:\n{tail}" if tail else "")
        )
    lines = proc.stdout.decode().strip().splitlines()
    built = Path(lines[-1]) if lines else target
    if not _binaries_present(built):
        raise LocalClusterError(f"build-control-plane.sh did not produce binaries in {built}")
    return built


# --------------------------------------------------------------------------------------
# Small helpers


def _tail(path: Path, lines: int = 30) -> str:
    """The last lines of a component's log, from its latest start only: each start appends
    a `==== <time> <argv>` header (see `_spawn`), and an earlier run's last words must not
    pass for the reason this start failed."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    header = text.rfind(START_HEADER)
    if header >= 0:
        text = text[header:]
    return "\n".join(text.splitlines()[-lines:])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the Go servers do, so connections in TIME_WAIT don't count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports that were free a moment ago."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _read_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def _rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask the kernel to SIGTERM this (child) process when its parent thread exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass(frozen=True)
class User:
    name: str
    token: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    pid: int | None
    running: bool
    rss_bytes: int | None


# --------------------------------------------------------------------------------------
# The cluster


class LocalCluster:
    """One local control plane whose files all live in ``state_dir``.

    ``start()`` is idempotent: it reuses a healthy cluster already running from the same
    state directory (started by this or another process) and restarts a stale one.
    ``stop()`` only ever signals processes whose pid file and ``/proc/<pid>/cmdline`` both
    say they belong to this state directory.

    ``detach=True`` (the CLI's mode) lets the processes outlive the Python process.
    With ``detach=False`` (for test sessions) they get SIGTERM when the thread that called
    ``start()`` exits, so a killed test run does not leak a control plane.
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        bin_dir: Path | None = None,
        users: Mapping[str, Sequence[str]] | None = None,
        detach: bool = True,
        start_timeout: float = 120.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.state_dir = Path(state_dir if state_dir is not None else DEFAULT_STATE_DIR)
        self.state_dir = self.state_dir.expanduser().absolute()
        self._bin_dir = bin_dir
        self._users = {name: tuple(groups) for name, groups in (users or DEFAULT_USERS).items()}
        self.detach = detach
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        #: How each component was started, to start it again (`crash_and_restart`).
        self._argv: dict[str, list[str]] = {}

    # ---- paths -------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (user in ``system:masters``), CA-verified TLS."""
        return self.state_dir / "kubeconfig"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def _pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def _cert_dir(self) -> Path:
        return self._pki_dir / "apiserver"

    @property
    def ca_bundle(self) -> Path:
        """The apiserver's self-signed serving certificate bundle (leaf + its CA)."""
        return self._cert_dir / "apiserver.crt"

    @property
    def _etcd_dir(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def _tokens_file(self) -> Path:
        return self.state_dir / "tokens.csv"

    @property
    def _kcm_kubeconfig(self) -> Path:
        return self.state_dir / "controller-manager.kubeconfig"

    def _pid_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    # ---- recorded state ------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads((self.state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self, data: Mapping[str, Any]) -> None:
        _write_private(self.state_dir / STATE_FILE, json.dumps(data, indent=2) + "\n")

    @property
    def server(self) -> str:
        """``https://127.0.0.1:<port>`` of the apiserver (of the last start)."""
        port = self._read_state().get("apiserver_port")
        if not isinstance(port, int):
            raise LocalClusterError(f"no cluster has been started in {self.state_dir}")
        return f"https://127.0.0.1:{port}"

    def users(self) -> dict[str, User]:
        """All users of the token file, by name (admin and controller-manager included)."""
        result: dict[str, User] = {}
        try:
            text = self._tokens_file.read_text()
        except OSError:
            return result
        for line in text.splitlines():
            if not line.strip():
                continue
            token, name, _uid, *rest = line.split(",", 3)
            groups = tuple(g for g in ",".join(rest).strip('"').split(",") if g)
            result[name] = User(name=name, token=token, groups=groups)
        return result

    def token(self, username: str) -> str:
        user = self.users().get(username)
        if user is None:
            raise LocalClusterError(f"no user {username!r} in {self._tokens_file}")
        return user.token

    @property
    def admin_token(self) -> str:
        return self.token(ADMIN_USER)

    # ---- processes -----------------------------------------------------------------------

    def _recorded_pid(self, name: str) -> int | None:
        try:
            return int(self._pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None

    def _owns(self, name: str, pid: int) -> bool:
        """Does ``pid`` still run ``name`` for this state directory?"""
        argv = _read_cmdline(pid)
        if not argv or Path(argv[0]).name != name:
            return False
        marker = str(self.state_dir) + os.sep
        return any(marker in arg for arg in argv[1:])

    def _live_pid(self, name: str) -> int | None:
        pid = self._recorded_pid(name)
        if pid is not None and _is_alive(pid) and self._owns(name, pid):
            return pid
        return None

    def processes(self) -> list[ProcessInfo]:
        infos = []
        for name in COMPONENTS:
            pid = self._live_pid(name)
            infos.append(
                ProcessInfo(
                    name=name,
                    pid=pid if pid is not None else self._recorded_pid(name),
                    running=pid is not None,
                    rss_bytes=_rss_bytes(pid) if pid is not None else None,
                )
            )
        return infos

    def memory_rss(self) -> dict[str, int]:
        """Resident memory of each running component, in bytes."""
        return {p.name: p.rss_bytes for p in self.processes() if p.rss_bytes is not None}

    def is_running(self) -> bool:
        """All three processes are ours and alive, and the apiserver answers ``/readyz``."""
        if not all(p.running for p in self.processes()):
            return False
        try:
            return self._readyz()
        except LocalClusterError:
            return False

    def _spawn(self, name: str, argv: list[str]) -> int:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if name == "etcd" and os.uname().machine not in ("x86_64", "amd64"):
            env["ETCD_UNSUPPORTED_ARCH"] = {"aarch64": "arm64"}.get(
                os.uname().machine, os.uname().machine
            )
        with self.log_file(name).open("ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            log.write(f"{START_HEADER}{stamp} {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                env=env,
                start_new_session=True,
                preexec_fn=None if self.detach else _die_with_parent,
            )
        self._children[proc.pid] = proc
        self._pid_file(name).write_text(f"{proc.pid}\n")
        self._argv[name] = argv
        return proc.pid

    def crash_and_restart(self, name: str) -> float:
        """Kill a component as a crash would (SIGKILL) and start it again with the same
        flags and data; return once the apiserver answers /readyz again, with the seconds
        it was gone. For fault tests: etcd or kube-apiserver."""
        pid = self._live_pid(name)
        if pid is None or name not in self._argv:
            raise LocalClusterError(f"{name} is not running in this cluster")
        gone = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._wait_gone(pid, 10.0)
        self._spawn(name, self._argv[name])
        self._wait_for(name, self._readyz_quiet, time.monotonic() + self.start_timeout)
        return time.monotonic() - gone

    def _signal_and_wait(self, name: str, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        grace = STATELESS_GRACE.get(name)
        if grace is not None:
            if not self._wait_gone(pid, grace):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 5.0)
            return
        if not self._wait_gone(pid, self.stop_timeout):
            _log(f"{name} (pid {pid}) ignored SIGTERM for {self.stop_timeout:g}s; SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 5.0)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        child = self._children.get(pid)
        while time.monotonic() < deadline:
            if child is not None:
                if child.poll() is not None:
                    self._children.pop(pid, None)
                    return True
            elif not _is_alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _stop_processes(self) -> list[str]:
        stopped = []
        for name in reversed(COMPONENTS):
            pid = self._recorded_pid(name)
            if pid is not None and _is_alive(pid) and self._owns(name, pid):
                self._signal_and_wait(name, pid)
                stopped.append(name)
            elif pid is not None and pid in self._children:
                self._children.pop(pid).poll()  # reap our own dead child
            self._pid_file(name).unlink(missing_ok=True)
        return stopped

    # ---- HTTP ------------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    def _get(self, path: str, *, timeout: float = 3.0) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        try:
            context = self._ssl_context()
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise LocalClusterError(f"GET {path}: {exc}") from exc

    def _readyz(self) -> bool:
        status, _ = self._get("/readyz")
        return status == 200

    # ---- setup -----------------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.state_dir / MARKER_FILE).touch()
        for path in (self.log_dir, self._pki_dir, self._cert_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._etcd_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _ensure_service_account_keys(self) -> tuple[Path, Path]:
        key, pub = self._pki_dir / "sa.key", self._pki_dir / "sa.pub"
        if key.is_file() and pub.is_file():
            return key, pub
        if shutil.which("openssl") is None:
            raise LocalClusterError("the `openssl` command is needed to make service account keys")
        for argv in (
            ["openssl", "genrsa", "-out", str(key), "2048"],
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
        ):
            proc = subprocess.run(argv, capture_output=True, check=False)
            if proc.returncode != 0:
                raise LocalClusterError(
                    f"{' '.join(argv[:2])} failed: {proc.stderr.decode(errors='replace')}"
                )
        key.chmod(0o600)
        return key, pub

    def _ensure_tokens(self) -> None:
        """Write the token file, keeping tokens that already exist (old kubeconfigs work)."""
        existing = self.users()
        wanted: dict[str, tuple[str, ...]] = {
            ADMIN_USER: ("system:masters",),
            # Without --use-service-account-credentials every controller runs as the
            # controller-manager itself; garbage collection needs broad rights.
            CONTROLLER_MANAGER_USER: ("system:masters",),
            **self._users,
        }
        lines = []
        for name, groups in wanted.items():
            old = existing.get(name)
            token = old.token if old is not None else secrets.token_urlsafe(32)
            lines.append(f'{token},{name},{name},"{",".join(groups)}"')
        _write_private(self._tokens_file, "\n".join(lines) + "\n")

    def _choose_ports(self) -> dict[str, int]:
        """Reuse the last ports when still free (old kubeconfigs keep working)."""
        keys = ("etcd_client_port", "etcd_peer_port", "apiserver_port")
        old = self._read_state()
        previous = [old.get(k) for k in keys]
        if all(isinstance(p, int) for p in previous) and len(set(previous)) == len(keys):
            ports = [int(p) for p in previous if isinstance(p, int)]
            if all(_port_is_free(p) for p in ports):
                return dict(zip(keys, ports, strict=True))
        return dict(zip(keys, _free_ports(len(keys)), strict=True))

    def _kubeconfig_text(self, user: str, token: str) -> str:
        ca_data = base64.b64encode(self.ca_bundle.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {
                    "name": CONTEXT_NAME,
                    "cluster": {"server": self.server, "certificate-authority-data": ca_data},
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {
                    "name": CONTEXT_NAME,
                    "context": {"cluster": CONTEXT_NAME, "user": user, "namespace": "default"},
                }
            ],
            "current-context": CONTEXT_NAME,
        }
        # JSON is YAML: kubectl, client-go and the Python client all read it.
        return json.dumps(config, indent=2) + "\n"

    def user_kubeconfig(self, username: str) -> Path:
        """Write (and return) a kubeconfig that authenticates as ``username``."""
        token = self.token(username)
        path = self.state_dir / "users" / f"{username}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(path, self._kubeconfig_text(username, token))
        return path

    # ---- lifecycle ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.state_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def start(self) -> Self:
        """Start the cluster (or reuse a healthy one) and wait until it is usable."""
        with self._locked():
            if self.is_running():
                self._write_admin_kubeconfig()
                return self
            if any(p.running for p in self.processes()):
                _log(f"restarting a stale cluster in {self.state_dir}")
            self._stop_processes()
            self._prepare_dirs()
            bin_dir = ensure_binaries(self._bin_dir, build_log=self.log_file("build"))
            try:
                self._start_processes(bin_dir)
            except BaseException:
                self._stop_processes()
                raise
        return self

    def _start_processes(self, bin_dir: Path) -> None:
        deadline = time.monotonic() + self.start_timeout
        sa_key, sa_pub = self._ensure_service_account_keys()
        self._ensure_tokens()
        ports = self._choose_ports()
        self._write_state({"version": K8S_VERSION, "bin_dir": str(bin_dir), **ports})
        etcd_url = f"http://127.0.0.1:{ports['etcd_client_port']}"
        peer_url = f"http://127.0.0.1:{ports['etcd_peer_port']}"

        self._spawn(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=default",
                f"--data-dir={self._etcd_dir}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",
                "--logger=zap",
                "--log-level=warn",
            ],
        )
        self._wait_for(
            "etcd",
            lambda: _http_ok(f"{etcd_url}/health"),
            deadline,
        )

        self._spawn(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={ports['apiserver_port']}",
                "--insecure-port=0",
                f"--cert-dir={self._cert_dir}",
                f"--token-auth-file={self._tokens_file}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--disable-admission-plugins=ServiceAccount",
                "--profiling=false",
            ],
        )
        self._wait_for("kube-apiserver", self._readyz_quiet, deadline)

        _write_private(
            self._kcm_kubeconfig,
            self._kubeconfig_text(CONTROLLER_MANAGER_USER, self.token(CONTROLLER_MANAGER_USER)),
        )
        self._spawn(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self._kcm_kubeconfig}",
                f"--controllers={CONTROLLERS}",
                "--leader-elect=false",
                # No serving: fixed default ports would clash between clusters.
                "--port=0",
                "--secure-port=0",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={self.ca_bundle}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--profiling=false",
            ],
        )
        self._write_admin_kubeconfig()
        # The default service account is made by the controller-manager: once it exists,
        # the apiserver, RBAC bootstrap and the controllers all work.
        self._wait_for(
            "kube-controller-manager",
            lambda: (
                self._get_ok("/api/v1/namespaces/default")
                and self._get_ok("/api/v1/namespaces/default/serviceaccounts/default")
            ),
            deadline,
        )

    def _write_admin_kubeconfig(self) -> None:
        _write_private(self.kubeconfig, self._kubeconfig_text(ADMIN_USER, self.admin_token))

    def _readyz_quiet(self) -> bool:
        if not self.ca_bundle.is_file():
            return False
        try:
            return self._readyz()
        except LocalClusterError:
            return False

    def _get_ok(self, path: str) -> bool:
        try:
            return self._get(path)[0] == 200
        except LocalClusterError:
            return False

    def _wait_for(self, what: str, check: Callable[[], bool], deadline: float) -> None:
        while True:
            for name in COMPONENTS:
                if self._pid_file(name).exists() and self._live_pid(name) is None:
                    raise LocalClusterError(
                        f"{name} exited during start; end of {self.log_file(name)}:\n"
                        + _tail(self.log_file(name))
                    )
            if check():
                return
            if time.monotonic() > deadline:
                raise LocalClusterError(
                    f"{what} not ready after {self.start_timeout:g}s; end of "
                    f"{self.log_file(what)}:\n" + _tail(self.log_file(what))
                )
            time.sleep(0.1)

    def stop(self, *, purge: bool = False) -> list[str]:
        """Stop this state directory's processes; return the names of those stopped.

        ``purge=True`` also deletes the state directory (etcd data, keys, tokens, logs).
        Harmless when nothing runs.
        """
        if not self.state_dir.is_dir():
            return []
        with self._locked():
            stopped = self._stop_processes()
        if purge:
            self.purge()
        return stopped

    def purge(self) -> None:
        """Delete the state directory, if it is one of ours and nothing runs from it."""
        if not self.state_dir.exists():
            return
        if any(p.running for p in self.processes()):
            raise LocalClusterError(f"cluster in {self.state_dir} is running; stop it first")
        if not (self.state_dir / MARKER_FILE).exists():
            raise LocalClusterError(f"{self.state_dir} is not a local cluster state directory")
        shutil.rmtree(self.state_dir)

    def wipe_data(self) -> None:
        """Delete etcd's data (the bulk of the disk use) of a stopped cluster; keep logs."""
        if any(p.running for p in self.processes()):
            raise LocalClusterError(f"cluster in {self.state_dir} is running; stop it first")
        shutil.rmtree(self._etcd_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalCluster(state_dir={str(self.state_dir)!r})"


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            return int(resp.status) == 200
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------------------
# Command line


def _cmd_up(cluster: LocalCluster, _args: argparse.Namespace) -> int:
    started = time.monotonic()
    was_running = cluster.is_running()
    cluster.start()
    if was_running:
        _log(f"already running at {cluster.server}")
    else:
        _log(f"ready at {cluster.server} in {time.monotonic() - started:.1f}s")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def _cmd_down(cluster: LocalCluster, args: argparse.Namespace) -> int:
    stopped = cluster.stop(purge=bool(args.purge))
    _log(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    if args.purge:
        _log(f"removed {cluster.state_dir}")
    return 0


def _cmd_status(cluster: LocalCluster, _args: argparse.Namespace) -> int:
    running = cluster.is_running()
    print(f"state dir:  {cluster.state_dir}")
    print(f"status:     {'running' if running else 'stopped'}")
    if running:
        print(f"server:     {cluster.server}")
        print(f"kubeconfig: {cluster.kubeconfig}")
    total = 0
    for proc in cluster.processes():
        if proc.running and proc.rss_bytes is not None:
            total += proc.rss_bytes
            print(f"  {proc.name:<24} pid {proc.pid:<8} rss {proc.rss_bytes / 2**20:7.1f} MiB")
        else:
            print(f"  {proc.name:<24} not running")
    if total:
        print(f"  {'total':<24} {'':<12} rss {total / 2**20:7.1f} MiB")
    return 0 if running else 1


def _cmd_kubeconfig(cluster: LocalCluster, args: argparse.Namespace) -> int:
    if args.user:
        print(cluster.user_kubeconfig(args.user))
        return 0
    if not cluster.kubeconfig.is_file():
        _log(f"no kubeconfig in {cluster.state_dir}; run `up` first")
        return 1
    print(cluster.kubeconfig)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="state directory (default: .local/ in the operator directory)",
    )
    parser = argparse.ArgumentParser(
        prog="localcluster", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", parents=[common], help="start (or reuse) the cluster")
    down = sub.add_parser("down", parents=[common], help="stop the cluster")
    down.add_argument("--purge", action="store_true", help="also delete all of its data")
    sub.add_parser("status", parents=[common], help="exit 0 if running, 1 if not")
    kc = sub.add_parser("kubeconfig", parents=[common], help="print the kubeconfig path")
    kc.add_argument("--user", help="write and print a kubeconfig for this ordinary user")
    args = parser.parse_args(argv)

    handlers = {
        "up": _cmd_up,
        "down": _cmd_down,
        "status": _cmd_status,
        "kubeconfig": _cmd_kubeconfig,
    }
    cluster = LocalCluster(args.dir)
    try:
        return handlers[args.command](cluster, args)
    except LocalClusterError as exc:
        _log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
