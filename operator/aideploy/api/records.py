"""The record types of PROC-AI-DEPLOY-001 section 8 and the names they are filed under.

The procedure numbers four records (REC-AI-DEPLOY-001 to -004). Closing a deployment is a
record point of the operator's lifecycle but has no number in the procedure, so it gets an
id that cannot be mistaken for a future numbered record: REC-AI-DEPLOY-CLOSE; so does the
EU database registration of step 18, REC-AI-DEPLOY-REG. The retrospective of step 20 is a
second record under REC-AI-DEPLOY-CLOSE: records are immutable, so it is appended to the
chain rather than written into the closure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class RecordType(StrEnum):
    PLAN = "plan"
    APPROVAL = "approval"
    DEPLOYMENT_LOG = "deployment-log"
    ROLLBACK = "rollback"
    CLOSURE = "closure"
    REGISTRATION = "registration"
    RETROSPECTIVE = "retrospective"


RECORD_IDS: Final[dict[RecordType, str]] = {
    RecordType.PLAN: "REC-AI-DEPLOY-001",
    RecordType.APPROVAL: "REC-AI-DEPLOY-002",
    RecordType.DEPLOYMENT_LOG: "REC-AI-DEPLOY-003",
    RecordType.ROLLBACK: "REC-AI-DEPLOY-004",
    RecordType.CLOSURE: "REC-AI-DEPLOY-CLOSE",
    # Step 18: the EU database registration id, recorded after go-live.
    RecordType.REGISTRATION: "REC-AI-DEPLOY-REG",
    # Step 20: the retrospective completes the closure (its record cannot be edited), so it
    # is filed under the closure's id.
    RecordType.RETROSPECTIVE: "REC-AI-DEPLOY-CLOSE",
}

# Section 8.1: every record is kept 10 years. 3653 days covers the leap days of any decade.
DEFAULT_RETENTION: Final = timedelta(days=3653)

LABEL_RECORD_TYPE: Final = "aideploy.io/record-type"

HASH_PATTERN: Final = r"^sha256:[0-9a-f]{64}$"
PREVIOUS_HASH_PATTERN: Final = r"^(sha256:[0-9a-f]{64})?$"


def _record_id(value: str) -> str:
    if value not in RECORD_IDS.values():
        known = ", ".join(dict.fromkeys(RECORD_IDS.values()))
        raise ValueError(f"{value!r} is not one of {known}")
    return value


def _time(what: str) -> Any:
    return Field(description=f"{what}; RFC 3339 time, UTC")


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class RecordDeployment(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=253, description="Its name.")]
    uid: Annotated[
        str, Field(min_length=1, description="Its uid: tells a re-created namesake apart.")
    ]
    generation: Annotated[
        int, Field(ge=1, description="The spec generation the record was written for.")
    ]
    spec_digest: Annotated[
        str,
        Field(pattern=HASH_PATTERN, description="The digest of that spec, which approvals name."),
    ]


class RecordSignature(_Wire):
    """The operator's Ed25519 signature over the record's hash (records/signature.py)."""

    key_id: Annotated[
        str,
        Field(
            pattern=r"^ed25519:[0-9a-f]{16}$",
            description="ed25519:<first 16 hex of the SHA-256 of the raw public key>; "
            "`kubectl aideploy verify --public-key` checks it against the operator's key",
        ),
    ]
    public_key: Annotated[
        str, Field(description="base64 of the raw 32-byte public key that made the signature")
    ]
    value: Annotated[
        str, Field(description="base64 of the signature over 'aideploy record v1\\0' + hash")
    ]


class RecordSpec(_Wire):
    """AIDeploymentRecord.spec: the model the record CRD's schema is generated from (the
    records code writes plain dicts, records/chain.py; this says what they must look like)."""

    model_config = ConfigDict(
        json_schema_extra={
            "description": "Immutable once written (by convention: Kubernetes 1.20 has no CEL "
            "transition rules; the admission webhook enforces it). Any edit is detected by "
            "`kubectl aideploy verify`."
        }
    )

    record_id: Annotated[
        str,
        AfterValidator(_record_id),
        Field(
            json_schema_extra={"enum": list(dict.fromkeys(RECORD_IDS.values()))},
            description="The procedure's record number (section 8), e.g. REC-AI-DEPLOY-002.",
        ),
    ]
    type: Annotated[RecordType, Field(description="What the record documents.")]
    deployment: Annotated[
        RecordDeployment,
        Field(
            description="The AIDeployment this record documents (not an owner: records outlive it)."
        ),
    ]
    sequence: Annotated[
        int, Field(ge=1, description="Its place in the AIDeployment's chain, from 1, no gaps.")
    ]
    created_at: Annotated[datetime, _time("When the record was written")]
    retain_until: Annotated[datetime, _time("Until when the record must be kept")]
    content: Annotated[dict[str, Any], Field(description="What the record says; by type.")]
    # nullable only so that "" (the first record's link) passes: the apiserver's OpenAPI
    # validator takes a string's zero value for null otherwise.
    previous_hash: Annotated[
        str,
        Field(
            pattern=PREVIOUS_HASH_PATTERN,
            description="hash of the previous record of the same AIDeployment; empty for the first",
            json_schema_extra={"nullable": True},
        ),
    ]
    hash: Annotated[
        str,
        Field(
            pattern=HASH_PATTERN,
            description="sha256 of the canonical JSON of every other field of this spec "
            "but signature",
        ),
    ]
    signature: Annotated[
        RecordSignature | None,
        Field(
            description="The operator's signature over hash; absent when the operator had no "
            "key (records written then cannot be authenticated)"
        ),
    ] = None
