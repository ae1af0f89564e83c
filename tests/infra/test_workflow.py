"""The deployment workflow (.github/workflows/mirrorcast.yml): which stacks it previews/deploys.

The job-list step's own shell script runs here in a throwaway git repository with the changes
a pull request would bring (a program change, a stack edit, a new stack, a deleted stack), so
what is checked is the script GitHub would run, not a description of it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "mirrorcast.yml"


def _workflow() -> dict[str, Any]:
    return YAML(typ="safe").load(WORKFLOW.read_text())


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "stacks").mkdir(parents=True)
    (root / "infra").mkdir()
    for stack in ("demo", "gcp-web"):
        (root / "stacks" / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    (root / "infra" / "aws.py").write_text("# program\n")
    (root / "Pulumi.yaml").write_text("name: mirrorcast\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return root


def _stacks_for(repo: Path, change: Any) -> list[str]:
    """Make ``change`` in a new commit, run the job-list step and return its list."""
    base = _git(repo, "rev-parse", "HEAD")
    change(repo)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "change")
    head = _git(repo, "rev-parse", "HEAD")
    (step,) = [s for s in _workflow()["jobs"]["stacks"]["steps"] if s.get("id") == "changed"]
    output = repo / "github_output"
    output.write_text("")
    subprocess.run(
        ["bash", "-c", step["run"]],
        cwd=repo,
        check=True,
        env={**os.environ, "BASE": base, "HEAD": head, "GITHUB_OUTPUT": str(output)},
        timeout=60,
    )
    (line,) = output.read_text().splitlines()
    assert line.startswith("list=")
    return json.loads(line.removeprefix("list="))


def test_a_program_only_change_previews_and_deploys_every_stack(repo: Path) -> None:
    # Defect 10: infra/** triggered the workflow but the job list held only changed stack files.
    assert _stacks_for(repo, lambda r: (r / "infra" / "aws.py").write_text("# changed\n")) == [
        "demo",
        "gcp-web",
    ]


def test_a_policy_pack_change_previews_every_stack(repo: Path) -> None:
    def change(r: Path) -> None:
        (r / "policies" / "crossguard").mkdir(parents=True)
        (r / "policies" / "crossguard" / "checks.py").write_text("# stricter\n")

    assert _stacks_for(repo, change) == ["demo", "gcp-web"]


def test_a_stack_file_change_deploys_that_stack_only(repo: Path) -> None:
    assert _stacks_for(
        repo, lambda r: (r / "stacks" / "Pulumi.demo.yaml").write_text("config: {a: 1}\n")
    ) == ["demo"]


def test_a_new_stack_is_deployed_and_created_by_upsert(repo: Path) -> None:
    assert _stacks_for(
        repo, lambda r: (r / "stacks" / "Pulumi.eu.yaml").write_text("config: {}\n")
    ) == ["eu"]
    steps = {s.get("name"): s for s in _workflow()["jobs"]["deploy"]["steps"]}
    assert steps["Preview"]["with"]["upsert"] is True
    assert steps["Update"]["with"]["upsert"] is True


def test_a_deleted_stack_file_is_not_a_failing_job(repo: Path) -> None:
    # Defect 10: a deleted stack file became a job that could only fail.
    assert _stacks_for(repo, lambda r: (r / "stacks" / "Pulumi.gcp-web.yaml").unlink()) == []


def test_previews_and_updates_run_the_policy_pack_with_oidc_credentials() -> None:
    workflow = _workflow()
    deploy = workflow["jobs"]["deploy"]
    steps = {s.get("name"): s for s in deploy["steps"]}
    for name in ("Preview", "Update"):
        assert steps[name]["with"]["policyPacks"] == "policies/crossguard"
    assert workflow["permissions"]["id-token"] == "write"
    text = WORKFLOW.read_text()
    # No long-lived cloud keys: AWS, Azure and GCP come from OIDC federation.
    for secret in ("AWS_SECRET_ACCESS_KEY", "ARM_CLIENT_SECRET", "GOOGLE_CREDENTIALS"):
        assert secret not in text
    assert steps["AWS credentials (OIDC)"]["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert deploy["env"]["MIRRORCAST_STACK_FILE"] == "stacks/Pulumi.${{ matrix.stack }}.yaml"
