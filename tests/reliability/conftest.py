"""Fixtures for the reliability tests: a private state directory and known secret values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

PASSPHRASE = "soak-passphrase-7f3a9c1e"
"""The Pulumi passphrase every reliability test runs with (grepped for in the secrets test)."""


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own state dir and a passphrase; nothing touches the real home."""
    state = tmp_path / "state"
    monkeypatch.setenv("MIRRORCAST_STATE_DIR", str(state))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    yield state
