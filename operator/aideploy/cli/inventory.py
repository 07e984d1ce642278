"""`kubectl aideploy inventory`: the AI System Inventory (PROC-AI-DEPLOY-001 step 17) in one
command, for every namespace the user can read: which systems run where, at which risk,
which version since when, approved by whom, registered or not, deleted ones included
(rebuilt from their records, which outlive them). Table, `-o json` or `-o csv`."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from typing import Any

from aideploy.api.constants import GROUP, PLURAL, RECORD_PLURAL, VERSION
from aideploy.cli.actions import warn
from aideploy.cli.session import CliError, Session
from aideploy.cli.terminal import printable
from aideploy.cli.views import table
from aideploy.logic.inventory import HEADERS, InventoryRow, inventory_rows

INVENTORY_HINT = (
    "the inventory needs RBAC permission to list aideployments and aideploymentrecords "
    "(aideploy.io)"
)
PAGE_SIZE = 500


def _getter(
    session: Session, path: str, query: list[tuple[str, str]]
) -> Callable[[], dict[str, Any] | None]:
    return lambda: session.rest.request("GET", path, query=query)


def _list(session: Session, plural: str, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        query = [("limit", str(PAGE_SIZE))] + ([("continue", token)] if token else [])
        page = session.call("list", plural, None, INVENTORY_HINT, _getter(session, path, query))
        items.extend((page or {}).get("items") or [])
        token = ((page or {}).get("metadata") or {}).get("continue") or ""
        if not token:
            return items


def _read(
    session: Session, namespace_only: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every namespace when the user may list them all, else -n's (with a warning)."""
    if not namespace_only:
        root = f"/apis/{GROUP}/{VERSION}"
        try:
            return (
                _list(session, PLURAL, f"{root}/{PLURAL}"),
                _list(session, RECORD_PLURAL, f"{root}/{RECORD_PLURAL}"),
            )
        except CliError as error:
            if "permission denied" not in str(error):
                raise
            warn(
                f"you may not list across namespaces, so this is namespace {session.namespace} "
                "only (-n NAMESPACE for another)"
            )
    return (
        _list(session, PLURAL, session.collection()),
        _list(session, RECORD_PLURAL, session.collection(RECORD_PLURAL)),
    )


def render(rows: list[InventoryRow], output: str) -> str:
    """The rows as a table, JSON (a list of objects) or CSV (a header line first)."""
    if output == "json":
        return json.dumps([r.to_json() for r in rows], indent=2) + "\n"
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HEADERS)
        writer.writerows(r.cells() for r in rows)
        return buffer.getvalue()
    return "\n".join(table(HEADERS, [[printable(c) for c in r.cells()] for r in rows])) + "\n"


def inventory(session: Session, output: str, namespace_only: bool) -> int:
    objects, records = _read(session, namespace_only)
    rows = inventory_rows(objects, records)
    if not rows and output == "table":
        print("No AI systems found: no aideployments and no records of deleted ones.")
        return 0
    sys.stdout.write(render(rows, output))
    return 0
