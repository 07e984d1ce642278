"""The procedure's records (PROC-AI-DEPLOY-001 section 8) as a hash chain of
AIDeploymentRecord objects: pure building and checking here, I/O in `store`."""

from aideploy.records.chain import (
    ChainLink,
    DeploymentRef,
    build_record,
    find_record,
    label_value,
    next_link,
    record_hash,
    record_name,
)
from aideploy.records.content import (
    approval_content,
    closure_content,
    deployment_log_content,
    plan_content,
    probe_results,
    rollback_content,
)
from aideploy.records.types import DEFAULT_RETENTION, LABEL_RECORD_TYPE, RECORD_IDS, RecordType
from aideploy.records.verify import BreakKind, ChainBreak, verify_chain, verify_chains

__all__ = [
    "DEFAULT_RETENTION",
    "LABEL_RECORD_TYPE",
    "RECORD_IDS",
    "BreakKind",
    "ChainBreak",
    "ChainLink",
    "DeploymentRef",
    "RecordType",
    "approval_content",
    "build_record",
    "closure_content",
    "deployment_log_content",
    "find_record",
    "label_value",
    "next_link",
    "plan_content",
    "probe_results",
    "record_hash",
    "record_name",
    "rollback_content",
    "verify_chain",
    "verify_chains",
]
