"""Secrets under names only the stack config knows: redacted in every output, with one mask.

``driver.gitops.token_env: MC_GH_PAT`` (not ``GITHUB_TOKEN``) used to leak: a GitHub API (or a
proxy in front of it) that echoes the ``Authorization`` header in its error message put
``Bearer mcgh-SECRET-...`` into the journal, ``status``, ``history`` and the logs, because the
redactor only knew a fixed list of variable names. Now loading a config registers every
variable its ``*_env`` fields name (and every password in its URLs) with the one redactor that
every output goes through.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from cycle_support import TRACE, RecentPeakEngine
from local_http import local_http_server
from soak_harness import STACK, make_project
from typer.testing import CliRunner

from driver.cli import app
from driver.gitops import GitOpsExecutor
from driver.journal import Journal
from driver.logs import setup_logging
from driver.observe import DriverMetrics
from driver.service import Driver
from infra.config import (
    REDACTED,
    MirrorcastConfig,
    config_secret_env_names,
    load_stack,
    load_stack_file,
    redact,
    redact_text,
    register_secret_env,
)

T0 = datetime(2014, 4, 11, 0, 59, tzinfo=UTC)
TOKEN_ENV = "MC_GH_PAT"
TOKEN = "mcgh-SECRET-4f1d2c3b5a697887"


class _EchoingGitHub(BaseHTTPRequestHandler):
    """Refuses every pull request and quotes the request's Authorization header back."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        message = f"Validation Failed: header {self.headers.get('Authorization')} not allowed"
        answer = json.dumps({"message": message}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(autouse=True)
def driver_logging() -> Iterator[None]:
    """The root logger as the test found it, after a test sets up the driver's logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def github() -> Iterator[str]:
    with local_http_server(_EchoingGitHub) as url:
        yield url


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def gitops_project(root: Path, api: str, *, token_env: str = TOKEN_ENV) -> Path:
    """The soak project as a git repository with a bare remote, in gitops mode against ``api``."""
    project = make_project(root / "project", TRACE, quantile=0.7)
    stack_file = project / "stacks" / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(
        stack_file.read_text().replace(
            "    mode: apply\n",
            f"    mode: gitops\n    gitops:\n      remote: origin\n      github_repo: o/r\n"
            f"      github_api: {api}\n      token_env: {token_env}\n",
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


def test_a_token_under_a_custom_variable_name_reaches_no_output(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    private_state: Path,
    github: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    # The driver's own log output (JSON lines on stderr), as a service writes it.
    setup_logging(level="DEBUG", json_logs=True)
    project = gitops_project(tmp_path, github)
    config = load_stack(STACK, project)
    journal = Journal()
    driver = Driver(
        stack=STACK,
        root=project,
        mode="gitops",
        journal=journal,
        executor=GitOpsExecutor(
            stack=STACK, repo_root=project, settings=config.driver.gitops, api_attempts=1
        ),
        engine=RecentPeakEngine(),
        metrics=DriverMetrics(),
        clock=lambda: T0,
        holder="gitops-1",
    )
    report = driver.run_cycle(now=T0)
    # The API refused, quoting the header: the failure is reported, with the token masked.
    assert report.outcome is not None and report.outcome.status == "failed", report.outcome
    assert f"Bearer {REDACTED}" in report.outcome.summary, report.outcome.summary
    logging.getLogger("driver.service").warning("outcome: %s", report.outcome.summary)
    journal.release_lease(stack=STACK, holder=driver.holder)

    monkeypatch.chdir(project)
    runner = CliRunner()
    outputs = {
        command: runner.invoke(app, [*command.split(), "--stack", STACK])
        for command in ("status", "status --json", "history", "history --json")
    }
    for command, result in outputs.items():
        assert result.exit_code == 0, f"{command}: {result.output}"
    logs = capfd.readouterr().err
    journal.close()

    places = {
        "logs (stderr)": logs,
        **{f"mirrorcast {command}": result.output for command, result in outputs.items()},
        **{
            f"journal file {path.name}": path.read_bytes().decode("latin-1")
            for path in sorted(private_state.glob("journal.db*"))
        },
    }
    assert any(name.startswith("journal file") for name in places)
    leaks = [where for where, text in places.items() if TOKEN in text]
    assert leaks == [], f"{TOKEN_ENV}'s value found in: {leaks}"
    # Not vacuous: the refusal, masked, is in the journal and in history.
    assert f"Bearer {REDACTED}" in places["mirrorcast history --json"] or any(
        f"Bearer {REDACTED}" in text for where, text in places.items() if "journal" in where
    )
    assert "Bearer" in logs


class TestOneRedactor:
    def test_every_field_ending_in_env_names_a_secret_variable(self) -> None:
        config = MirrorcastConfig.model_validate(
            {
                **_minimal(),
                "metrics": {
                    "type": "prometheus",
                    "url": "http://p:9090",
                    "bearer_token_env": "PROM_PAT",
                },
                "driver": {"gitops": {"token_env": "MC_GH_PAT"}},
            }
        )
        assert config_secret_env_names(config) == {"PROM_PAT", "MC_GH_PAT"}

    def test_a_notify_channel_names_the_variable_holding_a_webhook_secret(self) -> None:
        data = _minimal()
        data["pools"]["web"]["rules"][0]["actions"].append(
            {"type": "notify", "message": "hot", "channel": "MC_PAGER_HOOK"}
        )
        config = MirrorcastConfig.model_validate(data)
        assert "MC_PAGER_HOOK" in config_secret_env_names(config)

    def test_a_password_in_a_configured_url_is_redacted_once_the_config_is_loaded(
        self, tmp_path: Path
    ) -> None:
        password = "pg-pass-8c1f0e2d"
        stack = tmp_path / "Pulumi.s.yaml"
        demo = (Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.demo.yaml").read_text()
        stack.write_text(
            demo.replace(
                "config:\n",
                f"config:\n  mirrorcast:driver:\n    journal_url: postgresql://mc:{password}@db/mc\n",
                1,
            )
        )
        load_stack_file(stack)
        assert redact_text(f"could not connect to postgresql://mc:{password}@db") == (
            f"could not connect to postgresql://mc:{REDACTED}@db"
        )

    def test_text_and_structures_use_the_same_mask(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "horse-battery")
        assert redact_text("p=horse-battery") == f"p={REDACTED}"
        assert redact({"note": "p=horse-battery", "password": "x"}) == {
            "note": f"p={REDACTED}",
            "password": REDACTED,
        }
        assert redact_text("t=abcd-1234", values=["abcd-1234"]) == f"t={REDACTED}"


def _minimal() -> dict[str, Any]:
    """The demo stack's mirrorcast config as a dict (through the loader, so it is valid)."""
    demo = load_stack("demo", Path(__file__).resolve().parents[2])
    return demo.model_dump(mode="json", exclude={"metrics", "driver"})


def test_logs_from_setup_logging_redact_with_the_one_mask(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    register_secret_env(TOKEN_ENV)
    setup_logging(level="INFO", json_logs=True)
    logging.getLogger("driver.test").warning("token %s", TOKEN)
    line = json.loads(capfd.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == f"token {REDACTED}"
