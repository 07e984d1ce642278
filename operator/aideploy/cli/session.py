"""The plugin's connection to the cluster, and the translation of every API failure into
one line that says what happened and what to do.

Messages name the user, the verb and the resource, never a token: the kubeconfig's
credentials stay inside the API client.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aideploy.api.constants import GROUP, PLURAL, RECORD_PLURAL, VERSION
from aideploy.kube.client import kubeconfig_env_is_stale, make_api_client
from aideploy.kube.records import list_records
from aideploy.kube.rest import ApiError, Rest

T = TypeVar("T")
REQUEST_TIMEOUT_SECONDS = 15.0
_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class CliError(Exception):
    """A failure to report on one line; exit status 1."""

    exit_code = 1


class UsageError(CliError):
    """The command line asks for something that cannot be done; exit status 2."""

    exit_code = 2


class ConflictError(CliError):
    """The object changed between our read and our write."""


def _kubeconfig_path(explicit: str | None) -> str | None:
    """The kubeconfig to use; a named one that does not exist is refused here, with what
    to do, rather than left to the client's "No configuration found"."""
    if explicit:
        if not Path(explicit).is_file():
            raise UsageError(f"kubeconfig {explicit} does not exist: check --kubeconfig")
        return explicit
    env = os.environ.get("KUBECONFIG", "")
    if env:
        if kubeconfig_env_is_stale(env):
            raise CliError(
                f"KUBECONFIG names {env}, which does not exist: start the cluster it belongs "
                "to, or export KUBECONFIG (or pass --kubeconfig) with a kubeconfig that exists"
            )
        return env
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.is_file() else None


def _active_context(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        _contexts, active = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, yaml.YAMLError, TypeError, AttributeError) as error:
        # Not YAML, or YAML of the wrong shape: the client raises whatever it meets.
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CliError(
            f"cannot read kubeconfig {path} ({detail}): fix it, or point KUBECONFIG or "
            "--kubeconfig at another"
        ) from None
    context: dict[str, Any] = (active or {}).get("context") or {}
    return context


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and what caused it, outermost first (urllib3 keeps the cause in `reason`)."""
    chain: list[BaseException] = []
    seen: object = error
    while isinstance(seen, BaseException) and seen not in chain and len(chain) < 10:
        chain.append(seen)
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else seen.__cause__ or seen.__context__
    return chain


def _unreachable_reason(error: BaseException) -> str:
    """The root cause of a failed connection in a few words, not urllib3's nested repr."""
    chain = _causes(error)
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "unknown host"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed: {cause.reason or cause}"
    for cause in chain:
        # urllib3's NewConnectionError is a ConnectTimeoutError too: not a timeout itself.
        timeout = isinstance(cause, (TimeoutError, urllib3.exceptions.TimeoutError))
        if timeout and not isinstance(cause, urllib3.exceptions.NewConnectionError):
            return "timed out"
    text = str(chain[-1])
    return text.rsplit("] ", 1)[-1] if "Errno" in text else text


def _is_local(server: str) -> bool:
    host = urllib.parse.urlsplit(server).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class Session:
    """One cluster, one namespace, one user: what every command works with."""

    def __init__(self, kubeconfig: str | None = None, namespace: str | None = None) -> None:
        path = _kubeconfig_path(kubeconfig)
        context = _active_context(path)
        if namespace:
            self.namespace = namespace
        elif context.get("namespace"):
            self.namespace = str(context["namespace"])
        elif path is None and _SA_NAMESPACE.is_file():
            self.namespace = _SA_NAMESPACE.read_text().strip()
        else:
            self.namespace = "default"
        self.user: str | None = str(context["user"]) if context.get("user") else None
        if path is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise CliError(
                "no kubeconfig: KUBECONFIG is not set and ~/.kube/config does not exist; "
                "export KUBECONFIG=<file> or pass --kubeconfig <file>"
            )
        try:
            api_client = make_api_client(path)
        except (ConfigException, OSError, yaml.YAMLError, TypeError, AttributeError) as error:
            raise CliError(
                f"no usable Kubernetes configuration ({error}): set KUBECONFIG or pass --kubeconfig"
            ) from None
        self.server = str(api_client.configuration.host)
        if not api_client.configuration.verify_ssl:
            # The kubeconfig chose insecure-skip-tls-verify: say so once, not a urllib3
            # warning of three lines on every request.
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            print(
                f"warning: TLS certificates of {self.server} are not verified "
                "(insecure-skip-tls-verify in the kubeconfig)",
                file=sys.stderr,
            )
        self._api_client = api_client
        self.rest = Rest(api_client, timeout_seconds=REQUEST_TIMEOUT_SECONDS)

    def close(self) -> None:
        self._api_client.close()  # type: ignore[no-untyped-call]

    # Paths

    def collection(self, plural: str = PLURAL) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{plural}"

    # Error translation

    def call(self, verb: str, plural: str, name: str | None, hint: str, fn: Callable[[], T]) -> T:
        """Run one API request; turn its failure into a CliError naming `verb` on `plural`.

        `hint` says which permission the command needs, for the 403 message.
        """
        what = f"{plural}.{GROUP}" + (f" {name!r}" if name else "")
        try:
            return fn()
        except ApiError as error:
            if error.status == 401:
                raise CliError(
                    f"the API server at {self.server} rejected your credentials (401 "
                    "Unauthorized): log in again or check the user of your kubeconfig context"
                ) from None
            if error.status == 403:
                who = f"user {self.user!r}" if self.user else "you"
                raise CliError(
                    f"permission denied: {who} may not {verb} {what} in namespace "
                    f"{self.namespace!r} (403 Forbidden); {hint}"
                ) from None
            if error.status == 404:
                raise CliError(self.not_found(name or "")) from None
            if error.status == 409:
                raise ConflictError(f"{what} changed while we wrote it: {error.message}") from None
            raise CliError(
                f"could not {verb} {what}: the API server answered {error.status} "
                f"{error.reason}: {error.message}"
            ) from None
        except (urllib3.exceptions.HTTPError, ApiException, OSError) as error:
            local = (
                " (a local cluster that was stopped leaves its kubeconfig behind: start it again)"
                if _is_local(self.server)
                else ""
            )
            raise CliError(
                f"cannot reach the Kubernetes API server at {self.server} "
                f"({_unreachable_reason(error)}): check that the cluster is up and that "
                f"KUBECONFIG or --kubeconfig points at it{local}"
            ) from None

    def not_found(self, name: str) -> str:
        """Not found: the object, or the whole resource type when the CRD is missing."""
        try:
            installed = self.rest.request("GET", self.collection(), query=[("limit", "1")])
        except (ApiError, urllib3.exceptions.HTTPError, ApiException, OSError):
            installed = {}  # cannot tell; assume the CRD is there
        if installed is None:
            return (
                f"the cluster at {self.server} does not serve {PLURAL}.{GROUP}: install the "
                "aideploy CRDs (crds/ or the Helm chart) first"
            )
        return (
            f"aideployment {name} not found in namespace {self.namespace}: check the name "
            "(kubectl get aid) and the namespace (-n)"
        )

    # Verbs

    def get_deployment(self, name: str, hint: str) -> dict[str, Any]:
        obj = self.call(
            "get",
            PLURAL,
            name,
            hint,
            lambda: self.rest.request("GET", f"{self.collection()}/{name}"),
        )
        if obj is None:
            raise CliError(self.not_found(name))
        return obj

    def find_deployment(self, name: str, hint: str) -> dict[str, Any] | None:
        return self.call(
            "get",
            PLURAL,
            name,
            hint,
            lambda: self.rest.request("GET", f"{self.collection()}/{name}"),
        )

    def list_deployments(self, hint: str) -> list[dict[str, Any]]:
        listed = self.call(
            "list", PLURAL, None, hint, lambda: self.rest.request("GET", self.collection())
        )
        return list((listed or {}).get("items") or [])

    def patch_deployment(self, name: str, patch: dict[str, Any], hint: str) -> dict[str, Any]:
        patched = self.call(
            "patch",
            PLURAL,
            name,
            hint,
            lambda: self.rest.request(
                "PATCH",
                f"{self.collection()}/{name}",
                body=patch,
                content_type="application/merge-patch+json",
            ),
        )
        assert patched is not None
        return patched

    def replace_deployment(self, obj: dict[str, Any], hint: str) -> dict[str, Any]:
        """PUT the whole object: its metadata.resourceVersion makes a concurrent change a
        409 (ConflictError) instead of a silent merge into a spec nobody reviewed."""
        name = str(obj["metadata"]["name"])
        replaced = self.call(
            "update",
            PLURAL,
            name,
            hint,
            lambda: self.rest.request("PUT", f"{self.collection()}/{name}", body=obj),
        )
        assert replaced is not None
        return replaced

    def annotate(self, name: str, annotations: dict[str, str], hint: str) -> dict[str, Any]:
        return self.patch_deployment(name, {"metadata": {"annotations": annotations}}, hint)

    def records(self, deployment_name: str | None, hint: str) -> list[dict[str, Any]]:
        """Every record (of one AIDeployment name, if given), found by its spec, not by its
        labels: labels are outside the hash and could have been changed."""
        return self.call(
            "list",
            RECORD_PLURAL,
            None,
            hint,
            lambda: list_records(self.rest, self.namespace, deployment_name, use_labels=False),
        )
