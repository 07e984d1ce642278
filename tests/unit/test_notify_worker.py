"""The notification worker's discovery: one bad notifier or sink never stops the others."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from aideploy.metrics import Metrics
from aideploy.notify import store
from aideploy.notify import worker as worker_module
from aideploy.notify.worker import NotificationWorker, NotifySettings

URL = {"secretKeyRef": {"name": "u", "key": "k"}}


def notifier(name: str, sinks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}", "resourceVersion": "1"},
        "spec": {"sinks": sinks},
    }


class FakeSinkWorker:
    def __init__(self, *args: Any) -> None:
        assignment = args[4]
        if assignment.notifier["metadata"]["name"] == "broken":
            raise KeyError("status")
        self.label = f"ns/{assignment.notifier['metadata']['name']}/{assignment.sink.name}"
        self.assignment = assignment

    async def run(self, *_args: Any) -> None:
        await asyncio.sleep(3600)


def discover(monkeypatch: pytest.MonkeyPatch, listed: list[dict[str, Any]]) -> list[str]:
    posted: list[str] = []
    monkeypatch.setattr(store, "list_notifiers", lambda *_a: listed)
    monkeypatch.setattr(
        store, "post_event", lambda _r, n, reason, message, _now: posted.append(reason)
    )
    monkeypatch.setattr(worker_module, "SinkWorker", FakeSinkWorker)

    async def run() -> list[str]:
        w = NotificationWorker(None, Metrics(process=False), NotifySettings(cluster="c"))  # type: ignore[arg-type]
        await w._discover(None)  # type: ignore[arg-type]
        served = sorted(f"{k[1]}/{k[3]}" for k in w._sinks)
        await w.stop()
        return served

    return [*asyncio.run(run()), *posted]


def test_a_sink_that_cannot_be_set_up_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    listed = [
        notifier("broken", [{"name": "one", "cloudEvents": {"url": URL}}]),
        notifier("fine", [{"name": "two", "cloudEvents": {"url": URL}}]),
    ]
    with caplog.at_level(logging.WARNING):
        assert discover(monkeypatch, listed) == ["fine/two"]
    assert "notifier ns/broken sink one not served" in caplog.text


def test_an_invalid_notifier_gets_a_warning_event(monkeypatch: pytest.MonkeyPatch) -> None:
    twice = [{"name": "x", "cloudEvents": {"url": URL}}] * 2
    listed = [notifier("dup", twice), notifier("fine", twice[:1])]
    assert discover(monkeypatch, listed) == ["fine/x", "InvalidNotifier"]
