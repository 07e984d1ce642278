"""The record types of PROC-AI-DEPLOY-001 section 8 and the names they are filed under.

The procedure numbers four records (REC-AI-DEPLOY-001 to -004). Closing a deployment is a
record point of the operator's lifecycle but has no number in the procedure, so it gets an
id that cannot be mistaken for a future numbered record: REC-AI-DEPLOY-CLOSE.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Final


class RecordType(StrEnum):
    PLAN = "plan"
    APPROVAL = "approval"
    DEPLOYMENT_LOG = "deployment-log"
    ROLLBACK = "rollback"
    CLOSURE = "closure"


RECORD_IDS: Final[dict[RecordType, str]] = {
    RecordType.PLAN: "REC-AI-DEPLOY-001",
    RecordType.APPROVAL: "REC-AI-DEPLOY-002",
    RecordType.DEPLOYMENT_LOG: "REC-AI-DEPLOY-003",
    RecordType.ROLLBACK: "REC-AI-DEPLOY-004",
    RecordType.CLOSURE: "REC-AI-DEPLOY-CLOSE",
}

# Section 8.1: every record is kept 10 years. 3653 days covers the leap days of any decade.
DEFAULT_RETENTION: Final = timedelta(days=3653)

LABEL_RECORD_TYPE: Final = "aideploy.io/record-type"

HASH_PATTERN: Final = r"^sha256:[0-9a-f]{64}$"
PREVIOUS_HASH_PATTERN: Final = r"^(sha256:[0-9a-f]{64})?$"
