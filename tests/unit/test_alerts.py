"""The alerting rules: valid for Prometheus, each alert unit-tested with `promtool test
rules`, and built only on metrics the operator exports.

promtool is Debian's (tests/support/prometheus.py fetches it); if it cannot be had, these
tests fail with the reason: an untested alert is not a passing one.
"""

from __future__ import annotations

import subprocess

from tests.support.chart import (
    ALERTS,
    ALERTS_TEST,
    exported_metric_names,
    load_yaml,
    metric_names_in,
)
from tests.support.prometheus import promtool_path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool_path()), *args],
        cwd=ALERTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def alert_names() -> list[str]:
    return [
        rule["alert"]
        for group in load_yaml(ALERTS)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_rules_file_is_valid_for_prometheus() -> None:
    done = promtool("check", "rules", ALERTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in done.stdout


def test_promtool_unit_tests_pass() -> None:
    done = promtool("test", "rules", ALERTS_TEST.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = [
        case for test in load_yaml(ALERTS_TEST)["tests"] for case in test.get("alert_rule_test", [])
    ]
    for name in alert_names():
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c.get("exp_alerts") for c in mine), f"{name}: no case where it fires"
        assert any(not c.get("exp_alerts") for c in mine), f"{name}: no case where it is quiet"


def test_alerts_use_only_exported_metrics() -> None:
    exported = exported_metric_names() | {"up"}
    for group in load_yaml(ALERTS)["groups"]:
        for rule in group["rules"]:
            used = metric_names_in(rule["expr"])
            assert used, f"{rule['alert']}: no metric found in {rule['expr']!r}"
            assert used <= exported, f"{rule['alert']} uses unknown {sorted(used - exported)}"


def test_alerts_have_severity_and_words_for_people() -> None:
    for group in load_yaml(ALERTS)["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"].endswith(".")
            assert len(rule["annotations"]["description"]) > 60
