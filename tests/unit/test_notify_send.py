"""send(): a sink's URL is a secret, even when it is malformed or the secret is its host."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from aideploy.api.notifier import EventKind, NotifierSpec
from aideploy.logic.notify_events import Notification, Position, Subject
from aideploy.notify.send import Outcome, Sent, send

TOKEN = "T0KENs3cr3tvalue"
SPEC = NotifierSpec.model_validate(
    {"sinks": [{"name": "s", "cloudEvents": {"url": {"secretKeyRef": {"name": "u", "key": "k"}}}}]}
)
EVENT = Notification(
    kind=EventKind.CLOSED,
    type="dev.cdevents.service.removed.0.2.0",
    id="e1",
    subject=Subject("c", "ns", "scorer", "uid", "1", "d"),
    time="2026-01-01T00:00:00Z",
    content={},
    position=Position(1, 0),
)


def post(url: str) -> Sent:
    async def run() -> Sent:
        async with aiohttp.ClientSession() as session:
            return await send(session, url, EVENT, SPEC.sinks[0])

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("url", "outcome"),
    [
        # Malformed: aiohttp's error text is the URL itself.
        (f"http://[{TOKEN}/hook", Outcome.REJECTED),
        (f"http://{TOKEN}:99999/hook", Outcome.REJECTED),
        (f"ftp://{TOKEN}/hook", Outcome.REJECTED),
        (TOKEN, Outcome.REJECTED),
        # The token is the host: a failed lookup's error text names it.
        (f"http://{TOKEN}.invalid/hook", Outcome.FAILED),
    ],
)
def test_no_part_of_the_url_is_in_the_outcome_or_the_logs(
    url: str, outcome: Outcome, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        sent = post(url)
    assert sent.outcome is outcome
    assert TOKEN.lower() not in sent.detail.lower()
    assert TOKEN.lower() not in caplog.text.lower()
    assert not sent.answered


def test_an_invalid_url_is_refused_not_unreachable() -> None:
    sent = post(f"http://[{TOKEN}")
    assert sent.outcome is Outcome.REJECTED  # retrying does not make it valid
    assert sent.detail == "an invalid URL (InvalidUrlClientError)"
