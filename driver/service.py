"""The driver service: collect, decide, apply, record, observe; once or on an aligned schedule.

One :class:`Driver` runs cycles for one stack. A cycle:

1. loads the stack file, checks the journal is still the one it opened (a deleted or replaced
   journal stops the driver), takes the stack's lease (another live driver on the same stack
   makes this one skip the cycle), and refuses a stack whose config names another journal;
   a fresh journal rebuilds the active mirrors from the record the driver keeps in the stack
   config (``mirrorcast:driver_record``);
2. finishes an update a previous driver left ``applying`` (apply mode refreshes and reconciles;
   gitops re-pushes the same plan, which is idempotent);
3. collects metric history, observes each pool in its clouds (:mod:`driver.observers`: instances,
   balancer health, live launch configuration; a cloud that cannot be read is a degraded line
   and "not observed"), forecasts and plans (:func:`driver.cycle.decide`) on what was observed;
4. journals the plan *and the planner memory it leaves* as ``applying`` before acting, then the
   outcome after, so a kill at any point leaves enough to resume without repeating an activation
   or losing a pending rollback;
5. updates ``/metrics``.

The lease is renewed by a heartbeat while a cycle runs and checked (fencing token, database
clock) before every effect: the intent record, each config write, ``pulumi up``/``refresh``,
each push. It is released on every way out (:meth:`Driver.close`).

Plan mode journals plans for ``history`` but never stores planner memory, because nothing it
planned happened.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from driver.collect import Kept, collect_history, recording_end
from driver.config_memo import StackConfigMemo
from driver.cycle import (
    CycleResult,
    CycleState,
    ForecastEngineLike,
    actuation_estimate,
    decide,
    good_forecasts,
)
from driver.executor import ApplyOutcome, DriverError, Executor, PlanExecutor, value_at
from driver.heap import HEAP
from driver.journal import OBSERVE_KIND, Journal, JournalLostError, LeaseLostError, PlanRecord
from driver.observe import DriverMetrics, forecast_abs_error
from driver.observers import StackObservation, StackObserver, not_observed
from driver.record import (
    StackRecordError,
    journal_location,
    rebuild_memory,
    record_changes,
    with_record_changes,
)
from driver.redact import redact_text
from driver.stack_config import config_warnings
from driver.stack_outputs import (
    ResolvedMetrics,
    StateOutputsUnreadable,
    has_output_references,
    pulumi_project_name,
    read_state_outputs,
    resolve_output_references,
)
from driver.state import state_path
from infra.config import MirrorcastConfig
from policies import ConfigChange, Decision, Plan, PlannerMemory

if TYPE_CHECKING:
    from forecasting import Forecast

__all__ = [
    "OBSERVE_KIND",
    "PAUSE_ENV",
    "CycleReport",
    "Driver",
    "build_executor",
    "next_aligned",
    "plan_from_record",
]

logger = logging.getLogger(__name__)

PAUSE_ENV = "MIRRORCAST_PAUSE_AT"
"""Crash-test hook: the name of a point in the cycle where the driver writes the file named by
``MIRRORCAST_PAUSE_MARKER`` and then waits to be killed. Unset in normal operation."""

_RETRY_STATES = frozenset({"failed", "mismatch", "unfinished"})


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did, for the terminal summary, ``--json`` and tests."""

    stack: str
    mode: str
    now: datetime
    config: MirrorcastConfig
    result: CycleResult | None
    plan_id: str | None
    outcome: ApplyOutcome | None
    degraded: list[str]
    duration_s: float
    skipped: str | None = None
    recovered: ApplyOutcome | None = None
    notes: list[str] = field(default_factory=list)
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    """pool -> metric -> the observations the cycle collected (``forecast --plot`` draws them)."""
    observed: dict[str, Any] | None = None
    """What the clouds reported beside what the config intends (``StackObservation.summary``)."""


class StackObserverLike(Protocol):
    """What the driver needs of :class:`driver.observers.StackObserver`."""

    def observe(self, config: MirrorcastConfig, *, now: datetime) -> StackObservation: ...


def next_aligned(now: datetime, every: timedelta) -> datetime:
    """The next multiple of ``every`` since the Unix epoch strictly after ``now``.

    Aligned cycles make two drivers (or a restarted one) decide at the same instants, and make
    the journal's cycle times easy to read (every 5 minutes on the 5).
    """
    seconds = every.total_seconds()
    if seconds <= 0:
        raise ValueError("the cycle interval must be positive")
    epoch = now.timestamp()
    return datetime.fromtimestamp((epoch // seconds + 1) * seconds, UTC)


def plan_from_record(record: PlanRecord, config: MirrorcastConfig) -> Plan:
    """A journaled plan as a :class:`Plan` again (to resume an interrupted proposal)."""
    return Plan(
        now=record.created_at,
        stack_config=config,
        changes=[ConfigChange(**change) for change in record.changes],
        decisions=[Decision(**decision) for decision in record.decisions],
        explanation=record.explanation,
    )


def _jsonable(value: Any) -> Any:
    """A change value as the journal stores it (enums as their value)."""
    return json.loads(json.dumps(value, default=str))


def _proc_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except OSError:
        return "?"


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def process_origin() -> str:
    """Where this process runs: host, boot, PID namespace, pid and start time.

    Two containers can share a hostname and both be pid 1, so a pid alone proves nothing; with
    the boot id and the PID namespace a driver can tell that a lease holder is a process it
    can see, and with the start time that the pid was not reused.
    """
    pid = os.getpid()
    return "|".join(
        [
            socket.gethostname(),
            _read("/proc/sys/kernel/random/boot_id"),
            _pid_namespace(),
            str(pid),
            _proc_start_time(pid) or "?",
        ]
    )


def _holder_is_dead(origin: str | None) -> bool:
    """Whether a lease holder's process is provably gone (same host, boot and PID namespace).

    Anything else (another host or container, an unknown origin) can only be told by expiry.
    """
    if not origin:
        return False
    parts = origin.split("|")
    if len(parts) != 5 or "?" in parts:
        return False
    host, boot, namespace, pid, started = parts
    mine = process_origin().split("|")
    if [host, boot, namespace] != mine[:3] or not pid.isdigit():
        return False
    return _proc_start_time(int(pid)) != started


def _pause_point(name: str) -> None:
    """Crash-test hook (see :data:`PAUSE_ENV`); a no-op unless the variable names this point."""
    if os.environ.get(PAUSE_ENV) != name:
        return
    marker = os.environ.get("MIRRORCAST_PAUSE_MARKER")
    if marker:
        Path(marker).write_text(name, encoding="utf-8")
    logger.warning("paused at %s for a crash test", name)
    while True:
        time.sleep(3600)


def build_executor(
    mode: str, *, stack: str, root: Path, config: MirrorcastConfig, pulumi_command: Any = None
) -> Executor:
    """The executor for ``mode`` (``plan``, ``apply`` or ``gitops``)."""
    if mode == "plan":
        return PlanExecutor()
    if mode == "apply":
        from driver.automation import AutomationExecutor

        return AutomationExecutor(
            stack=stack,
            project_root=root,
            backend_url=config.driver.backend_url,
            pulumi_command=pulumi_command,
            update_timeout=config.driver.update_timeout,
            policy_packs=[str(root / pack) for pack in config.policy.packs],
        )
    if mode == "gitops":
        from driver.gitops import GitOpsExecutor

        return GitOpsExecutor(stack=stack, repo_root=root, settings=config.driver.gitops)
    raise DriverError(f"unknown mode {mode!r}; use plan, apply or gitops")


class Driver:
    """Runs cycles for one stack.

    :param stack: the stack name.
    :param root: the project root (``Pulumi.yaml``, ``stacks/``).
    :param mode: ``plan``, ``apply`` or ``gitops``; default the stack's ``driver.mode``.
    :param journal: the journal; default from ``driver.journal_url`` (SQLite in the state dir).
    :param executor: default built for ``mode``.
    :param engine: the forecasting engine; default ``forecasting.ForecastEngine`` on the
        stack's forecast settings with its cache in the state directory.
    :param metrics: default a fresh :class:`DriverMetrics`.
    :param clock: returns the current UTC time; default the wall clock.
    :param holder: this driver's lease holder id; default a new uuid per instance (tests pass
        one to simulate a restart of the same driver).
    :param lease_ttl: how long the lease lasts without renewal; default three intervals, at
        least ``update_timeout`` plus an interval and at least 10 minutes.
    :param adopt: take the stack over from the journal its config names (that journal is lost
        for good): rebuild the memory from the stack; default ``False``.
    :param replay: with a file metrics source, decide at the recording's end instead of the wall
        clock when ``now`` is not given; default ``True``.
    :param observer: reads each pool's live state from its clouds; default a
        :class:`~driver.observers.StackObserver` on the standard credential chains.
    """

    def __init__(
        self,
        *,
        stack: str,
        root: Path,
        mode: str | None = None,
        journal: Journal | None = None,
        executor: Executor | None = None,
        engine: ForecastEngineLike | None = None,
        metrics: DriverMetrics | None = None,
        clock: Callable[[], datetime] | None = None,
        holder: str | None = None,
        replay: bool = True,
        observer: StackObserverLike | None = None,
        lease_ttl: timedelta | None = None,
        adopt: bool = False,
    ) -> None:
        self.stack = stack
        self.root = root
        # Parsed once, then again only when the stack file or a rules file changes.
        self.stack_config = StackConfigMemo(stack=stack, root=root)
        config = self.stack_config.load()
        self.mode = mode or config.driver.mode
        self.journal = journal or Journal(config.driver.journal_url)
        self.executor = executor or build_executor(self.mode, stack=stack, root=root, config=config)
        self._engine = engine
        self.metrics = metrics or DriverMetrics()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.holder = holder or uuid.uuid4().hex
        self.origin = process_origin()
        self.replay = replay
        self.observer: StackObserverLike = observer or StackObserver()
        self.last_observation: StackObservation | None = None
        self.lease_ttl = lease_ttl
        self.adopt = adopt
        self.stop = threading.Event()
        self._forecast_errors: dict[tuple[str, str], float] = {}
        self._token: int | None = None
        self._ttl = timedelta(minutes=10)
        self._lost: LeaseLostError | None = None
        self._lease_lock = threading.Lock()
        if hasattr(self.executor, "fence"):
            # Executors call it before each effect (config write, up, refresh, push).
            self.executor.fence = self.fence
        # The last cycle's reads from a remote metrics source, which the next cycle extends
        # from their recent end (driver.collect.REFETCH) instead of reading all history again.
        self._kept: Kept | None = None

    # ------------------------------------------------------------------ pieces

    def load_config(self) -> MirrorcastConfig:
        """The stack config this driver decides on.

        In gitops mode that is the stack file on the remote's base branch (what the pipeline
        deploys), not the local checkout, so a merged proposal is seen without a ``git pull``.
        Each pool's ``rules_file`` is merged in (:mod:`driver.stack_config`).
        """
        base_text = getattr(self.executor, "base_stack_text", None)
        if self.mode == "gitops" and callable(base_text):
            text, source = base_text()
            return self.stack_config.load(text, source=source)
        return self.stack_config.load()

    def engine(self, config: MirrorcastConfig) -> ForecastEngineLike:
        if self._engine is None:
            from forecasting.as_driven import driver_engine

            # Calibration learns from the forecasts this service hands out, so it lives as
            # long as the service (a restart starts it over, with the models' own quantiles).
            # The same factory builds the engine that backtest and evaluate-forecast score.
            self._engine = driver_engine(config.forecast, cache_dir=state_path("models"), seed=0)
        return self._engine

    def decision_time(
        self, config: MirrorcastConfig, now: datetime | None
    ) -> tuple[datetime, list[str]]:
        """The cycle's ``now`` and a note when it is a recording's end rather than the clock."""
        if now is not None:
            return now, []
        wall = self.clock()
        if self.replay:
            end = recording_end(config, root=self.root, now=wall)
            if end is not None and wall - end > config.driver.interval:
                return end, [f"file metrics end at {end.isoformat()}; deciding as of then"]
        return wall, []

    def events(self, config: MirrorcastConfig, now: datetime) -> Any:
        """The stack's event schedule around ``now`` (history window to horizon), or ``None``."""
        if not config.events.file and not config.events.calendars:
            return None
        from forecasting.events import EventSchedule

        return EventSchedule.load(
            config.events,
            root=self.root,
            start=now - config.forecast.history,
            end=now + config.forecast.horizon,
        )

    # ------------------------------------------------------------------ one cycle

    def preview(self, *, now: datetime | None = None) -> CycleReport:
        """Collect and decide without journaling or acting (``mirrorcast plan``)."""
        started = time.monotonic()
        config = self.load_config()
        at, notes = self.decision_time(config, now)
        notes = [*notes, *config_warnings(config)]
        observation = self._observe(config, at)
        result, degraded, history = self._decide(config, at, observation=observation)
        return CycleReport(
            stack=self.stack,
            mode="plan",
            now=at,
            config=config,
            result=result,
            plan_id=None,
            outcome=PlanExecutor().apply(result.plan, plan_id="preview"),
            degraded=degraded,
            duration_s=time.monotonic() - started,
            notes=notes,
            history=history,
            observed=observation.summary(config),
        )

    def _observe(self, config: MirrorcastConfig, now: datetime) -> StackObservation:
        """Each pool's live state; never raises (what cannot be read is a degraded line)."""
        try:
            observation = self.observer.observe(config, now=now)
        except Exception as exc:
            # The observers report their own failures; this is a bug in one of them, and it
            # must not cost the cycle its plan.
            logger.warning("observing the stack failed", exc_info=exc)
            observation = not_observed(
                config, at=now, why=redact_text(f"{type(exc).__name__}: {exc}")
            )
        self.last_observation = observation
        return observation

    def _decide(
        self,
        config: MirrorcastConfig,
        now: datetime,
        *,
        observation: StackObservation,
        rollbacks: frozenset[str] = frozenset(),
    ) -> tuple[CycleResult, list[str], dict[str, dict[str, Any]]]:
        """The cycle's plan, its degraded lines and the history it was decided on.

        The history goes back to the caller, never onto the driver: kept between cycles it
        held every series' two weeks of observations (about 32 KB a series at 5 minutes) while
        the next cycle collected them again. What a remote source's next read extends is
        ``self._kept`` (:class:`driver.collect.Kept`), not this.
        """
        # The metric queries name deployed resources through the stack's outputs; the plan
        # itself works on the config as written (its references stay in the stack file).
        metrics = self.resolve_metric_outputs(config)
        collected = collect_history(
            metrics.config, root=self.root, now=now, kept=self._kept, skip=metrics.unresolved
        )
        self._kept = collected.kept
        drift = observation.drift(config)
        engine = self.engine(config)
        state = self.cycle_state()
        result = decide(
            config=config,
            history=collected.history,
            engine=engine,
            now=now,
            memory=state.memory,
            health=observation.health(),
            primary_health=observation.primary_health(),
            events=self.events(config, now),
            last_good=state.last_good,
            rollback_requested=rollbacks,
            observed_desired=observation.observed_desired(),
            drift=drift,
            # A recent high percentile of this stack's measured cycle-start-to-`up`-finished
            # times joins every rule's lead (the configured default until measured).
            actuation_time=actuation_estimate(
                self.journal.actuation_times(stack=self.stack),
                percentile=config.driver.actuation_percentile,
            ),
        )
        self._forecast_errors = self._errors(collected.history, now, last_good=state.last_good)
        observed = [*observation.degraded, *(str(d) for d in drift)]
        # The engine's own cycle-level lines: an unreachable Dask cluster, deferred selections.
        engine_notes = [str(n) for n in getattr(engine, "notes", ())]
        cut = [collected.summary] if collected.summary else []
        degraded = [*cut, *collected.degraded, *observed, *result.degraded, *engine_notes]
        return result, degraded, collected.history

    def resolve_metric_outputs(self, config: MirrorcastConfig) -> ResolvedMetrics:
        """``config`` with its metrics' ``${outputs.<path>}`` dimensions read from the stack.

        The stack's outputs are read only when a metric refers to one: in apply mode through
        the executor that runs ``up`` (``pulumi stack output``); in plan and gitops modes,
        which have no CLI, from the stack's checkpoint in a local ``file://`` backend
        (``driver.backend_url``, default the one apply mode writes in the state directory).
        A series whose reference cannot be resolved is a degraded line saying why and what to
        do.
        """
        if not has_output_references(config):
            return ResolvedMetrics(config=config)
        read = getattr(self.executor, "pools_output", None)
        try:
            if callable(read):
                pools = read()
                outputs = None if pools is None else {"pools": pools}
                return resolve_output_references(config, outputs=outputs, stack=self.stack)
            backend = config.driver.backend_url or f"file://{state_path('backend')}"
            outputs = read_state_outputs(
                backend_url=backend, project=pulumi_project_name(self.root), stack=self.stack
            )
        except StateOutputsUnreadable as exc:
            return resolve_output_references(
                config, outputs=None, stack=self.stack, why_none=redact_text(str(exc))
            )
        except Exception as exc:  # a CLI or backend failure costs these series, not the cycle
            why = "reading the stack's outputs failed: " + redact_text(
                f"{type(exc).__name__}: {exc}"
            )
            return resolve_output_references(config, outputs=None, stack=self.stack, why_none=why)
        why_none = (
            f"the backend {backend} holds no deployment of stack {self.stack} yet (deployed to "
            "another backend? set driver.backend_url to that one; not deployed? run `pulumi up`)"
        )
        return resolve_output_references(
            config, outputs=outputs, stack=self.stack, why_none=redact_text(why_none)
        )

    def cycle_state(self) -> CycleState:
        """The state the last cycle left, as this stack's journal keeps it.

        The memory is the one the journal holds for the stack (saved with the plan it belongs
        to, by mode: see :meth:`_act`); the last good forecasts are saved after every cycle,
        as :meth:`CycleState.advanced` keeps them (:func:`driver.cycle.good_forecasts`).
        """
        return CycleState(
            memory=self.journal.load_memory(stack=self.stack),
            last_good=self.journal.last_forecasts(stack=self.stack),
        )

    def _errors(
        self,
        history: dict[str, dict[str, Any]],
        now: datetime,
        *,
        last_good: Mapping[str, Mapping[str, Forecast]],
    ) -> dict[tuple[str, str], float]:
        errors: dict[tuple[str, str], float] = {}
        for pool, by_metric in last_good.items():
            for metric, previous in by_metric.items():
                series = history.get(pool, {}).get(metric)
                if series is None:
                    continue
                value = forecast_abs_error(previous, series, now=now)
                if value is not None:
                    errors[(pool, metric)] = value
        return errors

    def run_cycle(self, *, now: datetime | None = None) -> CycleReport:
        """Run one full cycle; exceptions propagate after the journal records them."""
        started = time.monotonic()
        config = self.load_config()
        at, notes = self.decision_time(config, now)
        notes = [*notes, *config_warnings(config)]
        # A journal deleted or replaced since it was opened: stop before anything else.
        self.journal.verify()
        # Long enough to outlast a cycle that runs a full update; the heartbeat renews it anyway.
        self._ttl = self.lease_ttl or max(
            config.driver.interval * 3,
            config.driver.update_timeout + config.driver.interval,
            timedelta(minutes=10),
        )
        if not self._take_lease(self._ttl):
            lease = self.journal.lease(stack=self.stack) or {}
            reason = (
                f"another driver ({lease.get('holder', '?')}) holds the lease on stack "
                f"{self.stack} until {lease.get('expires_at')}; skipping this cycle"
            )
            logger.warning("%s", reason)
            return CycleReport(
                self.stack, self.mode, at, config, None, None, None, [], 0.0, skipped=reason
            )
        with self._heartbeat():
            return self._locked_cycle(config, at=at, notes=notes, started=started)

    def _locked_cycle(
        self, config: MirrorcastConfig, *, at: datetime, notes: list[str], started: float
    ) -> CycleReport:
        """The cycle while this driver holds the lease (the heartbeat renews it meanwhile)."""
        first_cycle = not self.journal.knows_stack(stack=self.stack)
        self._check_journal_marker(config, first_cycle=first_cycle)
        cycle_id = self.journal.start_cycle(stack=self.stack, mode=self.mode, at=at)
        self._forecast_errors = {}
        try:
            interrupted = self.journal.mark_interrupted(
                stack=self.stack, current=cycle_id, at=self.clock()
            )
            if interrupted:
                notes.append(f"{interrupted} cycle(s) of a killed driver marked interrupted")
            _pause_point("cycle-start")
            recovered = self._recover(config)
            if recovered is not None:
                config = self.load_config()
            if first_cycle and self.mode != "plan":
                notes.extend(self._rebuild(config, at=at, cycle_id=cycle_id))
            if self.mode == "gitops":
                self._adopt_merged(config)
            pending = self.journal.pending_rollbacks(stack=self.stack)
            rollbacks = frozenset(r.pool for r in pending if r.pool in config.pools)
            observation = self._observe(config, at)
            result, degraded, _ = self._decide(
                config, at, observation=observation, rollbacks=rollbacks
            )
            plan = result.plan
            if plan.resync and self.mode != "apply":
                notes.append(
                    f"re-sync planned for {', '.join(plan.resync)}: only apply mode runs it "
                    "(plan mode changes nothing; in gitops the pipeline's next deploy re-applies)"
                )
            if self.stop.is_set():
                notes.append("stop requested: the plan was journaled but not applied")
                self.journal.record_plan(
                    stack=self.stack, cycle_id=cycle_id, plan=plan, status="planned"
                )
                outcome: ApplyOutcome | None = None
                plan_id = None
            else:
                plan_id, outcome = self._act(cycle_id, plan)
                # A request that found nothing to roll back is answered in every mode (the
                # plan's explanation says so); left pending it would block later activations.
                answered = [r.id for r in pending if r.pool in plan.rollbacks_answered]
                self.journal.honour_rollbacks(answered, at=at, plan_id=plan_id)
                acted = [r.id for r in pending if r.id not in answered]
                if outcome.ok and self.mode != "plan" and acted:
                    self.journal.honour_rollbacks(acted, at=at, plan_id=plan_id)
            if plan_id is not None and plan.notices:
                degraded.extend(self._notify(plan, plan_id=plan_id))
            observed = observation.summary(config)
            # Observed beside intended, journaled with the plan it informed (history shows it).
            self.journal.record_update(
                stack=self.stack,
                plan_id=plan_id,
                kind=OBSERVE_KIND,
                at=at,
                ok=all(p["observed"] and not p["differences"] for p in observed["pools"].values()),
                summary=json.dumps(observed),
            )
            # The journal keeps the newest per pool metric, as CycleState.advanced does.
            self.journal.save_forecasts(stack=self.stack, forecasts=good_forecasts(result))
        except BaseException as exc:
            duration = time.monotonic() - started
            self.journal.finish_cycle(
                cycle_id,
                at=self.clock(),
                ok=False,
                error=f"{type(exc).__name__}: {exc}",
                duration_s=duration,
            )
            self.metrics.observe_failure(stack=self.stack, duration_s=duration)
            raise
        duration = time.monotonic() - started
        failed = outcome is not None and not outcome.ok
        self.journal.finish_cycle(
            cycle_id,
            at=self.clock(),
            ok=not failed,
            error=outcome.summary if failed and outcome is not None else None,
            degraded=degraded,
            duration_s=duration,
        )
        self.metrics.observe_cycle(
            stack=self.stack,
            plan=plan,
            config=config,
            duration_s=duration,
            ok=not failed,
            degraded=len(degraded),
            update_failed=failed,
            errors=self._forecast_errors,
            applied=outcome is not None and outcome.status == "applied" and self.mode == "apply",
        )
        self.metrics.observe_state(
            stack=self.stack,
            config=config,
            observation=observation,
            drift=observation.drift(config),
        )
        return CycleReport(
            stack=self.stack,
            mode=self.mode,
            now=at,
            config=config,
            result=result,
            plan_id=plan_id,
            outcome=outcome,
            degraded=degraded,
            duration_s=duration,
            recovered=recovered,
            notes=notes,
            observed=observed,
        )

    def _notify(self, plan: Plan, *, plan_id: str) -> list[str]:
        """Deliver the plan's notifications (:mod:`driver.notify`); one line per failure."""
        from driver.notify import Notifier

        notifier = Notifier(
            journal=self.journal,
            stack=self.stack,
            settings=plan.stack_config.driver.notify,
            clock=self.clock,
        )
        deliveries = notifier.deliver(
            plan.notices, plan_id=plan_id, decided_at=plan.now, mode=self.mode
        )
        failed = [d for d in deliveries if d.status == "failed"]
        for delivery in failed:
            logger.warning("notification not delivered: %s", delivery.detail)
        return [f"{d.notice.pool}: notification not delivered: {d.detail}" for d in failed]

    def _take_lease(self, ttl: timedelta) -> bool:
        token = self.journal.acquire_lease(
            stack=self.stack, holder=self.holder, ttl=ttl, origin=self.origin
        )
        if token is None:
            lease = self.journal.lease(stack=self.stack)
            dead = (
                lease["holder"] if lease is not None and _holder_is_dead(lease["origin"]) else None
            )
            if dead is None:
                return False
            # A driver on this machine that was killed keeps its lease until expiry; its process
            # is gone, so waiting would only delay the recovery of its interrupted update.
            logger.warning("taking over the lease of %s, whose process is gone", dead)
            token = self.journal.acquire_lease(
                stack=self.stack,
                holder=self.holder,
                ttl=ttl,
                origin=self.origin,
                take_over_from=dead,
            )
            if token is None:
                return False
        with self._lease_lock:
            self._token, self._lost = token, None
        return True

    def fence(self) -> None:
        """The check before every effect: same journal, and this driver still holds the lease.

        Renews the lease (database clock) with this driver's fencing token; raises
        :class:`~driver.journal.LeaseLostError` when another driver took it over or it
        expired, and :class:`~driver.journal.JournalLostError` when the journal was replaced.
        """
        with self._lease_lock:
            lost, token = self._lost, self._token
        if lost is not None:
            raise lost
        if token is None:
            raise LeaseLostError(f"this driver does not hold the lease on stack {self.stack}")
        self.journal.verify()
        self.journal.renew_lease(stack=self.stack, holder=self.holder, token=token, ttl=self._ttl)

    @contextmanager
    def _heartbeat(self) -> Iterator[None]:
        """Renew the lease every third of its TTL while a cycle runs (slow refresh, slow ``up``)."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self._ttl.total_seconds() / 3):
                with self._lease_lock:
                    token = self._token
                if token is None:
                    return
                try:
                    self.journal.renew_lease(
                        stack=self.stack, holder=self.holder, token=token, ttl=self._ttl
                    )
                except LeaseLostError as exc:
                    logger.error("%s", exc)
                    with self._lease_lock:
                        self._lost = exc
                    return
                except BaseException as exc:  # journal down: the next fence says so
                    logger.warning("lease renewal failed: %s", redact_text(str(exc)))

        thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def close(self) -> None:
        """Release the lease (every way out: the loop, ``--once --at``, ``rollback --now``)."""
        with self._lease_lock:
            held, self._token = self._token is not None, None
        if held:
            try:
                self.journal.release_lease(stack=self.stack, holder=self.holder)
            except Exception as exc:  # the journal is gone: expiry releases it instead
                logger.warning("could not release the lease: %s", redact_text(str(exc)))

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the stack's record

    def _with_record(self, plan: Plan) -> Plan:
        changes = record_changes(
            plan, journal_id=self.journal.id, location=journal_location(self.journal)
        )
        return with_record_changes(plan, changes)

    def _check_journal_marker(self, config: MirrorcastConfig, *, first_cycle: bool) -> None:
        """Refuse a stack driven through another journal (two journals would each grant a lease).

        A journal that has never seen the stack may take it over when the marker names a
        journal at the same location (the journal there was lost and recreated) or when
        ``adopt`` says so; otherwise this is a second journal for the stack.
        """
        record = config.driver_record
        if record.journal is None or record.journal == self.journal.id:
            return
        adopted = f"took stack {self.stack} over from journal {record.journal}"
        if not first_cycle and self.journal.has_update(
            stack=self.stack, kind="adopt", summary=adopted
        ):
            return  # taken over earlier; the marker changes with this journal's next plan
        here = journal_location(self.journal)
        if first_cycle and (self.adopt or record.journal_location == here):
            self.journal.record_update(
                stack=self.stack,
                plan_id=None,
                kind="adopt",
                at=self.clock(),
                ok=True,
                summary=adopted,
            )
            logger.warning(
                "stack %s was driven through journal %s at %s, which is gone; this journal (%s) "
                "takes it over and rebuilds the active mirrors from the stack",
                self.stack,
                record.journal,
                record.journal_location,
                self.journal.id,
            )
            return
        raise StackRecordError(
            f"stack {self.stack} is driven through another journal ({record.journal} at "
            f"{record.journal_location}); this driver's journal is {self.journal.id} at {here}. "
            "Two journals for one stack would each grant a lease, so this driver does not act. "
            "Point driver.journal_url at that journal or, if it is lost for good, run once with "
            f"'mirrorcast run --stack {self.stack} --adopt' (the active mirrors and their "
            "original config are rebuilt from the stack)."
        )

    def _rebuild(self, config: MirrorcastConfig, *, at: datetime, cycle_id: int) -> list[str]:
        """A journal that has never seen this stack: rebuild the planner's essential memory."""
        memory, lines = rebuild_memory(config, now=at)
        if not lines:
            return []
        self.journal.save_memory(stack=self.stack, memory=memory, at=at, cycle_id=cycle_id)
        summary = "memory rebuilt from the stack config: " + "; ".join(lines)
        self.journal.record_update(
            stack=self.stack,
            plan_id=None,
            kind="rebuild",
            at=self.clock(),
            ok=True,
            summary=summary,
        )
        logger.warning("%s", summary)
        return [summary]

    def _act(self, cycle_id: int, plan: Plan) -> tuple[str, ApplyOutcome]:
        if self.mode == "plan":
            plan_id = self.journal.record_plan(
                stack=self.stack, cycle_id=cycle_id, plan=plan, status="planned"
            )
            return plan_id, self.executor.apply(plan, plan_id=plan_id)
        if self.mode == "gitops" and plan.changes:
            return self._propose(cycle_id, plan)
        last = self.journal.plans(stack=self.stack, limit=1)
        retry = bool(last) and last[0].status in _RETRY_STATES and self.mode == "apply"
        # A re-sync (sync.on_drift: resync) re-applies the config with no key changed; only
        # apply mode can run that update (gitops has nothing to propose: the plan reports it).
        resync = bool(plan.resync) and self.mode == "apply"
        retry = retry or resync
        if not plan.changes and not retry:
            plan_id = self.journal.record_plan(
                stack=self.stack, cycle_id=cycle_id, plan=plan, status="planned"
            )
            self.journal.save_memory(
                stack=self.stack, memory=plan.memory, at=plan.now, cycle_id=cycle_id
            )
            return plan_id, ApplyOutcome(
                status="applied" if self.mode == "apply" else "planned", summary="no changes"
            )
        # The stack keeps the journal's marker and each activation's original config, so a
        # lost journal loses no rollback.
        plan = self._with_record(plan)
        # Intent first: the plan and the memory it leaves, before anything changes; written
        # only while this driver still holds the lease (the fencing check).
        self.fence()
        plan_id = self.journal.record_plan(
            stack=self.stack, cycle_id=cycle_id, plan=plan, status="applying"
        )
        self.journal.save_memory(
            stack=self.stack, memory=plan.memory, at=plan.now, cycle_id=cycle_id
        )
        _pause_point("before-apply")
        outcome = self.executor.apply(plan, plan_id=plan_id, retry_update=retry)
        _pause_point("after-apply")
        status = "applying" if outcome.status == "unfinished" else outcome.status
        self.journal.set_plan_status(
            plan_id, status=status, at=self.clock(), outcome=outcome.summary
        )
        self.journal.record_update(
            stack=self.stack,
            plan_id=plan_id,
            kind="gitops" if self.mode == "gitops" else "up",
            at=self.clock(),
            ok=outcome.ok,
            summary=outcome.summary,
        )
        log = logger.info if outcome.ok else logger.error
        log("plan %s: %s", plan_id, outcome.summary)
        return plan_id, outcome

    def _propose(self, cycle_id: int, plan: Plan) -> tuple[str, ApplyOutcome]:
        """gitops: open (at most) one proposal per distinct change set.

        The planner memory a proposal leaves is kept with the plan and adopted only once the
        change is merged (:meth:`_adopt_merged`); until then the planner keeps deciding from the
        memory that matches the deployed config, and re-plans the same change, which is not
        proposed twice.
        """
        wanted = [{"path": c.path, "new": _jsonable(c.new)} for c in plan.changes]
        open_plan = self.journal.latest_plan(stack=self.stack, status="proposed")
        if open_plan is not None:
            # The driver record's own keys (activation id and times) change with each re-plan
            # of an unmerged proposal; the proposal is the same when the stack's keys are.
            proposed = [
                {"path": c["path"], "new": c["new"]}
                for c in open_plan.changes
                if not c["path"].startswith("driver_record.")
            ]
            if proposed == wanted:
                plan_id = self.journal.record_plan(
                    stack=self.stack, cycle_id=cycle_id, plan=plan, status="planned"
                )
                return plan_id, ApplyOutcome(
                    status="planned",
                    summary=f"already proposed as plan {open_plan.id}; waiting for its merge",
                )
            self.journal.set_plan_status(
                open_plan.id, status="superseded", at=self.clock(), outcome="a newer plan differs"
            )
        plan = self._with_record(plan)
        self.fence()
        plan_id = self.journal.record_plan(
            stack=self.stack, cycle_id=cycle_id, plan=plan, status="applying"
        )
        _pause_point("before-apply")
        outcome = self.executor.apply(plan, plan_id=plan_id)
        self.journal.set_plan_status(
            plan_id, status=outcome.status, at=self.clock(), outcome=outcome.summary
        )
        self.journal.record_update(
            stack=self.stack,
            plan_id=plan_id,
            kind="gitops",
            at=self.clock(),
            ok=outcome.ok,
            summary=outcome.summary,
        )
        return plan_id, outcome

    def _adopt_merged(self, config: MirrorcastConfig) -> None:
        """When the open proposal's keys show in the deployed config, take on its memory."""
        open_plan = self.journal.latest_plan(stack=self.stack, status="proposed")
        if open_plan is None or open_plan.memory is None:
            return
        current = config.model_dump(mode="json")
        for change in open_plan.changes:
            try:
                if value_at(current, change["path"]) != change["new"]:
                    return
            except KeyError:
                return
        self.journal.save_memory(
            stack=self.stack,
            memory=PlannerMemory.model_validate(open_plan.memory),
            at=self.clock(),
        )
        self.journal.set_plan_status(
            open_plan.id, status="applied", at=self.clock(), outcome="merged; its memory adopted"
        )
        self.journal.record_update(
            stack=self.stack,
            plan_id=open_plan.id,
            kind="gitops",
            at=self.clock(),
            ok=True,
            summary="proposal merged",
        )
        logger.info("plan %s was merged; adopting the planner memory it left", open_plan.id)

    def _recover(self, config: MirrorcastConfig) -> ApplyOutcome | None:
        record = self.journal.unfinished_plan(stack=self.stack)
        if record is None:
            return None
        logger.warning(
            "plan %s was left 'applying' by an interrupted driver; reconciling", record.id
        )
        recover = getattr(self.executor, "recover", None)
        if callable(recover):
            outcome: ApplyOutcome = recover(record, config)
        elif self.mode == "gitops":
            outcome = self.executor.apply(plan_from_record(record, config), plan_id=record.id)
        else:
            outcome = ApplyOutcome(
                status="failed", summary="interrupted; nothing to reconcile in plan mode"
            )
        status = "applying" if outcome.status == "unfinished" else outcome.status
        self.journal.set_plan_status(
            record.id, status=status, at=self.clock(), outcome=outcome.summary
        )
        self.journal.record_update(
            stack=self.stack,
            plan_id=record.id,
            kind="reconcile",
            at=self.clock(),
            ok=outcome.ok,
            summary=outcome.summary,
        )
        return outcome

    # ------------------------------------------------------------------ the loop

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT ask the loop to stop after the current step."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            if self.stop.is_set():
                return
            logger.info(
                "%s received; finishing the current step, then exiting", signal.Signals(signum).name
            )
            self.stop.set()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _watch(self) -> timedelta | None:
        """The stack's ``driver.health_watch``; ``None`` when off or the stack cannot be read
        (the next cycle reports why)."""
        try:
            return self.load_config().driver.health_watch
        except Exception:
            return None

    def _sleep_watching(self, wake: datetime, *, watch: timedelta | None) -> None:
        """Sleep until ``wake``; with a ``watch``, read the clouds that often meanwhile and
        return at once when a pool's primary starts failing.

        A region that fails just after a cycle would otherwise wait up to a whole interval for
        the failover rule to see it, and every minute of that is traffic lost. The watch only
        ends the sleep: the cycle that follows decides as always, from the rules' own metrics,
        and the primary it then observes failing lets the traffic move in the same plan
        (the planner's ``primary_failing``). A primary already failing at the last cycle does
        not wake it again.
        """
        while not self.stop.is_set():
            left = (wake - self.clock()).total_seconds()
            if left <= 0:
                return
            if watch is None or watch <= timedelta(0):
                self.stop.wait(left)
                return
            self.stop.wait(min(left, watch.total_seconds()))
            if self.stop.is_set() or self.clock() >= wake:
                return
            newly = self._newly_failing()
            if newly:
                logger.warning(
                    "primary failing in pool(s) %s: the next cycle starts now",
                    ", ".join(sorted(newly)),
                )
                return

    def _newly_failing(self) -> frozenset[str]:
        """Pools whose primary is failing now and was not at the last observation."""
        try:
            config = self.load_config()
            seen = self.observer.observe(config, now=self.clock())
        except Exception as exc:
            # A watch that cannot read the clouds changes nothing: the cycle reports it.
            logger.info("health watch: %s", redact_text(f"{type(exc).__name__}: {exc}"))
            return frozenset()
        before = self.last_observation
        was = before.failing_primaries() if before is not None else frozenset()
        return seen.failing_primaries() - was

    def run_forever(
        self,
        *,
        every: timedelta,
        once: bool = False,
        on_report: Callable[[CycleReport], None] | None = None,
        watch: timedelta | None = None,
    ) -> int:
        """Run cycles aligned to ``every`` until stopped; returns the process exit code.

        :param every: the interval between cycles.
        :param once: run a single cycle now and return; default ``False``.
        :param on_report: called with each cycle's report (the CLI prints it); default none.
        :param watch: how often to read the clouds between cycles; default the stack's
            ``driver.health_watch`` (off unless set). See :meth:`_sleep_watching`.
        """
        failures = 0
        with self._signals():
            try:
                while not self.stop.is_set():
                    try:
                        report = self.run_cycle()
                    except (DriverError, JournalLostError, StackRecordError):
                        # Acting on would be unsafe until a person (or a restart) steps in.
                        raise
                    except Exception as exc:
                        if once:
                            # A single cycle's caller reports the error itself (the CLI: one line).
                            raise
                        # One bad cycle must not stop the service; the cause goes to the log.
                        failures += 1
                        logger.error(
                            "cycle failed: %s",
                            redact_text(f"{type(exc).__name__}: {exc}"),
                            exc_info=exc,
                        )
                    else:
                        if on_report is not None:
                            on_report(report)
                        if once:
                            return 0 if report.outcome is None or report.outcome.ok else 1
                    # What the cycles keep is long-lived: out of the collector's full walks.
                    HEAP.after_cycle()
                    wake = next_aligned(self.clock(), every)
                    logger.info("next cycle at %s", wake.isoformat())
                    self._sleep_watching(wake, watch=watch if watch is not None else self._watch())
            finally:
                self.close()
        logger.info("stopped cleanly after %d failed cycle(s)", failures)
        return 0
