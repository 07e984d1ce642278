"""The metrics' arithmetic: gauges recomputed from per-object state, counters that count
each real transition once, and the HTTP exposition."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from aideploy.metrics import GATE_REASONS, PHASES, ROLLBACK_REASONS, Metrics
from tests.support.metrics import samples, value

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(process=False)


def phases(metrics: Metrics) -> dict[str, float]:
    return {p: value(metrics, "aideploy_deployments", phase=p) or 0.0 for p in PHASES}


def blocked(metrics: Metrics) -> dict[str, float]:
    return {r: value(metrics, "aideploy_gate_blocked", reason=r) or 0.0 for r in GATE_REASONS}


def test_every_phase_and_reason_is_exported_at_zero_before_any_object(metrics: Metrics) -> None:
    assert phases(metrics) == dict.fromkeys(PHASES, 0.0)
    assert blocked(metrics) == dict.fromkeys(GATE_REASONS, 0.0)
    for reason in ROLLBACK_REASONS:
        assert value(metrics, "aideploy_rollbacks_total", reason=reason) == 0.0
    assert value(metrics, "aideploy_last_reconcile_timestamp_seconds") == 0.0


def test_gauges_follow_each_objects_latest_state(metrics: Metrics) -> None:
    metrics.set_object_state(("a", "x"), "AwaitingApproval", ["approvals", "checklist"])
    metrics.set_object_state(("a", "y"), "AwaitingApproval", ["approvals"])
    metrics.set_object_state(("b", "x"), "Succeeded", [], decision="GREEN")
    assert phases(metrics)["AwaitingApproval"] == 2
    assert phases(metrics)["Succeeded"] == 1
    assert blocked(metrics) == {**dict.fromkeys(GATE_REASONS, 0.0), "approvals": 2, "checklist": 1}
    assert value(metrics, "aideploy_decisions", decision="GREEN") == 1

    # The same object reconciled again moves between phases; it is never counted twice.
    metrics.set_object_state(("a", "x"), "Deploying", [])
    metrics.set_object_state(("a", "x"), "Deploying", [])
    assert phases(metrics)["AwaitingApproval"] == 1
    assert phases(metrics)["Deploying"] == 1
    assert blocked(metrics)["checklist"] == 0
    assert sum(phases(metrics).values()) == 3


def test_forget_removes_an_object_from_every_gauge(metrics: Metrics) -> None:
    metrics.set_object_state(("a", "x"), "Held", [], decision="AMBER", since=T0)
    metrics.set_object_state(("a", "y"), "AwaitingWindow", ["window", "freeze"])
    metrics.forget(("a", "x"))
    metrics.forget(("a", "x"))  # twice is harmless (DELETED after a reconcile found it gone)
    metrics.forget(("never", "seen"))
    assert phases(metrics)["Held"] == 0
    assert phases(metrics)["AwaitingWindow"] == 1
    assert blocked(metrics)["freeze"] == 1
    assert value(metrics, "aideploy_decisions", decision="AMBER") == 0
    assert (
        value(
            metrics,
            "aideploy_deployment_phase_since_timestamp_seconds",
            namespace="a",
            name="x",
            phase="Held",
            decision="AMBER",
        )
        is None
    )


def test_a_fresh_process_rebuilds_the_same_gauges_from_one_reconcile_per_object() -> None:
    states = [
        (("a", "x"), "Monitoring", [], "GREEN"),
        (("a", "y"), "AwaitingApproval", ["approvals"], None),
        (("b", "z"), "RolledBack", [], "RED"),
    ]
    before, after = Metrics(process=False), Metrics(process=False)
    # The first process saw a longer history...
    before.set_object_state(("a", "x"), "Deploying", [])
    before.set_object_state(("gone", "q"), "Held", [])
    before.forget(("gone", "q"))
    for key, phase, reasons, decision in states:
        before.set_object_state(key, phase, reasons, decision=decision)
    # ...the restarted one only the initial listing: the state gauges agree.
    for key, phase, reasons, decision in reversed(states):
        after.set_object_state(key, phase, reasons, decision=decision)
    state_metrics = ("aideploy_deployments", "aideploy_gate_blocked", "aideploy_decisions")

    def state(m: Metrics) -> list[tuple[str, dict[str, str], float]]:
        return sorted(
            (s for s in samples(m) if s[0] in state_metrics), key=lambda s: (s[0], str(s[1]))
        )

    assert state(before) == state(after)


def test_phase_since_is_one_series_per_object_with_its_current_phase(metrics: Metrics) -> None:
    metrics.set_object_state(("a", "x"), "Held", [], decision="AMBER", since=T0)
    metrics.set_object_state(("a", "x"), "Held", [], decision="AMBER", since=T0)
    series = [s for s in samples(metrics) if s[0].endswith("phase_since_timestamp_seconds")]
    assert series == [
        (
            "aideploy_deployment_phase_since_timestamp_seconds",
            {"namespace": "a", "name": "x", "phase": "Held", "decision": "AMBER"},
            T0.timestamp(),
        )
    ]
    later = T0 + timedelta(minutes=5)
    metrics.set_object_state(("a", "x"), "RollingBack", [], decision="AMBER", since=later)
    series = [s for s in samples(metrics) if s[0].endswith("phase_since_timestamp_seconds")]
    assert [(s[1]["phase"], s[2]) for s in series] == [("RollingBack", later.timestamp())]


def test_unknown_label_values_are_refused(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="phase"):
        metrics.set_object_state(("a", "x"), "Ready", [])
    with pytest.raises(ValueError, match="gate reason"):
        metrics.set_object_state(("a", "x"), "AwaitingApproval", ["approval"])
    with pytest.raises(ValueError, match="rollback reason"):
        metrics.record_transition(("a", "x"), "Verifying", "RollingBack", at=T0)
    with pytest.raises(ValueError, match="result"):
        metrics.record_probe_result("ready", "YELLOW")


def test_counters_count_only_real_transitions(metrics: Metrics) -> None:
    key = ("a", "x")
    # The same status read again (a resync, an operator restart): nothing happened.
    for _ in range(3):
        metrics.record_transition(key, "RolledBack", "RolledBack", at=T0, rollback_reason="probe")
    metrics.record_transition(key, "Verifying", "RollingBack", at=T0, rollback_reason="probe")
    metrics.record_transition(key, "RollingBack", "RollingBack", at=T0, rollback_reason="probe")
    metrics.record_transition(key, "RollingBack", "RolledBack", at=T0 + timedelta(seconds=7))
    assert value(metrics, "aideploy_rollbacks_total", reason="probe") == 1
    assert (
        sum(value(metrics, "aideploy_rollbacks_total", reason=r) or 0 for r in ROLLBACK_REASONS)
        == 1
    )
    # A manual rollback straight to RolledBack counts too, under its own reason.
    metrics.record_transition(
        ("a", "y"), "Monitoring", "RolledBack", at=T0, rollback_reason="manual"
    )
    assert value(metrics, "aideploy_rollbacks_total", reason="manual") == 1


def test_red_to_rollback_measures_from_red_decision_or_rollback_start(metrics: Metrics) -> None:
    key = ("a", "x")
    metrics.record_transition(key, "Verifying", "RollingBack", at=T0, rollback_reason="probe")
    metrics.record_transition(key, "RollingBack", "RolledBack", at=T0 + timedelta(seconds=12))
    assert value(metrics, "aideploy_red_to_rollback_seconds_count") == 1
    assert value(metrics, "aideploy_red_to_rollback_seconds_sum") == 12
    assert value(metrics, "aideploy_red_to_rollback_seconds_bucket", le="10.0") == 0
    assert value(metrics, "aideploy_red_to_rollback_seconds_bucket", le="20.0") == 1
    # With the RED time from the status (survives restarts) that one is used.
    metrics.record_transition(
        key,
        "RollingBack",
        "RolledBack",
        at=T0 + timedelta(seconds=30),
        red_at=T0 + timedelta(seconds=25),
    )
    assert value(metrics, "aideploy_red_to_rollback_seconds_sum") == 12 + 5
    # A manual rollback is not RED: no observation unless the status says when RED was.
    metrics.record_transition(
        ("b", "y"), "Monitoring", "RollingBack", at=T0, rollback_reason="manual"
    )
    metrics.record_transition(("b", "y"), "RollingBack", "RolledBack", at=T0 + timedelta(seconds=3))
    assert value(metrics, "aideploy_red_to_rollback_seconds_count") == 2


def test_approval_wait_and_approval_to_ready(metrics: Metrics) -> None:
    key = ("a", "x")
    approved = T0 + timedelta(hours=5)
    metrics.record_transition(key, None, "AwaitingApproval", at=T0)
    metrics.record_transition(
        key, "AwaitingApproval", "Deploying", at=approved, phase_entered_at=T0
    )
    assert value(metrics, "aideploy_approval_wait_seconds_count") == 1
    assert value(metrics, "aideploy_approval_wait_seconds_sum") == 5 * 3600
    metrics.record_transition(key, "Deploying", "Verifying", at=approved + timedelta(seconds=30))
    metrics.record_transition(key, "Verifying", "Monitoring", at=approved + timedelta(seconds=90))
    assert value(metrics, "aideploy_approval_to_ready_seconds_count") == 1
    assert value(metrics, "aideploy_approval_to_ready_seconds_sum") == 90
    # Monitoring -> Succeeded is not a second "ready".
    metrics.record_transition(key, "Monitoring", "Succeeded", at=approved + timedelta(days=1))
    assert value(metrics, "aideploy_approval_to_ready_seconds_count") == 1


def test_leaving_approval_for_failed_is_not_an_approval(metrics: Metrics) -> None:
    metrics.record_transition(
        ("a", "x"), "AwaitingApproval", "Failed", at=T0, phase_entered_at=T0 - timedelta(hours=1)
    )
    assert value(metrics, "aideploy_approval_wait_seconds_count") == 0


def test_ready_after_restart_without_remembered_approval_is_skipped_not_guessed() -> None:
    metrics = Metrics(process=False)  # a fresh process: it never saw the gate open
    metrics.record_transition(("a", "x"), "Verifying", "Monitoring", at=T0)
    assert value(metrics, "aideploy_approval_to_ready_seconds_count") == 0
    metrics.record_transition(
        ("a", "y"), "Verifying", "Succeeded", at=T0, approved_at=T0 - timedelta(minutes=2)
    )
    assert value(metrics, "aideploy_approval_to_ready_seconds_sum") == 120


def test_probe_results_and_reconciles(metrics: Metrics) -> None:
    metrics.record_probe_result("ready", "GREEN")
    metrics.record_probe_result("ready", "GREEN")
    metrics.record_probe_result("error-rate", "RED")
    assert value(metrics, "aideploy_probe_results_total", probe="ready", result="GREEN") == 2
    assert value(metrics, "aideploy_probe_results_total", probe="error-rate", result="RED") == 1
    metrics.record_reconcile("ok", at=T0)
    metrics.record_reconcile("conflict", at=T0 + timedelta(seconds=1))
    metrics.record_reconcile("error", at=T0 + timedelta(seconds=2))
    assert value(metrics, "aideploy_reconcile_total", result="ok") == 1
    assert value(metrics, "aideploy_reconcile_total", result="error") == 1
    # An error is not progress: the "not reconciling" alert keys on the last success.
    assert value(metrics, "aideploy_last_reconcile_timestamp_seconds") == T0.timestamp() + 1


def test_registries_are_independent() -> None:
    one, two = Metrics(process=False), Metrics(process=False)
    one.record_probe_result("ready", "RED")
    one.set_object_state(("a", "x"), "Failed", [])
    assert value(two, "aideploy_probe_results_total", probe="ready", result="RED") is None
    assert value(two, "aideploy_deployments", phase="Failed") == 0


def test_serve_exposes_the_text_format() -> None:
    metrics = Metrics()
    metrics.set_object_state(("a", "x"), "Held", [], decision="AMBER", since=T0)
    server = metrics.serve(0, addr="127.0.0.1")
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'aideploy_deployments{phase="Held"} 1.0' in text
    assert "# TYPE aideploy_rollbacks_total counter" in text
    assert "# TYPE aideploy_approval_wait_seconds histogram" in text
    assert "process_resident_memory_bytes" in text


def test_the_inventory_is_one_info_series_per_object_until_forgotten(metrics: Metrics) -> None:
    metrics.set_inventory(
        ("ml", "churn"),
        {
            "system": "churn-predictor",
            "environment": "production",
            "risk_level": "high",
            "version": "1.2.0",
            "registration": "registered EU-DB-1",
            "phase": "Succeeded",
        },
    )
    metrics.set_inventory(("ml", "churn"), {"system": "churn-predictor", "phase": "Monitoring"})
    metrics.set_inventory(("ml", "fraud"), {"system": "fraud", "phase": "AwaitingApproval"})
    series = [(n, labels) for n, labels, _ in samples(metrics) if n == "aideploy_ai_system_info"]
    assert [labels["name"] for _, labels in series] == ["churn", "fraud"]
    assert series[0][1] == {
        "namespace": "ml",
        "name": "churn",
        "system": "churn-predictor",
        "environment": "",
        "risk_level": "",
        "version": "",
        "registration": "",
        "phase": "Monitoring",
    }
    metrics.forget(("ml", "churn"))
    assert value(metrics, "aideploy_ai_system_info", **series[1][1]) == 1.0
    assert [n for n, labels, _ in samples(metrics) if labels.get("name") == "churn"] == []


def test_notifications_count_per_sink_and_result_and_the_queue_is_a_gauge(
    metrics: Metrics,
) -> None:
    sink = "ns/stakeholders/slack"
    metrics.record_notification(sink, "delivered")
    metrics.record_notification(sink, "delivered")
    metrics.record_notification(sink, "rejected")
    assert value(metrics, "aideploy_notifications_total", sink=sink, result="delivered") == 2
    assert value(metrics, "aideploy_notifications_total", sink=sink, result="rejected") == 1
    with pytest.raises(ValueError, match="unknown result"):
        metrics.record_notification(sink, "lost")
    metrics.set_notification_queue(sink, 7)
    metrics.set_notification_queue(sink, 3)
    assert value(metrics, "aideploy_notification_queue_depth", sink=sink) == 3
    metrics.forget_notification_sink(sink)
    metrics.forget_notification_sink(sink)  # twice: nothing to forget, no error
    assert value(metrics, "aideploy_notification_queue_depth", sink=sink) is None
