"""The procedure's records (PROC-AI-DEPLOY-001 section 8) as a hash chain of
AIDeploymentRecord objects: pure building and checking. What a record says is decided in
`aideploy.logic.record_content`; reading and writing them is `aideploy.kube.records`."""

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
from aideploy.records.verify import BreakKind, ChainBreak, verify_chain, verify_chains

__all__ = [
    "BreakKind",
    "ChainBreak",
    "ChainLink",
    "DeploymentRef",
    "build_record",
    "find_record",
    "label_value",
    "next_link",
    "record_hash",
    "record_name",
    "verify_chain",
    "verify_chains",
]
