"""Faults across the whole loop: real driver cycles (apply mode) with one fault injected at a time.

Every test runs :meth:`driver.service.Driver.run_cycle` on the soak project over a real trace
excerpt, through the real ``pulumi.automation`` code and the driver tests' Pulumi stand-in, and
checks what the journal, the metrics, the stack file and the stack's outputs say afterwards.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cycle_support import TRACE, RecentPeakEngine, make_driver, open_journal
from soak_harness import (
    KILL_POINTS,
    STACK,
    Faults,
    KillableCli,
    SimulatedKill,
    SoakReport,
    check_invariants,
    make_project,
    pause_points,
)

from driver.automation import AutomationExecutor
from driver.cycle import CycleResult
from driver.journal import Journal
from driver.observe import DriverMetrics
from driver.service import CycleReport, Driver
from infra.config import load_stack

T0 = datetime(2014, 4, 11, 0, 59, tzinfo=UTC)
"""A cycle at which the soak stack's predictive rule fires and the mirror is activated."""
STEP = timedelta(minutes=5)


class Clock:
    """A settable clock for the driver (its lease and journal times)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def project(tmp_path: Path) -> Path:
    # Updates get all the time they need; the one test of a stuck update shortens it itself.
    return make_project(tmp_path / "project", TRACE, quantile=0.7, update_timeout=120)


def _source_lines(report: Any) -> list[str]:
    """A cycle's degraded lines about its metrics (the stand-in stack's AWS pools cannot be
    observed here, which is one line of its own every cycle, not this test's subject)."""
    return [line for line in report.degraded if "not observed" not in line]


def _cycle(driver: Driver, clock: Clock, at: datetime) -> CycleReport:
    clock.at = at
    return driver.run_cycle(now=at)


def _decided(report: CycleReport) -> CycleResult:
    assert report.result is not None, report.skipped
    return report.result


def _metric(metrics: DriverMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# ----------------------------------------------------------------------------- metric source


def test_a_source_outage_falls_back_to_the_last_good_forecast_then_to_reactive_rules_and_recovers(
    project: Path,
) -> None:
    clock = Clock(T0)
    metrics = DriverMetrics()
    journal = open_journal(f"sqlite:///{project / 'journal.db'}")
    driver = make_driver(
        project, cli=KillableCli(Faults()), journal=journal, clock=clock, metrics=metrics
    )
    metrics_file = project / "metrics.csv"
    saved = metrics_file.read_bytes()

    healthy = _cycle(driver, clock, T0)
    assert _source_lines(healthy) == []
    metrics_file.unlink()

    # Within forecast.max_staleness (30m): the last good forecast is used, and said so.
    early = _cycle(driver, clock, T0 + 2 * STEP)
    assert any("metric source error" in line and "metrics.csv" in line for line in early.degraded)
    assert any("using the forecast issued" in line for line in early.degraded), early.degraded
    assert _decided(early).forecasts["web"]["demand"].trusted
    assert journal.cycles(stack=STACK, limit=1)[0]["degraded"] == early.degraded
    assert _metric(metrics, "mirrorcast_degraded_series", stack=STACK) == len(early.degraded)

    # Past it: the forecast is passed on untrusted and the predictive rule turns reactive.
    late = _cycle(driver, clock, T0 + 8 * STEP)
    assert any("passed on as untrusted" in line for line in late.degraded), late.degraded
    statuses = {r.rule: r.status for r in _decided(late).plan.rules}
    assert statuses["hot-soon"] == "untrusted_fallback", _decided(late).plan.explanation
    assert "reactive" in _decided(late).plan.explanation

    # The source comes back: fresh data, fresh forecast, nothing degraded.
    metrics_file.write_bytes(saved)
    back = _cycle(driver, clock, T0 + 9 * STEP)
    assert _source_lines(back) == []
    assert _decided(back).forecasts["web"]["demand"].issued_at == T0 + 9 * STEP
    assert _metric(metrics, "mirrorcast_degraded_series", stack=STACK) == len(back.degraded)


def test_garbage_metric_values_are_cleaned_and_reported_not_fatal(project: Path) -> None:
    # NaN, negative, absurd spikes, duplicated and reordered timestamps in the real trace.
    lines = (project / "metrics.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    rows[400] = rows[400].rsplit(",", 1)[0] + ",NaN"
    rows[401] = rows[401].rsplit(",", 1)[0] + ",-50"
    rows[402] = rows[402].rsplit(",", 1)[0] + ",99999999"
    rows.insert(403, rows[403])
    rows[404], rows[405] = rows[405], rows[404]
    (project / "metrics.csv").write_text("\n".join([header, *rows]) + "\n")
    clock = Clock(T0)
    from forecasting import ForecastEngine

    config = load_stack(STACK, project)
    driver = make_driver(
        project,
        cli=KillableCli(Faults()),
        journal=open_journal(f"sqlite:///{project / 'journal.db'}"),
        clock=clock,
        engine=ForecastEngine(config.forecast, seed=0),
    )

    report = _cycle(driver, clock, T0)

    forecast = _decided(report).forecasts["web"]["demand"]
    kinds = {repair.kind for repair in forecast.repairs}
    assert kinds, "the engine states each repair it made"
    assert report.outcome is not None and report.outcome.ok


# ----------------------------------------------------------------------------- pulumi up


@pytest.mark.parametrize("machine", ["idle", "loaded"])
@pytest.mark.parametrize(
    ("fault", "first_status"),
    [("locked", "failed"), ("halfway", "failed"), ("hang", "applying")],
)
def test_a_failed_or_stuck_update_is_finished_next_cycle_without_a_second_activation(
    project: Path, fault: str, first_status: str, machine: str
) -> None:
    # Independent of the machine's load: every update has all the time it needs (a loaded
    # machine adds half a second to each `up`, beyond the 0.4 s this test once allowed), and
    # the stuck update is held until the test lets it go, so it outlives the short timeout
    # used for that one cycle by construction, never by a race.
    clock = Clock(T0)
    cli = KillableCli(Faults(), latency=0.5 if machine == "loaded" else 0.0)
    journal = open_journal(f"sqlite:///{project / 'journal.db'}")
    driver = make_driver(project, cli=cli, journal=journal, clock=clock)
    assert isinstance(driver.executor, AutomationExecutor)
    roomy = driver.executor.update_timeout = timedelta(seconds=120)
    initial = load_stack(STACK, project)
    if fault == "hang":
        release, finished = cli.hold_next_up()
        driver.executor.update_timeout = timedelta(seconds=0.4)
    else:
        cli.fail("up", *([fault] * 2 if fault == "locked" else [fault]))

    first = _cycle(driver, clock, T0)
    assert first.outcome is not None and not first.outcome.ok
    assert journal.plans(stack=STACK, limit=1)[0].status == first_status
    if fault == "locked":
        assert "mirrorcast never cancels a lock itself" in first.outcome.summary
    if fault == "hang":
        release.set()  # the abandoned CLI finishes on its own
        assert finished.wait(timeout=60)
        driver.executor.update_timeout = roomy

    second = _cycle(driver, clock, T0 + STEP)
    assert second.outcome is not None and second.outcome.ok, second.outcome
    for at in range(2, 12):
        _cycle(driver, clock, T0 + at * STEP)

    report = SoakReport(seed=0, cycles=12)
    report.activations = cli.activations
    assert check_invariants(project, journal, cli, initial=initial, report=report) == []
    assert cli.activations == report.activation_decisions >= 1
    assert all(p.status != "applying" for p in journal.plans(stack=STACK, limit=100))


# ----------------------------------------------------------------------------- kills


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_at_any_step_of_an_activation_is_reconciled_after_restart(
    project: Path, point: str
) -> None:
    clock = Clock(T0)
    faults = Faults()
    cli = KillableCli(faults)
    journal = open_journal(f"sqlite:///{project / 'journal.db'}", faults)
    initial = load_stack(STACK, project)
    engine = RecentPeakEngine()
    faults.kill_at = point

    with pause_points(faults):
        with pytest.raises(SimulatedKill):
            _cycle(
                make_driver(project, cli=cli, journal=journal, clock=clock, engine=engine),
                clock,
                T0,
            )
        faults.killed = False
        faults.kill_at = None
        # The restarted process: a new driver on the same journal and stack.
        restarted = make_driver(project, cli=cli, journal=journal, clock=clock, engine=engine)
        after = _cycle(restarted, clock, T0 + STEP)
        for at in range(2, 12):
            _cycle(restarted, clock, T0 + at * STEP)

    if point in ("before-up", "after-up", "after-apply", "before-apply"):
        assert after.recovered is not None and after.recovered.ok, after.recovered
    memory = journal.load_memory(stack=STACK).pools["web"]
    assert memory.activations, "the activation is remembered, so its rollback is not lost"
    # The killed cycle is on record as interrupted, not left 'running' forever.
    statuses = [c["status"] for c in journal.cycles(stack=STACK, limit=50)]
    assert statuses[-1] == "interrupted" and "running" not in statuses, statuses
    report = SoakReport(seed=0, cycles=12)
    report.activations = cli.activations
    assert check_invariants(project, journal, cli, initial=initial, report=report) == []
    assert cli.activations == report.activation_decisions >= 1


# ----------------------------------------------------------------------------- two drivers


def test_two_drivers_on_one_stack_exactly_one_acts(project: Path) -> None:
    clock = Clock(T0)
    cli = KillableCli(Faults())
    url = f"sqlite:///{project / 'journal.db'}"
    drivers = [
        make_driver(project, cli=cli, journal=open_journal(url), clock=clock, holder=f"host-{i}:1")
        for i in (1, 2)
    ]
    reports: list[CycleReport] = []
    barrier = threading.Barrier(2)

    def run(driver: Driver) -> None:
        barrier.wait()
        reports.append(driver.run_cycle(now=T0))

    threads = [threading.Thread(target=run, args=(d,)) for d in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    acted = [r for r in reports if r.skipped is None]
    skipped = [r for r in reports if r.skipped is not None]
    assert len(acted) == 1 and len(skipped) == 1
    message = skipped[0].skipped or ""
    assert "holds the lease" in message
    assert len(cli.commands("up")) == 1
    # The lease holds for later cycles too, until its holder lets go (or it expires).
    winner = next(d for d in drivers if d.holder in message)
    loser = next(d for d in drivers if d is not winner)
    assert _cycle(loser, clock, T0 + STEP).skipped is not None
    winner.journal.release_lease(stack=STACK, holder=winner.holder)
    assert _cycle(loser, clock, T0 + 2 * STEP).skipped is None


# ----------------------------------------------------------------------------- clock jumps


def _activated(project: Path) -> tuple[Callable[[datetime], CycleReport], KillableCli, Journal]:
    clock = Clock(T0)
    cli = KillableCli(Faults())
    journal = open_journal(f"sqlite:///{project / 'journal.db'}")
    driver = make_driver(project, cli=cli, journal=journal, clock=clock)
    _cycle(driver, clock, T0)
    assert cli.activations == 1
    return (lambda at: _cycle(driver, clock, at)), cli, journal


def test_a_clock_jump_back_repeats_no_activation_and_keeps_the_rollback_deadline(
    project: Path,
) -> None:
    cycle, cli, journal = _activated(project)
    deadline = journal.load_memory(stack=STACK).pools["web"].rollback_deadline

    cycle(T0 - timedelta(hours=2))
    cycle(T0 - timedelta(hours=2) + STEP)

    assert cli.activations == 1
    memory = journal.load_memory(stack=STACK).pools["web"]
    assert memory.activated_at == T0
    # The deadline set at the activation still stands (a jump back never moves it earlier).
    assert memory.rollback_deadline is not None and deadline is not None
    assert memory.rollback_deadline >= deadline
    assert load_stack(STACK, project).pools["web"].mirror.state.value == "active"


def _demand_never_comes(project: Path) -> None:
    """After the activation at T0 demand falls to almost nothing: the prediction was wrong."""
    path = project / "metrics.csv"
    frame = pd.read_csv(path)
    frame.loc[pd.to_datetime(frame["timestamp"], utc=True) > pd.Timestamp(T0), "value"] = 5.0
    frame.to_csv(path, index=False)


def test_a_clock_jump_back_does_not_end_the_grace_window_early(project: Path) -> None:
    cycle, cli, _journal = _activated(project)
    _demand_never_comes(project)

    cycle(T0 - timedelta(hours=2))
    cycle(T0 + 2 * STEP)  # back to the right time, 10m into the 20m grace window

    assert load_stack(STACK, project).pools["web"].mirror.state.value == "active"
    assert cli.activations == 1
    cycle(T0 + 6 * STEP)  # 30m after the activation: grace is over
    assert load_stack(STACK, project).pools["web"].mirror.state.value == "paused"


def test_a_clock_jump_forward_rolls_back_exactly_once_and_restores_the_original(
    project: Path,
) -> None:
    cycle, cli, journal = _activated(project)
    _demand_never_comes(project)

    for minutes in (0, 5, 10, 15):
        cycle(T0 + timedelta(hours=6, minutes=minutes))

    plans = journal.plans(stack=STACK, limit=100)
    pauses = [
        p
        for p in plans
        if any(c["path"].endswith("mirror.state") and c["new"] == "paused" for c in p.changes)
    ]
    assert len(pauses) == 1
    assert cli.activations == 1
    final = load_stack(STACK, project).pools["web"]
    assert final.mirror.state.value == "paused"
    assert final.primary.capacity.model_dump() == {"min": 2, "max": 20, "desired": 4}
    assert final.balancer.weights.mirror == 0


def test_opposite_weight_shifts_respect_the_cooldown(project: Path) -> None:
    cycle, _cli, journal = _activated(project)
    for step in range(1, 12):
        cycle(T0 + step * STEP)
    config = load_stack(STACK, project)
    cooldown = config.pools["web"].guardrails.cooldown
    moves: list[tuple[datetime, int]] = []
    for plan in sorted(journal.plans(stack=STACK, limit=100), key=lambda p: p.created_at):
        if any(d["action"] == "escalate" for d in plan.decisions):
            # Demand running above the forecast overrides the cooldown on purpose: serving
            # the load that is here beats waiting out a timer (docs/rules.md, feedback).
            continue
        for change in plan.changes:
            if change["path"].endswith("weights.mirror"):
                moves.append((plan.created_at, int(change["new"]) - int(change["old"])))
    flips = [
        (a, b) for (a, da), (b, db) in itertools.pairwise(moves) if da * db < 0 and b - a < cooldown
    ]
    assert flips == [], f"opposite weight moves closer than the {cooldown} cooldown: {flips}"


@pytest.mark.parametrize("point", ["before-apply", "before-up", "after-up"])
def test_a_kill_during_a_rollback_loses_no_rollback(project: Path, point: str) -> None:
    clock = Clock(T0)
    faults = Faults()
    cli = KillableCli(faults)
    journal = open_journal(f"sqlite:///{project / 'journal.db'}", faults)
    initial = load_stack(STACK, project)
    engine = RecentPeakEngine()
    _cycle(make_driver(project, cli=cli, journal=journal, clock=clock, engine=engine), clock, T0)
    _demand_never_comes(project)
    rollback_at = T0 + 6 * STEP  # past the 20m grace window

    faults.kill_at = point
    with pause_points(faults), pytest.raises(SimulatedKill):
        _cycle(
            make_driver(project, cli=cli, journal=journal, clock=clock, engine=engine),
            clock,
            rollback_at,
        )
    faults.killed = False
    faults.kill_at = None
    restarted = make_driver(project, cli=cli, journal=journal, clock=clock, engine=engine)
    for step in range(1, 4):
        _cycle(restarted, clock, rollback_at + step * STEP)

    final = load_stack(STACK, project).pools["web"]
    assert final.mirror.state.value == "paused"
    assert final.primary.capacity.model_dump() == initial.pools["web"].primary.capacity.model_dump()
    assert final.balancer.weights.mirror == 0
    report = SoakReport(seed=0, cycles=5)
    report.activations = cli.activations
    assert check_invariants(project, journal, cli, initial=initial, report=report) == []
    assert report.rollbacks_completed == 1 and cli.activations == 1


def test_stale_metric_data_degrades_the_cycle_instead_of_failing_it(project: Path) -> None:
    # The source still answers but its newest point is 12 minutes old (an exporter that died).
    clock = Clock(T0)
    frame = pd.read_csv(project / "metrics.csv")
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    frame[stamps <= pd.Timestamp(T0)].to_csv(project / "metrics.csv", index=False)
    driver = make_driver(
        project,
        cli=KillableCli(Faults()),
        journal=open_journal(f"sqlite:///{project / 'journal.db'}"),
        clock=clock,
    )

    report = _cycle(driver, clock, T0 + timedelta(minutes=12))

    assert report.outcome is not None and report.outcome.ok
    statuses = {r.rule: r.status for r in _decided(report).plan.rules}
    assert statuses["hot-now"] != "fired"
