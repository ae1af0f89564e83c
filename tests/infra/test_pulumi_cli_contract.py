"""``pulumi preview`` of every example stack with the policy pack, through the real CLI.

Also: a plan-mode driver reads the state such a backend holds (the last test).

Skipped when the CLI is not on PATH: it is a Go binary fetched from the internet, which the
build machines cannot install. The mock-based tests (constraints, moto, CrossGuard on captured
inputs) cover the program everywhere; this test checks that the CLI, its Python language host
and the pack's own virtualenv (created from PulumiPolicy.yaml and requirements.txt) agree
where the CLI exists. It runs on a local file backend in a temporary copy of the project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pulumi_harness import EXAMPLE_STACKS, PASSWORD, SSH_PUBLIC_KEY

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.pulumi_cli,
    pytest.mark.skipif(
        shutil.which("pulumi") is None,
        reason="the Pulumi CLI is not on PATH (install it from https://www.pulumi.com/docs/install/ to run this test)",
    ),
]


def _project_copy(tmp_path: Path) -> Path:
    """A copy of the project, so the CLI's salt, stack state and the pack's venv stay out of it."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    ignore = shutil.ignore_patterns("__pycache__", "venv")
    shutil.copytree(REPO / "infra", project / "infra", ignore=ignore)
    shutil.copytree(REPO / "stacks", project / "stacks")
    shutil.copytree(
        REPO / "policies" / "crossguard", project / "policies" / "crossguard", ignore=ignore
    )
    (project / ".venv").symlink_to(REPO / ".venv")
    return project


def _local_backend(backend: Path) -> dict[str, str]:
    """The CLI's environment for a local file backend at ``backend``."""
    return {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": "mirrorcast-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }


def _pulumi(project: Path, env: dict[str, str], *args: str, timeout: int = 600) -> str:
    done = subprocess.run(
        ["pulumi", *args, "--non-interactive"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout + done.stderr


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_every_example_stack_previews_with_the_policy_pack_on_a_local_backend(
    stack: str, tmp_path: Path
) -> None:
    project = _project_copy(tmp_path)
    backend = tmp_path / "state"
    backend.mkdir()
    env = {
        **_local_backend(backend),
        "MIRRORCAST_STACK_FILE": str(project / "stacks" / f"Pulumi.{stack}.yaml"),
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }
    _pulumi(project, env, "stack", "select", "--create", stack)
    for key, value in (
        ("mirrorcast-secrets:databasePassword", PASSWORD),
        ("mirrorcast-secrets:azureSshPublicKey", SSH_PUBLIC_KEY),
    ):
        _pulumi(project, env, "config", "set", "--secret", "--stack", stack, key, value)
    output = _pulumi(
        project,
        env,
        "preview",
        "--stack",
        stack,
        "--diff",
        "--policy-pack",
        str(project / "policies" / "crossguard"),
        timeout=1200,
    )
    # Without cloud credentials a provider may refuse to plan; the program and the pack must run.
    assert "mirrorcast:pool:Pool" in output, output
    assert "Traceback" not in output, output
    assert "mirrorcast-guardrails" in output, output  # the pack was loaded from its virtualenv
    assert "[mandatory]" not in output, output  # and found nothing wrong


def test_a_plan_driver_reads_the_outputs_the_cli_wrote_to_a_local_backend(tmp_path: Path) -> None:
    """``driver.stack_outputs.read_state_outputs`` reads the checkpoint a real ``pulumi up``
    wrote (project layout, as the CLI lays it out), with no CLI of its own.

    A Pulumi YAML program (the YAML language host ships with the CLI) that declares no
    resource and exports a ``pools`` output shaped like the real program's: no cloud needed.
    """
    from driver.stack_outputs import read_state_outputs

    project = tmp_path / "probe"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(
        "name: mirrorcast\n"
        "runtime: yaml\n"
        "outputs:\n"
        "  pools:\n"
        "    checkout:\n"
        "      ids:\n"
        "        primary:\n"
        "          target_group: targetgroup/checkout-primary-front-tg-7e8/73e2d6bc24d8a067\n"
        "          instance_group: checkout-primary-mig-1a2b3c4\n"
    )
    backend = tmp_path / "state"
    backend.mkdir()
    env = _local_backend(backend)
    _pulumi(project, env, "stack", "select", "--create", "probe")
    output = _pulumi(project, env, "up", "--yes", "--stack", "probe")
    outputs = read_state_outputs(
        backend_url=f"file://{backend}", project="mirrorcast", stack="probe"
    )
    assert outputs is not None, output
    assert outputs["pools"]["checkout"]["ids"]["primary"] == {
        "target_group": "targetgroup/checkout-primary-front-tg-7e8/73e2d6bc24d8a067",
        "instance_group": "checkout-primary-mig-1a2b3c4",
    }
