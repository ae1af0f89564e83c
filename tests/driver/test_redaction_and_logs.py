"""Secrets stay out of logs and journals; logs are JSON lines off a terminal."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from driver_helpers import NOW, flat

from driver.logs import JsonFormatter
from driver.observe import forecast_abs_error, parse_listen
from driver.redact import REDACTED, redact, redact_text


def test_secret_environment_values_are_redacted_wherever_they_appear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_abcdef123456")
    monkeypatch.setenv("MY_TOKEN", "s3cr3t-value")

    assert redact_text("push https://x:ghp_abcdef123456@github.com") == (
        f"push https://x:{REDACTED}@github.com"
    )
    assert redact_text("token s3cr3t-value", extra_env=["MY_TOKEN"]) == f"token {REDACTED}"


def test_secret_keys_and_pulumi_secure_values_are_redacted_in_structures() -> None:
    value = {
        "db": {"password": "hunter2", "host": "db.internal"},
        "api_token": "abc",
        "cert": {"secure": "AAABAJ..."},
        "list": [{"client_secret": "x"}, "plain"],
    }
    assert redact(value) == {
        "db": {"password": REDACTED, "host": "db.internal"},
        "api_token": REDACTED,
        "cert": REDACTED,
        "list": [{"client_secret": REDACTED}, "plain"],
    }


def test_json_log_lines_carry_level_logger_message_and_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct-horse")
    record = logging.LogRecord(
        "driver.service", logging.ERROR, __file__, 1, "passphrase is %s", ("correct-horse",), None
    )
    record.stack = "demo"

    line = json.loads(JsonFormatter().format(record))

    assert line["level"] == "error" and line["logger"] == "driver.service"
    assert line["message"] == f"passphrase is {REDACTED}"
    assert line["stack"] == "demo" and "time" in line


def test_forecast_error_compares_the_previous_forecast_with_what_was_observed() -> None:
    previous = flat("web", "cpu", issued=NOW, level=50.0)
    index = pd.date_range(NOW + timedelta(minutes=5), periods=3, freq="5min", tz="UTC")
    observed = pd.Series([55.0, 45.0, 60.0], index=index)

    error = forecast_abs_error(previous, observed, now=NOW + timedelta(minutes=15))

    assert error == pytest.approx((5 + 5 + 10) / 3)
    assert forecast_abs_error(previous, observed.iloc[:0], now=NOW) is None
    assert np.isfinite(error or 0)


def test_metrics_listen_must_be_host_and_port() -> None:
    assert parse_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    with pytest.raises(ValueError, match=r"driver\.metrics_listen must be host:port"):
        parse_listen("9464")
