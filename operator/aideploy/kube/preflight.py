"""Before the operator starts: is there a cluster, and does its apiserver answer?

Why: without this, a missing kubeconfig made kopf log a traceback every minute forever, and
a stale one (a stopped local control plane) printed 81 lines of urllib3 before the first
useful word. Here a missing kubeconfig is one sentence and exit code 2 (nothing will fix
itself), while an apiserver that does not answer is one log line per attempt and retried:
a cluster that is starting, or restarting, is not an error of the operator's.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Final

import urllib3
from kubernetes import client
from kubernetes.config.config_exception import ConfigException

from aideploy.kube.client import kubeconfig_env_is_stale, make_api_client
from aideploy.kube.rest import ApiError, Rest

logger = logging.getLogger(__name__)

#: Seconds between attempts: quick at first (a local control plane starts in seconds),
#: then no more than this.
FIRST_RETRY: Final = 1.0
LONGEST_RETRY: Final = 10.0
#: One attempt's budget: an apiserver that accepts and never answers is "not answering".
ATTEMPT_TIMEOUT: Final = 5.0


class NoClusterError(Exception):
    """No way to reach a cluster is configured; the message says what to set."""


def api_client() -> client.ApiClient:
    """The operator's client, or NoClusterError naming what is missing."""
    path = os.environ.get("KUBECONFIG", "")
    if kubeconfig_env_is_stale(path):
        raise NoClusterError(
            f"KUBECONFIG names {path}, which does not exist: point it at a cluster's "
            "kubeconfig, or unset it and use `make run` for the local control plane"
        )
    try:
        return make_api_client()
    except ConfigException as error:
        raise NoClusterError(
            "no cluster is configured: KUBECONFIG is unset, ~/.kube/config does not exist, "
            f"and this is not a pod in a cluster ({error}); set KUBECONFIG, or use "
            "`make run` for the local control plane"
        ) from None


def wait_for_apiserver(
    api: client.ApiClient,
    *,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int | None = None,
) -> str:
    """Block until the apiserver answers GET /version; return its git version.

    Each failed attempt is one WARNING line that names the server, what went wrong and
    what to check. `attempts` bounds the loop (tests); None waits as long as it takes."""
    server = str(api.configuration.host)
    rest = Rest(api, timeout_seconds=ATTEMPT_TIMEOUT)
    delay = FIRST_RETRY
    tried = 0
    while True:
        tried += 1
        try:
            version = rest.request("GET", "/version") or {}
            return str(version.get("gitVersion", "unknown version"))
        except ApiError as error:
            if error.status in (401, 403):
                raise NoClusterError(
                    f"the apiserver at {server} refused the credentials in the kubeconfig "
                    f"({error.status} {error.reason}): log in again or pick another context"
                ) from None
            problem = f"answered {error.status} {error.reason}"
        except (urllib3.exceptions.HTTPError, OSError) as error:
            problem = f"does not answer ({_reason(error)})"
        if attempts is not None and tried >= attempts:
            raise TimeoutError(f"the apiserver at {server} {problem}")
        logger.warning(
            "the apiserver at %s %s; retrying in %.0fs (is the cluster up? `make cluster-up` "
            "starts the local one)",
            server,
            problem,
            delay,
        )
        sleep(delay)
        delay = min(delay * 2, LONGEST_RETRY)


def _reason(error: BaseException) -> str:
    """urllib3 wraps the cause twice (MaxRetryError -> NewConnectionError -> OSError): the
    innermost words are the ones a person recognises ("Connection refused")."""
    inner: BaseException = error
    while True:
        nested = getattr(inner, "reason", None)
        if isinstance(nested, BaseException) and nested is not inner:
            inner = nested
            continue
        break
    text = str(inner)
    # "<urllib3.connection.HTTPSConnection object at 0x...>: Failed to establish a new
    # connection: [Errno 111] Connection refused" -> the part after the last colon.
    return text.rsplit(": ", 1)[-1] if ": " in text else text or type(inner).__name__
