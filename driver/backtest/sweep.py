"""Frontiers, not points: every strategy over its natural knob, and the same-money ratio.

One backtest point says what a strategy did at one setting. A user choosing an operating point
needs the whole trade: how many under-provisioned minutes each strategy leaves at each level of
spend. :func:`run_sweep` runs

- ``reactive`` and ``scheduled-predictive`` at every target utilisation of
  :data:`TARGET_UTILISATIONS` (30%-85%), and
- ``mirrorcast`` at every pair of :data:`FLOOR_QUANTILES` x :data:`FLOOR_UTILISATIONS`: the
  forecast-floor rule's quantile (in its condition and its floor) and the utilisation the floor
  is sized for,

and reads each point against reactive's frontier: the **same-money ratio** is a point's
under-provisioned minutes divided by reactive's, interpolated at the same instance-hours.
Reactive tuned to spend the same is what a team without forecasts gets by buying headroom, so a
ratio below 1 is what the strategy bought that headroom alone could not.

The mirrorcast runs of one sweep share one forecast per cycle (:class:`ForecastReplay`): the
forecast depends on the trace and the engine only, never on a knob, so it is computed once and
replayed, and a sweep costs little more than one mirrorcast run plus the planner's share.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from driver.backtest.errors import BacktestError
from driver.backtest.simulator import BacktestResult, BacktestSettings, run_backtest
from driver.backtest.stack import BacktestStack, default_engine
from driver.backtest.strategies import (
    MirrorcastStrategy,
    ReactiveStrategy,
    ScheduledPredictiveStrategy,
    Strategy,
)
from driver.backtest.trace import Trace
from infra.config import MirrorcastConfig

__all__ = [
    "FLOOR_QUANTILES",
    "FLOOR_UTILISATIONS",
    "SWEPT_STRATEGIES",
    "TARGET_UTILISATIONS",
    "ForecastReplay",
    "Frontier",
    "FrontierComparison",
    "FrontierPoint",
    "SameMoney",
    "SweepResult",
    "compare_frontiers",
    "floor_knobs",
    "floor_strategy",
    "run_sweep",
    "same_money",
    "with_floor_knobs",
]

logger = logging.getLogger(__name__)

TARGET_UTILISATIONS: tuple[int, ...] = tuple(range(30, 90, 5))
"""Target utilisations (percent) the baselines are swept over: 30%-85% in 5-point steps."""

FLOOR_QUANTILES: tuple[int, ...] = (50, 80, 90, 95)
"""Quantiles of the mirrorcast floor rule swept (all in the engine's default quantiles)."""

FLOOR_UTILISATIONS: tuple[int, ...] = (60, 70, 75, 80)
"""Utilisations (percent) the mirrorcast floor is sized for in a sweep."""

SWEPT_STRATEGIES: tuple[str, ...] = ("reactive", "scheduled-predictive", "mirrorcast")
"""The strategies with a knob; the others (static-peak, oracle) are references, not frontiers."""

Progress = Callable[[str, int, int], None]
"""Called as ``progress(label, runs done, runs in all)`` before and after each run."""


@dataclass(frozen=True)
class SameMoney:
    """A point read against reactive's frontier.

    :param reactive_short: reactive's under-provisioned minutes interpolated at the point's
        instance-hours (clamped to the nearest end of reactive's frontier outside it).
    :param ratio: the point's under-provisioned minutes / ``reactive_short`` (1.0 when both are
        0, ``inf`` when only reactive is never short).
    :param bound: ``"exact"`` inside reactive's frontier; ``"at most"`` when the point is
        cheaper than reactive's cheapest setting (reactive at that spend would be short at least
        as often, so the true ratio is at most this one); ``"at least"`` when dearer than its
        dearest.
    """

    reactive_short: float
    ratio: float
    bound: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "reactive_short": round(self.reactive_short, 1),
            "ratio": _finite(self.ratio),
            "bound": self.bound,
        }


@dataclass(frozen=True)
class FrontierPoint:
    """One setting of one strategy and what it did.

    :param knobs: the setting, e.g. ``{"target_utilisation": 60}``.
    :param underprovisioned_minutes: scored minutes short.
    :param instance_hours: running instance-hours (the money).
    :param cost_instance_hours: instance-hours with paused mirror instances at their fraction.
    :param default: whether this is the strategy's configured operating point.
    :param same_money: the point read against reactive's frontier.
    """

    knobs: dict[str, float]
    underprovisioned_minutes: int
    instance_hours: float
    cost_instance_hours: float
    default: bool
    same_money: SameMoney | None = None

    @property
    def setting(self) -> str:
        """The knobs in a few characters: ``60%`` for a baseline, ``p90 at 75%`` for a floor."""
        parts = []
        if "quantile" in self.knobs:
            parts.append(f"p{self.knobs['quantile']:g}")
        if "target_utilisation" in self.knobs:
            parts.append(f"{self.knobs['target_utilisation']:g}%")
        return " at ".join(parts) or "-"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "setting": self.setting,
            "knobs": dict(self.knobs),
            "underprovisioned_minutes": self.underprovisioned_minutes,
            "instance_hours": round(self.instance_hours, 3),
            "cost_instance_hours": round(self.cost_instance_hours, 3),
            "default": self.default,
        }
        if self.same_money is not None:
            out["same_money"] = self.same_money.as_dict()
        return out


@dataclass(frozen=True)
class Frontier:
    """A strategy's points over its knob, and which of them are on its cost/shortfall frontier."""

    strategy: str
    knob: str
    points: list[FrontierPoint]

    @property
    def default(self) -> FrontierPoint | None:
        return next((point for point in self.points if point.default), None)

    def efficient(self) -> list[FrontierPoint]:
        """The points no other point beats on both instance-hours and short minutes, by cost."""
        ordered = sorted(self.points, key=lambda p: (p.instance_hours, p.underprovisioned_minutes))
        kept: list[FrontierPoint] = []
        best = math.inf
        for point in ordered:
            if point.underprovisioned_minutes < best:
                kept.append(point)
                best = point.underprovisioned_minutes
        return kept

    def as_dict(self) -> dict[str, Any]:
        efficient = {id(point) for point in self.efficient()}
        return {
            "knob": self.knob,
            "points": [
                {**point.as_dict(), "efficient": id(point) in efficient} for point in self.points
            ],
            "same_money_ratio": (
                self.default.same_money.as_dict()
                if self.default is not None and self.default.same_money is not None
                else None
            ),
        }


@dataclass(frozen=True)
class FrontierComparison:
    """Whether one strategy's frontier lies on or below another's where both are measured.

    A frontier is the curve through its efficient points, linear in between (instance-hours
    against under-provisioned minutes, as :func:`driver.backtest.plot.plot_frontiers` draws it),
    and flat from its last efficient point to its dearest setting (dearer settings are short at
    least as often, so that shortfall is had for less). It spans its settings' instance-hours,
    cheapest to dearest. The two are compared over the instance-hours both span, ``overlap``;
    the first lies **on or below** the other when at every instance-hours in it its short
    minutes are at most the other's. Both curves are linear between their points, so the
    difference is checked exactly at the overlap's ends and at every point of either inside it.

    :param strategy: the strategy compared against (the second frontier).
    :param overlap: ``(lowest, highest)`` instance-hours both span; ``None`` when they do not
        overlap (then nothing is judged).
    :param on_or_below: the verdict; ``None`` without an overlap.
    :param worst_excess: the most short minutes the first curve has above the other's in the
        overlap (negative: below it everywhere, by at least that much).
    :param at_hours: the instance-hours of ``worst_excess``.
    :param other_short: the other curve's short minutes there.
    """

    strategy: str
    overlap: tuple[float, float] | None
    on_or_below: bool | None
    worst_excess: float | None = None
    at_hours: float | None = None
    other_short: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "overlap": [round(v, 3) for v in self.overlap] if self.overlap else None,
            "on_or_below": self.on_or_below,
            "worst_excess": None if self.worst_excess is None else round(self.worst_excess, 1),
            "at_instance_hours": None if self.at_hours is None else round(self.at_hours, 3),
            "other_short": None if self.other_short is None else round(self.other_short, 1),
        }


def _curve(frontier: Frontier) -> list[tuple[float, float]]:
    return [(p.instance_hours, float(p.underprovisioned_minutes)) for p in frontier.efficient()]


def _along(curve: Sequence[tuple[float, float]], hours: float) -> float:
    """The curve's short minutes at ``hours`` (inside its span), linear between its points."""
    for (h0, s0), (h1, s1) in itertools.pairwise(curve):
        if h0 <= hours <= h1:
            return s0 if h1 == h0 else s0 + (hours - h0) / (h1 - h0) * (s1 - s0)
    return curve[0][1] if hours <= curve[0][0] else curve[-1][1]


def compare_frontiers(mine: Frontier, other: Frontier) -> FrontierComparison:
    """Whether ``mine`` lies on or below ``other`` over the instance-hours both span."""
    first, second = _curve(mine), _curve(other)
    if not first or not second:
        return FrontierComparison(strategy=other.strategy, overlap=None, on_or_below=None)
    # Each spans its swept settings: from its cheapest to its dearest point, flat after its last
    # efficient point (that point's shortfall is had for less than the dearer settings spend).
    low = max(first[0][0], second[0][0])
    high = min(
        max(p.instance_hours for p in mine.points), max(p.instance_hours for p in other.points)
    )
    if low > high:
        return FrontierComparison(strategy=other.strategy, overlap=None, on_or_below=None)
    checked = sorted(
        {
            low,
            high,
            *(h for h, _ in first if low <= h <= high),
            *(h for h, _ in second if low <= h <= high),
        }
    )
    excess, at = max(
        ((_along(first, hours) - _along(second, hours), hours) for hours in checked),
        key=lambda item: item[0],
    )
    return FrontierComparison(
        strategy=other.strategy,
        overlap=(low, high),
        on_or_below=excess <= 0,
        worst_excess=excess,
        at_hours=at,
        other_short=_along(second, at),
    )


@dataclass(frozen=True)
class SweepResult:
    """Every frontier of one trace, plus the reference strategies' single points."""

    trace: Trace
    scored_minutes: int
    instance_capacity: float
    frontiers: dict[str, Frontier]
    references: dict[str, FrontierPoint] = field(default_factory=dict)
    seconds: float = 0.0

    def same_money_ratio(self, strategy: str) -> SameMoney | None:
        """The strategy's same-money ratio at its configured operating point."""
        frontier = self.frontiers.get(strategy)
        default = frontier.default if frontier is not None else None
        return default.same_money if default is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "trace": self.trace.name,
            "source": self.trace.source,
            "scored_minutes": self.scored_minutes,
            "instance_capacity": self.instance_capacity,
            "seconds": round(self.seconds, 3),
            "frontiers": {name: frontier.as_dict() for name, frontier in self.frontiers.items()},
            "references": {name: point.as_dict() for name, point in self.references.items()},
            "same_money_ratio": {
                name: (ratio.as_dict() if (ratio := self.same_money_ratio(name)) else None)
                for name in self.frontiers
            },
            "mirrorcast_frontier": {
                name: comparison.as_dict() for name, comparison in self.comparisons().items()
            },
        }

    def comparisons(self) -> dict[str, FrontierComparison]:
        """Mirrorcast's frontier against each other swept strategy's (none without it)."""
        mine = self.frontiers.get("mirrorcast")
        if mine is None:
            return {}
        return {
            name: compare_frontiers(mine, frontier)
            for name, frontier in self.frontiers.items()
            if name != "mirrorcast"
        }


def same_money(
    reactive: Sequence[FrontierPoint], *, instance_hours: float, short: int
) -> SameMoney | None:
    """Read ``short`` at ``instance_hours`` against reactive's points (None without any).

    Reactive's short minutes at that spend are interpolated linearly between its two nearest
    settings by instance-hours; outside its frontier the nearest end stands in and the result
    says which way it bounds the truth.
    """
    ordered = sorted((p.instance_hours, p.underprovisioned_minutes) for p in reactive)
    if not ordered:
        return None
    if instance_hours < ordered[0][0]:
        value, bound = float(ordered[0][1]), "at most"
    elif instance_hours > ordered[-1][0]:
        value, bound = float(ordered[-1][1]), "at least"
    else:
        value, bound = float(ordered[-1][1]), "exact"
        for (h0, s0), (h1, s1) in itertools.pairwise(ordered):
            if h0 <= instance_hours <= h1:
                share = 0.0 if h1 == h0 else (instance_hours - h0) / (h1 - h0)
                value = s0 + share * (s1 - s0)
                break
    # Both never short is a tie; short where reactive at that spend never is, infinitely worse.
    ratio = short / value if value > 0 else (1.0 if short == 0 else math.inf)
    return SameMoney(reactive_short=value, ratio=ratio, bound=bound)


# ------------------------------------------------------------------ mirrorcast's knobs


def _floor_rules(config: MirrorcastConfig, pool: str) -> list[tuple[int, int]]:
    """(rule index, action index) of every ``scale_primary`` action sized from the forecast."""
    found = []
    for r, rule in enumerate(config.pools[pool].rules):
        for a, action in enumerate(rule.actions):
            if getattr(action, "type", None) == "scale_primary" and getattr(
                action, "to_forecast", False
            ):
                found.append((r, a))
    return found


def floor_knobs(config: MirrorcastConfig, pool: str) -> dict[str, float]:
    """The stack's own floor quantile and utilisation (its operating point in a sweep).

    :raises BacktestError: when the pool has no rule with a forecast-sized ``scale_primary``.
    """
    found = _floor_rules(config, pool)
    if not found:
        raise BacktestError(
            f"pool {pool!r} has no rule with a 'scale_primary' action with 'to_forecast: true', "
            "so --sweep has no mirrorcast knob to turn; add a forecast floor rule or sweep the "
            "baselines only with --strategies reactive,scheduled-predictive"
        )
    r, a = found[0]
    action = config.pools[pool].rules[r].actions[a]
    return {
        "quantile": float(action.quantile),  # type: ignore[union-attr]
        "target_utilisation": float(action.target_utilisation),  # type: ignore[union-attr]
    }


def with_floor_knobs(
    config: MirrorcastConfig, pool: str, *, quantile: int, target_utilisation: float
) -> MirrorcastConfig:
    """The config with every forecast floor of ``pool`` at this quantile and utilisation.

    The quantile is changed in the floor action and in the rule's condition (``p90`` there
    becomes ``p80``), so the rule fires on the same forecast it sizes from.

    :raises ValueError: as :func:`floor_knobs`, or when the quantile is not forecast
        (``forecast.quantiles``).
    """
    floor_knobs(config, pool)  # refuses a pool without a floor, with the sentence
    if quantile not in config.forecast.quantiles:
        raise BacktestError(
            f"quantile {quantile} is not in forecast.quantiles {config.forecast.quantiles}; "
            "a sweep can only use quantiles the engine forecasts"
        )
    data = config.model_dump(mode="json", by_alias=True)
    rules = data["pools"][pool]["rules"]
    for r, a in _floor_rules(config, pool):
        action = rules[r]["actions"][a]
        old = int(action.get("quantile", 90))
        action["quantile"] = quantile
        action["target_utilisation"] = target_utilisation
        rules[r]["when"] = re.sub(rf"\bp{old}\b", f"p{quantile}", rules[r]["when"])
    return MirrorcastConfig.model_validate(data)


def floor_strategy(
    stack: BacktestStack,
    knobs: Mapping[str, float],
    *,
    engine_factory: Callable[[MirrorcastConfig], Any] | None = None,
) -> MirrorcastStrategy:
    """Mirrorcast with the stack's floor at a sweep point's ``knobs`` and an engine of its own.

    One setting of a sweep run alone, the slow way (its own forecasting pass), which is what a
    sweep's replayed point must equal.

    :param knobs: ``{"quantile": ..., "target_utilisation": ...}`` (a :class:`FrontierPoint`'s).
    :param engine_factory: the engine for the setting's config (default: the driver's).
    """
    config = with_floor_knobs(
        stack.config,
        stack.pool,
        quantile=int(knobs["quantile"]),
        target_utilisation=float(knobs["target_utilisation"]),
    )
    engine = (engine_factory or default_engine)(config)
    return MirrorcastStrategy(config=config, pool=stack.pool, metric=stack.metric, engine=engine)


# ------------------------------------------------------------------ one forecast per cycle


class ForecastReplay:
    """An engine that forecasts each cycle once and replays it to later runs of the same trace.

    A backtest hands the engine the trace's history up to ``now``: the same series at the same
    ``now`` in every run of one trace, whatever the knobs. The wrapped engine (with its online
    calibration, which learns from that same history) is called on the first run; later runs get
    the recorded forecast. Calls are keyed by the series, ``now`` and the history's last point.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._forecasts: dict[tuple[Any, ...], Any] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(pool: str, metric: str, history: pd.Series, now: datetime | None) -> tuple[Any, ...]:
        last = history.index[-1] if len(history) else None
        return (pool, metric, now, len(history), last)

    def forecast(
        self,
        history: pd.Series,
        *,
        pool: str,
        metric: str,
        spec: Any = None,
        now: datetime | None = None,
        events: Any = None,
    ) -> Any:
        key = self._key(pool, metric, history, now)
        if key in self._forecasts:
            self.hits += 1
            return self._forecasts[key]
        self.misses += 1
        result = self.engine.forecast(
            history, pool=pool, metric=metric, spec=spec, now=now, events=events
        )
        self._forecasts[key] = result
        return result

    def forecast_many(
        self,
        histories: Mapping[tuple[str, str], pd.Series],
        *,
        specs: Mapping[tuple[str, str], Any] | None = None,
        now: datetime | None = None,
        events: Any = None,
    ) -> Mapping[tuple[str, str], Any]:
        keys = {name: self._key(*name, series, now) for name, series in histories.items()}
        if all(key in self._forecasts for key in keys.values()):
            self.hits += len(keys)
            return {name: self._forecasts[key] for name, key in keys.items()}
        many = getattr(self.engine, "forecast_many", None)
        if not callable(many):
            return {
                name: self.forecast(
                    series,
                    pool=name[0],
                    metric=name[1],
                    spec=(specs or {}).get(name),
                    now=now,
                    events=events,
                )
                for name, series in histories.items()
            }
        self.misses += len(keys)
        results = many(histories, specs=specs, now=now, events=events)
        for name, key in keys.items():
            if name in results:
                self._forecasts[key] = results[name]
        return results


# ------------------------------------------------------------------ the sweep


def _point(
    result: BacktestResult, name: str, *, knobs: dict[str, float], default: bool
) -> FrontierPoint:
    score = result.runs[name].score
    return FrontierPoint(
        knobs=knobs,
        underprovisioned_minutes=score.underprovisioned_minutes,
        instance_hours=score.instance_hours,
        cost_instance_hours=score.cost_instance_hours,
        default=default,
    )


def _target_jobs(
    name: str,
    *,
    strategy: Callable[..., Strategy],
    targets: Sequence[int],
    default_target: int,
) -> list[tuple[str, dict[str, float], bool, Callable[[], Strategy]]]:
    """One sweep job per target utilisation (percent) for a strategy whose knob is ``target``.

    Reactive and scheduled-predictive are swept over the same grid (the asked targets plus
    the default, which marks the operating point), so both build their jobs here.
    """
    return [
        (
            name,
            {"target_utilisation": float(target)},
            target == default_target,
            functools.partial(strategy, target=target / 100),
        )
        for target in sorted({*targets, default_target})
    ]


def run_sweep(
    trace: Trace,
    *,
    stack: BacktestStack,
    settings: BacktestSettings,
    strategies: Sequence[str] = SWEPT_STRATEGIES,
    references: Sequence[Strategy] = (),
    targets: Sequence[int] = TARGET_UTILISATIONS,
    quantiles: Sequence[int] = FLOOR_QUANTILES,
    utilisations: Sequence[int] = FLOOR_UTILISATIONS,
    engine_factory: Callable[[MirrorcastConfig], Any] | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Run each strategy over its knob and read every point against reactive's frontier.

    :param trace: the demand trace.
    :param stack: the stack under test (mirrorcast's rules; its floor's own quantile and
        utilisation are its operating point and always part of the sweep).
    :param settings: how each run is simulated (the same for every run).
    :param strategies: which of :data:`SWEPT_STRATEGIES` to sweep; ``reactive`` is always run, since
        every ratio is read against it.
    :param references: knob-less strategies (static-peak, oracle) run once for reference.
    :param targets: baseline target utilisations, percent.
    :param quantiles: mirrorcast floor quantiles.
    :param utilisations: mirrorcast floor utilisations, percent.
    :param engine_factory: the forecasting engine for mirrorcast (default: the driver's).
    :param progress: told about each run.
    :raises ValueError: an unknown strategy, a knob out of range, a stack without a floor rule.
    """
    import time

    started = time.perf_counter()
    unknown = [name for name in strategies if name not in SWEPT_STRATEGIES]
    if unknown:
        raise BacktestError(
            f"--sweep turns the knobs of {', '.join(SWEPT_STRATEGIES)}; "
            f"{', '.join(unknown)} has none (static-peak and oracle are run once for reference)"
        )
    for target in targets:
        if not 1 <= target <= 100:
            raise BacktestError(f"target utilisation {target} is not a percentage in 1-100")
    wanted = list(dict.fromkeys(["reactive", *strategies]))
    jobs: list[tuple[str, dict[str, float], bool, Callable[[], Strategy]]] = []
    default_target = round(ReactiveStrategy().target * 100)
    for name in wanted:
        if name == "reactive":
            jobs.extend(
                _target_jobs(
                    name, strategy=ReactiveStrategy, targets=targets, default_target=default_target
                )
            )
        elif name == "scheduled-predictive":
            jobs.extend(
                _target_jobs(
                    name,
                    strategy=ScheduledPredictiveStrategy,
                    targets=targets,
                    default_target=default_target,
                )
            )
        elif name == "mirrorcast":
            own = floor_knobs(stack.config, stack.pool)
            factory = engine_factory or default_engine
            replay = ForecastReplay(factory(stack.config))
            pairs = sorted(
                {
                    *itertools.product(quantiles, utilisations),
                    (int(own["quantile"]), own["target_utilisation"]),
                }
            )
            for quantile, utilisation in pairs:
                config = with_floor_knobs(
                    stack.config,
                    stack.pool,
                    quantile=int(quantile),
                    target_utilisation=float(utilisation),
                )

                jobs.append(
                    (
                        name,
                        {"quantile": float(quantile), "target_utilisation": float(utilisation)},
                        (float(quantile), float(utilisation))
                        == (own["quantile"], own["target_utilisation"]),
                        functools.partial(
                            MirrorcastStrategy,
                            config=config,
                            pool=stack.pool,
                            metric=stack.metric,
                            engine=replay,
                        ),
                    )
                )
    total = len(jobs) + (1 if references else 0)
    points: dict[str, list[FrontierPoint]] = {name: [] for name in wanted}
    scored = 0
    capacity = 0.0
    for done, (name, knobs, default, make) in enumerate(jobs):
        label = f"{name} " + FrontierPoint(knobs, 0, 0.0, 0.0, default).setting
        if progress is not None:
            progress(label, done, total)
        result = run_backtest(trace, [make()], settings=settings)
        scored, capacity = result.scored_minutes, result.model.instance_capacity
        points[name].append(_point(result, name, knobs=knobs, default=default))
    refs: dict[str, FrontierPoint] = {}
    if references:
        if progress is not None:
            progress("references", len(jobs), total)
        result = run_backtest(trace, list(references), settings=settings)
        for strategy in references:
            refs[strategy.name] = _point(result, strategy.name, knobs={}, default=True)
    if progress is not None:
        progress("done", total, total)

    reactive = points["reactive"]

    def read(point: FrontierPoint) -> FrontierPoint:
        judged = same_money(
            reactive, instance_hours=point.instance_hours, short=point.underprovisioned_minutes
        )
        return FrontierPoint(
            knobs=point.knobs,
            underprovisioned_minutes=point.underprovisioned_minutes,
            instance_hours=point.instance_hours,
            cost_instance_hours=point.cost_instance_hours,
            default=point.default,
            same_money=judged,
        )

    frontiers = {
        name: Frontier(
            strategy=name,
            knob="quantile x target_utilisation" if name == "mirrorcast" else "target_utilisation",
            points=[read(point) for point in points[name]],
        )
        for name in wanted
    }
    return SweepResult(
        trace=trace,
        scored_minutes=scored,
        instance_capacity=capacity,
        frontiers=frontiers,
        references={name: read(point) for name, point in refs.items()},
        seconds=time.perf_counter() - started,
    )


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None
