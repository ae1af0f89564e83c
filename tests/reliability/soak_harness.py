"""A seeded soak of the real driver loop with faults injected at random, and its invariants.

Used by ``tests/reliability/test_reliability_soak.py`` (a short run in the suite) and by
``benchmarks/soak.py`` (thousands of cycles over the shared traces). Every cycle is a real
:meth:`driver.service.Driver.run_cycle` in apply mode: the real forecasting engine, rule engine,
planner, SQLite journal and ``pulumi.automation`` code, with the recording Pulumi stand-in of the
driver's own tests (``tests/driver/pulumi_standin.py``) at the Automation API's seam.

Faults, chosen per cycle by a seeded RNG:

- ``source_down``: the metrics file is missing (the source raises ``SourceError``);
- ``source_garbage``: the metrics file holds text where numbers should be;
- ``source_stale``: the metrics file ends three hours before the cycle (an exporter that died):
  the series is past its ``max_age`` and must not be acted on;
- ``up_locked``: another update holds the stack lock for longer than the driver waits;
- ``up_halfway``: ``pulumi up`` dies after the mirror changed but before the weights did;
- ``up_timeout``: ``pulumi up`` outlives ``driver.update_timeout``;
- ``kill_<point>``: the process dies (nothing more is written) at ``cycle-start``,
  ``before-apply``, between ``set_config`` and ``up`` (``before-up``), right after ``up``
  (``after-up``) or at ``after-apply``; the next cycle is a fresh :class:`Driver` on the same
  journal and stack, as after a restart.

Invariants checked afterwards (:func:`check_invariants`): no plan is left ``applying``, every
journal row parses and each plan's ``config_changes`` rows equal its ``changes``; replaying the
journal's applied changes in order from the initial config gives the final stack config, with
each change's ``old`` equal to the value the replay holds at that point (nothing skipped or
reordered); the stack's outputs show the final config; and the number of real paused->active
transitions of the mirror equals the number of journaled decisions to activate.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "driver"))

from pulumi_standin import StandInPulumi  # noqa: E402

import driver.service as service  # noqa: E402
from driver.automation import AutomationExecutor  # noqa: E402
from driver.executor import output_mismatches  # noqa: E402
from driver.journal import Journal  # noqa: E402
from driver.observe import DriverMetrics  # noqa: E402
from infra.config import MirrorcastConfig, load_stack  # noqa: E402

__all__ = [
    "FAULT_KINDS",
    "KILL_POINTS",
    "DyingJournal",
    "Faults",
    "KillableCli",
    "SimulatedKill",
    "SoakReport",
    "check_invariants",
    "make_project",
    "pause_points",
    "run_soak",
]

logger = logging.getLogger(__name__)

STACK = "soak"
KILL_POINTS = ("cycle-start", "before-apply", "before-up", "after-up", "after-apply")
FAULT_KINDS = (
    "source_down",
    "source_garbage",
    "source_stale",
    "up_locked",
    "up_halfway",
    "up_timeout",
    *(f"kill_{point}" for point in KILL_POINTS),
)
LOCK_ATTEMPTS = 2
UPDATE_TIMEOUT_S = 0.4
HANG_S = 0.8

_STACK_FILE = """\
# A soak-test stack: one AWS pool, a warm 50% mirror, a reactive and a predictive rule.
config:
  aws:region: us-east-1
  mirrorcast:tags:
    cost-center: soak
  mirrorcast:metrics:
    type: file
    path: metrics.csv
  mirrorcast:forecast:
    horizon: 1h
    history: {history}
    models: [seasonal_naive]
    max_staleness: 30m
  mirrorcast:driver:
    mode: apply
    interval: 5m
    update_timeout: {timeout}s
  mirrorcast:pools:
    web:
      primary:
        cloud: aws
        region: us-east-1
        machine_type: t3.medium
        app:
          version: 1.0.0
          images:
            aws: ami-0a1b2c3d4e5f60718
        capacity: {{min: 2, max: 20, desired: 4}}
        native_autoscaling: false
        network:
          vpc_id: vpc-0123456789abcdef0
          subnet_ids: [subnet-0aa11bb22cc33dd44]
      mirror:
        percent: 50
        state: paused
      balancer:
        kind: alb
        weights: {{primary: 100, mirror: 0}}
      metrics:
        demand:
          unit: count
          query: {column}
      rules:
        - name: hot-now
          when: current(demand) > {threshold} for 5m
          weight: 5
          actions:
            - type: activate_mirror
            - type: shift_weights
              mirror: 40
              ramp: {{mode: gradual, steps: 2, over: 10m}}
        - name: hot-soon
          when: predicted(demand, p90) > {threshold} within 30m
          weight: 10
          actions:
            - type: activate_mirror
            - type: shift_weights
              mirror: 30
              ramp: {{mode: immediate}}
      guardrails:
        max_activations_per_day: 6
        cooldown: 15m
        rollback_grace: 20m
"""


class SimulatedKill(BaseException):
    """The process dies here: raised through everything, and nothing is written after it."""


@dataclass
class SoakReport:
    """Figures of one soak run."""

    seed: int
    cycles: int
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    restarts: int = 0
    recoveries: int = 0
    degraded_cycles: int = 0
    failed_updates: int = 0
    skipped_cycles: int = 0
    stale_problems: list[str] = field(default_factory=list)
    """Cycles that acted on data past its ``max_age`` (a ``source_stale`` fault)."""
    activations: int = 0
    activation_decisions: int = 0
    plans_applied: int = 0
    rollbacks_completed: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        faults = ", ".join(f"{kind} {self.faults[kind]}" for kind in FAULT_KINDS)
        return [
            f"seed {self.seed}: {self.cycles} cycles in {self.seconds:.1f} s",
            f"faults injected ({sum(self.faults.values())}): {faults}",
            f"restarts after a kill: {self.restarts}; interrupted updates reconciled: "
            f"{self.recoveries}; degraded cycles: {self.degraded_cycles}; failed or unfinished "
            f"updates: {self.failed_updates}",
            f"plans applied: {self.plans_applied}; mirror activations: {self.activations} "
            f"(journaled decisions to activate: {self.activation_decisions}); rollbacks "
            f"completed: {self.rollbacks_completed}",
            f"invariant violations (lost or duplicated): {len(self.problems)}",
            *(f"  - {problem}" for problem in self.problems),
        ]


def make_project(
    root: Path,
    trace: Path,
    *,
    column: str = "value",
    history: str = "1d",
    quantile: float = 0.7,
    update_timeout: float = UPDATE_TIMEOUT_S,
) -> Path:
    """A throwaway project: Pulumi.yaml, the soak stack, and ``trace`` as ``metrics.csv``.

    :param root: directory to create it in (must not exist or be empty).
    :param trace: a CSV with a ``timestamp`` column and a ``column`` of demand (NAB layout).
    :param column: the value column of ``trace``; default ``value`` (NAB files).
    :param history: ``forecast.history``; default one day.
    :param quantile: the rules fire above this quantile of the trace; default 0.7.
    :param update_timeout: ``driver.update_timeout`` in seconds; default :data:`UPDATE_TIMEOUT_S`
        (short, so the soak's hanging updates time out quickly).
    """
    (root / "stacks").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(trace, root / "metrics.csv")
    values = pd.read_csv(trace)[column]
    threshold = round(float(values.quantile(quantile)), 3)
    (root / "stacks" / f"Pulumi.{STACK}.yaml").write_text(
        _STACK_FILE.format(
            column=column, threshold=threshold, history=history, timeout=update_timeout
        )
    )
    return root


class Faults:
    """The armed fault of the current cycle, consulted by the hooks below."""

    def __init__(self) -> None:
        self.kill_at: str | None = None
        self.killed = False

    def maybe_kill(self, point: str) -> None:
        if self.kill_at == point and not self.killed:
            self.killed = True
            raise SimulatedKill(point)


class DyingJournal(Journal):
    """A journal that stops writing once the process is 'killed' (as a SIGKILL would)."""

    faults: Faults

    def _begin(self) -> Any:
        if self.faults.killed:
            raise SimulatedKill("journal write after the kill")
        return super()._begin()


class KillableCli(StandInPulumi):
    """The stand-in CLI, able to die between ``config set-all`` and ``up``, or right after ``up``.

    It also keeps every observed paused->active transition of the stack's mirrors, can hold
    the next ``up`` until the test releases it (:meth:`hold_next_up`: an update that outlives
    any timeout, whatever the machine's load), and can add ``latency`` seconds to every ``up``
    (a loaded machine).
    """

    def __init__(self, faults: Faults, *, latency: float = 0.0, **options: Any) -> None:
        super().__init__(**options)
        self.faults = faults
        self.activations = 0
        self.latency = latency
        self._lock = threading.Lock()
        self._hold: tuple[threading.Event, threading.Event] | None = None

    def hold_next_up(self) -> tuple[threading.Event, threading.Event]:
        """Make the next ``up`` wait for ``release``; ``finished`` is set when it has run."""
        release, finished = threading.Event(), threading.Event()
        self._hold = (release, finished)
        return release, finished

    def run(self, args: list[str], cwd: str, additional_env: Any, *rest: Any) -> Any:
        words = [a for a in args if a != "--non-interactive"]
        hold = None
        if words[:1] == ["up"]:
            self.faults.maybe_kill("before-up")
            hold, self._hold = self._hold, None
            if self.latency:
                time.sleep(self.latency)
            if hold is not None:
                hold[0].wait(timeout=120)
        try:
            return self._run(args, cwd, additional_env, words, *rest)
        finally:
            if hold is not None:
                hold[1].set()

    def _run(
        self, args: list[str], cwd: str, additional_env: Any, words: list[str], *rest: Any
    ) -> Any:
        with self._lock:
            before = _states(self.model.outputs)
            try:
                result = super().run(args, cwd, additional_env, *rest)
            finally:
                after = _states(self.model.outputs)
                self.activations += sum(
                    1
                    for pool, state in after.items()
                    if state == "active" and before.get(pool) != "active"
                )
        if words[:1] == ["up"]:
            self.faults.maybe_kill("after-up")
        return result


def _states(outputs: Mapping[str, Any]) -> dict[str, str]:
    pools = outputs.get("pools") or {}
    return {name: str(data.get("mirror_state")) for name, data in pools.items()}


@contextmanager
def pause_points(faults: Faults) -> Iterator[None]:
    """Route the driver's crash-test pause points to the simulated kill."""
    original = service._pause_point
    service._pause_point = faults.maybe_kill  # type: ignore[assignment]
    try:
        yield
    finally:
        service._pause_point = original


def _garbage(path: Path) -> None:
    lines = path.read_text().splitlines()
    lines[len(lines) // 2] = lines[len(lines) // 2].rsplit(",", 1)[0] + ",not-a-number"
    path.write_text("\n".join(lines) + "\n")


def _stale(path: Path, *, now: datetime) -> None:
    """Keep only the rows at least three hours older than ``now``."""
    frame = pd.read_csv(path)
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    frame[stamps <= pd.Timestamp(now) - pd.Timedelta(hours=3)].to_csv(path, index=False)


def run_soak(
    root: Path,
    *,
    cycles: int,
    seed: int = 0,
    fault_rate: float = 0.3,
    start: datetime | None = None,
    step: timedelta = timedelta(minutes=5),
) -> tuple[SoakReport, Journal, KillableCli]:
    """Run ``cycles`` driver cycles over the project made by :func:`make_project`.

    :param root: the project.
    :param cycles: how many cycles.
    :param seed: RNG seed of the fault schedule; the same seed gives the same run.
    :param fault_rate: probability that a cycle gets a fault; default 0.3.
    :param start: the first cycle's ``now``; default one day into the trace.
    :param step: simulated time between cycles; default 5 minutes.
    """
    rng = random.Random(seed)
    report = SoakReport(seed=seed, cycles=cycles)
    metrics_file = root / "metrics.csv"
    pristine = metrics_file.read_bytes()
    if start is None:
        first = pd.to_datetime(
            pd.read_csv(metrics_file, usecols=["timestamp"])["timestamp"].iloc[0], utc=True
        )
        start = (first + pd.Timedelta(days=1)).to_pydatetime()
    faults = Faults()
    cli = KillableCli(faults, hang_seconds=HANG_S)
    journal = DyingJournal(f"sqlite:///{root / 'journal.db'}")
    journal.faults = faults
    metrics = DriverMetrics()
    config = load_stack(STACK, root)
    engine = None
    began = time.monotonic()
    holder = "soak-1"

    def fresh_driver() -> service.Driver:
        executor = AutomationExecutor(
            stack=STACK,
            project_root=root,
            pulumi_command=cli,
            update_timeout=config.driver.update_timeout,
            lock_attempts=LOCK_ATTEMPTS,
            lock_wait=0.001,
            progress=lambda _event: None,
        )
        created = service.Driver(
            stack=STACK,
            root=root,
            mode="apply",
            journal=journal,
            executor=executor,
            engine=engine,
            metrics=metrics,
            clock=lambda: now,
            holder=holder,
        )
        return created

    now = start
    driver = fresh_driver()
    with pause_points(faults):
        for index in range(cycles):
            now = start + index * step
            fault = rng.choice(FAULT_KINDS) if rng.random() < fault_rate else None
            faults.kill_at = None
            faults.killed = False
            if fault is not None:
                report.faults[fault] += 1
            if fault == "source_down":
                metrics_file.unlink()
            elif fault == "source_garbage":
                _garbage(metrics_file)
            elif fault == "source_stale":
                _stale(metrics_file, now=now)
            elif fault == "up_locked":
                cli.fail("up", *["locked"] * LOCK_ATTEMPTS)
            elif fault == "up_halfway":
                cli.fail("up", "halfway")
            elif fault == "up_timeout":
                cli.fail("up", "hang")
            elif fault is not None and fault.startswith("kill_"):
                faults.kill_at = fault.removeprefix("kill_")
            try:
                cycle = driver.run_cycle(now=now)
            except SimulatedKill:
                report.kills += 1
                # A restart: a new driver object on the same journal, stack and engine cache.
                # It keeps the holder name, so it need not wait out the dead one's lease (up to
                # 15m); the lease itself is tested in test_two_drivers_on_one_stack_exactly_one_acts.
                engine = driver._engine
                faults.killed = False
                driver = fresh_driver()
                report.restarts += 1
            else:
                engine = driver._engine
                if cycle.skipped:
                    report.skipped_cycles += 1
                if cycle.recovered is not None:
                    report.recoveries += 1
                if cycle.degraded and any(
                    "metric source" in line or "not acted on" in line for line in cycle.degraded
                ):
                    report.degraded_cycles += 1
                if cycle.outcome is not None and not cycle.outcome.ok:
                    report.failed_updates += 1
                if fault == "source_stale" and cycle.result is not None:
                    # Three-hour-old data must not be read: the reactive rule finds no data.
                    fired = [r.rule for r in cycle.result.plan.rules if r.fired]
                    if "hot-now" in fired:
                        report.stale_problems.append(
                            f"cycle {index}: hot-now fired on data three hours old"
                        )
            finally:
                metrics_file.write_bytes(pristine)
                if fault == "up_timeout":
                    time.sleep(HANG_S)  # the abandoned CLI finishes on its own, as a real one would
                cli.model.failures.clear()
        # Two quiet cycles at the end: whatever was interrupted is reconciled and settles.
        for extra in range(2):
            now = start + (cycles + extra) * step
            driver.run_cycle(now=now)
    report.seconds = time.monotonic() - began
    report.activations = cli.activations
    report.problems = [
        *check_invariants(root, journal, cli, initial=config, report=report),
        *report.stale_problems,
    ]
    return report, journal, cli


def _set(data: dict[str, Any], path: str, value: Any) -> Any:
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})  # the driver record's keys appear with their first write
    old = node.get(last)
    node[last] = value
    return old


def _get(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None  # a key not written yet (the driver record's)
        node = node[part]
    return node


def check_invariants(
    root: Path,
    journal: Journal,
    cli: KillableCli,
    *,
    initial: MirrorcastConfig,
    report: SoakReport,
) -> list[str]:
    """Every violation of the soak's invariants, as sentences (empty when all hold)."""
    problems: list[str] = []
    with journal.engine.connect() as c:
        plan_rows = list(
            c.execute(sa.text("SELECT * FROM plans WHERE stack = :s"), {"s": STACK}).mappings()
        )
        change_rows = list(
            c.execute(
                sa.text("SELECT plan_id, path, old, new FROM config_changes ORDER BY id")
            ).mappings()
        )
        cycle_rows = list(
            c.execute(sa.text("SELECT * FROM cycles WHERE stack = :s ORDER BY id"), {"s": STACK})
        )
    # Journal rows are intact: JSON columns parse, changes rows agree with the plan's list.
    by_plan: dict[str, list[dict[str, Any]]] = {}
    for row in change_rows:
        by_plan.setdefault(row["plan_id"], []).append(
            {"path": row["path"], "old": _load(row["old"]), "new": _load(row["new"])}
        )
    for row in plan_rows:
        for column in ("changes", "decisions", "rules"):
            try:
                _load(row[column])
            except ValueError:
                problems.append(f"plan {row['id']}: column {column} does not parse")
        if row["status"] == "applying":
            problems.append(f"plan {row['id']} is still 'applying' after the final cycles")
        if [dict(ch) for ch in _load(row["changes"])] != by_plan.get(row["id"], []):
            problems.append(f"plan {row['id']}: config_changes rows differ from its changes")
    if not cycle_rows:
        problems.append("no cycles were journaled")
    # Replaying the journal gives the final config, each change starting where the last ended.
    records = sorted(
        journal.plans(stack=STACK, limit=1_000_000), key=lambda r: (r.created_at, r.cycle_id)
    )
    replay: dict[str, Any] = initial.model_dump(mode="json")
    for record in records:
        if record.status == "planned":
            continue
        report.plans_applied += record.status == "applied"
        for change in record.changes:
            held = _get(replay, change["path"])
            if held != change["old"]:
                problems.append(
                    f"plan {record.id}: {change['path']} was {held!r} in the replay but the plan "
                    f"saw {change['old']!r} (a change was lost or repeated)"
                )
            _set(replay, change["path"], change["new"])
            if change["path"].endswith("mirror.state") and change["new"] == "active":
                report.activation_decisions += 1
            if change["path"].endswith("mirror.state") and change["new"] == "paused":
                report.rollbacks_completed += 1
    final = load_stack(STACK, root)
    try:
        replayed: MirrorcastConfig | None = MirrorcastConfig.model_validate(replay)
    except ValueError as exc:  # a lost entry can leave a half-written driver record
        replayed = None
        problems.append(f"the journal's replay is not a valid config: {str(exc).splitlines()[0]}")
    if replayed is not None and replayed != final:
        problems.append("the final stack config differs from the journal's replay")
    mismatches = output_mismatches(final, cli.model.outputs.get("pools"))
    if cli.model.outputs and mismatches:
        problems.append("the stack's outputs differ from its config: " + "; ".join(mismatches))
    if report.activations != report.activation_decisions:
        problems.append(
            f"{report.activations} mirror activations happened for "
            f"{report.activation_decisions} decisions to activate"
        )
    memory = journal.load_memory(stack=STACK).pools.get("web")
    if final.pools["web"].mirror.state.value == "active" and (
        memory is None or memory.activated_at is None
    ):
        problems.append(
            "the mirror is active but the planner's memory has no activation to roll back"
        )
    return problems


def _load(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
