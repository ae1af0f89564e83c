"""Crash safety: the driver process is SIGKILLed at chosen points of a cycle and restarted.

The driver runs as a real subprocess in apply mode with a fake ``pulumi`` on PATH (the stand-in
model of ``standin_model.py`` as a script, state in a JSON file). ``MIRRORCAST_PAUSE_AT`` makes
the driver stop at a named point and write a marker; the test then kills the whole process
group, restarts the driver, and checks the stack and the journal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from driver.journal import Journal
from infra.config import load_stack

HERE = Path(__file__).resolve().parent
AT = "2026-11-22T18:00:00Z"


@pytest.fixture
def crash_project(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo stack made quick to forecast and sure to fire, and a fake pulumi on PATH."""
    path = project / "stacks" / "Pulumi.demo.yaml"
    text = path.read_text()
    text = text.replace(
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 14d\n",
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 2d\n    models: [seasonal_naive]\n",
    ).replace(
        "when: predicted(cpu, p90) > 80% within 30m",
        "when: predicted(cpu, p90) > 1% within 30m\n          on_untrusted: fire",
    )
    path.write_text(text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "standin_model.py"}" "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_STATE", str(tmp_path / "pulumi-state.json"))
    return project


def driver(
    project: Path, *extra: str, pause: str | None = None, hang_up: bool = False
) -> subprocess.Popen[str]:
    env = dict(os.environ)
    marker = project.parent / "paused"
    marker.unlink(missing_ok=True)
    # A killed driver cannot clean up the Automation API's event-log directory; keep it inside
    # the test's own temporary directory rather than /tmp.
    scratch = project.parent / "tmp"
    scratch.mkdir(exist_ok=True)
    env["TMPDIR"] = str(scratch)
    if pause:
        env["MIRRORCAST_PAUSE_AT"] = pause
        env["MIRRORCAST_PAUSE_MARKER"] = str(marker)
    if hang_up:
        env["STANDIN_HANG_MARKER"] = str(marker)
    return subprocess.Popen(
        [sys.executable, "-c", "from driver.cli import main; main()", "run", "--stack", "demo",
         "--mode", "apply", "--once", "--json", *extra],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def run_to_end(project: Path, *extra: str) -> dict[str, Any]:
    process = driver(project, *extra)
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    return dict(json.loads(out))


def kill_at(
    project: Path, *, pause: str | None = None, hang_up: bool = False, extra: tuple[str, ...] = ()
) -> None:
    process = driver(project, *extra, pause=pause, hang_up=hang_up)
    marker = project.parent / "paused"
    deadline = time.monotonic() + 180
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(
                f"driver exited before the pause point: {process.stderr.read() if process.stderr else ''}"
            )
        assert time.monotonic() < deadline, "the driver never reached the pause point"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def pulumi_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "pulumi-state.calls"
    if not log.exists():
        return []
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return [[a for a in call if a != "--non-interactive"] for call in calls]


def state_settings(calls: list[list[str]], value: str) -> int:
    """How many `config set-all` invocations set the mirror's state to ``value``."""
    return sum(
        1
        for c in calls
        if c[:2] == ["config", "set-all"] and f"mirrorcast:pools.web.mirror.state={value}" in c
    )


def assert_journal_consistent(journal: Journal) -> None:
    assert journal.unfinished_plan(stack="demo") is None
    with journal.engine.connect() as c:
        statuses = {row[0] for row in c.execute(sa.text("select status from plans"))}
        orphans = c.execute(
            sa.text(
                "select count(*) from config_changes where plan_id not in (select id from plans)"
            )
        ).scalar()
    assert statuses <= {"planned", "applied"}, statuses
    assert orphans == 0


def test_killed_after_journaling_intent_the_restart_activates_once(
    crash_project: Path, tmp_path: Path
) -> None:
    kill_at(crash_project, pause="before-apply", extra=("--at", AT))
    assert state_settings(pulumi_calls(tmp_path), "active") == 0  # nothing happened yet

    report = run_to_end(crash_project, "--at", "2026-11-22T18:05:00Z")

    assert report["recovered"]["status"] == "applied"
    assert not any(d["action"] == "activate_mirror" for d in report["decisions"])
    calls = pulumi_calls(tmp_path)
    assert state_settings(calls, "active") == 1
    assert load_stack("demo", crash_project).pools["web"].mirror.state.value == "active"
    journal = Journal()
    assert journal.load_memory(stack="demo").pools["web"].activation_id is not None
    assert_journal_consistent(journal)


def test_killed_during_pulumi_up_the_restart_refreshes_and_finishes_without_reactivating(
    crash_project: Path, tmp_path: Path
) -> None:
    kill_at(crash_project, hang_up=True, extra=("--at", AT))

    report = run_to_end(crash_project, "--at", "2026-11-22T18:05:00Z")

    calls = pulumi_calls(tmp_path)
    verbs = [c[0] for c in calls if c[0] in ("up", "refresh")]
    # The killed up, then the restart's refresh. The plan changed only the mirror's state (its
    # weights wait for the mirror to be observed healthy), and the killed update had already
    # changed it, so the refreshed outputs match and nothing is repeated.
    assert verbs[:2] == ["up", "refresh"], verbs
    assert report["recovered"]["status"] == "applied"
    assert "nothing repeated" in report["recovered"]["summary"] or verbs[2:3] == ["up"]
    assert state_settings(calls, "active") == 1
    outputs = json.loads((tmp_path / "pulumi-state.json").read_text())["outputs"]["pools"]["web"]
    assert outputs["mirror_state"] == "active"
    assert_journal_consistent(Journal())


def test_a_rollback_interrupted_by_a_kill_is_not_lost(crash_project: Path, tmp_path: Path) -> None:
    run_to_end(crash_project, "--at", AT)
    Journal().request_rollback(
        stack="demo", pool="web", at=datetime.now(UTC), requested_by="ana", reason="false alarm"
    )
    kill_at(crash_project, pause="before-apply", extra=("--at", "2026-11-22T18:05:00Z"))

    report = run_to_end(crash_project, "--at", "2026-11-22T18:10:00Z")

    assert report["recovered"]["status"] == "applied"
    assert load_stack("demo", crash_project).pools["web"].mirror.state.value == "paused"
    calls = pulumi_calls(tmp_path)
    assert state_settings(calls, "active") == 1 and state_settings(calls, "paused") == 1
    journal = Journal()
    assert journal.pending_rollbacks(stack="demo") == []
    assert journal.load_memory(stack="demo").pools["web"].activation_id is None
    assert_journal_consistent(journal)
