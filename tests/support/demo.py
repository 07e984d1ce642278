"""`make demo`: the operator on the local control plane, with a stand-in node, so that a
newcomer sees a model reach Succeeded, Held and RolledBack in minutes.

A development aid, not a deployment target. The local control plane runs no pods, so this
process plays the node's part for one namespace:
- it marks every Deployment available, as a kubelet and the deployment controller would
  (tests/support/kubelet.py's SimulatedNode);
- it answers for the pods behind each Service, as a model server would: a request to
  `http://127.0.0.1:PORT/<namespace>/<service>/<path>` goes to the Deployment that the
  Service selects, and is answered by a real Open Inference Protocol v2 server (the tests'
  tests/support/modelserver.py) in the behaviour that Deployment's first container names
  in its `DEMO_BEHAVIOUR` environment variable: `healthy` (the default), `slow` (answers
  after 0.5 s) or `failing` (answers 500).
The operator is started by hack/run.sh (as `make run` does) with `--probe-base-url` and
`--probe-preview-url` pointing at that address, so probes and monitoring signals reach the
release they check, and a release's template decides how it behaves.

    python -m tests.support.demo [--namespace default] [--port 0]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.support.kubelet import SimulatedNode
from tests.support.localcluster import DEFAULT_STATE_DIR, LocalCluster
from tests.support.modelserver import ModelServer
from tests.support.paths import REPO_ROOT

#: The models the demo's examples deploy (their spec.model.name).
DEMO_MODELS: Final = ("churn-predictor",)
BEHAVIOUR_ENV: Final = "DEMO_BEHAVIOUR"
BEHAVIOURS: Final = ("healthy", "slow", "failing")
SLOW_SECONDS: Final = 0.5
RUN_SCRIPT: Final = REPO_ROOT / "hack" / "run.sh"


def _say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def behaviour_of(deployment: Mapping[str, Any]) -> str:
    """What the release's pods would do, from its template (the demo's stand-in for an
    image): the first container's DEMO_BEHAVIOUR, healthy when absent or unknown."""
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {})
    for container in (containers.get("containers") or [])[:1]:
        for env in container.get("env") or []:
            if env.get("name") == BEHAVIOUR_ENV and env.get("value") in BEHAVIOURS:
                return str(env["value"])
    return "healthy"


def selects(selector: Mapping[str, str], labels: Mapping[str, str] | None) -> bool:
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


class DemoNode:
    """The stand-in node of one namespace: Deployments marked available, Services answered."""

    def __init__(self, api: client.ApiClient, namespace: str, port: int = 0) -> None:
        self.namespace = namespace
        self._core = client.CoreV1Api(api)
        self._apps = client.AppsV1Api(api)
        self._api = api
        self._node = SimulatedNode(self._apps, namespace)
        self._servers = {
            "healthy": ModelServer(DEMO_MODELS),
            "slow": ModelServer(DEMO_MODELS, mode="slow", delay=SLOW_SECONDS),
            "failing": ModelServer(DEMO_MODELS, mode="failing"),
        }
        self._http = _Router(("127.0.0.1", port), self)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url_template(self) -> str:
        """The operator's probe base URL: {namespace} and {service} are filled in by it."""
        return f"http://127.0.0.1:{self._http.server_address[1]}/{{namespace}}/{{service}}"

    def start(self) -> Self:
        for server in self._servers.values():
            server.start()
        self._node.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._node.stop()
        for server in self._servers.values():
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def backend(self, namespace: str, service: str) -> tuple[str | None, str]:
        """The model server answering for `service`'s pods, or None with the reason."""
        try:
            found = self._core.read_namespaced_service(service, namespace)
        except ApiException as error:
            return None, f"service {namespace}/{service}: {error.reason}"
        selector = dict(found.spec.selector or {})
        listed = self._apps.list_namespaced_deployment(namespace)
        for deployment in listed.items:
            raw = self._api.sanitize_for_serialization(deployment)
            labels = ((raw.get("spec") or {}).get("template") or {}).get("metadata", {})
            available = (raw.get("status") or {}).get("availableReplicas") or 0
            if available and selects(selector, labels.get("labels")):
                return self._servers[behaviour_of(raw)].url, ""
        return None, f"no available pods behind service {namespace}/{service}"


class _Router(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], node: DemoNode) -> None:
        super().__init__(address, _Forward)
        self.node = node


class _Forward(BaseHTTPRequestHandler):
    """`/<namespace>/<service>/<path>` -> the model server for that Service's pods."""

    server: _Router
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the operator's status says what the probes found."""

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        parts = self.path.split("/", 3)
        if len(parts) < 3 or not parts[1] or not parts[2]:
            self._reply(404, b'{"error": "use /<namespace>/<service>/<path>"}')
            return
        namespace, service = parts[1], parts[2]
        rest = "/" + (parts[3] if len(parts) > 3 else "")
        base, why = self.server.node.backend(namespace, service)
        if base is None:
            self._reply(503, f'{{"error": "{why}"}}'.encode())
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        request = urllib.request.Request(
            base + rest,
            data=body,
            method=self.command,
            headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                self._reply(answer.status, answer.read())
        except urllib.error.HTTPError as error:
            self._reply(error.code, error.read())
        except OSError as error:
            self._reply(502, f'{{"error": "{error}"}}'.encode())

    def _reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def _cluster(state: Path) -> Iterator[client.ApiClient]:
    cluster = LocalCluster(state).start()
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield api
    finally:
        api.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", default="default", help="the namespace it plays for")
    parser.add_argument("--port", type=int, default=0, help="the stand-in node's port")
    args = parser.parse_args(argv)
    state = Path(os.environ.get("AIDEPLOY_LOCAL_DIR") or DEFAULT_STATE_DIR)
    with _cluster(state) as api, DemoNode(api, args.namespace, args.port) as node:
        _say(
            f"a stand-in node plays for namespace {args.namespace} (development aid): it marks "
            "Deployments available and answers for their pods at "
            f"{node.url_template.split('/{', 1)[0]}, as each release's {BEHAVIOUR_ENV} says"
        )
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["AIDEPLOY_LOCAL_DIR"] = str(state)
        operator = subprocess.Popen(
            [
                "bash",
                str(RUN_SCRIPT),
                "--namespace",
                args.namespace,
                "--probe-base-url",
                node.url_template,
                "--probe-preview-url",
                node.url_template,
            ],
            env=env,
        )
        while True:
            try:
                return operator.wait()
            except KeyboardInterrupt:
                continue  # Ctrl-C reached the operator too: wait for it to stop


if __name__ == "__main__":
    sys.exit(main())
