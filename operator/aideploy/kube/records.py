"""Writing and listing AIDeploymentRecords (blocking; run in threads).

Writing is exactly once per event: the record's name is deterministic, so a second write
of the same event (after a restart, or a retry) meets AlreadyExists and gets the first
record back. The caller continues from the returned record's hash, never from the one it
computed, because the stored record is the evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aideploy.api.constants import GROUP, LABEL_DEPLOYMENT, RECORD_PLURAL, VERSION
from aideploy.kube.rest import ApiError, Rest
from aideploy.records.chain import label_value

logger = logging.getLogger(__name__)

PAGE_SIZE = 500


def record_collection(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{RECORD_PLURAL}"


class RecordConflictError(Exception):
    """A record name is taken by a record of another object or event: evidence is never
    overwritten, and another object's record must not be taken for ours."""


def write_record(rest: Rest, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Create the record; if a record of that name exists already, return it unchanged.

    Never updates an existing record: records are immutable evidence.
    """
    metadata = manifest["metadata"]
    collection = record_collection(metadata["namespace"])
    try:
        created = rest.request("POST", collection, body=dict(manifest))
    except ApiError as error:
        if error.status != 409:
            raise
        existing = rest.request("GET", f"{collection}/{metadata['name']}")
        if existing is None:
            raise  # AlreadyExists, then gone: someone deletes records; do not paper over it
        existing_spec = existing.get("spec") or {}
        ours = manifest["spec"]["deployment"]
        theirs = existing_spec.get("deployment") or {}
        if (theirs.get("uid"), existing_spec.get("type")) != (
            ours["uid"],
            manifest["spec"]["type"],
        ):
            raise RecordConflictError(
                f"record {metadata['name']} already exists for another object or event "
                f"(uid {theirs.get('uid')}, type {existing_spec.get('type')}); not overwriting it"
            ) from error
        existing_hash = existing_spec.get("hash")
        if existing_hash != manifest["spec"]["hash"]:
            logger.info(
                "record %s was written before (hash %s); keeping it",
                metadata["name"],
                existing_hash,
            )
        return existing
    assert created is not None
    return created


def list_records(
    rest: Rest,
    namespace: str,
    deployment_name: str | None = None,
    uid: str | None = None,
    *,
    use_labels: bool = True,
    from_cache: bool = False,
) -> list[dict[str, Any]]:
    """The records in `namespace`, optionally of one AIDeployment (by name and/or uid),
    sorted by sequence.

    Filtering is done on `spec.deployment`, which the hash covers; the label only narrows
    the list the apiserver sends. Pass `use_labels=False` when auditing, so that a record
    whose label was changed is still found (and checked).

    `from_cache`: from the apiserver's watch cache (resourceVersion 0), which may lag the
    store by the last few writes, instead of a quorum read of every record of the
    namespace from etcd (17 ms with 80 records in the namespace, against under 1 ms;
    the cost of the quorum read grows with the namespace's history). Only for callers
    that check what they get (aideploy.carry_out: the chain's head named in status).
    """
    query: list[tuple[str, str]] = [("resourceVersion", "0")] if from_cache else []
    if deployment_name is not None and use_labels:
        query.append(("labelSelector", f"{LABEL_DEPLOYMENT}={label_value(deployment_name)}"))
    page_size = None if from_cache else PAGE_SIZE
    items, _ = rest.list_all(record_collection(namespace), query, page_size)
    return records_of(items, deployment_name, uid)


def records_of(
    items: list[dict[str, Any]], deployment_name: str | None, uid: str | None
) -> list[dict[str, Any]]:
    """Those of `items` that belong to the AIDeployment (by name and/or uid, as the hash
    covers them), sorted by sequence."""

    def wanted(record: dict[str, Any]) -> bool:
        deployment = (record.get("spec") or {}).get("deployment") or {}
        if deployment_name is not None and deployment.get("name") != deployment_name:
            return False
        return uid is None or deployment.get("uid") == uid

    def order(record: dict[str, Any]) -> tuple[int, str]:
        sequence = (record.get("spec") or {}).get("sequence")
        return (sequence if isinstance(sequence, int) else 0, record["metadata"]["name"])

    return sorted(filter(wanted, items), key=order)
