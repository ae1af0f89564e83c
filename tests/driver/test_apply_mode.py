"""apply mode through the real ``pulumi.automation`` code against a recording stand-in CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from driver_helpers import ACTIVATE, NOW, activation_plan
from pulumi_standin import StandInPulumi

from driver.automation import MISSING_CLI_MESSAGE, AutomationExecutor
from driver.executor import DriverError, output_mismatches
from driver.journal import PlanRecord
from infra.config import load_stack


def executor(root: Path, cli: StandInPulumi, **options: Any) -> AutomationExecutor:
    options.setdefault("lock_wait", 0.01)
    return AutomationExecutor(stack="demo", project_root=root, pulumi_command=cli, **options)


def record_of(plan_id: str, changes: list[Any]) -> PlanRecord:
    return PlanRecord(
        id=plan_id,
        cycle_id=1,
        stack="demo",
        created_at=NOW,
        status="applying",
        explanation="",
        changes=[{"path": c.path, "old": c.old, "new": c.new} for c in changes],
        decisions=[],
        rules=[],
        outcome=None,
    )


def test_apply_sets_only_the_changed_keys_by_path_then_runs_up_and_reads_outputs(
    project: Path, private_state: Path
) -> None:
    cli = StandInPulumi()
    before = (project / "stacks" / "Pulumi.demo.yaml").read_text()

    outcome = executor(project, cli).apply(activation_plan(project), plan_id="p1")

    assert outcome.status == "applied", outcome.summary
    assert cli.commands("stack", "select") == [["stack", "select", "--stack", "demo"]]
    assert cli.commands("stack", "init") == [
        ["stack", "init", "demo", "--secrets-provider", "passphrase"]
    ]
    (set_all,) = cli.commands("config", "set-all")
    assert set_all == [
        "config", "set-all", "--stack", "demo", "--path",
        "--plaintext", "mirrorcast:pools.web.mirror.state=active",
        "--plaintext", "mirrorcast:pools.web.balancer.weights.primary=70",
        "--plaintext", "mirrorcast:pools.web.balancer.weights.mirror=30",
        "--plaintext", "mirrorcast:pools.web.primary.capacity.desired=6",
        "--plaintext", "mirrorcast:pools.web.primary.capacity.min=6",
    ]  # fmt: skip
    (up,) = cli.commands("up")
    assert up[:3] == ["up", "--yes", "--skip-preview"]
    assert "--event-log" in up and up[-2:] == ["--stack", "demo"]
    assert ["stack", "output", "--json", "--stack", "demo"] in cli.commands("stack", "output")
    # Only the planned keys changed in the stack file; the rest of the config is as it was.
    after = load_stack("demo", project)
    assert after.pools["web"].mirror.state.value == "active"
    assert after.pools["web"].balancer.weights.mirror == 30
    assert after.pools["web"].primary.capacity.model_dump() == {"min": 6, "max": 20, "desired": 6}
    assert "rules" in before and after.pools["web"].rules[0].name == "predicted-cpu"
    assert output_mismatches(after, outcome.outputs) == []
    # The file backend sits in the private state dir; the passphrase is inherited, never copied.
    env = cli.envs[-1]
    assert env["PULUMI_BACKEND_URL"] == f"file://{private_state / 'backend'}"
    assert all("correct-horse" not in value for e in cli.envs for value in e.values())
    assert (private_state / "backend").stat().st_mode & 0o777 == 0o700


def test_a_plan_without_changes_runs_nothing(project: Path) -> None:
    cli = StandInPulumi()
    outcome = executor(project, cli).apply(activation_plan(project, changes=[]), plan_id="p0")
    assert outcome.status == "applied" and cli.calls == []


def test_update_progress_comes_from_engine_events(project: Path) -> None:
    cli = StandInPulumi()
    seen: list[str] = []

    def progress(event: Any) -> None:
        for kind in ("resource_pre_event", "res_outputs_event", "summary_event"):
            if getattr(event, kind) is not None:
                seen.append(kind)

    executor(project, cli, progress=progress).apply(activation_plan(project), plan_id="p1")

    assert seen == ["resource_pre_event", "res_outputs_event", "summary_event"]


def test_a_lock_held_by_another_update_is_waited_out_with_backoff(project: Path) -> None:
    cli = StandInPulumi()
    cli.fail("up", "locked", "locked")

    outcome = executor(project, cli, lock_attempts=4).apply(activation_plan(project), plan_id="p1")

    assert outcome.status == "applied"
    assert len(cli.commands("up")) == 3


def test_a_lock_that_never_clears_is_reported_as_possibly_stale_and_not_cancelled(
    project: Path,
) -> None:
    cli = StandInPulumi()
    cli.fail("up", *["locked"] * 3)

    outcome = executor(project, cli, lock_attempts=3).apply(activation_plan(project), plan_id="p1")

    assert outcome.status == "failed"
    assert "stale" in outcome.summary and "pulumi cancel" in outcome.summary
    assert cli.commands("cancel") == []


def test_an_update_failing_half_way_fails_and_the_retry_completes_it(project: Path) -> None:
    cli = StandInPulumi()
    cli.fail("up", "halfway")
    run = executor(project, cli)

    first = run.apply(activation_plan(project), plan_id="p1")
    assert first.status == "failed"
    assert "throttled" in first.summary

    retry = run.apply(activation_plan(project, changes=[]), plan_id="p2", retry_update=True)
    assert retry.status == "applied"
    assert len(cli.commands("config", "set-all")) == 1  # the keys were set once
    assert output_mismatches(load_stack("demo", project), retry.outputs) == []


def test_an_update_that_outlives_the_timeout_is_left_unfinished(project: Path) -> None:
    cli = StandInPulumi(hang_seconds=1.0)
    cli.fail("up", "hang")

    outcome = executor(project, cli, update_timeout=timedelta(seconds=0.2)).apply(
        activation_plan(project), plan_id="p1"
    )

    assert outcome.status == "unfinished"
    assert "did not finish within" in outcome.summary


def test_outputs_that_disagree_with_the_plan_are_a_mismatch(project: Path) -> None:
    cli = StandInPulumi()
    cli.fail("up", "wrong_outputs")

    outcome = executor(project, cli).apply(activation_plan(project), plan_id="p1")

    assert outcome.status == "mismatch"
    assert "pools.web.weights.mirror: outputs show 0, intended 30" in outcome.summary


def test_recovering_a_completed_update_refreshes_and_repeats_nothing(project: Path) -> None:
    cli = StandInPulumi()
    run = executor(project, cli)
    run.apply(activation_plan(project), plan_id="p1")
    ups = len(cli.commands("up"))

    outcome = AutomationExecutor(stack="demo", project_root=project, pulumi_command=cli).recover(
        record_of("p1", ACTIVATE), load_stack("demo", project)
    )

    assert outcome.status == "applied" and "nothing repeated" in outcome.summary
    assert len(cli.commands("refresh")) == 1
    assert len(cli.commands("up")) == ups
    assert len(cli.commands("config", "set-all")) == 1


def test_recovering_an_update_killed_before_its_config_was_set_finishes_it(
    project: Path,
) -> None:
    cli = StandInPulumi()

    outcome = executor(project, cli).recover(record_of("p1", ACTIVATE), load_stack("demo", project))

    assert outcome.status == "applied", outcome.summary
    order = [c[1] for c in cli.calls if c[1] in ("refresh", "config", "up")]
    assert order == ["refresh", "config", "up"]
    assert load_stack("demo", project).pools["web"].mirror.state.value == "active"


def test_apply_mode_without_the_cli_fails_at_start_in_one_sentence(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(project))  # no pulumi here
    with pytest.raises(DriverError) as caught:
        AutomationExecutor(stack="demo", project_root=project).check_ready()
    message = str(caught.value)
    assert message == MISSING_CLI_MESSAGE
    assert "install" in message and "--mode plan" in message and "gitops" in message
    assert "\n" not in message


def test_apply_mode_without_a_passphrase_fails_at_start(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    with pytest.raises(DriverError, match="PULUMI_CONFIG_PASSPHRASE"):
        executor(project, StandInPulumi()).check_ready()
