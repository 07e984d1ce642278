"""Which watch events may cut short a wait: the wait for probes that still run, and the
backoff after a refused write. Only a person's new action (a rollback or go-live
annotation with a value not yet acted upon) or a newer generation does; the events the
operator's own writes cause, and stale events from before, do not."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from aideploy.api.constants import GO_LIVE_ANNOTATION, ROLLBACK_ANNOTATION

ObjectKey = tuple[str, str]
#: Annotations of a person's action.
ACTIONS = (ROLLBACK_ANNOTATION, GO_LIVE_ANNOTATION)


def actions_of(annotations: Mapping[str, str]) -> dict[str, str]:
    return {key: annotations[key] for key in ACTIONS if key in annotations}


@dataclass(frozen=True)
class Seen:
    """What the decision being carried out was taken on."""

    generation: int
    actions: Mapping[str, str]
    stop: asyncio.Event = field(default_factory=asyncio.Event, compare=False)

    def superseded_by(self, generation: object, annotations: Mapping[str, str]) -> bool:
        if isinstance(generation, int) and generation > self.generation:
            return True
        return any(self.actions.get(key) != value for key, value in actions_of(annotations).items())


class Preemption:
    def __init__(self) -> None:
        self._seen: dict[ObjectKey, Seen] = {}

    def watch(self, key: ObjectKey, generation: int, annotations: Mapping[str, str]) -> Seen:
        seen = Seen(generation, actions_of(annotations))
        self._seen[key] = seen
        return seen

    def release(self, key: ObjectKey, seen: Seen) -> None:
        if self._seen.get(key) is seen:
            del self._seen[key]

    def event(self, key: ObjectKey, generation: object, annotations: Mapping[str, str]) -> None:
        seen = self._seen.get(key)
        if seen is not None and seen.superseded_by(generation, annotations):
            seen.stop.set()
