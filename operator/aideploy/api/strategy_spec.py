"""How a release reaches users (`spec.strategy`): blue-green (the default), canary steps,
or in place. The models only say what may be asked; logic/strategy.py and its neighbours
decide what it means at each step.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from aideploy.api.durations import Duration
from aideploy.api.spec_base import Name, SpecModel, about


class BlueGreen(SpecModel):
    """Each release in its own Deployment; go-live is one switch of the stable Service."""

    preview_service: Annotated[
        bool,
        Field(
            description=(
                "Create the <name>-preview Service that selects the candidate; verification "
                "probes without a URL go to it."
            )
        ),
    ] = True
    scale_down_delay: Annotated[
        Duration,
        Field(
            description=(
                "How long the previous release keeps running after the monitoring window "
                "ends, so that a rollback is a selector switch."
            )
        ),
    ] = "30s"


class InPlace(SpecModel):
    """One Deployment updated in place: users meet the candidate while it is verified."""


class Pause(SpecModel):
    duration: Annotated[
        Duration | None,
        Field(
            description=(
                "How long to stay at this weight; omitted, until `kubectl aideploy promote`."
            )
        ),
    ] = None


class Analysis(SpecModel):
    """Checks run at the weight reached: the verification probes against the canary (the
    preview Service), the monitoring signals against what users are served, or both."""

    probes: Annotated[bool, about("Run spec.verification.probes against the canary.")] = True
    signals: Annotated[bool, about("Evaluate spec.monitoring.signals once.")] = False


class CanaryStep(SpecModel):
    """Exactly one of setWeight, pause, analysis."""

    set_weight: Annotated[
        int | None,
        Field(
            ge=0,
            le=99,
            description=(
                "The share of users (percent) the canary serves; 100% is what promotion "
                "after the last step gives."
            ),
        ),
    ] = None
    pause: Annotated[
        Pause | None, about("Stay at this weight (for a while, or until promoted).")
    ] = None
    analysis: Annotated[
        Analysis | None, about("Check the canary at this weight; RED rolls back.")
    ] = None

    @model_validator(mode="after")
    def _one(self) -> CanaryStep:
        chosen = [
            n
            for n, v in (
                ("setWeight", self.set_weight),
                ("pause", self.pause),
                ("analysis", self.analysis),
            )
            if v is not None
        ]
        if len(chosen) != 1:
            raise ValueError(
                "a canary step sets exactly one of setWeight, pause and analysis"
                + (f" (this one sets {' and '.join(chosen)})" if chosen else "")
            )
        return self

    def describe(self) -> str:
        if self.set_weight is not None:
            return f"setWeight {self.set_weight}"
        if self.pause is not None:
            return f"pause {self.pause.duration}" if self.pause.duration else "pause until promoted"
        return "analysis"


class HTTPRouteRef(SpecModel):
    http_route: Annotated[
        Name,
        about(
            "The HTTPRoute (same namespace) whose backendRefs to the stable Service <name> "
            "and the canary Service <name>-preview get the weights."
        ),
    ]


class TrafficRouting(SpecModel):
    gateway_api: Annotated[
        HTTPRouteRef | None,
        Field(alias="gatewayAPI", description="Split by the weights of a Gateway API HTTPRoute."),
    ] = None


class Canary(SpecModel):
    """The candidate serves a growing share of users, step by step, after its verification;
    RED at any step puts its weight back to 0 and removes it."""

    steps: Annotated[
        list[CanaryStep],
        Field(min_length=1, description="Run in order; the canary is promoted after the last."),
    ]
    traffic_routing: Annotated[
        TrafficRouting | None,
        about(
            "How the weight is applied; omitted, by replica ratio behind the stable Service "
            "(approximate: the share of pods, at most 50%)."
        ),
    ] = None
    scale_down_delay: Annotated[
        Duration,
        about("How long the previous release keeps running after the monitoring window."),
    ] = "30s"


class Strategy(SpecModel):
    """How a release reaches users. Exactly one member; omitted, blueGreen."""

    blue_green: Annotated[
        BlueGreen | None,
        Field(description="The default: verify beside the serving release, then switch."),
    ] = None
    in_place: Annotated[
        InPlace | None,
        Field(
            description=(
                "For models too large for two copies: the only strategy where users are "
                "served by the candidate during its verification."
            )
        ),
    ] = None
    canary: Annotated[
        Canary | None,
        Field(description="Verified beside the serving release, then given users step by step."),
    ] = None

    @model_validator(mode="after")
    def _one(self) -> Strategy:
        members = (
            ("blueGreen", self.blue_green),
            ("inPlace", self.in_place),
            ("canary", self.canary),
        )
        chosen = [name for name, member in members if member is not None]
        if len(chosen) > 1:
            raise ValueError(f"strategy sets {' and '.join(chosen)}; choose one")
        return self

    @property
    def blue_green_or_default(self) -> BlueGreen | None:
        """The blue-green settings in force, or None under inPlace and canary."""
        if self.in_place is not None or self.canary is not None:
            return None
        return self.blue_green or BlueGreen()
