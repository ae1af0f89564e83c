"""Contract tests: the apply executor against the real Pulumi CLI with a local file backend.

They check that what the stand-in assumes holds for the real CLI: stack creation with the
passphrase provider, ``config set-all --path`` writing typed values into the stack file, and a
lock left in the backend surfacing as ``ConcurrentUpdateError`` (reported, never cancelled).
``up`` is not exercised here: the program declares cloud resources and there is no account.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from driver_helpers import activation_plan
from pulumi.automation import ConfigValue

from driver.automation import AutomationExecutor
from driver.executor import config_value_text
from infra.config import load_stack

pytestmark = [
    pytest.mark.pulumi_cli,
    pytest.mark.skipif(
        shutil.which("pulumi") is None,
        reason="the Pulumi CLI is not on PATH (install: curl -fsSL https://get.pulumi.com | sh)",
    ),
]


def test_the_real_cli_sets_only_the_planned_keys_by_path(
    project: Path, private_state: Path
) -> None:
    executor = AutomationExecutor(stack="demo", project_root=project)
    executor.check_ready()
    stack = executor.stack()
    plan = activation_plan(project)
    stack.set_all_config(
        {f"mirrorcast:{c.path}": ConfigValue(value=config_value_text(c.new)) for c in plan.changes},
        path=True,
    )
    config = load_stack("demo", project)
    assert config.pools["web"].mirror.state.value == "active"
    assert config.pools["web"].balancer.weights.mirror == 30  # a number, not the string "30"
    assert (private_state / "backend" / ".pulumi").is_dir()


def test_a_lock_left_in_the_backend_is_reported_as_stale(
    project: Path, private_state: Path
) -> None:
    executor = AutomationExecutor(
        stack="demo", project_root=project, lock_attempts=2, lock_wait=0.01
    )
    executor.stack()
    locks = private_state / "backend" / ".pulumi" / "locks" / "organization" / "mirrorcast" / "demo"
    locks.mkdir(parents=True, exist_ok=True)
    (locks / f"{uuid.uuid4()}.json").write_text(
        json.dumps(
            {
                "pid": 1,
                "username": "someone",
                "hostname": "elsewhere",
                "timestamp": "2026-11-22T00:00:00Z",
            }
        )
    )

    outcome = executor.apply(activation_plan(project), plan_id="p1")

    assert outcome.status == "failed"
    assert "stale" in outcome.summary and "pulumi cancel" in outcome.summary
