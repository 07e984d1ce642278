"""send(): a sink's URL is a secret, even when it is malformed or the secret is its host."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import pytest

from aideploy.api.notifier import EventKind, NotifierSpec
from aideploy.logic.notify_events import Notification, Position, Subject
from aideploy.notify.send import ExecutorResolver, Outcome, Sent, send

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


def test_names_are_resolved_on_the_notifications_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[str] = []
    real = socket.getaddrinfo

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    executor = ThreadPoolExecutor(1, thread_name_prefix="notify")

    async def run() -> tuple[list[Any], Sent]:
        resolved = await ExecutorResolver(executor).resolve("localhost", 9)
        connector = aiohttp.TCPConnector(resolver=ExecutorResolver(executor))
        async with aiohttp.ClientSession(connector=connector) as session:
            return resolved, await send(session, "http://localhost:9/", EVENT, SPEC.sinks[0])

    resolved, sent = asyncio.run(run())
    executor.shutdown()
    assert resolved and all(r["port"] == 9 and r["hostname"] == "localhost" for r in resolved)
    assert sent.outcome is Outcome.FAILED  # nothing listens there: it was looked up, though
    assert threads and all(name.startswith("notify") for name in threads)
