"""Names fixed by the API contract (docs/api.md).

Reasons are CamelCase constants so that alerts, dashboards and tests can match on them
without parsing human-readable messages.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

GROUP: Final = "aideploy.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "AIDeployment"
PLURAL: Final = "aideployments"
RECORD_KIND: Final = "AIDeploymentRecord"
RECORD_PLURAL: Final = "aideploymentrecords"

APPROVAL_PREFIX: Final = "approval.aideploy.io/"
CHECKLIST_PREFIX: Final = "checklist.aideploy.io/"
PROVENANCE_PREFIX: Final = "provenance.aideploy.io/"
GO_LIVE_ANNOTATION: Final = "aideploy.io/go-live"
GO_LIVE_PROCEED: Final = "proceed"
GO_LIVE_ROLLBACK: Final = "rollback"
ROLLBACK_ANNOTATION: Final = "aideploy.io/rollback"
PROMOTE_ANNOTATION: Final = "aideploy.io/promote"
#: The EU database registration id, once given (`kubectl aideploy register`): "<id>; by=<who>".
REGISTRATION_ANNOTATION: Final = "aideploy.io/eu-registration"
#: The deployment retrospective (`kubectl aideploy close`), one-shot: a JSON object
#: {"url", "lessons", "by"}, consumed once on record.
RETROSPECTIVE_ANNOTATION: Final = "aideploy.io/retrospective"

# Labels the operator puts on its children. The selector uses only the deployment label,
# because a Deployment's selector is immutable and the model version changes per release.
LABEL_DEPLOYMENT: Final = "aideploy.io/deployment"
LABEL_MODEL: Final = "aideploy.io/model"
LABEL_RELEASE: Final = "aideploy.io/release"
LABEL_MODEL_VERSION: Final = "aideploy.io/model-version"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "aideploy"
ANNOTATION_SPEC_DIGEST: Final = "aideploy.io/spec-digest"

FIELD_MANAGER: Final = "aideploy-operator"


class Phase(StrEnum):
    AWAITING_APPROVAL = "AwaitingApproval"
    #: Approved, but the staging object it promotes from is not verified on this version.
    AWAITING_PROMOTION = "AwaitingPromotion"
    AWAITING_WINDOW = "AwaitingWindow"
    DEPLOYING = "Deploying"
    VERIFYING = "Verifying"
    HELD = "Held"
    MONITORING = "Monitoring"
    SUCCEEDED = "Succeeded"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class ConditionType(StrEnum):
    APPROVED = "Approved"
    CHECKLIST_COMPLETE = "ChecklistComplete"
    COMPLIANCE_VERIFIED = "ComplianceVerified"
    IN_WINDOW = "InWindow"
    DEPLOYED = "Deployed"
    VERIFIED = "Verified"
    HEALTHY = "Healthy"
    ROLLED_BACK = "RolledBack"
    READY = "Ready"
    RELEASES_TRUSTED = "ReleasesTrusted"
    #: False while the apiserver refuses one of the operator's writes (absent until then).
    WRITES_ACCEPTED = "WritesAccepted"
    #: High-risk production after go-live: whether the EU database registration id is known.
    REGISTERED = "Registered"
    #: True once the deployment retrospective is on record (absent until then).
    CLOSED = "Closed"


class Reason(StrEnum):
    """Condition and Event reasons."""

    ALL_APPROVALS_PRESENT = "AllApprovalsPresent"
    APPROVALS_MISSING = "ApprovalsMissing"
    CHECKLIST_COMPLETE = "ChecklistComplete"
    CHECKLIST_INCOMPLETE = "ChecklistIncomplete"
    COMPLIANCE_COMPLETE = "ComplianceComplete"
    COMPLIANCE_NOT_REQUIRED = "ComplianceNotRequired"
    COMPLIANCE_MISSING = "ComplianceFieldsMissing"
    GATE_BLOCKED = "GateBlocked"
    INVALID_SPEC = "InvalidSpec"
    ROLLOUT_NOT_STARTED = "RolloutNotStarted"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    ROLLOUT_COMPLETE = "RolloutComplete"
    WORKLOAD_CONFLICT = "WorkloadConflict"
    WORKLOAD_APPLY_FAILED = "WorkloadApplyFailed"
    RECORD_WRITE_FAILED = "RecordWriteFailed"
    STATUS_WRITE_FAILED = "StatusWriteFailed"
    WRITES_ACCEPTED = "WritesAccepted"
    RELEASE_UNTRUSTED = "ReleaseUntrusted"
    RELEASES_SIGNED = "ReleasesSigned"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    REPLICAS_UNAVAILABLE = "ReplicasUnavailable"
    NO_PROBES_CONFIGURED = "NoProbesConfigured"
    RELEASE_SERVING = "ReleaseServing"
    # Verification and the go-live decision.
    VERIFICATION_IN_PROGRESS = "VerificationInProgress"
    ALL_PROBES_GREEN = "AllProbesGreen"
    PROBES_AMBER = "ProbesAmber"
    PROBES_RED = "ProbesRed"
    AMBER_ACCEPTED = "AmberAccepted"
    GO_LIVE_PROCEED = "GoLiveProceed"
    AWAITING_GO_LIVE = "AwaitingGoLiveDecision"
    VERIFICATION_TIMEOUT = "VerificationTimeout"
    # Rollback triggers and outcomes.
    MANUAL_ROLLBACK = "ManualRollback"
    AMBER_ROLLBACK = "AmberRollback"
    SIGNAL_RED = "SignalRed"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    NO_PREVIOUS_RELEASE = "NoPreviousRelease"
    RESTORED_VERSION_GREEN = "RestoredVersionGreen"
    RESTORED_VERSION_NOT_GREEN = "RestoredVersionNotGreen"
    ROLLBACK_NOT_POSSIBLE = "RollbackNotPossible"
    ACTION_IGNORED = "ActionIgnored"
    RESTORE_FAILED = "RestoreFailed"
    # Windows, freezes, change types, promotion (logic.window.WINDOW_REASONS).
    NO_WINDOW = "NoWindow"
    IN_WINDOW = "InWindow"
    OUTSIDE_WINDOW = "OutsideWindow"
    FROZEN = "Frozen"
    EXPEDITED = "Expedited"
    INVALID_WINDOW = "InvalidWindow"
    PROMOTION_PENDING = "PromotionPending"
    # Post-deployment monitoring.
    MONITORING_IN_PROGRESS = "MonitoringInProgress"
    SIGNALS_GREEN = "SignalsGreen"
    SIGNALS_AMBER = "SignalsAmber"
    MONITORING_COMPLETE = "MonitoringComplete"
    # Canary steps.
    CANARY_IN_PROGRESS = "CanaryInProgress"
    CANARY_PAUSED = "CanaryPaused"
    ANALYSIS_RED = "AnalysisRed"
    TRAFFIC_ROUTING_UNAVAILABLE = "TrafficRoutingUnavailable"
    # Post-deployment (steps 18 and 20).
    REGISTRATION_PENDING = "RegistrationPending"
    REGISTERED = "Registered"
    RETROSPECTIVE_RECORDED = "RetrospectiveRecorded"
    INVALID_RETROSPECTIVE = "InvalidRetrospective"


class Role(StrEnum):
    SYSTEM_OWNER = "system-owner"
    DEPLOYMENT_MANAGER = "deployment-manager"
    RELEASE_MANAGER = "release-manager"
    QA_LEAD = "qa-lead"
    RISK_MANAGER = "risk-manager"
    COMPLIANCE_OFFICER = "compliance-officer"
    GOVERNANCE_COMMITTEE = "governance-committee"


class RiskLevel(StrEnum):
    HIGH = "high"
    LIMITED = "limited"
    MINIMAL = "minimal"


# PROC-AI-DEPLOY-001 section 4.4: required approvals by risk level.
REQUIRED_ROLES: Final[dict[RiskLevel, tuple[Role, ...]]] = {
    RiskLevel.HIGH: (
        Role.SYSTEM_OWNER,
        Role.COMPLIANCE_OFFICER,
        Role.RISK_MANAGER,
        Role.QA_LEAD,
        Role.GOVERNANCE_COMMITTEE,
    ),
    RiskLevel.LIMITED: (Role.SYSTEM_OWNER, Role.QA_LEAD, Role.DEPLOYMENT_MANAGER),
    RiskLevel.MINIMAL: (Role.SYSTEM_OWNER, Role.DEPLOYMENT_MANAGER),
}

# CHK-AI-DEPLOY-001 (PROC-AI-DEPLOY-001 Appendix A): item id -> title.
CHECKLIST_ITEMS: Final[dict[str, str]] = {
    "1.1": "All code changes complete",
    "1.2": "Code reviewed and approved",
    "1.3": "Unit tests passed",
    "1.4": "Build successful",
    "1.5": "Version tagged",
    "2.1": "Integration testing complete",
    "2.2": "System testing complete",
    "2.3": "UAT complete and signed off",
    "2.4": "Performance testing complete",
    "2.5": "Security testing complete",
    "2.6": "All critical defects resolved",
    "3.1": "Technical documentation updated",
    "3.2": "User documentation updated",
    "3.3": "Operational runbooks updated",
    "3.4": "Release notes prepared",
    "4.1": "Conformity assessment complete",
    "4.2": "EU Declaration ready",
    "4.3": "Registration information ready",
    "4.4": "Instructions for use finalized",
    "5.1": "Environment prepared",
    "5.2": "Monitoring configured",
    "5.3": "Logging configured",
    "5.4": "Backup verified",
    "5.5": "Rollback plan tested",
    "5.6": "Support team briefed",
}

# CHK-AI-DEPLOY-001's sections, by the number its items start with.
CHECKLIST_SECTIONS: Final[dict[str, str]] = {
    "1": "Development",
    "2": "Testing",
    "3": "Documentation",
    "4": "Compliance",
    "5": "Operations",
}

# Appendix A offers "N/A" only in section 4 (compliance), and only outside high risk.
NA_ALLOWED_SECTION: Final = "4"

# PROC-AI-DEPLOY-001 section 7.1: what a high-risk deployment must name (spec.compliance).
HIGH_RISK_COMPLIANCE_FIELDS: Final[dict[str, str]] = {
    "conformityAssessment": "conformity assessment",
    "declarationOfConformity": "EU declaration of conformity",
    "euDatabaseRegistration": "EU database registration",
    "instructionsForUse": "instructions for use",
    "humanOversight": "human oversight measures",
}
