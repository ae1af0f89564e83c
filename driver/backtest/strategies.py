"""The strategies a backtest compares: four baselines and mirrorcast itself.

Every online strategy acts once per cycle and sees only the demand observed before ``now``; it
changes its own :class:`~driver.backtest.cloud.SimulatedCloud`, which carries the changes out
with the cloud's delays. ``static-peak`` and ``oracle`` know the future by definition and say so
(:attr:`Strategy.knows_future`).

The mirrorcast strategy runs :func:`driver.cycle.decide` (the forecasting engine, rule engine and
planner the service runs) on the simulated history, then applies ``Plan.changes`` to a simulated
stack config and the cloud follows that config: nothing of the decision is re-implemented here.
Between plans the primary tracks demand as the cloud's own target-tracking autoscaler would; the
driver only raises its floor (``capacity.min``), which is the design for pools with
``native_autoscaling``.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from driver.backtest.cloud import CloudRecord, CloudTiming, SimulatedCloud, SimulatedObserver
from driver.backtest.errors import BacktestError
from driver.backtest.scoring import CapacityModel
from driver.cycle import CycleState
from driver.observers import StackObserver
from infra.config import Cloud, ConfigPathError, MirrorcastConfig, MirrorState, set_path
from policies import ConfigChange

__all__ = [
    "STRATEGY_NAMES",
    "MirrorcastStrategy",
    "OracleStrategy",
    "PlanNote",
    "ReactiveStrategy",
    "ScheduledPredictiveStrategy",
    "SimulationContext",
    "StaticPeakStrategy",
    "Strategy",
    "TargetTracker",
]

logger = logging.getLogger(__name__)

HEALTH_METRIC = "primary_healthy"
"""A pool metric of this name is fed the simulated primary's health checks (percent passing)."""

STRATEGY_NAMES: tuple[str, ...] = (
    "reactive",
    "scheduled-predictive",
    "static-peak",
    "mirrorcast",
    "oracle",
)
"""Every strategy the backtest knows, in report order."""


@dataclass(frozen=True)
class SimulationContext:
    """What every strategy is told before the first cycle.

    :param start: the wall-clock time of trace minute 0 (UTC).
    :param minutes: the trace's length in minutes.
    :param interval: minutes between cycles.
    :param first_cycle: the minute of the first cycle.
    :param score_start: the first scored minute (the part before is history only).
    :param model: the capacity model.
    :param timing: the cloud's delays.
    :param initial: primary instances serving at the first cycle.
    :param max_instances: the capacity ceiling every online strategy honours (static-peak and the
        oracle are references and ignore it).
    :param observation_step: minutes between the trace's own observations (5 for CloudWatch-style
        traces); a metric source would deliver points at this step.
    :param outage: ``(first minute, end minute)`` when the primary's region serves nothing.
    """

    start: pd.Timestamp
    minutes: int
    interval: int
    first_cycle: int
    score_start: int
    model: CapacityModel
    timing: CloudTiming
    initial: int
    max_instances: int
    observation_step: int = 1
    outage: tuple[int, int] | None = None

    def time_of(self, minute: int) -> datetime:
        """The wall-clock time of a trace minute."""
        stamp: datetime = (self.start + pd.Timedelta(minutes=minute)).to_pydatetime()
        return stamp


@dataclass(frozen=True)
class PlanNote:
    """A non-empty plan the mirrorcast strategy applied: when, what changed and why."""

    at: datetime
    changes: list[str]
    explanation: str


class Strategy(ABC):
    """A scaling strategy under test."""

    name: ClassVar[str]
    knows_future: ClassVar[bool] = False
    """``True`` for strategies that are given the whole trace (static-peak, oracle)."""

    def __init__(self) -> None:
        self.notes: list[PlanNote] = []
        self._context: SimulationContext | None = None
        self._cloud: SimulatedCloud | None = None
        self.watch_every: int | None = None
        """Minutes between :meth:`watch` calls between cycles; ``None``: not watched."""

    @property
    def context(self) -> SimulationContext:
        if self._context is None:
            raise RuntimeError(f"strategy {self.name} has not been started")
        return self._context

    @property
    def cloud(self) -> SimulatedCloud:
        if self._cloud is None:
            raise RuntimeError(f"strategy {self.name} has no simulated cloud")
        return self._cloud

    def warmup(self, *, interval: timedelta) -> timedelta:
        """How long this strategy must run before it is in its steady state (default none).

        :param interval: the time between cycles.
        """
        return timedelta(0)

    def start(
        self, context: SimulationContext, *, future: npt.NDArray[np.float64] | None = None
    ) -> None:
        """Prepare for the first cycle.

        :param context: the simulation's parameters.
        :param future: the whole trace, given only to strategies that know the future.
        """
        self._context = context
        self._cloud = SimulatedCloud(
            minutes=context.minutes,
            initial=context.initial,
            timing=context.timing,
            outage=context.outage,
        )

    def cycle(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        """Advance the cloud to ``now`` and take this cycle's decision.

        :param now: the cycle's minute.
        :param observed: demand of every minute before ``now`` (read-only); never later data.
        """
        self.cloud.advance(now)
        self.step(now, observed)

    def watch(self, minute: int, observed: npt.NDArray[np.float64]) -> None:
        """A look at the cloud between cycles (every :attr:`watch_every` minutes).

        Only strategies that set :attr:`watch_every` are called; the baselines have their
        autoscaler's schedule and nothing to watch.
        """
        raise NotImplementedError(f"strategy {self.name} sets watch_every but has no watch()")

    @abstractmethod
    def step(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        """Decide at minute ``now`` from ``observed`` and change the cloud."""

    def report(self) -> dict[str, Any]:
        """Strategy-specific facts for the result (default: none)."""
        return {}

    def finish(self) -> CloudRecord:
        """Run the cloud to the end of the trace and hand over its record."""
        self.cloud.advance(self.context.minutes)
        return self.cloud.record()


class TargetTracker:
    """Target tracking as the clouds' autoscalers do it, evaluated once per cycle.

    Scales out at once to what the last cycle's mean demand needs at ``target`` utilisation;
    scales in only when every cycle of the last ``scale_in_after`` wanted less.

    :param model: the capacity model.
    :param interval: minutes between evaluations.
    :param target: utilisation to track (default 0.6).
    :param scale_in_after: minutes below target before scaling in (default 15).
    :param initial: the instance count it starts from.
    """

    def __init__(
        self,
        *,
        model: CapacityModel,
        interval: int,
        target: float = 0.6,
        scale_in_after: int = 15,
        initial: int = 1,
    ) -> None:
        self.model = model
        self.interval = interval
        self.target = target
        self.scale_in_after = scale_in_after
        self.desired = max(1, initial)
        self._wants: deque[tuple[int, int]] = deque()

    @classmethod
    def for_run(
        cls, context: SimulationContext, *, target: float, scale_in_after: int
    ) -> TargetTracker:
        """A tracker for one simulated run, starting from the run's initial count."""
        return cls(
            model=context.model,
            interval=context.interval,
            target=target,
            scale_in_after=scale_in_after,
            initial=context.initial,
        )

    def update(self, now: int, observed: npt.NDArray[np.float64]) -> int:
        """The desired count after this cycle's evaluation."""
        window = observed[max(0, now - self.interval) : now]
        if len(window) == 0 or np.isnan(window).all():
            return self.desired  # no data: an autoscaler holds (insufficient data)
        load = float(np.nanmean(window))
        want = max(1, self.model.instances_for(load, utilisation=self.target))
        self._wants.append((now, want))
        while self._wants and self._wants[0][0] <= now - self.scale_in_after:
            self._wants.popleft()
        if want >= self.desired:
            self.desired = want
            return self.desired
        needed = max(1, math.ceil(self.scale_in_after / self.interval))
        if len(self._wants) >= needed and all(w < self.desired for _, w in self._wants):
            self.desired = max(w for _, w in self._wants)
        return self.desired


class ReactiveStrategy(Strategy):
    """``reactive``: target tracking on the last cycle's demand.

    :param target: utilisation to track (default 0.6).
    :param scale_in_after: minutes below target before scaling in (default 15).
    """

    name = "reactive"

    def __init__(self, *, target: float = 0.6, scale_in_after: int = 15) -> None:
        super().__init__()
        self.target = target
        self.scale_in_after = scale_in_after
        self._tracker: TargetTracker | None = None

    def start(
        self, context: SimulationContext, *, future: npt.NDArray[np.float64] | None = None
    ) -> None:
        super().start(context)
        self._tracker = TargetTracker.for_run(
            context, target=self.target, scale_in_after=self.scale_in_after
        )

    def step(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        assert self._tracker is not None
        want = self._tracker.update(now, observed)
        self.cloud.set_primary(min(want, self.context.max_instances), at=now)


class ScheduledPredictiveStrategy(Strategy):
    """``scheduled-predictive``: the mechanism of AWS predictive scaling, with ``reactive``.

    Every ``recompute_every`` it forecasts hourly mean demand for the next ``horizon`` from up to
    ``history`` of observations (a seasonal average: the same hour of day over the last 7 days,
    blended half and half with the same hour of the week once two weeks are available), turns
    each hour's forecast into capacity at ``target`` utilisation and schedules it to start
    ``buffer`` before the hour. Desired capacity is the larger of that and target tracking.

    :param target: utilisation for both the schedule and tracking (default 0.6).
    :param scale_in_after: minutes below target before tracking scales in (default 15).
    :param horizon: forecast length (default 48 h).
    :param recompute_every: time between forecasts (default 6 h).
    :param history: most history a forecast uses (default 14 days).
    :param buffer: how long before each hour its capacity is launched (default 5 min).
    """

    name = "scheduled-predictive"

    def __init__(
        self,
        *,
        target: float = 0.6,
        scale_in_after: int = 15,
        horizon: timedelta = timedelta(hours=48),
        recompute_every: timedelta = timedelta(hours=6),
        history: timedelta = timedelta(days=14),
        buffer: timedelta = timedelta(minutes=5),
    ) -> None:
        super().__init__()
        self.target = target
        self.scale_in_after = scale_in_after
        self.horizon_hours = int(horizon.total_seconds() // 3600)
        self.recompute_minutes = int(recompute_every.total_seconds() // 60)
        self.history_hours = int(history.total_seconds() // 3600)
        self.buffer_minutes = int(buffer.total_seconds() // 60)
        self._tracker: TargetTracker | None = None
        self._schedule: dict[int, int] = {}
        self._last_forecast: int | None = None
        self._hour_offset = 0
        self._epoch_hour = 0

    def start(
        self, context: SimulationContext, *, future: npt.NDArray[np.float64] | None = None
    ) -> None:
        super().start(context)
        self._tracker = TargetTracker.for_run(
            context, target=self.target, scale_in_after=self.scale_in_after
        )
        start_ns = int(context.start.value)
        # Minute 0 lies ``offset`` minutes into its clock hour; hours are wall-clock hours.
        self._hour_offset = int((start_ns // 60_000_000_000) % 60)
        self._epoch_hour = int(start_ns // 3_600_000_000_000)
        self._schedule = {}
        self._last_forecast = None

    def hour_of(self, minute: int) -> int:
        """The trace-relative hour number that contains ``minute``."""
        return (minute + self._hour_offset) // 60

    def forecast_hours(self, now: int, observed: npt.NDArray[np.float64]) -> dict[int, float]:
        """Hourly mean demand forecast for the hours from ``now``'s hour on."""
        current = self.hour_of(now)
        first = max(0, current - self.history_hours)
        hourly: dict[int, float] = {}
        for hour in range(first, current):
            lo = max(0, hour * 60 - self._hour_offset)
            hi = min(now, (hour + 1) * 60 - self._hour_offset)
            chunk = observed[lo:hi]
            if len(chunk) and not np.isnan(chunk).all():
                hourly[hour] = float(np.nanmean(chunk))
        if not hourly:
            return {}
        last_value = hourly[max(hourly)]
        daily: dict[int, list[float]] = {}
        weekly: dict[int, list[float]] = {}
        for hour, value in hourly.items():
            absolute = hour + self._epoch_hour
            if hour >= current - 7 * 24:
                daily.setdefault(absolute % 24, []).append(value)
            weekly.setdefault(absolute % 168, []).append(value)
        two_weeks = min(hourly) <= current - 14 * 24 + 1
        result: dict[int, float] = {}
        for hour in range(current, current + self.horizon_hours + 1):
            absolute = hour + self._epoch_hour
            day_values = daily.get(absolute % 24)
            value = float(np.mean(day_values)) if day_values else last_value
            week_values = weekly.get(absolute % 168)
            if two_weeks and week_values:
                value = 0.5 * value + 0.5 * float(np.mean(week_values))
            result[hour] = value
        return result

    def step(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        assert self._tracker is not None
        context = self.context
        if self._last_forecast is None or now - self._last_forecast >= self.recompute_minutes:
            forecast = self.forecast_hours(now, observed)
            if forecast:
                self._schedule = {
                    hour: context.model.instances_for(value, utilisation=self.target)
                    for hour, value in forecast.items()
                }
                self._last_forecast = now
        tracked = self._tracker.update(now, observed)
        # Capacity for an hour must launch ``buffer`` before it; the next chance after this cycle
        # is one interval away, so launch now whatever an hour starting before then needs.
        ahead = self.hour_of(now + context.interval + self.buffer_minutes - 1)
        scheduled = max(self._schedule.get(self.hour_of(now), 0), self._schedule.get(ahead, 0))
        self.cloud.set_primary(min(max(tracked, scheduled), context.max_instances), at=now)


class StaticPeakStrategy(Strategy):
    """``static-peak``: enough instances for the trace's scored peak, all the time."""

    name = "static-peak"
    knows_future = True

    def start(
        self, context: SimulationContext, *, future: npt.NDArray[np.float64] | None = None
    ) -> None:
        if future is None:
            raise ValueError("static-peak needs the whole trace to know its peak")
        scored = future[context.score_start :]
        peak = float(np.nanmax(scored)) if np.isfinite(scored).any() else 0.0
        self.instances = max(1, context.model.instances_for(peak))
        self._context = context
        self._cloud = SimulatedCloud(
            minutes=context.minutes,
            initial=self.instances,
            timing=context.timing,
            outage=context.outage,
        )

    def step(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        """Nothing to decide: the capacity never changes."""


class OracleStrategy(Strategy):
    """``oracle``: the least capacity that serves every minute, knowing the future.

    Each minute needs ``ceil(demand / per-instance SLO capacity)`` serving instances. An instance
    serving from minute ``t`` must start ``ready`` minutes earlier and costs while it boots, and
    between two uses it is cheaper to keep it running through a gap shorter than ``ready`` than to
    relaunch it. Since instance levels nest, the optimum runs ``max(need[t .. t + ready])``
    instances at minute ``t``. ``ready`` is the fastest way to get capacity the simulated cloud
    offers (the mirror's warm-pool time when shorter than the primary's), so the oracle is a lower
    bound on the cost of every strategy that serves every minute.
    """

    name = "oracle"
    knows_future = True

    def __init__(self, *, mirror_ready: timedelta | None = None) -> None:
        super().__init__()
        self.mirror_ready = mirror_ready
        self._record: CloudRecord | None = None

    def start(
        self, context: SimulationContext, *, future: npt.NDArray[np.float64] | None = None
    ) -> None:
        if future is None:
            raise ValueError("the oracle needs the whole trace")
        self._context = context
        model = context.model
        ready = context.timing.primary_ready
        mirror_ready = context.timing.mirror_ready or self.mirror_ready
        if mirror_ready is not None:
            ready = min(ready, mirror_ready)
        boot = max(0, math.ceil(ready.total_seconds() / 60))
        demand = np.where(np.isnan(future), 0.0, future)
        need = np.ceil(demand / model.per_instance - 1e-9).clip(min=0)
        need[: context.score_start] = 0
        padded = np.concatenate([need, np.zeros(boot)])
        running = np.lib.stride_tricks.sliding_window_view(padded, boot + 1).max(axis=1)
        running = running[: len(need)]
        # Minutes before scoring are history: the oracle starts its first instances ready.
        running[: context.score_start] = 0
        actions = int(np.count_nonzero(np.diff(running[context.score_start :])))
        self._record = CloudRecord.primary_only(
            ready=need, running=running, scaling_actions=actions
        )

    def cycle(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        """The oracle's schedule is fixed at the start; cycles change nothing."""

    def step(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        """See :meth:`cycle`."""

    def finish(self) -> CloudRecord:
        if self._record is None:
            raise RuntimeError("the oracle has not been started")
        return self._record


class MirrorcastStrategy(Strategy):
    """``mirrorcast``: the driver's own cycle (:func:`driver.cycle.decide`) on a simulated cloud.

    :param config: the stack config to backtest (one pool is simulated).
    :param pool: the pool name.
    :param metric: the pool metric the trace is fed in as; it must have ``per_instance_capacity``
        set or it is set to the simulation's instance capacity.
    :param engine: the forecasting engine (``forecasting.ForecastEngine``).
    :param events: an event schedule for ``during(...)`` rules and forecasts; default none.
    :param scale_in_after: minutes below target before the native autoscaler scales in
        (default 15). The autoscaler tracks the pool's ``primary.autoscaler_target``.
    """

    name = "mirrorcast"

    def __init__(
        self,
        *,
        config: MirrorcastConfig,
        pool: str,
        metric: str,
        engine: Any,
        events: Any = None,
        scale_in_after: int = 15,
    ) -> None:
        super().__init__()
        if pool not in config.pools:
            raise BacktestError(
                f"pool {pool!r} is not in the stack config; pools are {', '.join(config.pools)}"
            )
        if metric not in config.pools[pool].metrics:
            raise BacktestError(
                f"metric {metric!r} is not a metric of pool {pool!r}; it has "
                f"{', '.join(config.pools[pool].metrics)}"
            )
        self.base_config = config
        self.pool = pool
        self.metric = metric
        self.engine = engine
        self.events = events
        self.scale_in_after = scale_in_after
        # What one cycle hands the next, advanced as the service advances it (driver.cycle).
        self.state = CycleState()
        self.degraded: list[str] = []
        self.models: dict[str, int] = {}
        self.untrusted_cycles = 0
        self.cycles = 0
        self._tracker: TargetTracker | None = None
        self._config = config
        # The config the cloud runs: a plan's changes reach it one actuation delay after the
        # decision (the cycle and `pulumi up`), while the driver plans from ``_config`` at once.
        self._effective = config
        self._pending: deque[tuple[int, MirrorcastConfig]] = deque()
        self._delay = 0
        self._series: pd.Series | None = None
        self._history_minutes = 0
        self.early_cycles = 0
        self._early = False
        self._failing: frozenset[str] = frozenset()
        self._stack_observer: StackObserver | None = None
        self._observed_cloud: SimulatedCloud | None = None

    @property
    def config(self) -> MirrorcastConfig:
        """The simulated stack config as it stands now."""
        return self._config

    def warmup(self, *, interval: timedelta) -> timedelta:
        """Cycles until the online calibration sizes the floor from the engine's own errors.

        One error per lead arrives per cycle. Under ``min_samples`` errors a lead keeps the
        models' own quantiles; a level band is sized from its own errors once it holds
        ``min_samples`` (equal-count bands: ``bins`` x ``min_samples`` errors in all), until
        then from the whole lead's. So after ``bins`` x ``min_samples`` cycles every lead is
        calibrated and the bands are filling. A running driver is past that after its first
        day; a backtest that started an hour before scoring was not (docs/backtest.md).
        """
        calibration = self.base_config.forecast.calibration
        if not calibration.enabled:
            return timedelta(0)
        return interval * (calibration.min_samples * calibration.bins)

    def start(
        self, context: SimulationContext, *, future: npt.NDArray[np.float64] | None = None
    ) -> None:
        self._context = context
        pool = self.base_config.pools[self.pool]
        data = self.base_config.model_dump(mode="json", by_alias=True)
        metric_data = data["pools"][self.pool]["metrics"][self.metric]
        metric_data["per_instance_capacity"] = context.model.instance_capacity
        capacity = data["pools"][self.pool]["primary"]["capacity"]
        initial = min(max(context.initial, capacity["min"]), capacity["max"])
        capacity["desired"] = initial
        self._config = MirrorcastConfig.model_validate(data)
        self._effective = self._config
        self._pending = deque()
        self._delay = max(0, math.ceil(context.timing.actuation_delay.total_seconds() / 60))
        pool = self._config.pools[self.pool]
        self._cloud = SimulatedCloud(
            minutes=context.minutes,
            initial=initial,
            timing=context.timing,
            mirror_ready=context.timing.mirror_ready or pool.mirror_ready_time,
            warm_pool=pool.mirror.paused.strategy == "warm_pool",
            mirror_size=pool.mirror_size,
            outage=context.outage,
        )
        self._tracker = TargetTracker(
            model=context.model,
            interval=context.interval,
            target=pool.primary.autoscaler_target / 100,
            scale_in_after=self.scale_in_after,
            initial=initial,
        )
        self._history_minutes = int(self._config.forecast.history.total_seconds() // 60)
        index = pd.date_range(context.start, periods=context.minutes, freq="min", tz="UTC")
        # Values are filled cycle by cycle from what the strategy was shown, never ahead of now.
        self._series = pd.Series(np.full(context.minutes, np.nan), index=index, name=self.metric)
        self._filled = 0
        self.state = CycleState()
        self.notes = []
        self.degraded = []
        self.models = {}
        self.untrusted_cycles = 0
        self.cycles = 0
        self.early_cycles = 0
        self._failing = frozenset()
        watch = self._config.driver.health_watch
        self.watch_every = math.ceil(watch.total_seconds() / 60) if watch is not None else None
        if self.watch_every is not None and self.watch_every >= context.interval:
            self.watch_every = None  # a watch as long as the cycle adds nothing
        if context.outage is None:
            # Without an outage the simulated balancer reports every instance that should serve
            # as healthy (serving = desired less booting), so the watch could only ever read
            # 100% and never start a cycle: skipping it gives the same result, and saves the
            # four observations per cycle it costs (about 7% of mirrorcast's time on NASA).
            self.watch_every = None

    def cycle(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        """Carry out the plans whose `pulumi up` finished since the last cycle, then decide."""
        self._take_effect(before=now)
        super().cycle(now, observed)

    def watch(self, minute: int, observed: npt.NDArray[np.float64]) -> None:
        """``driver.health_watch``: read the cloud between cycles as the driver does, and run a
        cycle at once when a primary starts failing (:meth:`driver.service.Driver._sleep_watching`).
        """
        self._take_effect(before=minute)
        self.cloud.advance(minute)
        seen = self._observer().observe(
            self._config, now=self.context.time_of(minute), enabled=True
        )
        newly = seen.failing_primaries() - self._failing
        self._failing = seen.failing_primaries()
        if newly:
            self.early_cycles += 1
            self._early = True
            try:
                self.cycle(minute, observed)
            finally:
                self._early = False

    def finish(self) -> CloudRecord:
        self._take_effect(before=self.context.minutes)
        return super().finish()

    def _take_effect(self, *, before: int) -> None:
        """Apply every pending plan due before minute ``before`` at its own minute."""
        while self._pending and self._pending[0][0] < before:
            at, config = self._pending.popleft()
            self.cloud.advance(at)
            self._effective = config
            self._sync_cloud(at)

    def step(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        from driver.cycle import decide  # read at call time, so a test may spy on it

        assert self._series is not None and self._tracker is not None
        context = self.context
        values = self._series.to_numpy()
        values[self._filled : now] = observed[self._filled : now]
        self._filled = now
        # What a metric source would return at ``now``: the trace's own points (one per
        # observation step) whose step has completed, within the configured history.
        step = self.context.observation_step
        last = (now // step) * step  # points at minutes < last have completed their step
        first = max(0, last - self._history_minutes)
        first = ((first + step - 1) // step) * step
        history = self._series.iloc[first:last:step].dropna()
        at = context.time_of(now)
        # The simulated cloud read the way the driver reads a real one (driver.observers).
        observation = self._observer().observe(self._config, now=at, enabled=True)
        self._failing = observation.failing_primaries()
        metrics = {self.metric: history}
        if HEALTH_METRIC in self._config.pools[self.pool].metrics:
            metrics[HEALTH_METRIC] = self._primary_health(now)
        result = decide(
            config=self._config,
            history={self.pool: metrics},
            engine=self.engine,
            now=at,
            memory=self.state.memory,
            health=observation.health(),
            primary_health=observation.primary_health(),
            observed_desired=observation.observed_desired(),
            events=self.events,
            last_good=self.state.last_good,
            # What the journal would measure: every `up` here takes the simulated delay.
            actuation_time=context.timing.actuation_delay,
        )
        self.cycles += 1
        plan = result.plan
        self.state = self.state.advanced(result)
        self.degraded.extend(result.degraded)
        for per_metric in result.forecasts.values():
            for forecast in per_metric.values():
                self.models[forecast.model] = self.models.get(forecast.model, 0) + 1
                if not forecast.trusted:
                    self.untrusted_cycles += 1
        if plan.changes:
            self._apply(plan.changes)
            self._pending.append((now + self._delay, self._config))
            self.notes.append(
                PlanNote(
                    at=at,
                    changes=[str(change) for change in plan.changes],
                    explanation=plan.explanation,
                )
            )
        if self._delay == 0:
            self._take_effect(before=now + 1)
        self._follow_config(now, observed)

    def report(self) -> dict[str, Any]:
        """Cycles run, how often the forecast was untrusted and why, and the models used."""
        reasons: dict[str, int] = {}
        for line in self.degraded:
            reasons[line] = reasons.get(line, 0) + 1
        common = sorted(reasons, key=lambda k: -reasons[k])[:3]
        return {
            "cycles": self.cycles,
            "early_cycles": self.early_cycles,
            "untrusted_cycles": self.untrusted_cycles,
            "models": dict(sorted(self.models.items())),
            "degraded_examples": common,
        }

    def _observer(self) -> StackObserver:
        # One observer for the run's one cloud (built at the first cycle's read, after start).
        if self._stack_observer is None or self._observed_cloud is not self.cloud:
            simulated = SimulatedObserver(self.cloud)
            self._stack_observer = StackObserver(
                observers={cloud.value: simulated for cloud in Cloud}, attempts=1
            )
            self._observed_cloud = self.cloud
        return self._stack_observer

    def _primary_health(self, now: int) -> pd.Series:
        """The primary's health checks as a metric source reports them: the percentage of its
        instances passing, per minute over the last half hour before ``now``."""
        assert self._series is not None
        lo = max(0, now - 30)
        values = np.full(now - lo, 100.0)
        outage = self.cloud.outage
        if outage is not None:
            # The minutes SimulatedCloud.primary_down calls out, as one slice.
            values[max(outage[0], lo) - lo : max(min(outage[1], now), lo) - lo] = 0.0
        # The trace's own minute index sliced (no per-minute timestamps built), without its
        # frequency, as a source's series has none.
        index = pd.DatetimeIndex(self._series.index[lo:now], freq=None)
        return pd.Series(values, index=index, name=HEALTH_METRIC, dtype=float)

    def _apply(self, changes: list[ConfigChange]) -> None:
        """Apply the plan's config changes to the simulated stack config, as Pulumi would."""
        data = self._config.model_dump(mode="json", by_alias=True)
        for change in changes:
            try:
                set_path(data, change.path, change.new)
            except ConfigPathError:
                raise ValueError(
                    f"plan changes {change.path!r}, which is not in the stack config"
                ) from None
        self._config = MirrorcastConfig.model_validate(data)

    def _follow_config(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        """The native autoscaler's evaluation at ``now``, under the config the cloud runs."""
        assert self._tracker is not None
        pool = self._effective.pools[self.pool]
        # The cloud's autoscaler evaluates on its own schedule (the cycle's, here), not on the
        # driver's: a cycle the health watch started early leaves it alone.
        if pool.primary.native_autoscaling and not self._early:
            # The deployed target-tracking policy follows the deployed autoscaler_target (a
            # plan moves it once its `pulumi up` has finished).
            self._tracker.target = pool.primary.autoscaler_target / 100
            self._tracker.update(now, observed)
        self._sync_cloud(now)

    def _sync_cloud(self, at: int) -> None:
        """Make the simulated cloud match the deployed config at minute ``at``."""
        assert self._tracker is not None
        pool = self._effective.pools[self.pool]
        capacity = pool.primary.capacity
        if pool.primary.native_autoscaling:
            desired = min(max(self._tracker.desired, capacity.min), capacity.max)
        else:
            desired = capacity.desired
        desired = min(desired, self.context.max_instances)
        # The cloud's autoscaler owns desired; the stack reflects what it did (as the driver
        # reads it back from outputs), so mirror sizing sees the real primary.
        self._config = _with_desired(self._config, self.pool, desired)
        self._effective = _with_desired(self._effective, self.pool, desired)
        pool = self._effective.pools[self.pool]
        self.cloud.set_primary(desired, at=at)
        active = pool.mirror.state is MirrorState.active
        self.cloud.set_mirror(active=active, size=pool.mirror_size, at=at)
        self.cloud.set_weights(pool.balancer.weights.mirror if active else 0, at=at)


def _with_desired(config: MirrorcastConfig, pool: str, desired: int) -> MirrorcastConfig:
    """``config`` with the pool's primary desired capacity at ``desired`` (itself if it is)."""
    capacity = config.pools[pool].primary.capacity
    # A plan not yet in effect may already hold a higher min than the cloud runs: the stack
    # says at least that much until its `up` lands.
    desired = min(max(desired, capacity.min), capacity.max)
    if capacity.desired == desired:
        return config
    data = config.model_dump(mode="json", by_alias=True)
    data["pools"][pool]["primary"]["capacity"]["desired"] = desired
    return MirrorcastConfig.model_validate(data)
