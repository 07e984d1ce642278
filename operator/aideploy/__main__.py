"""`python -m aideploy` / `aideploy-operator`: run the operator against KUBECONFIG."""

from __future__ import annotations

import argparse
import logging
import os
import random
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import kopf
from kubernetes.client import ApiClient

from aideploy.admission.provenance import load_key
from aideploy.config import OperatorConfig, configure, notify_interval
from aideploy.kube import preflight
from aideploy.logic.probe_url import PLACEHOLDERS, unknown_placeholders
from aideploy.records.signature import RecordSigner

#: kopf's own default peer lifetime, and the shortest we accept.
DEFAULT_PEERING_LIFETIME = 60
MIN_PEERING_LIFETIME = 5


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="aideploy-operator",
        description="Run the aideploy operator against the cluster in KUBECONFIG "
        "(or the in-cluster service account).",
    )
    try:  # the environment gives the flags' defaults: a bad variable is one line, no trace
        OperatorConfig.from_env()
    except ValueError as error:
        parser.error(str(error))
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    _add_runtime_args(parser)
    _add_approval_args(parser)
    _add_webhook_args(parser.add_argument_group("admission webhook (approval provenance)"))
    _add_notification_args(parser.add_argument_group("notifications (AIDeploymentNotifier)"))
    parser.add_argument(
        "--install-crds",
        metavar="DIR",
        default=None,
        help="apply the CRDs in DIR before starting (development clusters)",
    )
    parser.add_argument(
        "--print-record-public-key",
        action="store_true",
        help="print the PEM public key that checks this operator's records (from "
        "--provenance-key-file or --webhook-key) and exit; give it to `kubectl aideploy "
        "verify --public-key`",
    )
    return parser.parse_args(argv)


def _add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """Logging, high availability, probes, records and metrics."""
    parser.add_argument("--verbose", action="store_true", help="log at DEBUG")
    parser.add_argument(
        "--log-format",
        choices=["plain", "full", "json"],
        default="plain",
        help="plain for people, json for log collectors",
    )
    parser.add_argument(
        "--peering",
        default=None,
        help="kopf peering object name for high availability (one active replica); "
        "default: standalone",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=_peering_lifetime,
        default=DEFAULT_PEERING_LIFETIME,
        metavar="SECONDS",
        help="how long a replica's keep-alive counts with --peering: a standby takes over "
        "at most this long after the active replica died without exiting (kopf renews "
        "keep-alives 5-10 s before they expire, at most once a second); at least "
        f"{MIN_PEERING_LIFETIME}, default {DEFAULT_PEERING_LIFETIME} (kopf's)",
    )
    parser.add_argument(
        "--liveness",
        default=None,
        help="serve kopf's health endpoint, e.g. http://0.0.0.0:8080/healthz",
    )
    defaults = OperatorConfig.from_env()
    parser.add_argument(
        "--probe-base-url",
        default=defaults.probe_base_url,
        help="base URL for probes that name none, instead of the stable Service; "
        "{namespace}, {service} and {port} are filled in, e.g. a kubectl proxy's "
        "http://127.0.0.1:8001/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy "
        "(env AIDEPLOY_PROBE_BASE_URL)",
    )
    parser.add_argument(
        "--probe-preview-url",
        default=defaults.probe_preview_url,
        help="base URL for probes of a blue-green candidate, instead of the preview Service; "
        "the same placeholders (env AIDEPLOY_PROBE_PREVIEW_URL)",
    )
    parser.add_argument(
        "--cluster-domain",
        default=defaults.cluster_domain,
        help="DNS domain of Services, for the probes' default URL (env AIDEPLOY_CLUSTER_DOMAIN)",
    )
    parser.add_argument(
        "--record-retention-days",
        type=int,
        default=defaults.record_retention_days,
        help="how long records are to be kept (retainUntil); default 3653, ten years "
        "(env AIDEPLOY_RECORD_RETENTION_DAYS)",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="kopf peering priority: the live replica with the highest works, the others "
        "stand by; default with --peering: the oldest process wins (equal priorities would "
        "pause every replica)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.metrics_port,
        help="serve Prometheus metrics on this port at /metrics (env AIDEPLOY_METRICS_PORT); "
        "default: off",
    )


def _add_notification_args(group: argparse._ArgumentGroup) -> None:
    defaults = OperatorConfig.from_env()
    group.add_argument(
        "--cluster-name",
        default=defaults.cluster_name,
        help="this cluster's name in every notification's subject (env AIDEPLOY_CLUSTER_NAME)",
    )
    group.add_argument(
        "--default-notifier",
        metavar="NAMESPACE/NAME",
        default=defaults.default_notifier,
        help="an AIDeploymentNotifier that also reports on every watched namespace's "
        "AIDeployments that no notifier of their own selects (env AIDEPLOY_DEFAULT_NOTIFIER)",
    )
    group.add_argument(
        "--notify-interval",
        type=_notify_interval,
        default=defaults.notify_interval,
        metavar="SECONDS",
        help="how often notifiers are looked for and sinks served; default 2 "
        "(env AIDEPLOY_NOTIFY_INTERVAL)",
    )


def _notify_interval(text: str) -> float:
    try:
        return notify_interval(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _peering_lifetime(text: str) -> int:
    """kopf renews a keep-alive once a second at most: under a few seconds of lifetime, a
    slow keep-alive write would let a live active replica lapse and a standby work beside
    it."""
    try:
        seconds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if seconds < MIN_PEERING_LIFETIME:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_PEERING_LIFETIME} seconds")
    return seconds


def _add_approval_args(parser: argparse.ArgumentParser) -> None:
    defaults = OperatorConfig.from_env()
    parser.add_argument(
        "--approvers-config",
        metavar="FILE",
        default=defaults.approvers_config,
        help="YAML mapping approval roles to users and groups, and the webhook's other rules "
        "(env AIDEPLOY_APPROVERS_CONFIG); without it nobody may approve through the webhook",
    )
    parser.add_argument(
        "--adopt-unsigned-releases",
        action="store_true",
        help="once, when upgrading from a version that did not sign releases: sign the "
        "unsigned releases found in status instead of setting them aside",
    )
    parser.add_argument(
        "--require-authenticated-approvals",
        action="store_true",
        help="count only approvals the admission webhook vouched for (also settable in the "
        "approvers config)",
    )


def _add_webhook_args(webhook: argparse._ArgumentGroup) -> None:
    webhook.add_argument(
        "--webhook-port",
        type=int,
        default=None,
        help="serve the admission webhook over TLS on this port",
    )
    webhook.add_argument("--webhook-addr", default="0.0.0.0", help="address to listen on")
    webhook.add_argument(
        "--webhook-cert",
        metavar="FILE",
        default=None,
        help="PEM serving certificate (with --webhook-key)",
    )
    webhook.add_argument(
        "--webhook-key",
        metavar="FILE",
        default=None,
        help="PEM private key of the serving certificate",
    )
    webhook.add_argument(
        "--provenance-key-file",
        metavar="FILE",
        default=None,
        help="secret that signs provenance annotations (default: derived from --webhook-key); "
        "replicas of one operator must share it",
    )
    webhook.add_argument(
        "--webhook-host",
        default=None,
        help="host name or IP the apiserver uses to reach the webhook (managed mode)",
    )
    webhook.add_argument(
        "--webhook-managed",
        metavar="NAME",
        default=None,
        help="let the operator create the MutatingWebhookConfiguration NAME itself, pointing "
        "at --webhook-host (development clusters; the Helm chart ships its own)",
    )


def started_id() -> str:
    return f"{time.time_ns() // 1_000_000}"


def _print_record_public_key(args: argparse.Namespace) -> int:
    try:
        secret = load_key(args.provenance_key_file, args.webhook_key)
    except OSError as error:
        print(f"aideploy-operator: cannot read the key: {error}", file=sys.stderr)
        return 2
    if secret is None:
        print(
            "aideploy-operator: no key to derive the record signing key from: give "
            "--provenance-key-file (or --webhook-key), as the running operator has it",
            file=sys.stderr,
        )
        return 2
    signer = RecordSigner.from_secret(secret)
    print(f"# {signer.key_id}\n{signer.public_key_pem()}", end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_record_public_key:
        return _print_record_public_key(args)
    _configure_logging(args)
    api = _preflight(args)
    if isinstance(api, int):
        return api
    if args.install_crds:
        _install_crds(api, Path(args.install_crds))
    priority, identity = _peering(args)
    configure(_operator_config(args, priority, identity))
    import aideploy.handlers  # registers the handlers

    if args.webhook_port is not None:
        if not (args.webhook_key or args.provenance_key_file):
            print(
                "aideploy-operator: the admission webhook signs provenance with a key: give "
                "--webhook-cert/--webhook-key (or --provenance-key-file)",
                file=sys.stderr,
            )
            return 2
        aideploy.handlers.register_webhook()

    kopf.run(
        clusterwide=not args.namespace,
        namespaces=list(args.namespace),
        standalone=args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness,
        priority=priority,
        identity=identity,  # type: ignore[arg-type]  # kopf types it as a NewType of str
    )
    return 0


def _preflight(args: argparse.Namespace) -> ApiClient | int:
    """What can be checked before kopf starts: the probe URL templates, that a cluster is
    configured, and that its apiserver answers (waited for). An exit code when not."""
    for flag, template in (
        ("--probe-base-url", args.probe_base_url),
        ("--probe-preview-url", args.probe_preview_url),
    ):
        unknown = unknown_placeholders(template or "")
        if unknown:
            print(
                f"aideploy-operator: {flag} has {', '.join(unknown)}, which is not one of "
                f"{', '.join(PLACEHOLDERS)}",
                file=sys.stderr,
            )
            return 2
    try:
        api = preflight.api_client()
        version = preflight.wait_for_apiserver(api)
    except preflight.NoClusterError as error:
        print(f"aideploy-operator: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aideploy-operator: stopped before the apiserver answered", file=sys.stderr)
        return 130
    logging.getLogger("aideploy").info("apiserver %s (%s)", api.configuration.host, version)
    return api


def _configure_logging(args: argparse.Namespace) -> None:
    formats = {
        "plain": kopf.LogFormat.PLAIN,
        "full": kopf.LogFormat.FULL,
        "json": kopf.LogFormat.JSON,
    }
    kopf.configure(verbose=args.verbose, log_format=formats[args.log_format])
    if not args.verbose:
        # kopf logs every watch event at INFO in some paths; keep INFO for our decisions.
        logging.getLogger("kopf").setLevel(logging.WARNING)
        # urllib3 says "Retrying (Retry(total=2...))" per lost connection; the operator says
        # once, in words, that the apiserver does not answer (kube/preflight.py, controller).
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def _install_crds(api: ApiClient, directory: Path) -> None:
    from aideploy.kube.crds import apply_crds
    from aideploy.kube.rest import Rest

    installed = apply_crds(Rest(api), directory)
    logging.getLogger("aideploy").info("CRDs installed: %s", ", ".join(installed))


def _peering(args: argparse.Namespace) -> tuple[int | None, str | None]:
    """The peering priority and identity of this process (both None when standalone)."""
    priority: int | None = args.priority
    if priority is None and args.peering is not None:
        # Oldest wins: a newly started replica never outranks the active one.
        started_ms = time.time_ns() // 1_000_000
        priority = -(started_ms * 1000 + random.SystemRandom().randint(0, 999))
    # Our own peering identity, so the per-object workers can ask kopf's question too.
    identity = (
        os.environ.get("POD_ID") or f"{socket.gethostname()}/{os.getpid()}/{started_id()}"
        if args.peering is not None
        else None
    )
    return priority, identity


def _operator_config(
    args: argparse.Namespace, priority: int | None, identity: str | None
) -> OperatorConfig:
    return OperatorConfig(
        namespaces=list(args.namespace),
        probe_base_url=args.probe_base_url,
        probe_preview_url=args.probe_preview_url,
        cluster_domain=args.cluster_domain,
        record_retention_days=args.record_retention_days,
        metrics_port=args.metrics_port,
        approvers_config=args.approvers_config,
        require_authenticated_approvals=args.require_authenticated_approvals,
        adopt_unsigned_releases=args.adopt_unsigned_releases,
        webhook_port=args.webhook_port,
        webhook_addr=args.webhook_addr,
        webhook_host=args.webhook_host,
        webhook_key=args.webhook_key,
        webhook_cert=args.webhook_cert,
        webhook_managed=args.webhook_managed,
        provenance_key_file=args.provenance_key_file,
        peering_name=args.peering,
        peering_priority=priority or 0,
        peering_lifetime=args.peering_lifetime,
        identity=identity,
        cluster_name=args.cluster_name,
        default_notifier=args.default_notifier,
        notify_interval=args.notify_interval,
    )


if __name__ == "__main__":
    sys.exit(main())
