"""The forecast as the driver makes it, scored over many rolling origins.

``evaluate-forecast`` used to score raw models: each candidate refitted at a few origins. What
the driver acts on is something else: the engine's own selection among the candidates (with its
kept fits, trust verdict and events), wrapped in the online quantile calibration, called once
per cycle with the history window a metric source returns. :func:`evaluate_as_driven` runs that
very object, :func:`driver_engine` (the one the driver service and the backtest build), once per
driver interval over the trace, so the calibration learns from the same stream of forecasts it
would in production, and scores the forecasts issued at ``windows`` origins one horizon apart:

- **MASE** of the point forecast against each step's mean (scaled by the in-sample error of the
  same-time-yesterday forecast on the history before the first scored origin);
- the **weighted quantile loss** (mean over the quantiles of ``2 * sum(pinball) / sum(|y|)``),
- the **coverage of every quantile** (share of scored points at or below it) and of the 80%
  interval (p10-p90),

with the quantiles read against what they bound in the driver: each step's busiest raw
observation when ``forecast.calibration.target`` is ``peak`` (the default; capacity must serve
every minute), its mean otherwise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting._result import Forecast
from forecasting.errors import UnusableSeriesError
from forecasting.evaluation import mase_scale, weighted_quantile_loss
from infra.config import ForecastSettings, MetricSpec

__all__ = [
    "BANDS",
    "BAND_POINTS",
    "DrivenEvaluation",
    "RecordingEngine",
    "ReplayedEngine",
    "default_windows",
    "driver_engine",
    "evaluate_as_driven",
    "tie_aware_coverage",
]

logger = logging.getLogger(__name__)

SCORED_POINTS = 300
"""How many scored points the default ``--windows`` aims for: enough to tell 0.80 from 0.70."""

INTERVAL_QUANTILES = (10, 90)
"""The 80% interval's ends; p10 is added to the evaluated quantiles when missing (a percentile
is read off the same model intervals and calibrated errors as every other, so adding one changes
none of the others)."""


BANDS = {"80% interval": (0.75, 0.85), "p90": (0.85, 0.95)}
"""Issue 15's coverage targets: the share of scored points inside the calibrated p10-p90, and at
or below the p90, each within its band (inclusive, on the unrounded figures)."""

BAND_POINTS = 300
"""The fewest scored points a trace's coverage is judged against :data:`BANDS` on."""


def driver_engine(
    settings: ForecastSettings, *, cache_dir: Path | None = None, seed: int = 0
) -> Any:
    """The forecasting engine as the driver runs it: selection, trust, events, calibration.

    :param settings: the stack's ``forecast`` section.
    :param cache_dir: where the engine keeps fits and selections (default: in memory).
    :param seed: the models' random seed (default 0, as the service).
    """
    from forecasting.calibration import CalibratedEngine
    from forecasting.engine import ForecastEngine

    return CalibratedEngine(
        ForecastEngine(settings, cache_dir=cache_dir, seed=seed), settings=settings.calibration
    )


class RecordingEngine:
    """An engine that keeps what it handed out, by decision time, for :class:`ReplayedEngine`.

    Calibration is a layer over the engine's forecasts (``forecasting.calibration``): it never
    changes what the engine selects or fits. So the engine's stream of uncalibrated forecasts
    over a trace, recorded once, can be calibrated again under other calibration settings at a
    fraction of the cost (a NASA run is minutes of model fitting, a replay seconds), every
    variant from the very same forecasts: like for like.

    :param engine: the engine to record (``forecasting.ForecastEngine``), not a calibrated one.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.stream: dict[pd.Timestamp, Forecast | UnusableSeriesError] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def forecast(
        self, history: pd.Series, *, pool: str, metric: str, now: Any = None, **options: Any
    ) -> Forecast:
        at = pd.Timestamp(now)
        try:
            result: Forecast = self.engine.forecast(
                history, pool=pool, metric=metric, now=now, **options
            )
        except UnusableSeriesError as exc:
            self.stream[at] = exc
            raise
        self.stream[at] = result
        return result


class ReplayedEngine:
    """Hands out, for each decision time, what a :class:`RecordingEngine` recorded then.

    :param stream: decision time -> the recorded forecast, or the error the engine raised.
    :param name: the trace's name, for the error when a decision time was never recorded.
    """

    def __init__(
        self, stream: dict[pd.Timestamp, Forecast | UnusableSeriesError], *, name: str
    ) -> None:
        self.stream = stream
        self.name = name

    def forecast(
        self, history: pd.Series, *, pool: str, metric: str, now: Any = None, **options: Any
    ) -> Forecast:
        at = pd.Timestamp(now)
        if at not in self.stream:
            raise LookupError(
                f"trace {self.name}: no forecast was recorded at {at} (the replay asks for "
                "decision times the recording did not make: record again with the same "
                "windows, interval and calibration window)"
            )
        result = self.stream[at]
        if isinstance(result, UnusableSeriesError):
            raise result
        return result


def default_windows(*, horizon: timedelta, step: timedelta) -> int:
    """Origins (one horizon apart) for about :data:`SCORED_POINTS` scored points."""
    points = max(1, round(horizon / step))
    return max(3, math.ceil(SCORED_POINTS / points))


@dataclass
class DrivenEvaluation:
    """What :func:`evaluate_as_driven` measured.

    :param scored_points: forecast points scored (gaps are not scored).
    :param origins: scored origins that had a forecast.
    :param missing_origins: scored origins where the engine gave none (the reason in ``notes``).
    :param cycles: engine calls made (one per driver interval).
    :param mase: of the point forecast against the step mean.
    :param wql: weighted quantile loss against the quantile target.
    :param coverage: percentile -> share of scored points at or below it.
    :param coverage_80: share inside p10-p90.
    :param tie_aware_coverage: percentile -> expected share of scored points whose randomised
        PIT is at or below it (:func:`tie_aware_coverage`): ``coverage`` with ties spread.
    :param tie_aware_coverage_80: the same for the 80% interval.
    :param tied_points: share of scored points equal to one of their quantiles (zero counts
        at a p10 of 0, CPU at a quantile clipped to 100%).
    :param quantile_target: ``peak`` or ``mean``: what the quantiles were scored against.
    :param models: model -> origins it produced (the engine's selection over time).
    :param trusted_origins: origins whose forecast was trusted.
    :param calibrated_origins: origins whose quantiles came from the calibration.
    :param warmup: how long the engine ran before the first scored origin.
    :param notes: why origins had no forecast, once each.
    """

    scored_points: int
    origins: int
    missing_origins: int
    cycles: int
    mase: float
    wql: float
    coverage: dict[int, float]
    coverage_80: float | None
    tie_aware_coverage: dict[int, float]
    tie_aware_coverage_80: float | None
    tied_points: float
    quantile_target: str
    models: dict[str, int]
    trusted_origins: int
    calibrated_origins: int
    warmup: timedelta
    notes: list[str] = field(default_factory=list)

    def bands(self, *, tie_aware: bool = False) -> dict[str, bool] | None:
        """Whether each coverage of :data:`BANDS` is in its band, or None with fewer than
        :data:`BAND_POINTS` scored points (too few to judge).

        :param tie_aware: judge the coverage with ties spread instead of as written (the
            target is written on the latter).
        """
        if self.scored_points < BAND_POINTS:
            return None
        interval = self.tie_aware_coverage_80 if tie_aware else self.coverage_80
        p90 = (self.tie_aware_coverage if tie_aware else self.coverage).get(90)
        figures = {"80% interval": interval, "p90": p90}
        return {
            name: figures[name] is not None and low <= float(figures[name] or 0.0) <= high
            for name, (low, high) in BANDS.items()
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "scored_points": self.scored_points,
            "origins": self.origins,
            "missing_origins": self.missing_origins,
            "cycles": self.cycles,
            "mase": _finite(self.mase),
            "wql": _finite(self.wql),
            "coverage": {str(q): round(v, 4) for q, v in self.coverage.items()},
            "coverage_80": None if self.coverage_80 is None else round(self.coverage_80, 4),
            "tie_aware_coverage": {str(q): round(v, 4) for q, v in self.tie_aware_coverage.items()},
            "tie_aware_coverage_80": None
            if self.tie_aware_coverage_80 is None
            else round(self.tie_aware_coverage_80, 4),
            "tied_points": round(self.tied_points, 4),
            "bands": self.bands(),
            "tie_aware_bands": self.bands(tie_aware=True),
            "quantile_target": self.quantile_target,
            "models": self.models,
            "trusted_origins": self.trusted_origins,
            "calibrated_origins": self.calibrated_origins,
            "warmup_seconds": self.warmup.total_seconds(),
            "notes": self.notes,
        }


def evaluate_as_driven(
    series: pd.Series,
    *,
    name: str,
    settings: ForecastSettings,
    spec: MetricSpec,
    windows: int | None = None,
    interval: timedelta = timedelta(minutes=5),
    events: Any = None,
    engine: Any = None,
    on_cycle: Callable[[int, int], None] | None = None,
) -> DrivenEvaluation:
    """Run the driver's engine over ``series`` once per ``interval`` and score ``windows`` origins.

    The scored origins are the last ``windows`` one horizon apart, ending one horizon before the
    trace does. Before the first of them the engine runs for up to the calibration window (what
    a driver that has been running that long knows), its first cycle having ``forecast.history``
    of data before it, or half the data before the first origin where the trace is shorter.

    :param series: the raw trace (UTC index; NaN are gaps).
    :param name: its name in errors.
    :param settings: the ``forecast`` section (horizon, history, models, calibration).
    :param spec: the metric's spec (``unit: percent`` bounds the forecast to 0-100).
    :param windows: scored origins; default :func:`default_windows`.
    :param interval: the driver's cycle interval (default 5 min).
    :param events: the stack's event schedule, as the driver passes it.
    :param engine: default :func:`driver_engine` of ``settings``.
    :param on_cycle: called with (cycles done, cycles in all).
    :raises UnusableSeriesError: naming the trace and what it lacks when too short.
    """
    raw = _utc(series, name)
    quantiles = sorted({*settings.quantiles, *INTERVAL_QUANTILES})
    settings = settings.model_copy(update={"quantiles": quantiles})
    engine = engine if engine is not None else driver_engine(settings)
    horizon = settings.horizon
    start, end = raw.index[0], raw.index[-1]
    probe = _first_forecast(engine, raw, settings=settings, spec=spec, name=name)
    step = probe.step
    last_origin = _floor(end - horizon, interval)
    if windows is None:
        # As many as about 300 points need, but never more than leave half the trace as the
        # history before the first of them.
        fit = int(((last_origin - start) / 2) // horizon) + 1
        windows = max(1, min(default_windows(horizon=horizon, step=step), fit))
    first_origin = last_origin - (windows - 1) * horizon
    if first_origin - start < step * 2:
        span = end - start
        raise UnusableSeriesError(
            name,
            f"spans {span}; {windows} origins one {horizon} horizon apart need more than "
            f"{windows * horizon} after the first observation (pass fewer --windows or a "
            "shorter --horizon)",
        )
    calibration = settings.calibration
    # A driver that has run for the calibration window before the first scored origin, started
    # with a full history where the trace has one (at least half the data before that origin).
    warm_from = max(
        start + min(settings.history, (first_origin - start) / 2),
        first_origin - (calibration.window if calibration.enabled else timedelta(0)),
    )
    warm_from = min(_floor(warm_from, interval) + interval, first_origin)
    origins = {first_origin + i * horizon for i in range(windows)}
    cycles = pd.date_range(warm_from, last_origin, freq=interval)
    cycle_times = sorted({*cycles, *origins})
    stamps = raw.index
    values = raw.to_numpy(dtype=float)
    scale = _mase_scale(raw[raw.index <= first_origin], step=step, span=settings.history)
    target = calibration.target if calibration.enabled else "mean"

    actual_mean: list[float] = []
    actual_target: list[float] = []
    predicted_mean: list[float] = []
    predicted: dict[int, list[float]] = {q: [] for q in quantiles}
    models: dict[str, int] = {}
    notes: dict[str, None] = {}
    trusted = calibrated = missing = done = 0
    for done, now in enumerate(cycle_times, start=1):
        history = raw[(stamps > now - settings.history) & (stamps <= now)]
        try:
            forecast = engine.forecast(
                history,
                pool="trace",
                metric=spec.query or "value",
                spec=spec,
                now=now.to_pydatetime(),
                events=events,
            )
        except UnusableSeriesError as exc:
            if now in origins:
                missing += 1
                notes[exc.reason] = None
            continue
        if on_cycle is not None:
            on_cycle(done, len(cycle_times))
        if now not in origins:
            continue
        models[forecast.model] = models.get(forecast.model, 0) + 1
        trusted += forecast.trusted
        calibrated += any("calibrated" in note for note in forecast.adjustments)
        for index, at in enumerate(forecast.times):
            lo = np.searchsorted(stamps, pd.Timestamp(at), side="left")
            hi = np.searchsorted(stamps, pd.Timestamp(at) + forecast.step, side="left")
            chunk = values[lo:hi]
            chunk = chunk[np.isfinite(chunk)]
            if len(chunk) == 0 or not np.isfinite(forecast.mean[index]):
                continue  # a gap: nobody observed it, so nothing is scored
            actual_mean.append(float(chunk.mean()))
            actual_target.append(float(chunk.max() if target == "peak" else chunk.mean()))
            predicted_mean.append(float(forecast.mean[index]))
            for q in quantiles:
                predicted[q].append(float(forecast.quantiles[q][index]))
    scored = len(actual_mean)
    if scored == 0:
        raise UnusableSeriesError(
            name, f"no origin produced a scorable forecast ({'; '.join(notes) or 'all gaps'})"
        )
    y = np.asarray(actual_target)
    curves = {q: np.asarray(v) for q, v in predicted.items()}
    coverage = {q: float(np.mean(y <= curve)) for q, curve in curves.items()}
    inside = (y >= curves[INTERVAL_QUANTILES[0]]) & (y <= curves[INTERVAL_QUANTILES[1]])
    spread = tie_aware_coverage(y, curves)
    tied = np.zeros(len(y), dtype=bool)
    for curve in curves.values():
        tied |= y == curve
    return DrivenEvaluation(
        scored_points=scored,
        origins=len(origins) - missing,
        missing_origins=missing,
        cycles=done,
        mase=float(np.mean(np.abs(np.asarray(actual_mean) - np.asarray(predicted_mean))) / scale),
        wql=weighted_quantile_loss(y, curves),
        coverage=coverage,
        coverage_80=float(np.mean(inside)),
        tie_aware_coverage=spread,
        tie_aware_coverage_80=spread[INTERVAL_QUANTILES[1]] - spread[INTERVAL_QUANTILES[0]],
        tied_points=float(np.mean(tied)),
        quantile_target=target,
        models=dict(sorted(models.items())),
        trusted_origins=trusted,
        calibrated_origins=calibrated,
        warmup=first_origin - warm_from,
        notes=list(notes),
    )


def tie_aware_coverage(
    actual: npt.NDArray[np.float64], curves: Mapping[int, npt.NDArray[np.float64]]
) -> dict[int, float]:
    """Coverage of each percentile with ties counted fairly: the randomised PIT's expectation.

    "Share of points at or below the quantile" counts an observation equal to a quantile as
    covered by it. For a sparse count that is most points: when half the steps are 0, a correct
    forecast's p10 and p50 are 0, every zero step is "at or below p10" and "inside p10-p90" at
    once, and the interval "covers" what it cannot help covering (CVS: 81% zero steps). The
    randomised probability integral transform (Czado, Gneiting and Held 2009, for count data)
    places such a point's PIT uniformly across the jump of the predictive distribution at it.
    With only quantiles known, the jump at ``y`` spans from the highest level whose quantile is
    below ``y`` (0 if none) to the lowest level whose quantile is above it (1 if none), and a
    level's coverage is the expected share of PITs at or below it. A point strictly between two
    adjacent quantiles counts exactly as in the plain coverage, so the two figures differ only
    through ties; both are reported, the target being written on the plain one.

    :param actual: what the quantiles bound, one value per scored point.
    :param curves: percentile -> the forecast quantile at each scored point (monotone across
        percentiles, as the engine makes them).
    """
    levels = sorted(curves)
    y = np.asarray(actual, dtype=float)
    stacked = np.vstack([np.asarray(curves[q], dtype=float) for q in levels])
    fractions = np.asarray(levels, dtype=float)[:, None] / 100.0
    below = np.where(stacked < y, fractions, 0.0).max(axis=0)
    above = np.where(stacked > y, fractions, 1.0).min(axis=0)
    width = above - below  # > 0: monotone curves put every "below" level under every "above"
    return {q: float(np.mean(np.clip((q / 100.0 - below) / width, 0.0, 1.0))) for q in levels}


def _first_forecast(
    engine: Any, raw: pd.Series, *, settings: ForecastSettings, spec: MetricSpec, name: str
) -> Forecast:
    """A forecast on a copy of the engine's settings, to learn the step the engine uses."""
    from forecasting.engine import ForecastEngine

    probe = ForecastEngine(settings.model_copy(update={"models": ["seasonal_naive"]}))
    head = raw[raw.index <= raw.index[0] + settings.history]
    try:
        forecast: Forecast = probe.forecast(head, pool="trace", metric="probe", spec=spec)
    except UnusableSeriesError as exc:
        raise UnusableSeriesError(name, exc.reason) from None
    return forecast


def _mase_scale(history: pd.Series, *, step: timedelta, span: timedelta) -> float:
    """The in-sample error of same-time-yesterday on the step means of the last ``span``."""
    recent = history[history.index > history.index[-1] - span]
    gridded = recent.resample(pd.Timedelta(step)).mean().dropna()
    season = max(1, round(timedelta(days=1) / step))
    return mase_scale(gridded.to_numpy(), season=season)


def _floor(stamp: pd.Timestamp, interval: timedelta) -> pd.Timestamp:
    return stamp.floor(pd.Timedelta(interval))


def _utc(series: pd.Series, name: str) -> pd.Series:
    index = pd.DatetimeIndex(series.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    values = pd.to_numeric(pd.Series(series.to_numpy()), errors="coerce").to_numpy(dtype=float)
    out = pd.Series(values, index=index, name=series.name).sort_index()
    out = out[~out.index.duplicated(keep="last")]
    if out.notna().sum() < 2:
        raise UnusableSeriesError(name, "has fewer than two observed values")
    return out


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None
