"""``pulumi preview`` of the demo stack with the real CLI (skipped when it is not installed).

The CLI is a Go binary fetched from the internet, which the build machines cannot install; the
mock-based tests cover the program everywhere, and this test checks that the CLI agrees where
the CLI exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.pulumi_cli,
    pytest.mark.skipif(
        shutil.which("pulumi") is None,
        reason="the Pulumi CLI is not on PATH (install it from https://www.pulumi.com/docs/install/ to run this test)",
    ),
]


def _project_copy(tmp_path: Path) -> Path:
    """A copy of the project, so the CLI's salt and stack state never touch the checkout."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(REPO / "infra", project / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "stacks", project / "stacks")
    (project / ".venv").symlink_to(REPO / ".venv")
    return project


def test_demo_stack_previews_with_a_local_backend(tmp_path: Path) -> None:
    project = _project_copy(tmp_path)
    backend = tmp_path / "state"
    backend.mkdir()
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": "mirrorcast-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }
    subprocess.run(
        ["pulumi", "stack", "select", "--create", "demo", "--non-interactive"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    preview = subprocess.run(
        ["pulumi", "preview", "--stack", "demo", "--non-interactive", "--diff"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = preview.stdout + preview.stderr
    # Without cloud credentials the AWS provider may refuse to plan; the program itself must run.
    assert "mirrorcast:pool:Pool" in output, output
    assert "Traceback" not in output, output
