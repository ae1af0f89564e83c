"""gitops mode against a real git repository with a bare remote and a local GitHub API stand-in."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from driver_helpers import activation_plan

from driver.gitops import GitOpsExecutor
from infra.config import GitOpsSettings

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

TOKEN = "ghp_test_token_0123456789abcdef"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(project: Path, tmp_path: Path) -> Path:
    """The project as a git work tree on ``main``, pushed to a bare ``origin``."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(remote)], check=True)
    stack = project / "stacks" / "Pulumi.demo.yaml"
    stack.write_text(
        stack.read_text() + "  mirrorcast:driver:\n    gitops:\n      remote: origin\n"
    )
    git(project, "init", "--quiet", "-b", "main")
    git(project, "config", "user.name", "Test Person")
    git(project, "config", "user.email", "person@example.com")
    git(project, "add", "Pulumi.yaml", "stacks", "examples")
    git(project, "commit", "--quiet", "-m", "initial")
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "--quiet", "origin", "main")
    return project


class FakeGitHub:
    """A loopback HTTP server that records requests and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responses: list[tuple[int, dict[str, str], Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                outer.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(body) if body else None,
                    }
                )
                status, headers, payload = (
                    outer.responses.pop(0)
                    if outer.responses
                    else (500, {}, {"message": "unscripted"})
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub()
    yield server
    server.close()


def executor(repo: Path, github: FakeGitHub | None = None, **settings: Any) -> GitOpsExecutor:
    options: dict[str, Any] = {"github_repo": "acme/infra", "remote": "origin"}
    if github is not None:
        options["github_api"] = github.url
    options.update(settings)
    return GitOpsExecutor(
        stack="demo", repo_root=repo, settings=GitOpsSettings(**options), max_wait=5, backoff=0.01
    )


def test_the_branch_changes_exactly_the_planned_keys_and_keeps_comments(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    plan = activation_plan(repo)

    outcome = executor(repo).apply(plan, plan_id="p1")

    assert outcome.status == "proposed"
    assert "open the pull request yourself" in outcome.summary
    diff = git(repo, "diff", "-U0", "origin/main", "origin/mirrorcast/p1", "--", "stacks")
    changed = [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert sorted(changed) == sorted(
        [
            "-          min: 2",
            "+          min: 6",
            "-          desired: 4   # the cloud autoscaler owns desired; mirrorcast raises min",
            "+          desired: 6   # the cloud autoscaler owns desired; mirrorcast raises min",
            "-        state: paused",
            "+        state: active",
            "-          primary: 100",
            "+          primary: 70",
            "-          mirror: 0",
            "+          mirror: 30",
        ]
    )
    message = git(repo, "log", "-1", "--format=%B", "origin/mirrorcast/p1")
    assert "predicted-cpu fired" in message and "Mirrorcast-Plan: p1" in message
    # The person's checkout is untouched: still on main, clean, stack file as committed.
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "worktree", "list").count("\n") == 0


def test_a_pull_request_is_opened_with_the_token_and_the_explanation(
    repo: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.responses.append((201, {}, {"html_url": "https://github.com/acme/infra/pull/7"}))

    outcome = executor(repo, github).apply(activation_plan(repo), plan_id="p2")

    assert outcome.status == "proposed"
    assert outcome.details["pull_request"] == "https://github.com/acme/infra/pull/7"
    (request,) = github.requests
    assert request["method"] == "POST" and request["path"] == "/repos/acme/infra/pulls"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Accept"] == "application/vnd.github+json"
    assert request["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
    body = request["json"]
    assert body["head"] == "mirrorcast/p2" and body["base"] == "main"
    assert body["title"] == "mirrorcast: activate mirror on web"
    assert "predicted-cpu fired" in body["body"]
    assert "`pools.web.mirror.state`: `'paused'` -> `'active'`" in body["body"]
    assert TOKEN not in json.dumps(body)


def test_a_rate_limited_pull_request_is_retried_after_the_advertised_wait(
    repo: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.responses += [
        (403, {"X-RateLimit-Remaining": "0", "Retry-After": "0"}, {"message": "rate limited"}),
        (502, {}, {"message": "bad gateway"}),
        (201, {}, {"html_url": "https://github.com/acme/infra/pull/8"}),
    ]

    outcome = executor(repo, github).apply(activation_plan(repo), plan_id="p3")

    assert outcome.status == "proposed", outcome.summary
    assert len(github.requests) == 3


def test_a_long_rate_limit_fails_now_and_leaves_the_next_cycle_to_retry(
    repo: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.responses.append((429, {"Retry-After": "3600"}, {"message": "secondary rate limit"}))

    outcome = executor(repo, github).apply(activation_plan(repo), plan_id="p4")

    assert outcome.status == "failed"
    assert "rate limit" in outcome.summary and "next cycle" in outcome.summary
    assert len(github.requests) == 1


def test_a_rejected_token_is_one_clear_failure(
    repo: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.responses.append((401, {}, {"message": "Bad credentials"}))

    outcome = executor(repo, github).apply(activation_plan(repo), plan_id="p5")

    assert outcome.status == "failed"
    assert "rejected the token" in outcome.summary
    assert TOKEN not in outcome.summary


def test_a_branch_already_pushed_for_the_plan_is_reused_not_pushed_again(
    repo: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.responses += [
        (500, {}, {"message": "boom"}),
        (500, {}, {"message": "boom"}),
        (500, {}, {"message": "boom"}),
        (201, {}, {"html_url": "https://github.com/acme/infra/pull/9"}),
    ]
    run = executor(repo, github)

    first = run.apply(activation_plan(repo), plan_id="p6")
    second = run.apply(activation_plan(repo), plan_id="p6")

    assert first.status == "failed" and second.status == "proposed"
    assert first.details["commit"] == second.details["commit"]
    assert git(repo, "rev-list", "--count", "origin/main..origin/mirrorcast/p6") == "1"


def test_a_push_the_remote_rejects_is_reported(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    hook = tmp_path / "remote.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'branch creation is not allowed' >&2\nexit 1\n")
    hook.chmod(0o755)

    outcome = executor(repo).apply(activation_plan(repo), plan_id="p7")

    assert outcome.status == "failed"
    assert "rejected" in outcome.summary and "branch protection" in outcome.summary
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_gitops_needs_the_configured_remote(repo: Path) -> None:
    from driver.executor import DriverError

    with pytest.raises(DriverError, match="remote 'upstream'"):
        executor(repo, remote="upstream").check_ready()


def test_gitops_refuses_to_push_when_no_remote_is_configured(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clone has an 'origin'; without driver.gitops.remote nothing may be pushed to it."""
    from driver.executor import DriverError
    from infra.config import GitOpsSettings

    unset = GitOpsExecutor(stack="demo", repo_root=repo, settings=GitOpsSettings())

    with pytest.raises(DriverError, match=r"driver\.gitops\.remote, which is not set"):
        unset.check_ready()
    with pytest.raises(DriverError, match=r"driver\.gitops\.remote"):
        unset.apply(activation_plan(repo), plan_id="p1")
    assert git(repo, "ls-remote", "--heads", "origin", "mirrorcast/*") == ""


def test_the_outcome_says_which_remote_it_pushed_to(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)

    outcome = executor(repo).apply(activation_plan(repo), plan_id="p1")

    assert outcome.status == "proposed", outcome.summary
    assert f"pushed mirrorcast/p1 to origin ({tmp_path / 'remote.git'})" in outcome.summary


def test_a_proposal_is_made_once_and_its_memory_is_adopted_when_merged(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from driver_helpers import NOW, ScriptedEngine

    from driver.service import Driver

    monkeypatch.delenv("GITHUB_TOKEN", raising=False)

    def cycle(minutes: int) -> Any:
        driver = Driver(
            stack="demo",
            root=repo,
            mode="gitops",
            engine=ScriptedEngine({"cpu": 95.0, "rps": 100.0}),
            clock=lambda: NOW + timedelta(minutes=minutes),
        )
        with driver:  # as `mirrorcast run --once` does: each run releases the stack's lease
            return driver, driver.run_cycle(now=NOW + timedelta(minutes=minutes))

    driver, first = cycle(0)
    assert first.outcome.status == "proposed", first.outcome
    assert driver.journal.load_memory(stack="demo").pools == {}  # not merged: not remembered

    _, second = cycle(5)
    assert second.outcome.status == "planned" and "already proposed" in second.outcome.summary
    assert git(repo, "ls-remote", "--heads", "origin", "mirrorcast/*").count("\n") == 0

    git(repo, "push", "--quiet", "origin", f"origin/mirrorcast/{first.plan_id}:refs/heads/main")
    driver, third = cycle(10)

    (merged,) = [p for p in driver.journal.plans(stack="demo", limit=10) if p.id == first.plan_id]
    assert merged.status == "applied" and merged.outcome == "merged; its memory adopted"
    assert driver.journal.load_memory(stack="demo").pools["web"].activation_id is not None
    assert not any(d.action == "activate_mirror" for d in third.result.plan.decisions)
