"""AIDeploymentNotifier: who is told about which AIDeployment transitions, and where.

A notifier lists sinks (a CloudEvents endpoint, or a chat webhook with a shipped
template) and selects the AIDeployments of its namespace by label, risk level and event.
Every URL comes from a Secret (`secretKeyRef`): a webhook URL is a credential (Slack's
and Teams' carry their token in the path), so none is ever written in a spec, a status,
an Event, a record or a log line. The CRD's schema is generated from these models
(api/crd.py), like the AIDeployment's.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from aideploy.api.constants import RiskLevel
from aideploy.api.durations import MinutesDuration

NOTIFIER_KIND: Final = "AIDeploymentNotifier"
NOTIFIER_PLURAL: Final = "aideploymentnotifiers"

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

#: The condition each sink has in status.sinks.<name>.conditions, and its reasons.
CONDITION_DELIVERING: Final = "Delivering"
REASON_DELIVERED: Final = "EventsDelivered"
REASON_UNREACHABLE: Final = "SinkUnreachable"
REASON_REJECTED: Final = "SinkRejectedEvent"
REASON_SECRET_MISSING: Final = "SecretMissing"


class EventKind(StrEnum):
    """The transitions a sink can select (docs/api.md, Notifications)."""

    APPROVAL_REQUESTED = "approval-requested"
    APPROVAL_GIVEN = "approval-given"
    DEPLOYMENT_STARTED = "deployment-started"
    VERIFICATION_FINISHED = "verification-finished"
    LIVE = "live"
    ROLLED_BACK = "rolled-back"
    INCIDENT = "incident"
    CLOSED = "closed"


class Template(StrEnum):
    SLACK = "slack"
    TEAMS = "teams"
    #: The CloudEvent itself, in structured mode, as a plain JSON body.
    CLOUDEVENT = "cloudevent"


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class SecretKeyRef(_Wire):
    name: Annotated[
        str, Field(min_length=1, max_length=253, description="In the notifier's namespace.")
    ]
    key: Annotated[str, Field(min_length=1, max_length=253, description="The key in its data.")]


class SecretValue(_Wire):
    secret_key_ref: Annotated[
        SecretKeyRef,
        Field(description="The Secret key holding the value; never written in clear here."),
    ]


class CloudEventsSink(_Wire):
    url: Annotated[
        SecretValue,
        Field(description="The endpoint, from a Secret (HTTP binding, structured mode)."),
    ]


class WebhookSink(_Wire):
    url: Annotated[
        SecretValue,
        Field(description="The incoming webhook's URL, from a Secret (it carries the token)."),
    ]
    template: Annotated[
        Template, Field(description="The JSON body: slack, teams, or cloudevent.")
    ] = Template.SLACK


class Sink(_Wire):
    name: Annotated[
        str,
        Field(
            pattern=_NAME,
            max_length=63,
            description="Unique in the notifier; names the sink in status and metrics.",
        ),
    ]
    cloud_events: Annotated[
        CloudEventsSink | None, Field(description="A CloudEvents (CDEvents) receiver.")
    ] = None
    webhook: Annotated[
        WebhookSink | None, Field(description="A chat incoming webhook (Slack, Teams).")
    ] = None
    events: Annotated[
        list[EventKind],
        Field(description="The events sent to this sink; every event when empty."),
    ] = []
    risk_levels: Annotated[
        list[RiskLevel],
        Field(description="Only AIDeployments of these risk levels; every level when empty."),
    ] = []

    @model_validator(mode="after")
    def _one_kind(self) -> Sink:
        if (self.cloud_events is None) == (self.webhook is None):
            raise ValueError(f"sink {self.name}: set exactly one of cloudEvents and webhook")
        return self


class LabelSelector(_Wire):
    match_labels: Annotated[
        dict[str, str],
        Field(description="AIDeployments with all these labels; every one when empty."),
    ] = {}


class Reminders(_Wire):
    interval: Annotated[
        MinutesDuration | None,
        Field(
            description="Remind the sinks this often while approvals miss; off if unset. "
            "At least 1m, with a whole number of minutes, hours or days (1m, 90m, 1h30m)."
        ),
    ] = None
    escalate_after: Annotated[
        MinutesDuration | None,
        Field(
            description="After waiting this long for approvals, tell escalateTo once. "
            "At least 1m, with a whole number of minutes, hours or days (1m, 90m, 1h30m)."
        ),
    ] = None
    escalate_to: Annotated[
        str | None,
        Field(pattern=_NAME, description="The sink (of this notifier) that escalations go to."),
    ] = None


class NotifierSpec(_Wire):
    """AIDeploymentNotifier.spec."""

    model_config = ConfigDict(
        json_schema_extra={
            "description": "Sends the AIDeployments' transitions to sinks, at least once, "
            "in order per AIDeployment, with a stable id per transition."
        }
    )

    selector: Annotated[
        LabelSelector, Field(description="Which AIDeployments of this namespace it reports on.")
    ] = LabelSelector()
    sinks: Annotated[list[Sink], Field(min_length=1, description="Where events go.")]
    reminders: Annotated[
        Reminders | None, Field(description="Reminders and escalation while approvals wait.")
    ] = None

    @model_validator(mode="after")
    def _names(self) -> NotifierSpec:
        names = [s.name for s in self.sinks]
        if len(set(names)) != len(names):
            raise ValueError("sink names must be unique")
        target = self.reminders.escalate_to if self.reminders else None
        if target is not None and target not in names:
            raise ValueError(f"reminders.escalateTo {target!r} names no sink of this notifier")
        return self
