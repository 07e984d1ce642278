"""A sink's delivery pass, with the cluster and the receiver faked: what one refused
event holds back, and what it does not."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from aideploy.api.notifier import EventKind, NotifierSpec
from aideploy.logic.notify_events import Notification, Position, Subject
from aideploy.logic.notify_route import Cursor
from aideploy.metrics import Metrics
from aideploy.notify import sink as sink_module
from aideploy.notify import store
from aideploy.notify.send import Outcome, Sent
from aideploy.notify.sink import Assignment, SinkWorker

SPEC = NotifierSpec.model_validate(
    {"sinks": [{"name": "s", "cloudEvents": {"url": {"secretKeyRef": {"name": "u", "key": "k"}}}}]}
)
NOTIFIER = {"metadata": {"namespace": "ns", "name": "n", "generation": 1}, "spec": {}}


def event(uid: str, sequence: int) -> Notification:
    return Notification(
        kind=EventKind.CLOSED,
        type="t",
        id=f"{uid}-{sequence}",
        subject=Subject("c", "ns", uid, uid, "1", "d"),
        time="2026-01-01T00:00:00Z",
        content={},
        position=Position(sequence, 0),
    )


def worker(monkeypatch: pytest.MonkeyPatch, answer: Sent) -> tuple[SinkWorker, list[str]]:
    sent: list[str] = []

    async def fake_send(_session: Any, _url: str, n: Notification, _sink: Any) -> Sent:
        sent.append(n.id)
        return answer if n.subject.uid == "a" else Sent(Outcome.DELIVERED, "HTTP 202")

    async def no_io(*_args: Any) -> None:
        return None

    monkeypatch.setattr(sink_module, "send", fake_send)
    monkeypatch.setattr(store, "read_secret", lambda *_a: "http://receiver.invalid/")
    w = SinkWorker(
        rest=None,  # type: ignore[arg-type]
        executor=ThreadPoolExecutor(1),
        metrics=Metrics(process=False),
        cluster="c",
        assignment=Assignment(notifier=NOTIFIER, spec=SPEC, sink=SPEC.sinks[0]),
    )
    w._cursors = {"a": Cursor(sequence=1), "b": Cursor(sequence=1)}

    async def queue() -> list[tuple[str, str, list[Notification], int | None, None]]:
        # Sorted by name: "a" comes first, and its first event is refused.
        return [
            ("a", "high", [event("a", 1), event("a", 2)], 2, None),
            ("b", "high", [event("b", 1), event("b", 2)], 2, None),
        ]

    monkeypatch.setattr(w, "_queue", queue)
    monkeypatch.setattr(w, "_patch", no_io)
    monkeypatch.setattr(w, "_report", lambda *_a: no_io())
    return w, sent


def test_an_event_refused_holds_back_its_aideployment_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, sent = worker(monkeypatch, Sent(Outcome.REJECTED, "HTTP 400"))
    ok = asyncio.run(w.deliver_pass(None))  # type: ignore[arg-type]
    assert ok is False  # the pass failed: it backs off
    assert sent == ["a-1", "b-1", "b-2"]  # a-2 waits behind a-1; b is not held back
    assert w._cursors["a"].position == Position(1, 0)
    assert w._cursors["b"].position == Position(3, 0)


def test_a_sink_that_does_not_answer_stops_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    w, sent = worker(monkeypatch, Sent(Outcome.FAILED, "ClientConnectorError"))
    assert asyncio.run(w.deliver_pass(None)) is False  # type: ignore[arg-type]
    assert sent == ["a-1"]  # the others would only wait for the same timeout


def aideployment(namespace: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "uid": f"{namespace}-{name}"},
        "spec": {"riskLevel": "high"},
        "status": {"latestRecord": {"sequence": 1}},
    }


def test_the_default_notifier_checks_peering_per_aideployment_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    async def active(namespace: str) -> bool:
        asked.append(namespace)
        return namespace == "team-b"  # "ops", the notifier's own, is not even watched

    async def no_io(*_args: Any) -> None:
        return None

    notifier = {"metadata": {"namespace": "ops", "name": "default", "generation": 1}}
    objects = [aideployment("team-a", "x"), aideployment("team-b", "y")]
    monkeypatch.setattr(store, "list_deployments", lambda *_a: objects)
    monkeypatch.setattr(store, "get_notifier", lambda *_a: notifier)
    monkeypatch.setattr(sink_module, "list_records", lambda *_a: [])
    w = SinkWorker(
        rest=None,  # type: ignore[arg-type]
        executor=ThreadPoolExecutor(1),
        metrics=Metrics(process=False),
        cluster="c",
        assignment=Assignment(
            notifier=notifier,
            spec=SPEC,
            sink=SPEC.sinks[0],
            default=True,
            scope=("team-a", "team-b"),
        ),
        active=active,
    )
    monkeypatch.setattr(w, "_patch", no_io)
    assert asyncio.run(w._may_deliver()) is True  # not decided by "ops"
    queue = asyncio.run(w._queue())
    assert [uid for uid, *_ in queue] == ["team-b-y"]
    assert "ops" not in asked


def test_a_pass_with_nothing_to_send_reads_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    w, sent = worker(monkeypatch, Sent(Outcome.DELIVERED, "HTTP 202"))
    reads: list[Any] = []
    monkeypatch.setattr(store, "read_secret", lambda *a: reads.append(a) or "http://x.invalid/")

    async def idle() -> list[tuple[str, str, list[Notification], int | None, None]]:
        return [("a", "high", [], None, None), ("b", "high", [], None, None)]

    monkeypatch.setattr(w, "_queue", idle)
    assert asyncio.run(w.deliver_pass(None)) is True  # type: ignore[arg-type]
    assert reads == [] and sent == []
