"""The operator's command line: settings that would make it spin are refused, in one line."""

from __future__ import annotations

import pytest

from aideploy.__main__ import parse_args
from aideploy.config import OperatorConfig


@pytest.mark.parametrize("value", ["0", "-1", "0.4", "nan", "inf", "x"])
def test_a_notify_interval_under_half_a_second_is_refused(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args([f"--notify-interval={value}"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("aideploy-operator: error: argument --notify-interval:")


@pytest.mark.parametrize("value", ["0", "-2", "0.1"])
def test_the_environment_s_notify_interval_is_checked_too(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIDEPLOY_NOTIFY_INTERVAL", value)
    with pytest.raises(ValueError, match=r"at least 0\.5 seconds"):
        OperatorConfig.from_env()
    with pytest.raises(SystemExit):
        parse_args([])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        error
        == f"aideploy-operator: error: AIDEPLOY_NOTIFY_INTERVAL={value!r}: must be at least 0.5 seconds"
    )


@pytest.mark.parametrize(("value", "seconds"), [("0.5", 0.5), ("2", 2.0), ("30", 30.0)])
def test_a_notify_interval_of_half_a_second_or_more_is_taken(value: str, seconds: float) -> None:
    assert parse_args([f"--notify-interval={value}"]).notify_interval == seconds
