"""Secrets never leave the process; listeners stay on localhost; files the driver writes are private.

Full cycles run with known secret values set: the Pulumi passphrase, cloud credentials, Git and
GitHub tokens, a Prometheus bearer token and a password inside the Prometheus URL. Then every
output is searched for them: log records, the journal database files, ``status`` and
``history`` (text and JSON), the commits pushed in gitops mode and the pull-request request
bodies the GitHub API received, and the Pulumi command lines.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE
from cycle_support import TRACE, RecentPeakEngine, make_driver
from local_http import local_http_server
from soak_harness import STACK, Faults, KillableCli, make_project
from typer.testing import CliRunner

from driver.cli import app
from driver.gitops import GitOpsExecutor
from driver.journal import Journal
from driver.observe import DriverMetrics, parse_listen
from driver.service import Driver
from infra.config import DriverSettings, load_stack

T0 = datetime(2014, 4, 11, 0, 59, tzinfo=UTC)
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123",
    "GITHUB_TOKEN": "ghp_exampleGithubToken0123456789abcdef",
    "PULUMI_ACCESS_TOKEN": "pul-exampleAccessToken0123456789",
    "PROM_BEARER": "prom-bearer-token-0123456789",
}
URL_PASSWORD = "url-password-0123456789"
ALL_SECRETS = [PASSPHRASE, URL_PASSWORD, *SECRETS.values()]


class _GitHub(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _GitHub.bodies.append(body)
        answer = json.dumps({"html_url": "http://github.example/o/r/pull/1", "number": 1}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def github() -> Iterator[str]:
    _GitHub.bodies = []
    with local_http_server(_GitHub) as url:
        yield url


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def _gitops_project(root: Path, api: str) -> Path:
    """The soak project as a git repository with a bare remote, set up for gitops."""
    project = make_project(root / "project", TRACE, quantile=0.7)
    stack_file = project / "stacks" / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(
        stack_file.read_text().replace(
            "    mode: apply\n",
            f"    mode: gitops\n    gitops:\n      remote: origin\n      github_repo: o/r\n"
            f"      github_api: {api}\n",
        )
    )
    _git(project, "init", "--quiet", "-b", "main")
    _git(project, "config", "user.email", "driver@example.com")
    _git(project, "config", "user.name", "driver")
    _git(project, "add", ".")
    _git(project, "commit", "--quiet", "-m", "initial")
    _git(root, "clone", "--quiet", "--bare", str(project), "remote.git")
    _git(project, "remote", "add", "origin", str(root / "remote.git"))
    _git(project, "fetch", "--quiet", "origin")
    return project


def _leaks(text: str) -> list[str]:
    return [secret for secret in ALL_SECRETS if secret in text]


def test_no_secret_reaches_logs_journal_status_history_commits_or_pull_requests(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    github: str,
    private_state: Path,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    caplog.set_level("DEBUG")
    clock = [T0]

    # 1. apply mode, with a failing update and a hanging one on the way.
    applied = make_project(tmp_path / "apply", TRACE, quantile=0.7)
    cli = KillableCli(Faults(), hang_seconds=0.6)
    cli.fail("up", "halfway")
    journal = Journal()  # the default: SQLite in the state directory
    driver = make_driver(applied, cli=cli, journal=journal, clock=lambda: clock[0])
    for step in range(4):
        clock[0] = T0 + timedelta(minutes=5 * step)
        driver.run_cycle(now=clock[0])
    journal.release_lease(stack=STACK, holder=driver.holder)  # as a service does when it stops

    # 2. a Prometheus source with a bearer token and a password in its URL, which is down.
    leaky = make_project(tmp_path / "leaky", TRACE, quantile=0.7)
    stack_file = leaky / "stacks" / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(
        stack_file.read_text().replace(
            "    type: file\n    path: metrics.csv\n",
            f"    type: prometheus\n    url: http://mirrorcast:{URL_PASSWORD}@127.0.0.1:9/\n"
            "    bearer_token_env: PROM_BEARER\n    timeout: 1s\n",
        )
    )
    down = make_driver(leaky, cli=KillableCli(Faults()), journal=journal, clock=lambda: clock[0])
    report = down.run_cycle(now=T0)
    assert any("metric source" in line for line in report.degraded), report.degraded
    journal.release_lease(stack=STACK, holder=down.holder)

    # 3. gitops mode: a commit on a branch, a push, and a pull request through the API.
    project = _gitops_project(tmp_path / "gitops", github)
    config = load_stack(STACK, project)
    proposer = Driver(
        stack=STACK,
        root=project,
        mode="gitops",
        journal=journal,
        executor=GitOpsExecutor(stack=STACK, repo_root=project, settings=config.driver.gitops),
        engine=RecentPeakEngine(),
        metrics=DriverMetrics(),
        clock=lambda: T0,
        holder="gitops-1",
    )
    proposed = proposer.run_cycle(now=T0)
    assert proposed.outcome is not None and proposed.outcome.status == "proposed", proposed.outcome
    assert _GitHub.bodies, "the pull request was opened"

    # 4. status and history, as a person would read them.
    monkeypatch.chdir(applied)
    runner = CliRunner()
    outputs = {
        command: runner.invoke(app, [*command.split(), "--stack", STACK])
        for command in ("status", "status --json", "history", "history --json")
    }
    for command, result in outputs.items():
        assert result.exit_code == 0, f"{command}: {result.output}"

    places: dict[str, str] = {
        "log records": "\n".join(
            f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
        ),
        **{f"mirrorcast {cmd}": result.output for cmd, result in outputs.items()},
        "pulumi command lines": json.dumps(cli.calls),
        "pull request bodies": b"\n".join(_GitHub.bodies).decode(),
        "commits": _git(tmp_path / "gitops" / "remote.git", "log", "-p", "--all"),
    }
    journal.close()
    for path in sorted(private_state.glob("journal.db*")):
        places[f"journal file {path.name}"] = path.read_bytes().decode("latin-1")
    assert "journal file journal.db" in places
    found = {where: _leaks(text) for where, text in places.items() if _leaks(text)}
    assert found == {}, f"secrets found in: {found}"
    # The searches were not vacuous: each place holds what it should.
    assert "pools.web" in places["mirrorcast history --json"] and "mirror" in places["commits"]
    assert "metric source" in places["journal file journal.db"] or any(
        "metric source" in text for name, text in places.items() if name.startswith("journal")
    )


def test_metrics_and_every_listener_bind_to_localhost_by_default() -> None:
    assert parse_listen(DriverSettings().metrics_listen)[0] == "127.0.0.1"
    assert parse_listen(":9464") == ("127.0.0.1", 9464)
    server = DriverMetrics().serve("127.0.0.1:0")
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_the_journal_state_dir_and_pulumi_backend_are_owner_only(
    tmp_path: Path, private_state: Path
) -> None:
    os.umask(0o022)  # a typical umask: anything not made private on purpose is world-readable
    project = make_project(tmp_path / "project", TRACE, quantile=0.7)
    clock = [T0]
    journal = Journal()
    driver = make_driver(
        project, cli=KillableCli(Faults()), journal=journal, clock=lambda: clock[0]
    )
    for step in range(3):
        clock[0] = T0 + timedelta(minutes=5 * step)
        driver.run_cycle(now=clock[0])
    journal.close()

    assert _private(private_state)
    assert _private(private_state / "backend")
    files = sorted(private_state.glob("journal.db*"))
    assert files and all(_private(path) for path in files), [
        (p.name, oct(p.stat().st_mode)) for p in files
    ]


def test_every_file_the_driver_writes_under_the_state_dir_is_owner_only(
    tmp_path: Path, private_state: Path
) -> None:
    os.umask(0o022)
    from driver.state import state_dir
    from forecasting import ForecastEngine

    project = make_project(tmp_path / "project", TRACE, quantile=0.7)
    config = load_stack(STACK, project)
    journal = Journal()
    driver = make_driver(
        project,
        cli=KillableCli(Faults()),
        journal=journal,
        clock=lambda: T0,
        engine=ForecastEngine(config.forecast, cache_dir=state_dir() / "models", seed=0),
    )
    driver.run_cycle(now=T0)
    journal.close()

    public = [
        f"{path.relative_to(private_state)} {oct(stat.S_IMODE(path.stat().st_mode))}"
        for path in [private_state, *private_state.rglob("*")]
        if not _private(path)
    ]
    assert public == []
