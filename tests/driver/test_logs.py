"""The driver's log setup: JSON lines on a non-terminal, redacted, always on the current stderr."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from driver.logs import setup_logging


@pytest.fixture
def restore_root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_records_go_to_stderr_as_it_is_when_they_are_emitted(
    monkeypatch: pytest.MonkeyPatch, restore_root_logger: logging.Logger
) -> None:
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    setup_logging(level="INFO", json_logs=True)
    logging.getLogger("mirrorcast.test").info("one")

    # Whoever replaced stderr closed the old stream (a test runner's capture, a daemon).
    first_text = first.getvalue()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logging.getLogger("mirrorcast.test").info("two")

    assert json.loads(first_text.splitlines()[-1])["message"] == "one"
    assert json.loads(second.getvalue().splitlines()[-1])["message"] == "two"
    assert "Logging error" not in second.getvalue()


def test_secret_environment_values_are_redacted_in_log_records(
    monkeypatch: pytest.MonkeyPatch, restore_root_logger: logging.Logger
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    setup_logging(level="INFO", json_logs=True)
    logging.getLogger("mirrorcast.test").info(
        "token=%s", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    )

    assert "ghp_abcdefghijklmnopqrstuvwxyz0123456789" not in stream.getvalue()
    assert "token=[redacted]" in stream.getvalue()
