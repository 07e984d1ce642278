"""`kubectl aideploy`: approve, inspect and audit AIDeployments.

Installed as the console script `kubectl-aideploy`, so kubectl finds it as a plugin; also
`python -m aideploy.cli`. Exit status: 0 done, 1 failed, refused (nothing to roll back,
not Held, a digest that does not match) or a broken record chain, 2 the command line was
wrong, 130 interrupted, 141 the reader of the output went away (`| head`). Every failure
is one line on stderr that says what to do; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aideploy.api.constants import CHECKLIST_ITEMS, Phase, Role
from aideploy.cli import (
    actions,
    checklist,
    evidence,
    inventory,
    listing,
    postdeploy,
    undo,
    views,
)
from aideploy.cli.session import CliError, Session, UsageError
from aideploy.cli.terminal import printable
from aideploy.cli.verify import load_trusted_keys, verify

PROG = "kubectl aideploy"
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool its pipe closed on


def _connection_options(parser: argparse.ArgumentParser, default: object) -> None:
    """-n and --kubeconfig, accepted before or after the command, as kubectl does."""
    parser.add_argument(
        "-n",
        "--namespace",
        default=default,
        help="namespace (default: the kubeconfig context's, else 'default')",
    )
    parser.add_argument(
        "--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Approve, inspect and audit AIDeployments (PROC-AI-DEPLOY-001)."
    )
    _connection_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help_text, description=help_text)

    status = command(
        "status",
        "the gate, releases, probes and warnings as a tree; --watch follows every change",
    )
    status.add_argument("name", metavar="NAME")
    status.add_argument("-o", "--output", choices=["text", "json"], default="text")
    status.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="draw again on every change of the object, its Deployments and Events (Ctrl-C ends)",
    )
    status.add_argument(
        "--until",
        metavar="PHASE",
        choices=[p.value for p in Phase],
        help="with --watch: stop (exit 0) once the phase is PHASE",
    )

    listing = command("list", "every AIDeployment: version, serving, phase, what blocks it")
    listing.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace, not only -n's"
    )

    approve = command("approve", "approve the current spec in a role")
    approve.add_argument("name", metavar="NAME")
    approve.add_argument(
        "--role", required=True, help="one of: " + ", ".join(r.value for r in Role)
    )
    approve.add_argument("--comment", default="", help="why, or what was reviewed")
    approve.add_argument(
        "--digest",
        help="the spec digest you reviewed: refuse if the spec has changed since",
    )
    approve.add_argument("--by", help="who approves (default: the kubeconfig's user)")

    check = command(
        "check",
        "record CHK-AI-DEPLOY-001 checklist items: one or several with --evidence or --na, "
        "or a file of them with -f; all in one write, nothing written if any would not count",
    )
    check.add_argument("name", metavar="NAME")
    check.add_argument(
        "items", metavar="ITEM", nargs="*", help="e.g. 2.1; of " + ", ".join(CHECKLIST_ITEMS)
    )
    evidence = check.add_mutually_exclusive_group()
    evidence.add_argument("--evidence", help="where the evidence is (URL, ticket, document)")
    evidence.add_argument("--na", metavar="REASON", help="not applicable, and why")
    evidence.add_argument(
        "-f",
        "--filename",
        metavar="FILE",
        help="a YAML map of item: 'yes <evidence>' or 'n/a <reason>' (- for stdin)",
    )

    go_live = command("go-live", "decide on an AMBER verification")
    go_live.add_argument("name", metavar="NAME")
    go_live.add_argument("decision", choices=["proceed", "rollback"])

    rollback = command("rollback", "roll back to the last good release")
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument("--reason", required=True, help="why (kept in the rollback record)")

    abort_command = command(
        "abort", "stop the rollout under way: the candidate goes, the serving release stays"
    )
    abort_command.add_argument("name", metavar="NAME")
    abort_command.add_argument("--reason", required=True, help="why (kept in the rollback record)")

    undo_command = command(
        "undo",
        "ask for the last good release again: its version and template back in the spec, "
        "through the gate, with the approvals it needs",
    )
    undo_command.add_argument("name", metavar="NAME")

    promote = command("promote", "end the canary pause under way (or pass an AMBER analysis)")
    promote.add_argument("name", metavar="NAME")

    history = command("history", "the records of an AIDeployment")
    history.add_argument("name", metavar="NAME")
    history.add_argument("-o", "--output", choices=["text", "json"], default="text")

    verify = command(
        "verify", "recompute the record chains and check their signatures; exit 1 on any break"
    )
    verify.add_argument("name", metavar="NAME", nargs="?")
    verify.add_argument(
        "--public-key",
        metavar="KEY",
        action="append",
        default=[],
        help="the operator's record public key: a PEM file (aideploy-operator "
        "--print-record-public-key) or the base64 key from its start log; repeatable, for "
        "keys used before a rotation. Without it, signatures are checked only against the "
        "key each record names",
    )

    _after_go_live_commands(command)

    digest = command("digest", "the spec digest of a manifest, as the operator computes it")
    digest.add_argument("-f", "--filename", required=True, help="manifest file, or - for stdin")
    return parser


def _after_go_live_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """register, close, evidence and inventory: the post-deployment steps 17, 18, 20."""
    register = command(
        "register",
        "record the EU database registration id after go-live (high-risk production)",
    )
    register.add_argument("name", metavar="NAME")
    register.add_argument("--id", required=True, help="the id the EU database gave")
    register.add_argument("--by", help="who records it (default: the kubeconfig's user)")

    close_command = command(
        "close", "add the deployment retrospective to the closure record (step 20)"
    )
    close_command.add_argument("name", metavar="NAME")
    close_command.add_argument(
        "--retrospective", required=True, help="where the retrospective is (URL, document)"
    )
    close_command.add_argument("--lessons", default="", help="the lessons learned, in short")
    close_command.add_argument("--by", help="who closes (default: the kubeconfig's user)")

    _evidence_commands(
        command("evidence", "export the records as a signed file; verify one offline")
    )
    inventory_command = command(
        "inventory",
        "the AI systems: where, at which risk, which version since when, approved by whom, "
        "registered or not (deleted ones too, from their records)",
    )
    inventory_command.add_argument(
        "-o", "--output", choices=["table", "json", "csv"], default="table"
    )
    inventory_command.add_argument(
        "--namespace-only",
        action="store_true",
        help="only -n's namespace (default: every namespace you can read)",
    )


def _evidence_commands(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, argparse.SUPPRESS)
    actions_ = parser.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")
    export = actions_.add_parser(
        "export",
        parents=[common],
        help="write the record chain(s), their hashes and head, Events and object, signed",
    )
    export.add_argument("name", metavar="NAME", nargs="?")
    export.add_argument("--all", action="store_true", help="every chain in the namespace")
    export.add_argument("-o", "--output", metavar="FILE", help="file, or - for stdout")
    export.add_argument(
        "--s3",
        metavar="URL",
        help="also (or instead of -o) upload to an S3-compatible bucket, s3://BUCKET/KEY; "
        "credentials and region from the standard AWS chain (AWS_* variables, ~/.aws, a role)",
    )
    export.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="an S3-compatible server's URL (default: AWS S3 of the configured region)",
    )
    export.add_argument(
        "--s3-object-lock",
        action="store_true",
        help="write the object under Object Lock, COMPLIANCE mode, until the newest "
        "record's retainUntil (the bucket must have Object Lock enabled)",
    )
    export.add_argument(
        "--signing-key",
        metavar="FILE",
        help="the operator's provenance key file (as mounted in its pod), whose record key signs",
    )
    check = actions_.add_parser(
        "verify",
        parents=[common],
        help="check a bundle offline: hashes, chain, signatures, retention (-n and "
        "--kubeconfig are ignored: no cluster is read)",
    )
    check.add_argument("file", metavar="FILE", help="the bundle, or - for stdin")
    check.add_argument(
        "--key",
        metavar="PUB",
        action="append",
        default=[],
        help="the operator's public key: a PEM file or the base64 key",
    )
    check.add_argument(
        "--min-retention-days",
        type=int,
        default=3653,
        help="each record must be kept at least this long (default: 10 years, section 8.1)",
    )
    key = actions_.add_parser(
        "public-key", parents=[common], help="print the public key that checks bundles"
    )
    key.add_argument("--signing-key", metavar="FILE", help="the operator's provenance key file")


def _evidence(args: argparse.Namespace) -> int | None:
    """The evidence actions that need no cluster; None for export, which does."""
    if args.evidence_command == "verify":
        return evidence.verify(args.file, args.key, args.min_retention_days, evidence.utc_now())
    if args.evidence_command == "public-key":
        return evidence.public_key(args.signing_key)
    if bool(args.name) == bool(args.all):
        raise UsageError("give NAME or --all (every chain in the namespace), one of them")
    if args.output is None and args.s3 is None:
        raise UsageError("give -o FILE (- for stdout), --s3 s3://BUCKET/KEY, or both")
    if args.s3 is None and (args.s3_endpoint is not None or args.s3_object_lock):
        raise UsageError("--s3-endpoint and --s3-object-lock go with --s3 s3://BUCKET/KEY")
    args.s3_export = None
    if args.s3 is not None:
        # Imported for --s3 only: boto3 would add ~70 ms to every other command.
        from aideploy.cli import evidence_s3

        args.s3_export = evidence.S3Export(
            evidence_s3.parse_s3_url(args.s3),
            evidence_s3.check_endpoint(args.s3_endpoint),
            args.s3_object_lock,
        )
    args.signer = evidence.load_signer(args.signing_key)
    return None


def _check_entries(args: argparse.Namespace) -> dict[str, str]:
    """The items to record, from the command line or the file: read and named before
    connecting, since a wrong item or file is known without the cluster."""
    if args.filename is not None:
        if args.items:
            raise UsageError("give the items on the command line or in -f FILE, not both")
        return checklist.entries_from_file(args.filename)
    return checklist.entries_from_arguments(args.items, args.evidence, args.na)


def _run(args: argparse.Namespace) -> int:
    if args.command == "digest":
        return actions.digest(args.filename)
    # Refuse a wrong command line before connecting: the answer does not depend on the cluster.
    if args.command == "register":
        postdeploy.check_registration_id(args.id)
    if args.command == "approve":
        actions.check_role(args.role)
        if args.digest is not None:
            actions.check_digest_syntax(args.digest)
    if args.command == "check":
        args.entries = _check_entries(args)
    if args.command == "evidence":
        done = _evidence(args)
        if done is not None:
            return done
    if args.command == "status" and args.output == "json" and (args.watch or args.until):
        raise UsageError("--watch and --until draw the tree: use them without -o json")
    trusted = load_trusted_keys(args.public_key) if args.command == "verify" else []
    session = Session(kubeconfig=args.kubeconfig, namespace=args.namespace)
    try:
        return _dispatch(session, args, trusted)
    finally:
        session.close()


def _dispatch(
    session: Session, args: argparse.Namespace, trusted: Sequence[Ed25519PublicKey]
) -> int:
    if args.command == "list":
        return listing.list_deployments(session, args.all_namespaces)
    if args.command == "inventory":
        return inventory.inventory(session, args.output, args.namespace_only)
    if args.command == "evidence":
        return evidence.export(
            session, args.name, args.output, args.signer, evidence.utc_now(), args.s3_export
        )
    name: str = args.name
    if args.command == "status":
        return views.status(session, name, args.output, args.watch, args.until)
    if args.command == "approve":
        return actions.approve(session, name, args.role, args.comment, args.digest, args.by)
    if args.command == "check":
        return checklist.check(session, name, args.entries)
    if args.command == "go-live":
        return actions.go_live(session, name, args.decision)
    if args.command == "rollback":
        return actions.rollback(session, name, args.reason)
    if args.command == "abort":
        return undo.abort(session, name, args.reason)
    if args.command == "undo":
        return undo.undo(session, name)
    if args.command == "promote":
        return actions.promote(session, name)
    if args.command == "register":
        return postdeploy.register(session, name, args.id, args.by)
    if args.command == "close":
        return postdeploy.close(session, name, args.retrospective, args.lessons, args.by)
    if args.command == "history":
        return views.history(session, name, args.output)
    if args.command == "verify":
        return verify(session, args.name, trusted)
    raise AssertionError(f"unhandled command {args.command}")


def _stdout_gone() -> int:
    """The reader of our output went away (`| head`): stop quietly, as a tool killed by
    SIGPIPE would, with its exit status 141 (128 + SIGPIPE). Output still buffered would
    fail again when the interpreter flushes it at exit, so stdout is pointed at /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (a test's capture): nothing will be flushed to a pipe
    return EXIT_BROKEN_PIPE


def _report(message: str) -> None:
    """The one line on stderr; when stderr is gone too, there is no one left to tell."""
    with contextlib.suppress(BrokenPipeError, ValueError):
        print(f"error: {printable(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        code = _run(args)
        sys.stdout.flush()  # here, where a closed pipe can still be answered, not at exit
        return code
    except CliError as error:
        _report(str(error))
        return error.exit_code
    except BrokenPipeError:
        return _stdout_gone()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
