"""One decision cycle, pure: history in, forecasts and a :class:`~policies.Plan` out.

The service, ``mirrorcast plan`` and the backtest all call :func:`decide`, so a decision seen in
a backtest is exactly the decision the service would have taken on the same data. Nothing here
touches the network, the disk or a clock: collecting metrics happens before, applying and
journaling after.

Fallbacks are part of the decision and are reported rather than hidden. A series that cannot be
forecast falls back to the last good forecast while that is younger than
``forecast.max_staleness``; an older one is still handed to the planner but marked untrusted, so
each rule applies its ``on_untrusted`` behaviour; with nothing to fall back on, the metric has no
forecast at all. Every such case is one line of :attr:`CycleResult.degraded`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from forecasting import Forecast, ForecastUnavailable
from forecasting.cleaning import UNIT_UPPER_BOUNDS, out_of_range
from forecasting.errors import UnusableSeriesError
from infra.config import MetricSpec, MirrorcastConfig, format_duration
from policies import Decision, MirrorHealth, Plan, PlannerMemory, PlanningInput, PrimaryHealth

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ACTUATION_MIN_SAMPLES",
    "ACTUATION_SAMPLES",
    "BatchForecastEngine",
    "CycleResult",
    "CycleState",
    "DriftLike",
    "EventScheduleLike",
    "ForecastEngineLike",
    "actuation_estimate",
    "decide",
    "good_forecasts",
]

logger = logging.getLogger(__name__)


class ForecastEngineLike(Protocol):
    """What :func:`decide` needs of ``forecasting.ForecastEngine``."""

    def forecast(
        self,
        history: pd.Series,
        *,
        pool: str,
        metric: str,
        spec: MetricSpec | None = None,
        now: datetime | None = None,
        events: Any = None,
    ) -> Forecast: ...


class BatchForecastEngine(ForecastEngineLike, Protocol):
    """An engine that also forecasts many series in one call (``ForecastEngine.forecast_many``).

    :func:`decide` prefers it: the engine then cleans, selects and fits all of a cycle's series
    together, batching series that share a model into one call.
    """

    def forecast_many(
        self,
        histories: Mapping[tuple[str, str], pd.Series],
        *,
        specs: Mapping[tuple[str, str], MetricSpec] | None = None,
        now: datetime | None = None,
        events: Any = None,
    ) -> Mapping[tuple[str, str], Forecast | ForecastUnavailable]: ...


class EventScheduleLike(Protocol):
    """What :func:`decide` needs of ``forecasting.events.EventSchedule``."""

    def active(self, at: datetime) -> Iterable[Any]: ...


@dataclass(frozen=True)
class CycleResult:
    """What one cycle decided.

    :param plan: the planner's answer (next config, changes, decisions, explanation, memory).
    :param forecasts: pool -> metric -> the forecast the planner saw (fresh, last-good or stale).
    :param degraded: one sentence per fallback: unusable series, failed forecasts, stale forecasts.
    """

    plan: Plan
    forecasts: dict[str, dict[str, Forecast]]
    degraded: list[str]


def good_forecasts(result: CycleResult) -> dict[str, dict[str, Forecast]]:
    """The forecasts of a cycle worth falling back on later: every trusted one the planner saw.

    The one last-good rule, for the service and the backtest alike. A fresh forecast counts
    however old its last observation (a gap at the end of a series, or a coarse metric step,
    leaves a fresh forecast issued more than one cycle ago: it is still the newest that
    worked). A young last-good forecast passed through again is the one already kept; a stale
    one went through :func:`_fallback` and is untrusted, so it is never kept again. (Nothing
    here can be issued after the decision time: :func:`decide` cuts every series at ``now``.)
    """
    return {
        pool: {metric: fc for metric, fc in by_metric.items() if fc.trusted}
        for pool, by_metric in result.forecasts.items()
    }


@dataclass(frozen=True)
class CycleState:
    """What one cycle hands the next: the planner's memory and the last good forecasts.

    The service keeps it in its journal (the memory with the plan it belongs to, the forecasts
    after the cycle) and the backtest in memory; both advance it through :meth:`advanced`, so a
    backtest falls back on the forecasts the service would have fallen back on.

    :param memory: what the previous cycle's plan left (:attr:`policies.Plan.memory`).
    :param last_good: pool -> metric -> the newest forecast that worked.
    """

    memory: PlannerMemory = field(default_factory=PlannerMemory)
    last_good: Mapping[str, Mapping[str, Forecast]] = field(default_factory=dict)

    def advanced(self, result: CycleResult) -> CycleState:
        """The state after ``result``: its plan's memory, and its good forecasts kept.

        Per pool metric the newest forecast stays (a later one replaces it, an older one does
        not), as the journal keeps them (``Journal.save_forecasts``).
        """
        last_good = {pool: dict(by_metric) for pool, by_metric in self.last_good.items()}
        for pool, by_metric in good_forecasts(result).items():
            kept = last_good.setdefault(pool, {})
            for metric, forecast in by_metric.items():
                held = kept.get(metric)
                if held is None or held.issued_at <= forecast.issued_at:
                    kept[metric] = forecast
        return CycleState(memory=result.plan.memory, last_good=last_good)


def decide(
    *,
    config: MirrorcastConfig,
    history: Mapping[str, Mapping[str, pd.Series]],
    engine: ForecastEngineLike,
    now: datetime,
    memory: PlannerMemory,
    health: Mapping[str, MirrorHealth] | None = None,
    primary_health: Mapping[str, PrimaryHealth] | None = None,
    events: EventScheduleLike | None = None,
    last_good: Mapping[str, Mapping[str, Forecast]] | None = None,
    rollback_requested: frozenset[str] = frozenset(),
    observed_desired: Mapping[str, int] | None = None,
    drift: Sequence[DriftLike] = (),
    actuation_time: timedelta | None = None,
) -> CycleResult:
    """Forecast every pool metric and plan the next config.

    :param config: the stack's current config.
    :param history: pool -> metric -> observations (UTC index). Points after ``now`` are ignored,
        so a backtest may pass a whole trace.
    :param engine: the forecasting engine (``forecasting.ForecastEngine``). When it has
        ``forecast_many`` (:class:`BatchForecastEngine`) every series of the cycle goes to it in
        one call; otherwise ``forecast`` is called per series.
    :param now: decision time, timezone-aware.
    :param memory: what the previous cycle's plan left (journaled by the driver).
    :param health: pool -> mirror health; default: nothing known (mirrors not ready).
    :param primary_health: pool -> the primary's health as its balancer reports it; default:
        not observed (a primary is then never taken to be failing).
    :param events: the event schedule, for forecasts and ``during(...)`` rules; default none.
    :param last_good: pool -> metric -> the newest forecast that worked; default none.
    :param rollback_requested: pools a person asked to roll back; the planner restores them this
        cycle (bypassing the cooldown).
    :param observed_desired: pool -> the primary's desired size as its cloud reports it; the
        planner sizes from it when it differs from the config (and says so).
    :param drift: differences between the live sides and the config
        (:func:`driver.observers.drift`); pools with ``sync.on_drift: resync`` get a re-sync.
    :param actuation_time: the measured decision-to-effect time (:func:`actuation_estimate` of
        the journal's); ``None``: not measured yet (``driver.actuation_time`` stands in).
    """
    if now.tzinfo is None:
        raise ValueError("decide() needs a timezone-aware 'now' (UTC)")
    stamp = pd.Timestamp(now)
    degraded: list[str] = []
    forecasts: dict[str, dict[str, Forecast]] = {}
    current: dict[str, dict[str, pd.Series]] = {}
    wanted: dict[tuple[str, str], pd.Series] = {}
    specs: dict[tuple[str, str], MetricSpec] = {}
    for pool_name, pool in config.pools.items():
        pool_history = history.get(pool_name, {})
        current[pool_name] = {}
        for metric, spec in pool.metrics.items():
            series = _until(pool_history.get(metric), stamp)
            if series is not None:
                series, problems = screen_observations(
                    series, spec=spec, now=stamp, name=f"{pool_name}.{metric}"
                )
                degraded.extend(problems)
            if series is not None:
                current[pool_name][metric] = series
            if series is not None and len(series) > 0 and spec.forecast:
                wanted[(pool_name, metric)] = series
                specs[(pool_name, metric)] = spec
    fresh_forecasts = _forecast_all(engine, wanted, specs=specs, now=now, events=events)
    for pool_name, pool in config.pools.items():
        pool_last = (last_good or {}).get(pool_name, {})
        forecasts[pool_name] = {}
        for metric, metric_spec in pool.metrics.items():
            if not metric_spec.forecast:
                continue  # read by current(...) only: nothing to forecast or to miss
            fresh, problem = fresh_forecasts.get((pool_name, metric), (None, "no observations"))
            if fresh is not None:
                forecasts[pool_name][metric] = fresh
                if not fresh.trusted:
                    degraded.append(
                        f"{pool_name}.{metric}: forecast untrusted ({fresh.reason or 'no reason given'})"
                    )
                continue
            fallback = _fallback(
                pool_last.get(metric),
                now=now,
                max_age=config.forecast.max_staleness,
                problem=problem,
            )
            if fallback is None:
                degraded.append(f"{pool_name}.{metric}: {problem}; no earlier forecast, left out")
                continue
            forecast, note = fallback
            forecasts[pool_name][metric] = forecast
            degraded.append(f"{pool_name}.{metric}: {problem}; {note}")

    active = _active_events(events, now)
    planning = PlanningInput(
        config=config,
        now=now,
        current=current,
        forecasts=forecasts,
        active_events=active,
        health=dict(health or {}),
        primary_health=dict(primary_health or {}),
        memory=memory,
        rollback_requested=rollback_requested,
        observed_desired=dict(observed_desired or {}),
        actuation_time=actuation_time,
    )
    plan = _with_resync(_planner()(planning), config=config, drift=drift)
    for line in degraded:
        logger.info("degraded: %s", line)
    return CycleResult(plan=plan, forecasts=forecasts, degraded=degraded)


class DriftLike(Protocol):
    """What :func:`decide` reads of a :class:`driver.observers.Drift`."""

    @property
    def pool(self) -> str: ...

    @property
    def what(self) -> str: ...

    @property
    def between(self) -> str: ...


def _with_resync(plan: Plan, *, config: MirrorcastConfig, drift: Sequence[DriftLike]) -> Plan:
    """The plan plus a re-sync decision for each drifted pool whose ``sync.on_drift`` is resync.

    A re-sync changes no config key: the update re-applies the config as it stands (``pulumi
    up``), which brings the launch template, image and security rules back to what is declared.
    With ``report`` (the default) the drift is only reported (degraded line, journal, metric).
    """
    by_pool: dict[str, list[str]] = {}
    for item in drift:
        spec = config.pools.get(item.pool)
        if spec is not None and spec.sync.on_drift == "resync":
            by_pool.setdefault(item.pool, []).append(f"{item.what} ({item.between})")
    if not by_pool:
        return plan
    decisions = list(plan.decisions)
    lines = []
    for pool, items in sorted(by_pool.items()):
        detail = (
            f"re-sync: the live pool drifted from the config in {', '.join(items)}; the update "
            "re-applies the stack config (sync.on_drift: resync)"
        )
        decisions.append(Decision(pool=pool, action="resync", detail=detail))
        lines.append(f"{pool}: {detail}")
    explanation = "\n".join([plan.explanation, *lines]) if plan.explanation else "\n".join(lines)
    return plan.model_copy(
        update={"decisions": decisions, "explanation": explanation, "resync": sorted(by_pool)}
    )


ACTUATION_SAMPLES = 50
"""How many of the newest measured decision-to-effect times the estimate is read from."""

ACTUATION_MIN_SAMPLES = 3
"""Measurements needed before they replace the configured ``driver.actuation_time``."""


def actuation_estimate(samples: Sequence[timedelta], *, percentile: int) -> timedelta | None:
    """A recent high percentile of measured decision-to-effect times (newest first).

    ``None`` until :data:`ACTUATION_MIN_SAMPLES` exist: one slow or fast first update says
    little, and the configured default stands in until then.
    """
    recent = [s.total_seconds() for s in samples[:ACTUATION_SAMPLES] if s >= timedelta(0)]
    if len(recent) < ACTUATION_MIN_SAMPLES:
        return None
    return timedelta(seconds=float(np.percentile(recent, percentile)))


def _planner() -> Callable[[PlanningInput], Plan]:
    # Imported late: ``policies`` pulls in the rule grammar, which the driver's read-only
    # commands (status, history, schema) never need.
    import policies

    planner: Callable[[PlanningInput], Plan] = policies.plan
    return planner


def screen_observations(
    series: pd.Series, *, spec: MetricSpec, now: pd.Timestamp, name: str
) -> tuple[pd.Series | None, list[str]]:
    """The observations a cycle may act on, and one sentence per thing it refused.

    - Values a bounded unit cannot take (a percent above 100, a ratio above 1) are dropped:
      one 1e12 sample from a broken exporter is not demand, and a ``current(cpu) > 90%`` rule
      must not fire on it. The engine repairs the same way when it cleans a series.
    - A series whose newest observation is older than the metric's ``max_age`` is not acted
      on at all (``None``): three-hour-old data says nothing about now. Rules reading it find
      no data, and the forecast falls back as for a source outage.

    :param series: observations up to ``now`` (UTC index).
    :param spec: the metric's definition (``unit``, ``max_age``).
    :param now: the decision time.
    :param name: ``pool.metric``, for the sentences.
    """
    problems: list[str] = []
    values = series.to_numpy(dtype=float, na_value=np.nan)
    above = out_of_range(values, unit=spec.unit)
    if above.any():
        problems.append(
            f"{name}: {int(above.sum())} samples above {UNIT_UPPER_BOUNDS[spec.unit]:g} (the most "
            f"a {spec.unit} can be; largest {float(values[above].max()):g}) rejected"
        )
        series = series[~above]
    newest = _newest_valid(series)
    if newest is not None:
        age = (now - newest).to_pytimedelta()
        if age > spec.max_age:
            age = timedelta(minutes=round(age.total_seconds() / 60)) or age
            problems.append(
                f"{name}: newest observation is {format_duration(age)} old ({newest.isoformat()}), "
                f"older than its max_age {format_duration(spec.max_age)}; not acted on"
            )
            return None, problems
    return series, problems


def _newest_valid(series: pd.Series) -> pd.Timestamp | None:
    """The time of the newest observation that is not missing; None when all are."""
    index = _time_index(series)
    if series.dtype == np.float64 and index.is_monotonic_increasing:
        # A source's float series in time order: the last non-NaN position, without dropna's
        # copy of two weeks of points per series per cycle.
        present = np.flatnonzero(~np.isnan(series.to_numpy()))
        return pd.Timestamp(index[present[-1]]) if len(present) else None
    valid = series.dropna()
    return pd.Timestamp(pd.DatetimeIndex(valid.index).max()) if len(valid) else None


def _time_index(series: pd.Series) -> pd.DatetimeIndex:
    """The series' index as a DatetimeIndex: itself when it is one already (a source's series),
    since wrapping an index again costs a tenth of a millisecond, per series, every cycle."""
    index = series.index
    return index if isinstance(index, pd.DatetimeIndex) else pd.DatetimeIndex(index)


def _until(series: pd.Series | None, stamp: pd.Timestamp) -> pd.Series | None:
    """The observations at or before ``stamp`` (a backtest hands over whole traces)."""
    if series is None:
        return None
    if len(series) == 0:
        return series
    index = _time_index(series)
    if index.tz is None:
        raise ValueError("metric history must have a timezone-aware (UTC) index")
    if index.is_monotonic_increasing:
        # A source's series is in time order: one binary search, not a mask over the history
        # (every series, every cycle).
        end = int(index.searchsorted(stamp, side="right"))
        # All of it (the usual case: a source's history ends before now) is the series itself;
        # iloc's slice machinery cost a quarter of a millisecond a series on a week of minutes.
        return series if end == len(series) else series.iloc[:end]
    return series[index <= stamp]


def _forecast_all(
    engine: ForecastEngineLike,
    wanted: Mapping[tuple[str, str], pd.Series],
    *,
    specs: Mapping[tuple[str, str], MetricSpec],
    now: datetime,
    events: EventScheduleLike | None,
) -> dict[tuple[str, str], tuple[Forecast | None, str]]:
    """Every series' fresh forecast, or ``None`` and the reason there is none.

    One batched ``forecast_many`` call where the engine has it; one ``forecast`` call per series
    otherwise, or when the batched call fails as a whole (then each series fails or not on its
    own, so one bad series cannot cost the others their forecasts).
    """
    if not wanted:
        return {}
    many = getattr(engine, "forecast_many", None)
    if callable(many):
        try:
            results = many(dict(wanted), specs=dict(specs), now=now, events=events)
        except Exception as exc:
            logger.warning("batched forecast failed; forecasting series one by one", exc_info=exc)
        else:
            out: dict[tuple[str, str], tuple[Forecast | None, str]] = {}
            for key in wanted:
                result = results.get(key)
                if isinstance(result, Forecast):
                    out[key] = (result, "")
                elif isinstance(result, ForecastUnavailable):
                    # The same words as the one-series path (UnusableSeriesError.reason).
                    out[key] = (None, f"unusable series: {result.reason}")
                else:
                    out[key] = (None, "forecast failed (the engine returned no result)")
            return out
    return {
        key: _forecast(
            engine, series, pool=key[0], metric=key[1], spec=specs[key], now=now, events=events
        )
        for key, series in wanted.items()
    }


def _forecast(
    engine: ForecastEngineLike,
    series: pd.Series | None,
    *,
    pool: str,
    metric: str,
    spec: MetricSpec,
    now: datetime,
    events: EventScheduleLike | None,
) -> tuple[Forecast | None, str]:
    """A fresh forecast, or ``None`` and the reason there is none."""
    if series is None or len(series) == 0:
        return None, "no observations"
    try:
        return (
            engine.forecast(series, pool=pool, metric=metric, spec=spec, now=now, events=events),
            "",
        )
    except Exception as exc:
        # One unusable series must not stop the other pools from being planned; the failure is
        # reported in ``degraded`` and logged with its cause.
        if isinstance(exc, UnusableSeriesError):
            return None, f"unusable series: {exc.reason}"
        logger.warning("forecast for %s.%s failed", pool, metric, exc_info=exc)
        return None, f"forecast failed ({type(exc).__name__}: {exc})"


def _fallback(
    last: Forecast | None, *, now: datetime, max_age: Any, problem: str
) -> tuple[Forecast, str] | None:
    """The last good forecast (trusted while young enough, untrusted after), with a note."""
    if last is None:
        return None
    age = now - last.issued_at
    if age <= max_age:
        return last, f"using the forecast issued {format_duration(age)} ago"
    stale = dataclasses.replace(
        last,
        trusted=False,
        reason=(
            f"stale: issued {format_duration(age)} ago, older than max_staleness "
            f"{format_duration(max_age)} ({problem})"
        ),
    )
    return stale, f"last forecast is {format_duration(age)} old, passed on as untrusted"


def _active_events(events: EventScheduleLike | None, now: datetime) -> frozenset[str]:
    if events is None:
        return frozenset()
    names: set[str] = set()
    for event in events.active(now):
        names.add(event if isinstance(event, str) else str(getattr(event, "name", event)))
    return frozenset(names)
