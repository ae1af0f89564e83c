"""Full driver cycles: collect from the demo file source, decide, apply, journal, observe."""

from __future__ import annotations

import logging
import os
import signal
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from driver_helpers import NOW, ScriptedEngine
from object_graph import reachable
from pulumi_standin import StandInPulumi

from driver.automation import AutomationExecutor
from driver.journal import Journal
from driver.observe import DriverMetrics
from driver.service import Driver, next_aligned
from infra.config import load_stack
from policies import PlannerMemory

# Inside the demo recording (9-23 Nov 2026), so the file source has 14 days of history.
AT = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


def make_driver(
    project: Path,
    *,
    mode: str = "apply",
    cli: StandInPulumi | None = None,
    cpu: float = 95.0,
    holder: str = "test-driver",
    journal: Journal | None = None,
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
        journal=journal,
        engine=ScriptedEngine({"cpu": cpu, "rps": 100.0}),
        holder=holder,
        clock=lambda: AT,
    )


def test_an_apply_cycle_journals_intent_outcome_and_the_planner_memory(project: Path) -> None:
    cli = StandInPulumi()
    driver = make_driver(project, cli=cli)

    report = driver.run_cycle(now=AT)

    assert report.outcome is not None and report.outcome.status == "applied", report.outcome
    assert report.plan_id is not None
    (record,) = driver.journal.plans(stack="demo")
    assert record.status == "applied" and record.id == report.plan_id
    assert driver.journal.unfinished_plan(stack="demo") is None
    memory = driver.journal.load_memory(stack="demo")
    assert memory.pools["web"].activation_id is not None
    assert memory.pools["web"].original is not None  # what a rollback restores
    assert load_stack("demo", project).pools["web"].mirror.state.value == "active"
    (update,) = [u for u in driver.journal.updates(stack="demo") if u["kind"] != "observe"]
    assert update["ok"] and update["kind"] == "up"
    assert driver.journal.cycles(stack="demo")[0]["status"] == "ok"


def test_the_next_cycle_does_not_activate_again(project: Path) -> None:
    cli = StandInPulumi()
    make_driver(project, cli=cli).run_cycle(now=AT)

    second = make_driver(project, cli=cli).run_cycle(now=AT + timedelta(minutes=5))

    assert second.result is not None
    assert not any(d.action == "activate_mirror" for d in second.result.plan.decisions)
    assert all(c.path != "pools.web.mirror.state" for c in second.result.plan.changes)


def test_plan_mode_changes_nothing_and_stores_no_memory(project: Path) -> None:
    before = (project / "stacks" / "Pulumi.demo.yaml").read_text()
    driver = make_driver(project, mode="plan")

    report = driver.run_cycle(now=AT)

    assert report.outcome is not None and report.outcome.status == "planned"
    assert report.result is not None and report.result.plan.changes  # it would activate
    assert (project / "stacks" / "Pulumi.demo.yaml").read_text() == before
    assert driver.journal.load_memory(stack="demo") == PlannerMemory()
    assert driver.journal.plans(stack="demo")[0].status == "planned"


def test_a_second_driver_on_the_stack_skips_while_the_first_holds_the_lease(project: Path) -> None:
    first = make_driver(project, holder="one")
    first.run_cycle(now=AT)

    second = make_driver(project, holder="two", journal=first.journal).run_cycle(now=AT)

    assert second.skipped is not None and "another driver (one)" in second.skipped
    assert len(first.journal.cycles(stack="demo")) == 1


def test_a_rollback_request_is_honoured_by_the_next_cycle(project: Path) -> None:
    cli = StandInPulumi()
    driver = make_driver(project, cli=cli)
    driver.run_cycle(now=AT)
    driver.journal.request_rollback(
        stack="demo", pool="web", at=AT, requested_by="ana", reason="false alarm"
    )

    report = driver.run_cycle(now=AT + timedelta(minutes=5))

    assert report.result is not None
    assert any(d.action == "rollback" for d in report.result.plan.decisions)
    assert driver.journal.pending_rollbacks(stack="demo") == []


def test_a_failed_update_is_retried_next_cycle_even_without_changes(project: Path) -> None:
    cli = StandInPulumi()
    cli.fail("up", "halfway")
    driver = make_driver(project, cli=cli)

    first = driver.run_cycle(now=AT)
    assert first.outcome is not None and first.outcome.status == "failed"
    assert driver.journal.cycles(stack="demo")[0]["status"] == "error"

    second = driver.run_cycle(now=AT + timedelta(minutes=5))
    assert second.outcome is not None and second.outcome.status == "applied", second.outcome
    assert len(cli.commands("up")) == 2


def test_a_plan_left_applying_is_reconciled_before_deciding(project: Path) -> None:
    cli = StandInPulumi()
    driver = make_driver(project, cli=cli)
    # A driver that journaled its intent and was killed before touching anything.
    plan = make_driver(project, mode="plan").preview(now=AT).result
    assert plan is not None
    cycle = driver.journal.start_cycle(stack="demo", mode="apply", at=AT)
    driver.journal.record_plan(stack="demo", cycle_id=cycle, plan=plan.plan, status="applying")
    driver.journal.save_memory(stack="demo", memory=plan.plan.memory, at=AT, cycle_id=cycle)

    report = driver.run_cycle(now=AT + timedelta(minutes=1))

    assert report.recovered is not None and report.recovered.status == "applied"
    assert [c[1] for c in cli.calls if c[1] in ("refresh", "up")][:2] == ["refresh", "up"]
    assert report.result is not None
    assert not any(d.action == "activate_mirror" for d in report.result.plan.decisions)
    # The interrupted plan was finished once; whatever this cycle changes, it is not the activation.
    resumed = [c for c in cli.commands("up") if "mirrorcast resume" in " ".join(c)]
    assert len(resumed) == 1
    state_sets = [
        c
        for c in cli.commands("config", "set-all")
        if "mirrorcast:pools.web.mirror.state=active" in c
    ]
    assert len(state_sets) == 1, report.result.plan.changes


def test_metrics_describe_the_cycle_and_are_served(project: Path) -> None:
    metrics = DriverMetrics()
    driver = make_driver(project)
    driver.metrics = metrics
    driver.run_cycle(now=AT)
    server = metrics.serve("127.0.0.1:0")
    try:
        port = server.server_port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'mirrorcast_cycles_total{outcome="ok",stack="demo"} 1.0' in text
    assert 'mirrorcast_active_mirrors{stack="demo"} 1.0' in text
    assert 'mirrorcast_rules_fired_total{pool="web",rule="predicted-cpu",stack="demo"} 1.0' in text
    assert 'mirrorcast_weight_percent{pool="web",side="mirror",stack="demo"}' in text
    assert "mirrorcast_cycle_duration_seconds_count" in text
    assert "mirrorcast_update_failures_total" in text


def test_an_exception_in_one_cycle_is_logged_and_the_next_cycle_runs(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    driver = make_driver(project, mode="plan")
    driver.clock = lambda: datetime.now(UTC)
    calls: list[int] = []
    real = driver.run_cycle

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("metrics backend exploded")
        driver.stop.set()
        return real(now=AT)

    driver.run_cycle = flaky  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        code = driver.run_forever(every=timedelta(milliseconds=50))

    assert code == 0 and len(calls) == 2
    assert "cycle failed: RuntimeError: metrics backend exploded" in caplog.text


def test_sigterm_stops_the_service_after_the_current_step(project: Path) -> None:
    driver = make_driver(project, mode="plan")
    driver.clock = lambda: datetime.now(UTC)
    reports: list[Any] = []
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code = driver.run_forever(every=timedelta(hours=1), on_report=reports.append)
    finally:
        timer.cancel()
    assert code == 0 and len(reports) == 1
    assert driver.journal.lease(stack="demo") is None  # released on the way out


def test_cycles_align_to_the_interval() -> None:
    at = datetime(2026, 11, 22, 18, 3, 12, tzinfo=UTC)
    assert next_aligned(at, timedelta(minutes=5)) == datetime(2026, 11, 22, 18, 5, tzinfo=UTC)
    assert next_aligned(
        datetime(2026, 11, 22, 18, 5, tzinfo=UTC), timedelta(minutes=5)
    ) == datetime(2026, 11, 22, 18, 10, tzinfo=UTC)
    assert NOW == AT


def _reachable_ids(root: object) -> set[int]:
    """Ids of every object ``root`` reaches (gc referents; shared code left out)."""
    return {id(obj) for obj in reachable([root])}


def test_a_driver_keeps_no_collected_history_between_cycles(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each cycle collects its two weeks of observations again, so the driver holding the last
    cycle's between cycles only cost memory: about 32 KB a series at 5 minutes, 0.64 GB at
    20,000 series (issue 16). The plan preview still hands its history to the caller."""
    import driver.service as service

    collected: list[Any] = []
    real = service.collect_history

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        collected.append(result)
        return result

    monkeypatch.setattr(service, "collect_history", recording)
    driver = make_driver(project, mode="plan")
    driver.run_cycle(now=AT)

    series = [s for by_metric in collected[0].history.values() for s in by_metric.values()]
    assert series, "the demo stack's cycle collected its metrics"
    # The scripted engine keeps the last history it was handed, for the decide tests to read;
    # the real engine keeps none (tests/forecasting/test_lean_fits.py). Since the cycle hands a
    # series that already ends at now over as it is (not a slice of it), that is the collected
    # object itself, so it is dropped here: the driver's own references are what is asserted.
    assert isinstance(driver._engine, ScriptedEngine)
    driver._engine.seen.clear()
    reachable = _reachable_ids(driver)
    assert not [s.name for s in series if id(s) in reachable]

    preview = driver.preview(now=AT + timedelta(minutes=5))
    assert preview.history.keys() == collected[1].history.keys()
