"""Fixtures for the driver's tests: a throwaway project, a private state dir, plans to apply."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's Pulumi.yaml, demo stack and demo metrics in a temp dir."""
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(REPO / "stacks" / "Pulumi.demo.yaml", root / "stacks" / "Pulumi.demo.yaml")
    shutil.copytree(REPO / "examples" / "demo", root / "examples" / "demo")
    return root


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own state dir and a passphrase; nothing touches the real home."""
    state = tmp_path / "state"
    monkeypatch.setenv("MIRRORCAST_STATE_DIR", str(state))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct-horse-battery-staple")
    yield state


# boto3 pointed at moto's server (tests/driver/aws_world.py; the server is tests/conftest.py's).
from aws_world import aws  # noqa: E402

__all__ = ["aws"]
