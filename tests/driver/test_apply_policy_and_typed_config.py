"""apply mode runs the CrossGuard pack with every update and writes config with its types.

Through the real ``pulumi.automation`` code against the recording stand-in CLI, which stores
config the way the real CLI documents (``--path``: integers and booleans typed, everything else
a string) and prints the pack's stack-policy violations the way the CLI does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from driver_helpers import ACTIVATE, NOW, ScriptedEngine, activation_plan
from pulumi_standin import StandInPulumi
from ruamel.yaml import YAML

from driver.automation import AutomationExecutor
from driver.journal import PlanRecord
from driver.service import Driver, build_executor
from infra.config import load_stack
from policies import ConfigChange

STACK = Path("stacks") / "Pulumi.demo.yaml"


def _apply_executor(project: Path, cli: StandInPulumi) -> AutomationExecutor:
    executor = build_executor(
        "apply", stack="demo", root=project, config=load_stack("demo", project), pulumi_command=cli
    )
    assert isinstance(executor, AutomationExecutor)
    executor.lock_wait = 0.01
    return executor


def _stack_yaml(project: Path) -> dict:
    return YAML(typ="safe").load((project / STACK).read_text())["config"]


# --------------------------------------------------------------------------- the policy pack


def test_every_up_in_apply_mode_runs_the_policy_pack_by_default(project: Path) -> None:
    cli = StandInPulumi()

    outcome = _apply_executor(project, cli).apply(activation_plan(project), plan_id="p1")

    assert outcome.status == "applied", outcome.summary
    (up,) = cli.commands("up")
    assert up[up.index("--policy-pack") + 1] == str(project / "policies" / "crossguard")
    assert cli.envs[-1]["MIRRORCAST_STACK_FILE"] == str(project / STACK)


def test_policy_packs_can_be_turned_off_in_the_stack(project: Path) -> None:
    stack_file = project / STACK
    stack_file.write_text(
        stack_file.read_text().replace(
            "config:\n", "config:\n  mirrorcast:policy:\n    packs: []\n", 1
        )
    )
    cli = StandInPulumi()

    _apply_executor(project, cli).apply(activation_plan(project), plan_id="p1")

    (up,) = cli.commands("up")
    assert "--policy-pack" not in up


def test_a_policy_violation_stops_the_update_with_the_message_in_journal_and_report(
    project: Path,
) -> None:
    # A person removed the cost tag the stack's policy requires.
    stack_file = project / STACK
    stack_file.write_text(stack_file.read_text().replace("    cost-center: web-platform\n", ""))
    cli = StandInPulumi()
    driver = Driver(
        stack="demo",
        root=project,
        mode="apply",
        executor=_apply_executor(project, cli),
        engine=ScriptedEngine({"cpu": 95.0, "rps": 100.0}),
        holder="test-driver",
        clock=lambda: NOW,
    )

    report = driver.run_cycle(now=NOW)

    message = (
        "mirrorcast-stack-config: mirrorcast:tags lacks the cost tag(s) cost-center "
        "(policy.required_tags) (pulumi:pulumi:Stack: mirrorcast-demo)"
    )
    assert report.outcome is not None and report.outcome.status == "failed"
    assert message in report.outcome.summary
    assert report.outcome.details["policy_violations"] == [message]
    (record,) = driver.journal.plans(stack="demo")
    assert record.outcome is not None and message in str(record.outcome)
    assert cli.model.updates == 0  # nothing was deployed


# --------------------------------------------------------------------------- typed config


def test_the_stand_in_stores_a_path_value_the_way_the_real_cli_does(project: Path) -> None:
    # https://www.pulumi.com/docs/iac/cli/commands/pulumi_config_set/: with --path, "true" and
    # "false" are booleans, integers are numbers, all other values strings.
    cli = StandInPulumi()
    stack = _apply_executor(project, cli).stack()
    from pulumi import automation as auto

    stack.set_all_config(
        {
            "mirrorcast:pools.web.mirror.percent": auto.ConfigValue("12.5"),
            "mirrorcast:pools.web.primary.capacity.max": auto.ConfigValue("30"),
        },
        path=True,
    )
    pool = _stack_yaml(project)["mirrorcast:pools"]["web"]
    assert pool["mirror"]["percent"] == "12.5"
    assert pool["primary"]["capacity"]["max"] == 30


def test_a_fractional_mirror_percent_lands_in_the_stack_file_as_a_number(project: Path) -> None:
    # Defect 7: written through `config set-all --path`, 12.5 became the string "12.5".
    cli = StandInPulumi()
    changes = [
        ConfigChange(path="pools.web.mirror.percent", old=50, new=12.5),
        ConfigChange(path="pools.web.primary.capacity.min", old=2, new=3),
    ]

    outcome = _apply_executor(project, cli).apply(
        activation_plan(project, changes=changes), plan_id="p1"
    )

    assert outcome.status == "applied", outcome.summary
    pool = _stack_yaml(project)["mirrorcast:pools"]["web"]
    assert pool["mirror"]["percent"] == 12.5 and isinstance(pool["mirror"]["percent"], float)
    assert pool["primary"]["capacity"]["min"] == 3
    # The integer still went by path (only that key); the float through the typed JSON write.
    (by_path,) = [c for c in cli.commands("config", "set-all") if "--path" in c]
    assert by_path[-1] == "mirrorcast:pools.web.primary.capacity.min=3"
    assert [c for c in cli.commands("config", "set-all") if "--json" in c]
    # The rest of the stack file (rules, comments) is as it was.
    text = (project / STACK).read_text()
    assert "# The demo stack" in text and "predicted-cpu" in text


# --------------------------------------------------------------------------- crash leftovers


def test_recovery_clears_the_pending_creates_a_killed_update_left_and_names_them(
    project: Path,
) -> None:
    # Defect 8: refresh without handling pending operations fails after a killed CLI.
    cli = StandInPulumi()
    executor = _apply_executor(project, cli)
    executor.stack()
    urn = (
        "urn:pulumi:demo::mirrorcast::mirrorcast:pool:Pool$mirrorcast:aws:MirrorGroup"
        "$aws:autoscaling/group:Group::web-mirror-asg"
    )
    cli.model.pending = [
        {"resource": {"urn": urn, "type": "aws:autoscaling/group:Group"}, "type": "creating"},
        {"resource": {"urn": urn.replace("asg", "lt")}, "type": "updating"},
    ]
    record = PlanRecord(
        id="p1",
        cycle_id=1,
        stack="demo",
        created_at=NOW,
        status="applying",
        explanation="",
        changes=[{"path": c.path, "old": c.old, "new": c.new} for c in ACTIVATE],
        decisions=[],
        rules=[],
        outcome=None,
    )

    outcome = executor.recover(record, load_stack("demo", project))

    assert outcome.ok, outcome.summary
    (refresh,) = cli.commands("refresh")
    assert "--clear-pending-creates" in refresh
    assert f"cleared 1 pending create(s) a killed update left ({urn})" in outcome.summary
    assert "pulumi import" in outcome.summary
    assert "pending updating of" in outcome.details["pending_operations"]
    assert cli.model.pending == []


def test_a_lock_that_never_clears_is_reported_with_its_file_its_age_and_the_command(
    project: Path, private_state: Path
) -> None:
    # Defect 8: a diy backend's lock file never expires; say which file, how old, what to run.
    cli = StandInPulumi()
    cli.fail("up", "locked", "locked")
    executor = _apply_executor(project, cli)
    executor.lock_attempts = 2
    lock = private_state / "backend" / ".pulumi" / "locks" / "organization" / "mirrorcast"
    lock = lock / "demo" / "3f2a9c.json"
    lock.parent.mkdir(parents=True)
    taken = datetime.now(UTC) - timedelta(hours=2, minutes=13, seconds=20)
    lock.write_text(
        json.dumps(
            {"pid": 4242, "username": "ci", "hostname": "runner-7", "timestamp": taken.isoformat()}
        )
    )

    outcome = executor.apply(activation_plan(project), plan_id="p1")

    assert outcome.status == "failed"
    assert f"{lock} (taken 2h 13m ago by pid 4242 on runner-7)" in outcome.summary
    assert "pulumi cancel --stack demo --yes" in outcome.summary
