"""The backtest loop: a simulated clock that runs every strategy on one trace and scores them.

The clock advances in the driver's cycle interval. At each cycle a strategy is shown the demand
of every minute before that cycle and nothing later; its cloud then plays the minutes up to the
next cycle. The first ``history`` of the trace is never scored (the forecasters learn from it),
and gap minutes are masked out of both the SLO count and the cost.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from driver.backtest.cloud import CloudRecord, CloudTiming
from driver.backtest.errors import BacktestError
from driver.backtest.scoring import CapacityModel, StrategyScore, score_record
from driver.backtest.strategies import PlanNote, SimulationContext, Strategy
from driver.backtest.trace import Trace

__all__ = [
    "MIN_WARMUP",
    "BacktestResult",
    "BacktestSettings",
    "StrategyRun",
    "default_instance_capacity",
    "run_backtest",
    "run_warmup",
]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after every cycle."""


@dataclass(frozen=True)
class BacktestSettings:
    """How the backtest runs.

    :param interval: time between cycles (default 5 min, the driver's default).
    :param history: the unscored start of the trace (default 7 days).
    :param warmup: cycles run before scoring starts, so no strategy starts cold. Default
        ``None``: the longest any strategy of the run needs to reach its steady state
        (:meth:`~driver.backtest.strategies.Strategy.warmup`; mirrorcast's online calibration
        needs ``min_samples`` errors in each of its ``bins`` level bands), at least
        :data:`MIN_WARMUP`.
    :param instance_capacity: demand one instance serves at 100%; default: the 95th percentile of
        the unscored history divided by 10, so a typical peak needs about ten instances.
    :param slo_utilisation: utilisation up to which an instance meets the SLO (default 0.8).
    :param paused_cost_fraction: cost of a stopped warm-pool instance relative to a running one
        (default 0.1: storage kept allocated).
    :param timing: the cloud's delays (primary 5 min, mirror from the pool, DNS TTL 60 s).
    :param max_instances: a ceiling for every strategy (default: the pool's ``capacity.max``, or
        1000 without a pool).
    :param outage: ``(start, duration)``: the primary's region serves nothing for that long
        (``--outage``); the mirror, elsewhere, is unaffected. Default none.
    """

    interval: timedelta = timedelta(minutes=5)
    history: timedelta = timedelta(days=7)
    warmup: timedelta | None = None
    instance_capacity: float | None = None
    slo_utilisation: float = 0.8
    paused_cost_fraction: float = 0.1
    timing: CloudTiming = field(default_factory=CloudTiming)
    max_instances: int = 1000
    outage: tuple[pd.Timestamp, timedelta] | None = None


@dataclass(frozen=True)
class StrategyRun:
    """One strategy's outcome: its score, its cloud's record, its plans and its run time."""

    name: str
    score: StrategyScore
    record: CloudRecord
    seconds: float
    notes: list[PlanNote]
    extra: dict[str, Any]


@dataclass(frozen=True)
class BacktestResult:
    """Everything a backtest produced.

    :param trace: the trace's name.
    :param demand: demand per minute (NaN in gaps).
    :param scored: per minute, whether it was scored.
    :param score_start: the first scored minute.
    :param model: the capacity model used.
    :param runs: strategy name -> its run, in the order asked for.
    :param seconds: wall time of the whole backtest.
    """

    trace: Trace
    demand: npt.NDArray[np.float64]
    scored: npt.NDArray[np.bool_]
    score_start: int
    model: CapacityModel
    settings: BacktestSettings
    runs: dict[str, StrategyRun]
    seconds: float

    @property
    def scored_minutes(self) -> int:
        return int(self.scored.sum())

    def to_json(self) -> dict[str, Any]:
        """The result as the ``--json`` document."""
        strategies: dict[str, Any] = {}
        for name, run in self.runs.items():
            entry: dict[str, Any] = dict(run.score.as_dict())
            entry["seconds"] = round(run.seconds, 3)
            if run.notes:
                entry["plans"] = [
                    {
                        "at": note.at.isoformat(),
                        "changes": note.changes,
                        "explanation": note.explanation,
                    }
                    for note in run.notes
                ]
            entry.update(run.extra)
            strategies[name] = entry
        return {
            "trace": self.trace.name,
            "source": self.trace.source,
            "scored_minutes": self.scored_minutes,
            "scored_from": str(self.trace.demand.index[self.score_start])
            if self.score_start < self.trace.minutes
            else None,
            "instance_capacity": self.model.instance_capacity,
            "slo_utilisation": self.model.slo_utilisation,
            "interval_minutes": _minutes(self.settings.interval),
            "seconds": round(self.seconds, 3),
            "strategies": strategies,
            # The same entries under the key's name before the baselines were called strategies,
            # so readers of older documents keep working; deprecated (docs/backtest.md).
            "policies": strategies,
        }


def _minutes(value: timedelta) -> int:
    return max(1, math.ceil(value.total_seconds() / 60))


def _outage_minutes(
    trace: Trace, settings: BacktestSettings, *, score_start: int
) -> tuple[int, int] | None:
    """The outage as trace minutes, refused unless it lies in the scored part."""
    if settings.outage is None:
        return None
    start, duration = settings.outage
    stamp = pd.Timestamp(start)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    first = int((stamp - trace.start) / pd.Timedelta(minutes=1))
    length = _minutes(duration)
    if not score_start <= first < trace.minutes:
        raise BacktestError(
            f"--outage starts at {stamp}, outside the scored part of {trace.source} "
            f"({trace.demand.index[min(score_start, trace.minutes - 1)]} to "
            f"{trace.demand.index[-1]})"
        )
    return first, min(trace.minutes, first + length)


def default_instance_capacity(trace: Trace, *, history: timedelta) -> float:
    """The 95th percentile of the unscored history part divided by 10.

    :raises BacktestError: when the history part holds no positive demand.
    """
    cut = min(trace.minutes, _minutes(history))
    part = trace.values[:cut]
    part = part[~np.isnan(part)]
    p95 = float(np.percentile(part, 95)) if len(part) else 0.0
    if not p95 > 0:
        raise BacktestError(
            f"{trace.source}: the first {cut} minutes (the unscored history) have no positive "
            "demand, so no default instance capacity can be derived; pass --instance-capacity"
        )
    return p95 / 10.0


_DAY = timedelta(days=1)

MIN_WARMUP = timedelta(hours=1)
"""The shortest warm-up: an hour of cycles, so trackers and schedules are in place at scoring."""


def run_warmup(strategies: Sequence[Strategy], *, settings: BacktestSettings) -> timedelta:
    """How long before scoring the run's cycles start: ``settings.warmup``, or derived.

    Derived, it is the longest :meth:`Strategy.warmup` of ``strategies`` (at least
    :data:`MIN_WARMUP`): every strategy is scored in the state a running deployment of it is
    in, not in its first hours. Mirrorcast's calibration needs about a day of its own errors
    before its quantiles mean what they say; started an hour before scoring, a 3-day excerpt
    sized its floor from uncalibrated quantiles for its first 8 hours (docs/backtest.md).
    """
    if settings.warmup is not None:
        return settings.warmup
    need = max([MIN_WARMUP, *(s.warmup(interval=settings.interval) for s in strategies)])
    # Whole days past the hour: a baseline whose clock runs from its first cycle
    # (scheduled-predictive recomputes every 6 hours) is then at the same phase at scoring
    # whether or not mirrorcast is in the run, so a baseline run alone (reactive's frontier,
    # a sweep's baseline settings) scores exactly as in the run beside mirrorcast.
    return MIN_WARMUP + math.ceil((need - MIN_WARMUP) / _DAY) * _DAY


def run_backtest(
    trace: Trace,
    strategies: Sequence[Strategy],
    *,
    settings: BacktestSettings | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Run every strategy over the trace and score them.

    :param trace: per-minute demand.
    :param strategies: the strategies, each a fresh instance.
    :param settings: how to run (default :class:`BacktestSettings`).
    :param progress: called after each cycle with (cycles done, cycles in all).
    :raises BacktestError: when the trace is too short to leave any scored minute.
    """
    settings = settings or BacktestSettings()
    started = time.perf_counter()
    demand = trace.values
    minutes = len(demand)
    interval = _minutes(settings.interval)
    score_start = _minutes(settings.history)
    if score_start >= minutes:
        raise BacktestError(
            f"{trace.source}: the trace spans {minutes / 1440:.1f} days, but the first "
            f"{score_start / 1440:g} days are history only; nothing would be scored "
            "(use a longer trace or a shorter --history)"
        )
    capacity = settings.instance_capacity or default_instance_capacity(
        trace, history=settings.history
    )
    model = CapacityModel(instance_capacity=capacity, slo_utilisation=settings.slo_utilisation)
    scored = np.zeros(minutes, dtype=bool)
    scored[score_start:] = True
    scored &= ~np.isnan(demand)
    if not scored.any():
        raise BacktestError(f"{trace.source}: every minute after the history part is a gap")

    outage = _outage_minutes(trace, settings, score_start=score_start)
    warmup = _minutes(run_warmup(strategies, settings=settings))
    first_cycle = max(interval, ((score_start - warmup) // interval) * interval)
    before = demand[max(0, first_cycle - interval) : first_cycle]
    initial_load = float(np.nanmean(before)) if np.isfinite(before).any() else 0.0
    context = SimulationContext(
        start=trace.start,
        minutes=minutes,
        interval=interval,
        first_cycle=first_cycle,
        score_start=score_start,
        model=model,
        timing=settings.timing,
        initial=max(1, model.instances_for(initial_load, utilisation=0.6)),
        max_instances=settings.max_instances,
        observation_step=max(1, int(trace.step.total_seconds() // 60)),
        outage=outage,
    )
    elapsed: dict[str, float] = {}
    for strategy in strategies:
        t0 = time.perf_counter()
        strategy.start(context, future=demand if strategy.knows_future else None)
        elapsed[strategy.name] = time.perf_counter() - t0

    cycles = list(range(first_cycle, minutes, interval))
    # Strategies get a read-only slice ending at ``now``: they cannot see later data or change it.
    frozen = demand.copy()
    frozen.flags.writeable = False
    previous: int | None = None
    for done, now in enumerate(cycles, start=1):
        observed = frozen[:now]
        if previous is not None:
            # Watched strategies look at their cloud between cycles (driver.health_watch).
            for strategy in strategies:
                if strategy.watch_every is None:
                    continue
                t0 = time.perf_counter()
                for minute in range(previous + strategy.watch_every, now, strategy.watch_every):
                    strategy.watch(minute, frozen[:minute])
                elapsed[strategy.name] += time.perf_counter() - t0
        previous = now
        for strategy in strategies:
            t0 = time.perf_counter()
            strategy.cycle(now, observed)
            elapsed[strategy.name] += time.perf_counter() - t0
        if progress is not None:
            progress(done, len(cycles))

    runs: dict[str, StrategyRun] = {}
    for strategy in strategies:
        t0 = time.perf_counter()
        record = strategy.finish()
        elapsed[strategy.name] += time.perf_counter() - t0
        score = score_record(
            record,
            demand=demand,
            scored=scored,
            model=model,
            paused_cost_fraction=settings.paused_cost_fraction,
        )
        extra = strategy.report()
        if outage is not None:
            # Shortfall while the primary's region is out: what a switchover to the mirror buys.
            window = np.zeros(minutes, dtype=bool)
            window[outage[0] : outage[1]] = True
            window &= scored
            short = model.underprovisioned(demand, record) & window
            extra = {
                **extra,
                "outage_minutes": int(window.sum()),
                "outage_underprovisioned_minutes": int(short.sum()),
            }
        runs[strategy.name] = StrategyRun(
            name=strategy.name,
            score=score,
            record=record,
            seconds=elapsed[strategy.name],
            notes=list(strategy.notes),
            extra=extra,
        )
    return BacktestResult(
        trace=trace,
        demand=demand,
        scored=scored,
        score_start=score_start,
        model=model,
        settings=settings,
        runs=runs,
        seconds=time.perf_counter() - started,
    )
