"""The driver decides on what the cloud reports: the four scenarios of issue 14, end to end.

Each test runs the real driver (collect from the demo file, forecast with a scripted engine,
plan, apply through the Automation API against the Pulumi CLI stand-in, journal, metrics) while
moto's server plays the cloud (tests/driver/aws_world.py). The test changes the cloud the way
the cloud or a person would; the Pulumi stand-in's ``up`` succeeds and never touches it, which
is exactly the gap the observation closes: a successful ``up`` says nothing about whether the
mirror's instances serve.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from aws_world import World, build_world, set_mirror, set_primary
from driver_helpers import ScriptedEngine
from pulumi_standin import StandInPulumi

from driver.automation import AutomationExecutor
from driver.observe import DriverMetrics
from driver.service import CycleReport, Driver
from forecasting import Forecast
from infra.config import MetricSpec, MirrorcastConfig, load_stack

pytest.importorskip("moto.server")

# Inside the demo recording (9-23 Nov 2026), so the file source has 14 days of history.
AT = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
STACK_FILE = Path("stacks") / "Pulumi.demo.yaml"


def edit_stack(project: Path, *, old: str, new: str) -> None:
    path = project / STACK_FILE
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def add_driver_settings(project: Path, settings: str) -> None:
    path = project / STACK_FILE
    path.write_text(
        path.read_text(encoding="utf-8") + f"  mirrorcast:driver:\n    {settings}\n",
        encoding="utf-8",
    )


def world_for(project: Path) -> World:
    """The demo pool built in moto, and the project's stack pointed at its hosted zone."""
    world = build_world(load_stack("demo", project), mirror_desired=0)
    edit_stack(project, old="Z0123456789ABCDEFGHIJ", new=world.zone)
    return world


class RisingEngine(ScriptedEngine):
    """Forecasts that start at the series' last value and rise to ``levels[metric]`` in 25 minutes.

    Realised demand then matches the forecast's start, so the planner's feedback (demand well
    below the forecast ramps down) stays out of the way while the p90 crosses the rule's 80%.
    """

    def forecast(
        self,
        history: pd.Series,
        *,
        pool: str,
        metric: str,
        spec: MetricSpec | None = None,
        now: Any = None,
        events: Any = None,
    ) -> Forecast:
        start = float(history.dropna().iloc[-1])
        values = start + (self.levels[metric] - start) * np.minimum(1.0, np.arange(12) / 5)
        return Forecast(
            pool=pool,
            metric=metric,
            issued_at=now,
            step=timedelta(minutes=5),
            times=[now + timedelta(minutes=5 * (i + 1)) for i in range(12)],
            mean=values,
            quantiles={q: values * (1 + (q - 50) / 400) for q in (50, 80, 90, 95, 99)},
            model="test-double",
        )


def make_driver(
    project: Path,
    *,
    mode: str = "apply",
    cli: StandInPulumi | None = None,
    cpu: float = 95.0,
    metrics: DriverMetrics | None = None,
    rising: bool = False,
) -> Driver:
    executor = None
    if mode == "apply":
        executor = AutomationExecutor(
            stack="demo",
            project_root=project,
            pulumi_command=cli or StandInPulumi(),
            lock_wait=0.01,
        )
    return Driver(
        stack="demo",
        root=project,
        mode=mode,
        executor=executor,
        engine=(RisingEngine if rising else ScriptedEngine)({"cpu": cpu, "rps": 100.0}),
        metrics=metrics,
        holder="test-driver",
        clock=lambda: AT,
    )


def deployed(project: Path) -> MirrorcastConfig:
    return load_stack("demo", project)


def actions(report: CycleReport) -> list[str]:
    assert report.result is not None
    return [d.action for d in report.result.plan.decisions]


class TestTheMirrorNeverTurnsHealthy:
    """``up`` succeeds, but the mirror's targets never pass the balancer's health check."""

    def test_the_ramp_holds_then_times_out_into_a_rollback_with_a_notification(
        self, project: Path, aws: str
    ) -> None:
        world = world_for(project)
        cli = StandInPulumi()
        first = make_driver(project, cli=cli, rising=True).run_cycle(now=AT)
        assert "activate_mirror" in actions(first)
        web = deployed(project).pools["web"]
        assert web.mirror.state.value == "active" and web.balancer.weights.mirror == 0
        # The cloud carries out the update, but the mirror's instances never serve.
        set_primary(world, desired=web.primary.capacity.desired)
        set_mirror(world, desired=web.mirror_size, healthy=False)

        holds: list[datetime] = []
        rolled_back: CycleReport | None = None
        for minutes in range(5, 35, 5):
            now = AT + timedelta(minutes=minutes)
            report = make_driver(project, cli=cli, rising=True).run_cycle(now=now)
            assert report.result is not None
            if "rollback" in actions(report):
                rolled_back = report
                break
            assert "shift_weights" not in actions(report), report.result.plan.explanation
            assert deployed(project).pools["web"].balancer.weights.mirror == 0
            holds_now = [d for d in report.result.plan.decisions if d.action == "hold"]
            assert holds_now, report.result.plan.explanation
            hold = holds_now[0]
            assert "waits for the mirror's health" in hold.detail
            assert "0 healthy mirror target(s)" in report.result.plan.explanation
            holds.append(now)

        assert holds, "the ramp step waited at least once"
        assert rolled_back is not None, "past mirror.health_timeout (15m) the activation rolls back"
        assert rolled_back.now - holds[0] >= timedelta(minutes=15) - timedelta(minutes=5)
        assert rolled_back.now - AT <= timedelta(minutes=20)
        plan = rolled_back.result.plan  # type: ignore[union-attr]
        rollback = next(d for d in plan.decisions if d.action == "rollback")
        assert "mirror.health_timeout 15m" in rollback.detail
        assert "0 healthy mirror target(s)" in rollback.detail
        assert any("activation rolled back" in n.message for n in plan.notices)
        assert plan.memory.pools["web"].rolling_back

    def test_a_healthy_mirror_takes_the_ramp_step(self, project: Path, aws: str) -> None:
        world = world_for(project)
        cli = StandInPulumi()
        make_driver(project, cli=cli, rising=True).run_cycle(now=AT)
        web = deployed(project).pools["web"]
        set_primary(world, desired=web.primary.capacity.desired)
        set_mirror(world, desired=web.mirror_size, healthy=True)

        report = make_driver(project, cli=cli, rising=True).run_cycle(now=AT + timedelta(minutes=5))

        assert "shift_weights" in actions(report), report.result.plan.explanation  # type: ignore[union-attr]
        assert deployed(project).pools["web"].balancer.weights.mirror == 10


class TestCapacityChangedOutsidePulumi:
    def test_the_plan_reports_it_and_sizes_from_the_observed_primary(
        self, project: Path, aws: str
    ) -> None:
        world = world_for(project)
        # Someone scaled the primary by hand: the config says 4.
        set_primary(world, desired=9)

        report = make_driver(project, mode="plan").run_cycle(now=AT)

        assert report.result is not None
        plan = report.result.plan
        assert "the cloud holds the primary at desired 9, the config says 4" in plan.explanation
        floor = next(d for d in plan.decisions if d.action == "scale_primary")
        # p90 of the scripted cpu forecast is 99%: 9 running instances at 99% need 13 at 70%.
        assert "ceil(9 x 99% / 70%) = 13" in floor.detail, floor.detail
        # (the demo's cost cap then holds it at 10; sized from the config's 4 it would be 6)
        assert plan.stack_config.pools["web"].primary.capacity.min == 10


class TestDrift:
    def _drifted_mirror(self, world: World) -> None:
        ec2 = world.client("ec2", "mirror")
        current = ec2.describe_launch_template_versions(
            LaunchTemplateId=world.templates["mirror"], Versions=["$Latest"]
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        ec2.create_launch_template_version(
            LaunchTemplateId=world.templates["mirror"],
            LaunchTemplateData={**current, "ImageId": "ami-0last0release00"},
        )

    def test_a_mirror_image_behind_is_reported_and_resync_runs_an_update(
        self, project: Path, aws: str
    ) -> None:
        world = world_for(project)
        edit_stack(
            project,
            old="      sync:\n        security_rules:",
            new="      sync:\n        on_drift: resync\n        security_rules:",
        )
        self._drifted_mirror(world)
        cli = StandInPulumi()
        metrics = DriverMetrics()

        report = make_driver(project, cli=cli, cpu=40.0, metrics=metrics).run_cycle(now=AT)

        line = "web: drift in image (mirror vs config): mirror launches ami-0last0release00"
        assert any(d.startswith(line) for d in report.degraded), report.degraded
        assert report.result is not None
        plan = report.result.plan
        assert plan.changes == [] and plan.resync == ["web"]
        resync = next(d for d in plan.decisions if d.action == "resync")
        assert "image (mirror vs config)" in resync.detail
        assert cli.commands("up"), "the re-sync ran pulumi up with no key changed"
        journal = make_driver(project).journal
        assert any(d.startswith(line) for d in journal.cycles(stack="demo")[0]["degraded"])
        kinds = [u["kind"] for u in journal.updates(stack="demo")]
        assert kinds == ["observe", "up"], kinds  # the observation journaled with the plan
        value = metrics.registry.get_sample_value(
            "mirrorcast_drift",
            {"stack": "demo", "pool": "web", "what": "image", "between": "mirror vs config"},
        )
        assert value == 1

    def test_by_default_drift_is_only_reported(self, project: Path, aws: str) -> None:
        world = world_for(project)
        self._drifted_mirror(world)
        cli = StandInPulumi()

        report = make_driver(project, cli=cli, cpu=40.0).run_cycle(now=AT)

        assert any("drift in image (mirror vs config)" in d for d in report.degraded)
        assert report.result is not None and report.result.plan.resync == []
        assert not cli.commands("up")


class TestThePrimaryFailsBetweenCycles:
    """``driver.health_watch``: the clouds are read between cycles, and a primary whose targets
    fail starts the next cycle at once instead of at the next interval."""

    def test_the_next_cycle_starts_within_the_watch_not_the_interval(
        self, project: Path, aws: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        import logging
        import threading

        world = world_for(project)
        driver = make_driver(project, mode="plan", cpu=50.0)
        reports: list[CycleReport] = []

        def on_report(report: CycleReport) -> None:
            reports.append(report)
            if len(reports) == 1:
                # The primary's region fails just after the first cycle: every target down.
                world.client("ec2", "primary").stop_instances(
                    InstanceIds=world.instances("primary")
                )
            else:
                driver.stop.set()

        # The driver's clock stands still, so the hourly interval never comes: only the watch
        # can start the second cycle. The timer only keeps a broken watch from hanging the test.
        guard = threading.Timer(60, driver.stop.set)
        guard.start()
        try:
            with caplog.at_level(logging.WARNING, logger="driver.service"):
                code = driver.run_forever(
                    every=timedelta(hours=1), on_report=on_report, watch=timedelta(seconds=0.2)
                )
        finally:
            guard.cancel()
        assert code == 0 and len(reports) == 2
        assert "primary failing in pool(s) web: the next cycle starts now" in caplog.text
        assert driver.last_observation is not None
        assert driver.last_observation.failing_primaries() == {"web"}

    def test_a_primary_already_failing_at_the_cycle_does_not_wake_it_again(
        self, project: Path, aws: str
    ) -> None:
        world = world_for(project)
        world.client("ec2", "primary").stop_instances(InstanceIds=world.instances("primary"))
        driver = make_driver(project, mode="plan", cpu=50.0)
        driver.run_cycle(now=AT)
        assert driver.last_observation is not None
        assert driver.last_observation.failing_primaries() == {"web"}
        assert driver._newly_failing() == frozenset()


class TestTheCloudApiIsUnreachable:
    def test_one_degraded_line_no_invented_health_and_nothing_lost(
        self, project: Path, aws: str, black_hole: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world_for(project)
        add_driver_settings(project, "observe_timeout: 1s")
        cli = StandInPulumi()
        make_driver(project, cli=cli, rising=True).run_cycle(now=AT)
        assert deployed(project).pools["web"].mirror.state.value == "active"
        # Now the cloud's API stops answering.
        monkeypatch.setenv("AWS_ENDPOINT_URL", black_hole)

        driver = make_driver(project, cli=cli, rising=True)
        report = driver.run_cycle(now=AT + timedelta(minutes=5))

        assert report.outcome is not None and report.outcome.ok
        observed = [d for d in report.degraded if "not observed" in d]
        assert observed == [
            "aws: not observed: no answer in time (web/primary, web/mirror, web/balancer not read)"
        ]
        assert report.result is not None
        plan = report.result.plan
        # Nothing is taken as healthy: the ramp waits; and the cycle, its plan and the planner
        # memory are journaled as in any other cycle.
        assert "shift_weights" not in actions(report)
        assert "not observed" in plan.explanation
        assert deployed(project).pools["web"].balancer.weights.mirror == 0
        assert driver.journal.cycles(stack="demo")[0]["status"] == "ok"
        assert driver.journal.plans(stack="demo")[0].id == report.plan_id
        memory = driver.journal.load_memory(stack="demo").pools["web"]
        assert memory.activation_id is not None and memory.ramp is not None


@pytest.fixture()
def black_hole() -> Iterator[str]:
    """A loopback port that accepts connections and never answers (a hung API)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


class TestObservedBesideIntended:
    """``status``, ``history`` and the journal show what the cloud reported beside the config."""

    def test_history_and_status_show_the_observed_state_and_the_difference(
        self, project: Path, aws: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import json

        from typer.testing import CliRunner

        from driver.cli import app

        world = world_for(project)
        set_primary(world, desired=7)  # the config says 4
        report = make_driver(project, mode="plan", cpu=40.0).run_cycle(now=AT)
        assert report.observed is not None
        web = report.observed["pools"]["web"]
        assert web["observed"] is True
        assert web["primary"] == {
            "intended_desired": 4,
            "observed_desired": 7,
            "serving": 7,
            "healthy_targets": 7,
        }
        assert web["differences"] == ["primary desired 7 observed, 4 intended"]
        monkeypatch.chdir(project)
        runner = CliRunner()

        history = runner.invoke(app, ["history", "--stack", "demo", "--json"])
        assert history.exit_code == 0, history.output
        (plan,) = json.loads(history.stdout)
        assert plan["observed"]["pools"]["web"]["primary"]["observed_desired"] == 7
        details = runner.invoke(app, ["history", "--stack", "demo", "--details"])
        assert "observed web: primary 7 desired (4 intended), 7 healthy" in details.stdout

        status = runner.invoke(app, ["status", "--stack", "demo", "--observe"])
        assert status.exit_code == 0, status.output
        assert "observed web: primary 7 desired (4 intended)" in status.stdout
        assert "differs: primary desired 7 observed, 4 intended" in status.stdout

    def test_status_by_default_shows_the_last_cycles_observation_and_says_it_is_not_live(
        self, project: Path, aws: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from typer.testing import CliRunner

        from driver.cli import app

        world = world_for(project)
        set_primary(world, desired=7)  # the config says 4
        make_driver(project, mode="plan", cpu=40.0).run_cycle(now=AT)
        set_primary(world, desired=9)  # after the cycle: only a live read sees it
        monkeypatch.chdir(project)
        runner = CliRunner()

        journaled = runner.invoke(app, ["status", "--stack", "demo"])
        live = runner.invoke(app, ["status", "--stack", "demo", "--observe"])

        assert journaled.exit_code == 0 and live.exit_code == 0, journaled.output + live.output
        said = " ".join(journaled.stdout.split())
        assert "the clouds were not read now (mirrorcast status --observe reads them)" in said
        assert f"as of the last cycle, {AT.isoformat()}" in said
        assert "observed web: primary 7 desired (4 intended)" in said
        assert "observed web: primary 9 desired (4 intended)" in " ".join(live.stdout.split())
        assert "not read now" not in live.stdout

    def test_without_credentials_status_says_not_observed(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from typer.testing import CliRunner

        from driver.cli import app

        monkeypatch.chdir(project)
        status = CliRunner().invoke(app, ["status", "--stack", "demo", "--observe"])

        assert status.exit_code == 0, status.output
        assert "observed web: not observed (primary: aws:us-east-1 web/primary: no AWS" in (
            " ".join(status.stdout.split())
        )


def test_plan_mode_metrics_show_the_deployed_mirror_not_the_planned_one(project: Path) -> None:
    """Issue 14: in plan mode /metrics said one active mirror while status said paused."""
    metrics = DriverMetrics()
    report = make_driver(project, mode="plan", metrics=metrics).run_cycle(now=AT)

    assert report.result is not None and "activate_mirror" in actions(report)  # planned only
    active = metrics.registry.get_sample_value("mirrorcast_active_mirrors", {"stack": "demo"})
    share = metrics.registry.get_sample_value(
        "mirrorcast_weight_percent", {"stack": "demo", "pool": "web", "side": "mirror"}
    )
    assert (active, share) == (0, 0)
    observed = metrics.registry.get_sample_value(
        "mirrorcast_pool_observed", {"stack": "demo", "pool": "web"}
    )
    assert observed == 0  # no cloud account here: not observed, and the gauge says so
