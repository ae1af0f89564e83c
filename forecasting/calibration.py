"""Online calibration: quantiles from the engine's own recent errors, per lead time.

Model intervals assume a noise shape that real demand rarely has. A series with rare spikes
gets Gaussian intervals inflated by those spikes (a p90 far above nine steps in ten), and a
series observed every minute but forecast in 5-minute steps has minute peaks inside each step
that a mean forecast never bounds. Both mislead capacity sizing: the first wastes instances,
the second under-provisions.

The calibrator keeps every forecast it hands out and, once a forecast point's step has been
observed, records the error at that lead time as a *relative* error
``(realised - mean) / scale`` (``scale`` = the point forecast, floored at a tenth of the
series' typical level, the mean absolute value of its latest 2,016 observations, so that a
near-zero forecast does not blow the ratio up; a mean, not a median, because a sparse count
series, tweets at night, has a median of zero, and a series with nothing but zeros lately is
not calibrated at all). With at least
``min_samples`` errors at a lead, that lead's percentile ``q`` becomes
``mean + scale * (q-th percentile of the recent errors)``: split-conformal quantiles, one-sided
and asymmetric, from errors the model actually made on this series within ``window``.
``realised`` is the step's highest raw observation (``target: peak``, what capacity has to
serve) or its mean (``target: mean``, what the models fit).

Relative errors are not the same at every level: counted demand (requests, tweets) is noisier,
relative to its level, in quiet hours than at the peak. Pooled, the quiet hours' errors widen
the busy hours' quantiles (instances paid for at the peak, where most instance-hours are) and
the busy hours' errors narrow the quiet ones (short minutes at night). With ``bins`` > 1 each
error is kept with the level of the forecast that made it, the recent forecasts at a lead are
cut into ``bins`` equal-count level bands, and a forecast's quantiles come from the errors of
its own band (Mondrian conformal prediction, the level as the taxonomy); a band with fewer
than ``min_samples`` errors borrows the whole lead's. The point forecast (``mean``) is
never changed; the forecast's ``adjustments`` say how its quantiles were calibrated.

:class:`CalibratedEngine` wraps any engine with ``forecast`` / ``forecast_many`` so the driver
and the backtest use the same calibration.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting._result import Forecast, ForecastUnavailable
from forecasting.intervals import monotone
from infra.config import CalibrationSettings

__all__ = ["CalibratedEngine", "QuantileCalibrator", "bounded_for_unit"]

logger = logging.getLogger(__name__)

Key = tuple[str, str]

_SCALE_FLOOR = 0.1
"""A forecast below this fraction of the series' typical level is scaled as if it were there."""

_LEVEL_POINTS = 2016
"""How many latest observations the typical level is the mean absolute value of (a week of
5-minute points)."""


@dataclass
class _Pending:
    """A handed-out forecast whose steps have not all been observed yet."""

    starts: npt.NDArray[np.int64]  # step starts, ns since the epoch
    mean: npt.NDArray[np.float64]
    step: int  # ns
    done: npt.NDArray[np.bool_]
    # The calibrated percentiles whose levels adapt, as handed out, scored against what came
    # (``lower_adapt_step`` below 50, ``upper_adapt_step`` above); None when not adapting or
    # not calibrated.
    adapted: dict[int, npt.NDArray[np.float64]] | None = None


class _LeadErrors:
    """The relative errors kept at one lead and the level of the forecast that made each, as
    the calibrator reads them (computed from :class:`_ErrorTable` for one calibration)."""

    __slots__ = ("errors", "levels")

    def __init__(self, errors: npt.NDArray[np.float64], levels: npt.NDArray[np.float64]) -> None:
        self.errors = errors
        # The forecast's level relative to the series' typical level when it was scored: the
        # key errors are grouped by when ``bins`` > 1.
        self.levels = levels

    def near(
        self, level: float, *, bins: int, at_least: int
    ) -> tuple[npt.NDArray[np.float64], bool]:
        """The errors of the equal-count level band ``level`` falls in, and whether they are
        the whole lead's instead (one band, or fewer than ``at_least`` errors in the band)."""
        errors = self.errors
        if bins <= 1:
            return errors, False
        levels = self.levels
        edges = _linear_quantiles(levels, np.linspace(0.0, 1.0, bins + 1)[1:-1])
        band = np.searchsorted(edges, levels, side="right")
        own = errors[band == int(np.searchsorted(edges, level, side="right"))]
        if len(own) < at_least:
            # Until its band has enough errors a forecast borrows the whole lead's: the bands
            # must not make the warm-up (errors are kept in memory) any longer.
            return errors, True
        return own, False

    def __len__(self) -> int:
        return len(self.errors)


class _ErrorTable:
    """The scored steps of one series within the window: what its errors are computed from.

    A relative error is ``(realised - mean) / scale`` and its level ``scale / typical``, with
    ``scale = max(|mean|, 0.1 * typical)``: the step's realised value and the series' typical
    level are the same for every lead that scores the step in one :meth:`observe
    <QuantileCalibrator.observe>` (one forecast a cycle, 12 leads: each closed step is scored
    at all 12 at once), so a row holds the step's start, realised value and typical level
    once and one forecast mean per lead (NaN: not scored at that lead), and the errors and
    levels are computed from them when the calibrator reads them, by the same float64
    operations as when they were kept whole, so the same numbers bit for bit
    (``tests/forecasting/test_calibration_storage.py``). 8 bytes an error and 24 a row: 10 an
    error at 12 leads, against 20 for a kept start, error and level each (int32 start,
    float64 error and level), and 130 as Python lists. A series holds ``window / step`` rows
    (3 days at 5 minutes: 864 rows, 10,368 errors), most of a warm series' memory. A second
    forecast scored at the same lead and step in one observation (a cycle shorter than the
    step) gets a row of its own. Rows are grown by an eighth: once the window is full,
    :meth:`forget_before` frees as many as a cycle adds, so the arrays stop growing near the
    window's size, at most an eighth unused.
    """

    __slots__ = ("_means", "_realised", "_size", "_starts", "_typical")

    def __init__(self) -> None:
        self._starts = np.empty(0, dtype=np.int64)  # ns since the epoch
        self._realised = np.empty(0, dtype=np.float64)
        self._typical = np.empty(0, dtype=np.float64)
        self._means = np.empty((0, 0), dtype=np.float64)  # row x lead - 1
        self._size = 0

    def add(
        self,
        *,
        lead: int,
        start: int,
        end: int,
        realised: float,
        mean: float,
        typical: float,
        rows: dict[tuple[int, int], int],
    ) -> None:
        """Keep the forecast ``mean`` of step ``start``-``end`` at ``lead``, scored against
        ``realised`` on a series of typical level ``typical``; ``rows``: the rows this
        observation opened (one dict per observation, the step's start and end its key)."""
        column = lead - 1
        if column >= self._means.shape[1]:
            wider = np.full((len(self._means), lead), np.nan)
            wider[: self._size, : self._means.shape[1]] = self._means[: self._size]
            self._means = wider
        row = rows.get((start, end))
        if row is None or not np.isnan(self._means[row, column]):
            row = self._open(start, realised, typical)
            rows[(start, end)] = row
        self._means[row, column] = mean

    def _open(self, start: int, realised: float, typical: float) -> int:
        if self._size == len(self._starts):
            capacity = self._size + max(32, self._size // 8)
            self._starts = _grown(self._starts, capacity, self._size)
            self._realised = _grown(self._realised, capacity, self._size)
            self._typical = _grown(self._typical, capacity, self._size)
            self._means = _grown(self._means, capacity, self._size)
        row = self._size
        self._starts[row] = start
        self._realised[row] = realised
        self._typical[row] = typical
        self._means[row] = np.nan
        self._size += 1
        return row

    def forget_before(self, cutoff: int) -> None:
        """Forget the steps that started before ``cutoff`` (ns)."""
        old = self._starts[: self._size] < cutoff
        drop = int(np.count_nonzero(old))
        if not drop:
            return
        keep = self._size - drop
        arrays = (self._starts, self._realised, self._typical, self._means)
        if old[:drop].all():
            # Steps are scored in time order, so the old ones are a prefix: moved in place.
            for array in arrays:
                array[:keep] = array[drop : self._size]
        else:
            kept = np.flatnonzero(~old)
            for array in arrays:
                array[:keep] = array[kept]
        self._size = keep

    def samples(self, lead: int) -> int:
        """How many errors are kept at ``lead``."""
        if not 0 < lead <= self._means.shape[1]:
            return 0
        return int(np.count_nonzero(~np.isnan(self._means[: self._size, lead - 1])))

    def leads(self) -> dict[int, _LeadErrors]:
        """Each lead's errors and levels (leads with none left out)."""
        size = self._size
        realised, typical = self._realised[:size], self._typical[:size]
        floor = _SCALE_FLOOR * typical
        columns = self._means[:size].T  # lead x row
        filled = ~np.isnan(columns)
        out = {}
        if size and filled.all():
            # Every step scored at every lead (the steady state: one forecast a cycle): all
            # leads at once, each lead's errors a row of the result.
            scale = np.maximum(np.abs(columns), floor)
            errors, levels = (realised - columns) / scale, scale / typical
            return {
                column + 1: _LeadErrors(errors[column], levels[column])
                for column in range(len(columns))
            }
        for column, rows in enumerate(filled):
            count = int(np.count_nonzero(rows))
            if not count:
                continue
            means, real, level, low = columns[column], realised, typical, floor
            if count < size:
                means, real, level, low = means[rows], real[rows], level[rows], low[rows]
            # The operations observe() once applied to each error as it was scored, on arrays.
            scale = np.maximum(np.abs(means), low)
            out[column + 1] = _LeadErrors((real - means) / scale, scale / level)
        return out

    def __len__(self) -> int:
        """How many errors are kept, at every lead."""
        return int(np.count_nonzero(~np.isnan(self._means[: self._size])))


def _linear_quantiles(
    values: npt.NDArray[np.float64], q: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``np.quantile(values, q)`` (method "linear"), by numpy 2's own arithmetic, at a tenth of
    its cost on the few hundred errors of a lead.

    The calibrator asks for these twice per lead per series per cycle (the level bands' edges
    and the quantiles): numpy's general path (axis handling, ``np.unique`` of the partition
    indexes, a masked subtraction) cost about 0.2 ms a call, the calibrated driver's biggest
    cost per warm series. Same steps as ``numpy.lib._function_base_impl._quantile`` and
    ``_lerp``: virtual index ``(n - 1) * q``, its floor and the next index (the last value past
    the end), ``gamma`` the distance from the floor, ``a + (b - a) * gamma`` below one half and
    ``b - (b - a) * (1 - gamma)`` from it. Equal bit for bit
    (``tests/forecasting/test_calibration_storage.py``).

    :param values: one-dimensional, non-empty; a NaN makes every quantile NaN, as in numpy.
    :param q: probabilities in [0, 1].
    """
    ordered = np.sort(values)
    n = len(ordered)
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = -1
    following[above] = -1
    previous_at = previous.astype(np.intp)
    gamma = virtual - previous_at
    a = ordered[previous_at]
    b = ordered[following.astype(np.intp)]
    difference = b - a
    out: npt.NDArray[np.float64] = a + difference * gamma
    np.subtract(b, difference * (1 - gamma), out=out, where=gamma >= 0.5)
    if n and np.isnan(ordered[-1]):
        out[:] = np.nan
    return out


def _grown(array: npt.NDArray[Any], capacity: int, size: int) -> npt.NDArray[Any]:
    out = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    out[:size] = array[:size]
    return out


@dataclass
class _SeriesErrors:
    """Recent relative errors of one series, per lead time (1-based step index)."""

    table: _ErrorTable = field(default_factory=lambda: _ErrorTable())
    pending: list[_Pending] = field(default_factory=list)
    level: float = float("nan")
    # Adapted percentile -> how far its level has moved from nominal (a fraction of 1).
    level_shift: dict[int, float] = field(default_factory=dict)


class QuantileCalibrator:
    """Learns per-lead error distributions from realised data and recalibrates quantiles.

    :param settings: ``forecast.calibration`` from the stack config (target, window,
        min_samples).
    """

    def __init__(self, settings: CalibrationSettings) -> None:
        self.settings = settings
        self._series: dict[Key, _SeriesErrors] = {}
        # Which leads the latest calibrate() of a series calibrated, for issued() to score.
        self._calibrated_leads: dict[Key, npt.NDArray[np.bool_]] = {}

    def samples(self, key: Key, lead: int) -> int:
        """How many errors are known for ``key`` at ``lead`` (1 = the first forecast step)."""
        errors = self._series.get(key)
        return errors.table.samples(lead) if errors else 0

    def observe(self, key: Key, history: pd.Series, *, now: datetime | None = None) -> None:
        """Score the pending forecasts of ``key`` against newly observed data.

        :param key: ``(pool, metric)``.
        :param history: the raw series handed to the engine (any order; NaN are gaps).
        :param now: default ``None``; observations after it are ignored.
        """
        errors = self._series.setdefault(key, _SeriesErrors())
        stamps, values = _clean(history, now=now)
        if len(values) == 0:
            return
        level = float(np.mean(np.abs(values[-min(len(values), _LEVEL_POINTS) :])))
        if not level > 0:
            # Nothing but zeros lately: no scale to measure errors against (every error would
            # be "infinitely" large), so nothing is scored and the models' quantiles stand.
            errors.level = float("nan")
            errors.pending = [kept for kept in errors.pending if kept.starts[-1] > int(stamps[-1])]
            return
        errors.level = level
        last = int(stamps[-1])
        window = int(self.settings.window.total_seconds() * 1e9)
        peak = self.settings.target == "peak"
        still: list[_Pending] = []
        rows: dict[tuple[int, int], int] = {}
        for pending in errors.pending:
            ends = pending.starts + pending.step
            # A step counts once it has closed: its last observation is at or after its end,
            # or later data exists (the step may hold a gap, which then stays a gap).
            ready = (~pending.done) & (ends <= last + 1)
            if ready.any():
                lo = np.searchsorted(stamps, pending.starts[ready], side="left")
                hi = np.searchsorted(stamps, ends[ready], side="left")
                leads = np.nonzero(ready)[0] + 1
                for lead, a, b, forecast in zip(leads, lo, hi, pending.mean[ready], strict=True):
                    if b <= a or not np.isfinite(forecast):
                        continue  # a gap: masked, never scored as zero demand
                    chunk = values[a:b]
                    realised = float(chunk.max() if peak else chunk.mean())
                    start = int(pending.starts[lead - 1])
                    errors.table.add(
                        lead=int(lead),
                        start=start,
                        end=start + pending.step,
                        realised=realised,
                        mean=float(forecast),
                        typical=level,
                        rows=rows,
                    )
                    if pending.adapted is not None:
                        self._adapt_levels(errors, pending.adapted, int(lead) - 1, realised)
                pending.done |= ready
            if not pending.done.all():
                still.append(pending)
        errors.pending = still
        errors.table.forget_before(last - window)

    def _adapt_levels(
        self,
        errors: _SeriesErrors,
        issued: dict[int, npt.NDArray[np.float64]],
        index: int,
        realised: float,
    ) -> None:
        """One step of adaptive conformal inference (Gibbs and Candes, NeurIPS 2021) for each
        adapted percentile: its level rises when steps fell below it less often than it says
        and falls when more often, by ``lower_adapt_step`` (below 50) or ``upper_adapt_step``
        (above 50) at a time, within bounds (:func:`_level_bounds`).

        Why the lower tail by default: it sizes no capacity (the planner reads p50 and up), and
        it is where the fixed levels miss most (issue 15's measurement: on the over-wide traces
        0-10% of steps fell at or below p10, the errors of a window's calmer or wilder spells
        holding it down). The upper levels are opt-in: they size capacity, and an unbounded
        adaptive p90 followed a calm day down and then under-covered.
        """
        for q, curve in issued.items():
            step = self.settings.lower_adapt_step if q < 50 else self.settings.upper_adapt_step
            # Only pending forecasts issued while adapting carry curves, and only of the
            # percentiles whose step is set.
            assert step is not None
            value = float(curve[index])
            if not np.isfinite(value):
                continue
            if realised == value:
                # A step on the percentile (a zero count at a p10 of 0) tells neither way:
                # counted as covered, it walked a sparse count's p10 up off 0 until the zero
                # steps fell below it (CVS, tie-aware 0.77 -> 0.68).
                continue
            nominal = q / 100
            missed = 1.0 if realised < value else 0.0
            shift = errors.level_shift.get(q, 0.0) + step * (nominal - missed)
            # Bounded, so that a spell of misses cannot walk a percentile away.
            low, high = _level_bounds(q)
            errors.level_shift[q] = min(max(shift, low), high)

    def _adapts(self, q: int) -> bool:
        """Whether percentile ``q``'s level adapts (the median never does)."""
        if q < 50:
            return self.settings.lower_adapt_step is not None
        return q > 50 and self.settings.upper_adapt_step is not None

    def issued(self, forecast: Forecast) -> None:
        """Note the calibrated percentiles whose levels adapt of the forecast just
        :meth:`record`-ed and :meth:`calibrate`-d, for the adaptive levels to score (nothing
        unless ``lower_adapt_step`` or ``upper_adapt_step`` is set and the forecast was
        calibrated)."""
        key = (forecast.pool, forecast.metric)
        leads = self._calibrated_leads.pop(key, None)
        errors = self._series.get(key)
        if leads is None or errors is None or not errors.pending:
            return
        adapted = {
            q: np.asarray(v, dtype=float).copy()
            for q, v in forecast.quantiles.items()
            if self._adapts(q)
        }
        for curve in adapted.values():
            # A lead still on the model's own quantiles (too few errors yet) is not scored:
            # its miss says nothing about the calibrated level.
            curve[~leads] = np.nan
        if adapted:
            errors.pending[-1].adapted = adapted

    def record(self, forecast: Forecast) -> None:
        """Remember a handed-out forecast so its errors are scored once observed."""
        errors = self._series.setdefault((forecast.pool, forecast.metric), _SeriesErrors())
        starts = np.array([pd.Timestamp(t).value for t in forecast.times], dtype=np.int64)
        step = int(forecast.step.total_seconds() * 1e9)
        errors.pending.append(
            _Pending(
                starts=starts,
                mean=np.asarray(forecast.mean, dtype=float).copy(),
                step=step,
                done=np.zeros(len(starts), dtype=bool),
            )
        )

    def calibrate(self, forecast: Forecast) -> Forecast:
        """``forecast`` with its quantiles replaced where enough past errors are known."""
        errors = self._series.get((forecast.pool, forecast.metric))
        if errors is None or not np.isfinite(errors.level):
            return forecast
        mean = np.asarray(forecast.mean, dtype=float)
        quantiles = {q: np.asarray(v, dtype=float).copy() for q, v in forecast.quantiles.items()}
        levels = sorted(quantiles)
        # What np.percentile(near, levels) computes its quantiles from.
        percents = np.true_divide(np.asarray(levels), 100)
        adapted = ""
        shifts = {q: shift for q, shift in errors.level_shift.items() if self._adapts(q)}
        if shifts:
            for position, q in enumerate(levels):
                if q in shifts:
                    percents[position] += shifts[q]
            below = any(q < 50 for q in shifts)
            above = any(q > 50 for q in shifts)
            which = (
                "adapted"
                if below and above
                else "below 50 adapted"
                if below
                else "above 50 adapted"
            )
            adapted = f", levels {which}: " + ", ".join(
                f"p{q} at {100 * (q / 100 + shift):.1f}%" for q, shift in sorted(shifts.items())
            )
        calibrated = 0
        done = np.zeros(len(mean), dtype=bool)
        pooled = 0
        fewest = None
        by_lead = errors.table.leads()
        for index in range(len(mean)):
            lead_errors = by_lead.get(index + 1)
            if lead_errors is None or not np.isfinite(mean[index]):
                continue
            scale = _scale(float(mean[index]), errors.level)
            near, borrowed = lead_errors.near(
                scale / errors.level, bins=self.settings.bins, at_least=self.settings.min_samples
            )
            count = len(near)
            if count < self.settings.min_samples:
                continue
            # One quantile call per lead for every level.
            relative = _linear_quantiles(near, percents)
            for q, value in zip(levels, relative, strict=True):
                quantiles[q][index] = mean[index] + scale * float(value)
            calibrated += 1
            done[index] = True
            pooled += borrowed
            fewest = count if fewest is None else min(fewest, count)
        if not calibrated:
            return forecast
        if self.settings.lower_adapt_step is not None or self.settings.upper_adapt_step is not None:
            self._calibrated_leads[(forecast.pool, forecast.metric)] = done
        fixed = monotone(quantiles)
        floor_at_zero = bool(np.nanmin(mean) >= 0) if len(mean) else True
        if floor_at_zero:
            fixed = {q: np.maximum(v, 0.0) for q, v in fixed.items()}
        bands = ""
        if self.settings.bins > 1:
            bands = f", {self.settings.bins} level bands" + (
                f" ({pooled} from all the lead's errors: band not filled yet)" if pooled else ""
            )
        note = (
            f"quantiles calibrated on the step {self.settings.target} from >= {fewest} recent "
            f"errors per lead ({calibrated}/{len(mean)} steps{bands}{adapted})"
        )
        return replace(forecast, quantiles=fixed, adjustments=(*forecast.adjustments, note))


class CalibratedEngine:
    """A forecasting engine whose quantiles are calibrated online (see the module docstring).

    :param engine: the engine to wrap (``forecasting.ForecastEngine`` or anything with the same
        ``forecast`` / ``forecast_many``).
    :param settings: ``forecast.calibration`` from the stack config.
    """

    def __init__(self, engine: Any, *, settings: CalibrationSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.calibrator = QuantileCalibrator(settings)

    def __getattr__(self, name: str) -> Any:
        # Everything else (fits, selections, cache) is the wrapped engine's.
        return getattr(self.engine, name)

    def forecast(
        self,
        history: pd.Series,
        *,
        pool: str,
        metric: str,
        now: datetime | None = None,
        **options: Any,
    ) -> Forecast:
        """As the wrapped engine's ``forecast``, with calibrated quantiles."""
        result = self.engine.forecast(history, pool=pool, metric=metric, now=now, **options)
        return bounded_for_unit(
            self._handle((pool, metric), history, now, result), options.get("spec")
        )

    def forecast_many(
        self,
        histories: Mapping[Key, pd.Series],
        *,
        now: datetime | None = None,
        **options: Any,
    ) -> dict[Key, Forecast | ForecastUnavailable]:
        """As the wrapped engine's ``forecast_many``, with calibrated quantiles."""
        results = self.engine.forecast_many(histories, now=now, **options)
        specs = options.get("specs") or {}
        return {
            key: bounded_for_unit(self._handle(key, histories[key], now, result), specs.get(key))
            if isinstance(result, Forecast)
            else result
            for key, result in results.items()
        }

    def _handle(
        self, key: Key, history: pd.Series, now: datetime | None, result: Forecast
    ) -> Forecast:
        if not self.settings.enabled:
            return result
        self.calibrator.observe(key, history, now=now)
        self.calibrator.record(result)
        calibrated = self.calibrator.calibrate(result)
        self.calibrator.issued(calibrated)
        return calibrated


def bounded_for_unit(forecast: Forecast, spec: Any) -> Forecast:
    """The forecast with its mean and quantiles inside its unit's range.

    A percentage lives in 0-100 and a ratio in 0-1: a CPU forecast of 104% is an error of the
    forecast, not something capacity can be sized for (calibrated errors added to a high mean
    reach past 100 easily). Other units are left alone.

    :param spec: the metric's ``MetricSpec`` (or ``None``: nothing known, nothing bounded).
    """
    unit = getattr(spec, "unit", None)
    if unit not in ("percent", "ratio"):
        return forecast
    top = 100.0 if unit == "percent" else 1.0
    return replace(
        forecast,
        mean=np.clip(np.asarray(forecast.mean, dtype=float), 0.0, top),
        quantiles={
            q: np.clip(np.asarray(v, dtype=float), 0.0, top) for q, v in forecast.quantiles.items()
        },
    )


def _level_bounds(q: int) -> tuple[float, float]:
    """How far percentile ``q``'s adapted level may move from nominal (fractions of 1).

    Below 50: from half the nominal level to halfway to the median (p10 within 5-30%). Above
    50: down by its distance to 100% and up by half of it (p90 within 80-95%, p99 within
    98-99.5%): a percentile that sizes capacity may follow what it covered, but a calm spell
    cannot take a p90 below a p80.
    """
    nominal = q / 100
    if q < 50:
        return -nominal / 2, (0.5 - nominal) / 2
    return -(1.0 - nominal), (1.0 - nominal) / 2


def _scale(forecast: float, level: float) -> float:
    """What a forecast's errors are relative to: the forecast, floored at a tenth of the
    series' typical level (``level`` > 0, so the scale is never zero)."""
    return max(abs(forecast), _SCALE_FLOOR * level)


def _clean(
    history: pd.Series, *, now: datetime | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sorted UTC timestamps (ns) and finite values of a raw series, up to ``now``."""
    index = pd.DatetimeIndex(history.index)
    # ``asi8`` holds UTC instants for a zoned index, and a naive one is taken as UTC: the same
    # numbers without converting the index (every series, every cycle).
    if history.dtype.kind in "fiub":
        values = history.to_numpy(dtype=float)  # what to_numeric gives numbers, without it
    else:
        values = pd.to_numeric(pd.Series(history.to_numpy()), errors="coerce").to_numpy(dtype=float)
    stamps = index.asi8
    keep = np.isfinite(values)
    if now is not None:
        keep &= stamps <= pd.Timestamp(now).value
    stamps, values = stamps[keep], values[keep]
    if len(stamps) > 1 and not bool(np.all(np.diff(stamps) >= 0)):
        order = np.argsort(stamps, kind="stable")
        stamps, values = stamps[order], values[order]
    return stamps, values
