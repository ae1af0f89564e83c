"""The prediction engine: raw histories in, probabilistic forecasts out.

One driver cycle calls :meth:`ForecastEngine.forecast_many` with every pool's metric histories.
The engine cleans each series (stating repairs), picks the output grid for the horizon, reuses
each series' cached model choice (re-selecting by rolling-origin CV when it is stale), then
updates each series' kept fitted model with the new observations (refitting only after a
re-selection or ``refit_every``); models that cannot be updated are fitted for all series that
share a model and grid in ONE batched call. The cached choice, the kept fits and that batching
are what keep a cycle of a thousand series within seconds.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting._private import private_dir, restrict_tree
from forecasting._result import Forecast, ForecastUnavailable, Repair
from forecasting.cleaning import clean_series, fill_for_fit
from forecasting.distributed import LocalPool, WorkPool, chunked, open_pool
from forecasting.errors import ForecastingError, UnusableSeriesError
from forecasting.events import EventSchedule
from forecasting.fits import FitStore
from forecasting.intervals import levels_for, quantiles_from_frame
from forecasting.models import (
    BASELINE,
    EXOGENOUS_MODELS,
    ModelOptions,
    check_models,
    forecast_models,
    freq_of,
)
from forecasting.models.profile import ProfileReplay, profile_forecast, replay_profile_floor
from forecasting.models.statistical import NAMES as STATISTICAL
from forecasting.models.statistical import PARAMETER_FREE, REUSABLE, FittedSeries
from forecasting.models.statistical import fit as fit_statistical
from forecasting.models.statistical import fit_each as fit_each_statistical
from forecasting.models.statistical import forecast_each as forecast_statistical
from forecasting.models.statistical import forward_columns as forward_statistical
from forecasting.models.statistical import lean as lean_fit
from forecasting.selection import (
    Selection,
    SelectionStore,
    anchor_of,
    seasonal_strength,
    select_models,
)
from infra.config import ForecastSettings, MetricSpec, format_duration

__all__ = ["ForecastEngine"]

logger = logging.getLogger(__name__)

_DAY = timedelta(days=1)
PROFILE = "seasonal_profile"
"""The model name a forecast by the same-hour profile carries (forecast.untrusted_profile)."""
_PROFILE_LAG = timedelta(minutes=10)
"""Level-to-capacity time in the profile's replay: a decision reads the last step's level and
what it buys is ready a primary ready time (5 minutes by default) and a ``pulumi up`` later."""
_MAX_POINTS = 288
"""Most forecast points per horizon; longer horizons get a coarser step (1w at 5m -> 1h)."""
_RECONNECT_AFTER = 300.0
"""Seconds before an unreachable Dask scheduler is tried again."""
_COARSE_STEPS = tuple(
    timedelta(seconds=s) for s in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400)
)


@dataclass
class _Prepared:
    key: tuple[str, str]
    name: str
    values: pd.Series  # cleaned, on the output grid, NaN at gaps
    filled: pd.Series
    step: timedelta
    season: int
    h: int
    repairs: list[Repair]
    reason: str | None = None  # set when the series cannot support model selection
    caveat: str | None = None  # set when selection runs but the result cannot be trusted
    # Event regressors fed to the model (``event_<kind>``), over the history and the horizon.
    exogenous: tuple[str, ...] = ()
    past_x: np.ndarray | None = None
    future_x: np.ndarray | None = None

    @cached_property
    def issued(self) -> datetime:
        """The time of the last observation (UTC): the series' own decision time.

        Read many times a cycle (selection, fits, the result); a Timestamp boxed from the index
        each time cost more than the check it served.
        """
        last: datetime = self.values.index[-1].to_pydatetime()
        return last

    def future_index(self) -> pd.DatetimeIndex:
        """The forecast's timestamps: ``h`` steps after the last observation."""
        last = self.values.index[-1]
        return pd.DatetimeIndex([last + pd.Timedelta(self.step) * (k + 1) for k in range(self.h)])


@dataclass(frozen=True)
class _Kept:
    """A series' fitted model and what it holds for (any change means a refit)."""

    fit: FittedSeries
    model: str
    step_seconds: float
    season: int
    h: int
    selected_at: datetime
    fitted_at: datetime

    def usable(
        self,
        *,
        selection: Selection,
        step_seconds: float,
        season: int,
        h: int,
        now: datetime,
        every: timedelta,
    ) -> bool:
        return (
            self.selected_at == selection.selected_at
            and self.made_for(model=selection.model, step_seconds=step_seconds, season=season, h=h)
            and self.fitted_at <= now < self.fitted_at + every
        )

    def made_for(self, *, model: str, step_seconds: float, season: int, h: int) -> bool:
        """Whether this fit is of ``model`` on the same grid, season and horizon."""
        return (
            self.model == model
            and math.isclose(self.step_seconds, step_seconds)
            and self.season == season
            and self.h == h
        )


def _average_onto(
    y: np.ndarray, stamps: np.ndarray, *, ratio: int, step_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``ratio`` consecutive grid points, bins anchored at the first point.

    What ``Series.resample(step, origin="start").mean()`` gives on a regular grid (NaN are
    skipped; a bin without any value is NaN), without its cost in every cycle.

    :param y: values on a regular grid, NaN at gaps.
    :param stamps: their nanosecond timestamps.
    :param ratio: the coarser step in grid steps (at least 1).
    :param step_ns: the grid step in nanoseconds.
    """
    if ratio <= 1 or len(y) == 0:
        return y, stamps
    bins = (len(y) - 1) // ratio + 1
    padded = np.full(bins * ratio, np.nan)
    padded[: len(y)] = y
    blocks = padded.reshape(bins, ratio)
    counts = (~np.isnan(blocks)).sum(axis=1)
    sums = np.nansum(blocks, axis=1)
    means = np.full(bins, np.nan)
    np.divide(sums, counts, out=means, where=counts > 0)
    return means, stamps[0] + step_ns * ratio * np.arange(bins, dtype=np.int64)


def _columns_by_series(frame: pd.DataFrame) -> dict[str, Mapping[str, np.ndarray]]:
    """A long forecast frame as each series' columns (in time order) by ``unique_id``."""
    out: dict[str, Mapping[str, np.ndarray]] = {}
    names = [
        c for c in frame.columns if c not in ("unique_id", "ds") and frame[c].dtype.kind in "fiu"
    ]
    for uid, rows in frame.groupby("unique_id", sort=False):
        ordered = rows.sort_values("ds")
        out[str(uid)] = {c: ordered[c].to_numpy(dtype=float) for c in names}
    return out


def _select_task(task: tuple[pd.DataFrame, dict[str, Any]]) -> dict[str, Selection]:
    """One chunk's model selection (a task on the work pool: module-level, picklable)."""
    df, arguments = task
    return select_models(df, **arguments)


def _fit_task(
    task: tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any]],
) -> tuple[pd.DataFrame, dict[str, FittedSeries]]:
    """One chunk's refit (a task on the work pool: module-level, picklable)."""
    df, future, arguments = task
    return fit_statistical(df, future=future, **arguments)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ForecastEngine:
    """Forecasts every metric of every pool from its raw history.

    :param settings: the stack's ``forecast`` settings (horizon, step, quantiles, candidate
        models, re-selection and refit intervals, history length).
    :param cache_dir: default ``None``; directory for the per-series model choices (JSON) and the
        numba compilation cache. ``None`` keeps choices in memory only.
    :param seed: default ``0``; random seed of the models that train.
    :param options: default ``None`` (:class:`ModelOptions` with ``seed``); model budgets.
    :param cv_windows: default ``3``; rolling origins per selection.
    :param tolerance: default ``0.02``; relative MASE margin within which the cheaper model wins.
    :param min_seasonal_strength: default ``0.2``; below it a series is treated as having no
        seasonality to learn (untrusted, baseline fallback).
    :param cv_refit_every_origin: default ``False``: selection scores the models the engine keeps
        fitted as it runs them, fitted once at the first origin and updated at the later ones
        (one fit per candidate instead of one per origin). ``True`` refits every candidate at
        every origin (the behaviour before 28 Nov 2026, kept for benchmarks' baselines).
    """

    def __init__(
        self,
        settings: ForecastSettings,
        *,
        cache_dir: Path | None = None,
        seed: int = 0,
        options: ModelOptions | None = None,
        cv_windows: int = 3,
        tolerance: float = 0.02,
        min_seasonal_strength: float = 0.2,
        cv_refit_every_origin: bool = False,
    ) -> None:
        check_models(settings.models)
        self.settings = settings
        self.options = options or ModelOptions(seed=seed)
        self.cv_windows = cv_windows
        self.tolerance = tolerance
        self.min_seasonal_strength = min_seasonal_strength
        self.cv_refit_every_origin = cv_refit_every_origin
        self._numba_dir: Path | None = None
        if cache_dir is not None:
            private_dir(cache_dir)
            # numba reads this when statsforecast is first imported (lazily, in the models):
            # compiled kernels then survive restarts instead of costing seconds every start.
            os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir / "numba"))
            numba_dir = Path(os.environ["NUMBA_CACHE_DIR"])
            if numba_dir.resolve().is_relative_to(cache_dir.resolve()):
                # numba writes with the umask's modes; the engine keeps its own cache private.
                self._numba_dir = private_dir(numba_dir)
        self.store = SelectionStore(None if cache_dir is None else cache_dir / "selection")
        # The kept fits on disk too: a one-shot cycle (CronJob, timer) would refit every series.
        self.fit_store = FitStore(None if cache_dir is None else cache_dir / "fits")
        # Series whose fit on disk was looked for in this process (read once, then memory).
        self._looked_up: set[tuple[str, str]] = set()
        self.quantiles = sorted(set(settings.quantiles) | {50})
        self.levels = levels_for(self.quantiles)
        # Fitted models per (pool, metric), reused until re-selection or ``refit_every``: a
        # refit costs 80-1,500 ms per series, applying kept parameters to new data about 1 ms.
        self._kept: dict[tuple[str, str], _Kept] = {}
        # Daily-cycle strength per (pool, metric): (measured at, season, strength).
        self._strengths: dict[tuple[str, str], tuple[datetime, int, float]] = {}
        # The same-hour profile's replay per (pool, metric) of an untrusted series: (judged at,
        # verdict), judged again on the selection's schedule (forecast.untrusted_profile).
        self._profile_verdicts: dict[tuple[str, str], tuple[datetime, ProfileReplay]] = {}
        self.fits = 0
        # Cross-validated selections run (each fits every candidate, so may compile kernels).
        self.selections_run = 0
        """Series fits done so far (a refit counts one per series)."""
        self.updates = 0
        """Forecasts made by updating a kept fit with new observations (no refit)."""
        self.restored = 0
        """Kept fits read back from the cache directory (written by an earlier process)."""
        self.deferred_selections = 0
        """Series of the last call whose (re)selection waits for a later cycle (budget)."""
        self.deferred_refits = 0
        """Series of the last call whose refit waits for a later cycle (budget)."""
        # Per call: series allowed to update a fit older than ``refit_every`` (refit deferred),
        # and the note each such forecast carries.
        self._stale_ok: dict[tuple[str, str], str] = {}
        self._pool: WorkPool | None = None
        self._pool_note: str | None = None
        self._pool_opened = 0.0

    # ------------------------------------------------------------------ public API

    def forecast(
        self,
        history: pd.Series,
        *,
        pool: str,
        metric: str,
        spec: MetricSpec | None = None,
        now: datetime | None = None,
        events: EventSchedule | None = None,
        horizon: timedelta | None = None,
    ) -> Forecast:
        """Forecast one metric of one pool.

        :param history: the raw series from a source (any order, time zone, duplicates, NaN).
        :param pool: pool name.
        :param metric: metric name.
        :param spec: default ``None``; the metric's config (``counter`` turns it into a rate).
        :param now: default ``None`` (all data); the decision time: later points are ignored.
        :param events: default ``None``; known events that change the forecast.
        :param horizon: default ``None`` (``settings.horizon``).
        :raises UnusableSeriesError: the data cannot be used, naming ``pool.metric``.
        """
        result = self.forecast_many(
            {(pool, metric): history},
            specs=None if spec is None else {(pool, metric): spec},
            now=now,
            events=events,
            horizon=horizon,
        )[(pool, metric)]
        if isinstance(result, ForecastUnavailable):
            raise UnusableSeriesError(f"{pool}.{metric}", result.reason)
        return result

    def forecast_many(
        self,
        histories: Mapping[tuple[str, str], pd.Series],
        *,
        specs: Mapping[tuple[str, str], MetricSpec] | None = None,
        now: datetime | None = None,
        events: EventSchedule | None = None,
        horizon: timedelta | None = None,
    ) -> dict[tuple[str, str], Forecast | ForecastUnavailable]:
        """Forecast many series; series sharing a model and grid go through one batched call.

        Parameters as :meth:`forecast`; ``histories`` and ``specs`` are keyed by
        ``(pool, metric)``. A series that cannot be forecast yields :class:`ForecastUnavailable`
        with the reason instead of failing the others.
        """
        span = horizon or self.settings.horizon
        fits_before = self.fits
        selections_before = self.selections_run
        out: dict[tuple[str, str], Forecast | ForecastUnavailable] = {}
        prepared: list[_Prepared] = []
        for key, raw in histories.items():
            given = (specs or {}).get(key)
            spec = given or MetricSpec()
            name = f"{key[0]}.{key[1]}"
            try:
                prepared.append(
                    self._prepare(
                        raw,
                        key=key,
                        name=name,
                        spec=spec,
                        # A unit bounds the values (percent: 100) only when the caller stated
                        # it: MetricSpec's default unit is percent, and a series handed in
                        # without its spec (requests per 5 minutes, say) is not a percentage.
                        unit=given.unit if given is not None else None,
                        now=now,
                        horizon=span,
                    )
                )
            except UnusableSeriesError as exc:
                logger.warning("%s", exc)
                out[key] = ForecastUnavailable(pool=key[0], metric=key[1], reason=str(exc))
        selections = self._selections(prepared, now=now)
        for item in prepared:
            selection = selections[item.key]
            if events is not None and len(events) > 0 and selection.model in EXOGENOUS_MODELS:
                self._attach_regressors(item, events)
        # The same-hour profile before the refit budget: a series the profile forecasts fits
        # nothing this cycle, so it neither takes a refit slot nor waits for one. (Counted, a
        # profiled series that never had a fit sorted first every cycle: the budget went to
        # fits that were never made, and due refits waited for ever.)
        profiled, blends = self._profiled(prepared, selections, now=now)
        for key in self._budget_refits(
            [it for it in prepared if it.key not in profiled], selections, now=now
        ):
            blends.pop(key, None)  # on the fallback now: no model forecast to average with
        for item in prepared:
            if item.key in profiled:
                frame_of, chosen, note = profiled[item.key]
                result = self._result(item, frame_of, chosen, events)
                out[item.key] = replace(result, adjustments=(*result.adjustments, note))
        groups: dict[tuple[str, float, int, int, tuple[str, ...]], list[_Prepared]]
        groups = defaultdict(list)
        for item in prepared:
            if item.key in profiled:
                continue
            selection = selections[item.key]
            season = self._fallback_season(item)
            group = (selection.model, item.step.total_seconds(), season, item.h, item.exogenous)
            groups[group].append(item)
        for (model, step_seconds, season, h, _), items in groups.items():
            try:
                frame: dict[str, Mapping[str, np.ndarray]] = self._forecast_group(
                    items,
                    model=model,
                    step_seconds=step_seconds,
                    season=season,
                    h=h,
                    selections=selections,
                    now=now,
                )
            except ForecastingError:
                raise
            except Exception as exc:  # one failing model must not silence the other groups
                for it in items:
                    out[it.key] = ForecastUnavailable(
                        pool=it.key[0], metric=it.key[1], reason=f"model {model} failed: {exc}"
                    )
                logger.exception("model %s failed for %d series", model, len(items))
                continue
            for it in items:
                columns = frame[it.name]
                blend = blends.get(it.key)
                if blend is not None:
                    columns = _blended(columns, blend[0], model=model)
                result = self._result(it, columns, selections[it.key], events)
                if blend is not None:
                    result = replace(result, adjustments=(*result.adjustments, blend[1]))
                out[it.key] = result
        fitted = self.fits > fits_before or self.selections_run > selections_before
        if self._numba_dir is not None and fitted:
            # A fit, or a selection's cross-validation, may have compiled (and cached) new
            # kernels; a series then forecast by the same-hour profile fits nothing itself.
            restrict_tree(self._numba_dir)
        return {key: out[key] for key in histories}

    # ------------------------------------------------------------------ steps

    @staticmethod
    def _long_frame(items: list[_Prepared]) -> pd.DataFrame:
        """History of ``items`` as one ``unique_id, ds, y`` frame, plus their event regressors."""
        frames = []
        for it in items:
            frame = pd.DataFrame(
                {
                    "unique_id": it.name,
                    "ds": it.filled.index.tz_localize(None),
                    "y": it.filled.to_numpy(),
                }
            )
            if it.past_x is not None:
                frame[list(it.exogenous)] = it.past_x
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def _future_frame(items: list[_Prepared]) -> pd.DataFrame | None:
        """The event regressors of ``items`` over their horizons, or ``None`` without any."""
        if not items or items[0].future_x is None:
            return None
        frames = []
        for it in items:
            frame = pd.DataFrame({"unique_id": it.name, "ds": it.future_index().tz_localize(None)})
            frame[list(it.exogenous)] = it.future_x
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def _attach_regressors(item: _Prepared, events: EventSchedule) -> None:
        """Give ``item`` the event regressors its model can learn from its own history.

        Only kinds that occurred in the history (at least two steps, and not everywhere) can
        be learned; kinds never seen keep their configured uplift in :meth:`_event_factor`.
        """
        past = events.regressors(pd.DatetimeIndex(item.filled.index))
        learnable = [c for c in past.columns if past[c].sum() >= 2 and float(past[c].min()) == 0.0]
        if not learnable:
            return
        ahead = events.regressors(item.future_index())
        item.exogenous = tuple(learnable)
        item.past_x = past[learnable].to_numpy(dtype=float)
        item.future_x = ahead[learnable].to_numpy(dtype=float)

    def _forecast_group(
        self,
        items: list[_Prepared],
        *,
        model: str,
        step_seconds: float,
        season: int,
        h: int,
        selections: Mapping[tuple[str, str], Selection],
        now: datetime | None,
    ) -> dict[str, Mapping[str, np.ndarray]]:
        """Forecast series sharing a model and grid: kept fits updated, the rest fitted.

        :returns: each series' forecast columns (``<model>``, ``<model>-lo-L``, ...) by name.
        """
        step = timedelta(seconds=step_seconds)
        if model not in REUSABLE and model in STATISTICAL and items[0].future_x is None:
            # Conformal-interval models refit on past windows anyway: each series' own
            # statsforecast ``forecast`` on its array, as StatsForecast runs it inside, without
            # the long frames around it (they cost twice the forecasts in a warm cycle).
            self.fits += len(items)
            return dict(
                forecast_statistical(
                    {it.name: it.filled.to_numpy(dtype=float) for it in items},
                    model=model,
                    h=h,
                    season=season,
                    levels=self.levels,
                    options=self.options,
                )
            )
        if model not in REUSABLE:
            # The global models (LightGBM, LSTM) train across series: one batched call.
            self.fits += len(items)
            batched = forecast_models(
                self._long_frame(items),
                models=[model],
                h=h,
                freq=freq_of(step),
                season=season,
                levels=self.levels,
                options=self.options,
                future=self._future_frame(items),
            )
            return _columns_by_series(batched)
        columns: dict[str, Mapping[str, np.ndarray]] = {}
        cold: list[_Prepared] = []
        for it in items:
            kept = self._kept.get(it.key) or self._restore(it)
            decided = self._decided(it, now)
            if kept is not None and (
                self._fit_holds(kept, it, selections[it.key], season=season, h=h, now=decided)
                or (it.key in self._stale_ok and kept.model == model)
                or self._parameter_free_holds(kept, it, model=model, season=season, h=h)
            ):
                # Only the history handed in (data up to ``now``) reaches the kept model.
                forecast = forward_statistical(
                    kept.fit,
                    it.filled.to_numpy(dtype=float),
                    end=it.filled.index[-1].tz_localize(None),
                    h=h,
                    levels=self.levels,
                    x=it.past_x,
                    x_future=it.future_x,
                )
                if forecast is not None:
                    self.updates += 1
                    columns[it.name] = forecast
                    continue
            cold.append(it)
        if cold and model in PARAMETER_FREE:
            # A parameter-free "fit" costs less than shipping its series to a worker, or than
            # the long frames around it (at a cold start of 10,000 pools every series on the
            # fallback needs one): here, on each series' array.
            fitted = fit_each_statistical(
                {
                    it.name: (
                        it.filled.to_numpy(dtype=float),
                        it.filled.index[-1].tz_localize(None),
                    )
                    for it in cold
                },
                model=model,
                h=h,
                step=pd.Timedelta(step),
                season=season,
                levels=self.levels,
                options=self.options,
            )
            self.fits += len(cold)
            for it in cold:
                # Not written to the fit cache: a parameter-free fit is made again for less
                # than reading it back (and writing 20,000 files cost a fleet's cold start
                # 90 s of CPU).
                columns[it.name], fit = fitted[it.name]
                self._kept[it.key] = self._kept_fit(
                    it,
                    fit,
                    model=model,
                    step_seconds=step_seconds,
                    season=season,
                    h=h,
                    selections=selections,
                    now=now,
                )
        elif cold:
            arguments = {
                "model": model,
                "h": h,
                "freq": freq_of(step),
                "season": season,
                "levels": self.levels,
                "options": self.options,
            }
            chunks = chunked(cold, parallelism=self._parallelism(len(cold), selecting=False))
            tasks = [(self._long_frame(c), self._future_frame(c), arguments) for c in chunks]
            frames: list[pd.DataFrame] = []
            fits: dict[str, FittedSeries] = {}
            for part_frame, part_fits in self._map(_fit_task, tasks):
                frames.append(part_frame)
                fits.update(part_fits)
            frame = pd.concat(frames, ignore_index=True)
            self.fits += len(cold)
            for it in cold:
                kept = self._kept_fit(
                    it,
                    fits[it.name],
                    model=model,
                    step_seconds=step_seconds,
                    season=season,
                    h=h,
                    selections=selections,
                    now=now,
                )
                self._kept[it.key] = kept
                self.fit_store.save(*it.key, kept, values=it.values)
            columns.update(_columns_by_series(frame))
        return columns

    def _kept_fit(
        self,
        item: _Prepared,
        fit: FittedSeries,
        *,
        model: str,
        step_seconds: float,
        season: int,
        h: int,
        selections: Mapping[tuple[str, str], Selection],
        now: datetime | None,
    ) -> _Kept:
        """What the engine keeps of ``item``'s new fit until its next refit."""
        return _Kept(
            fit=fit,
            model=model,
            step_seconds=step_seconds,
            season=season,
            h=h,
            selected_at=selections[item.key].selected_at,
            fitted_at=self._decided(item, now),
        )

    def _work_pool(self) -> WorkPool:
        """Where selections and refits run (``forecast.backend``), opened on first use.

        A Dask scheduler that could not be reached is tried again after
        :data:`_RECONNECT_AFTER`; until then the work runs here and every call says so.
        """
        if self._pool is not None and not (
            self._pool_note is not None and time.monotonic() - self._pool_opened > _RECONNECT_AFTER
        ):
            return self._pool
        if self._pool is not None:
            self._pool.close()
        self._pool, self._pool_note = open_pool(
            self.settings.backend, workers=self.settings.workers
        )
        self._pool_opened = time.monotonic()
        return self._pool

    def _parallelism(self, series: int, *, selecting: bool) -> int:
        """Workers for a batch of ``series`` selections (or refits): a local pool not yet
        running is started only for a batch that pays for it (a cluster is already running)."""
        pool = self._work_pool()
        if isinstance(pool, LocalPool):
            return pool.parallelism_for(series, selecting=selecting)
        return pool.parallelism

    def _map(self, fn: Callable[[Any], Any], tasks: list[Any]) -> list[Any]:
        """``fn`` over ``tasks`` on the pool; a cluster lost mid-call means doing them here."""
        pool = self._work_pool()
        try:
            return pool.map(fn, tasks)
        except BrokenProcessPool as exc:
            # A spawned worker died: killed, out of memory, or a program that imports the
            # engine without an ``if __name__ == "__main__":`` guard (each worker re-runs it).
            self._pool_note = (
                f"forecast.workers: a local worker process failed ({exc}); selecting and "
                "fitting in the driver process only"
            )
            logger.warning("%s", self._pool_note)
            pool.close()
            self._pool = LocalPool(1)
            self._pool_opened = time.monotonic()
            return self._pool.map(fn, tasks)
        except (OSError, TimeoutError) as exc:
            if pool.name == "local":
                raise
            self._pool_note = (
                f"forecast.backend: the Dask cluster failed during the cycle ({exc}); "
                "selecting and fitting on this machine instead"
            )
            logger.warning("%s", self._pool_note)
            self._pool_opened = time.monotonic()
            pool.close()
            self._pool = LocalPool(self.settings.workers)
            return self._pool.map(fn, tasks)

    @property
    def notes(self) -> list[str]:
        """Cycle-level sentences of the last call (degraded backend, deferred work)."""
        out = [self._pool_note] if self._pool_note else []
        if self.deferred_selections:
            out.append(
                f"model selection deferred for {self.deferred_selections} series "
                f"(forecast.selections_per_cycle {self.settings.selections_per_cycle}); "
                "they forecast with their previous choice or the untrusted baseline"
            )
        if self.deferred_refits:
            out.append(
                f"refits deferred for {self.deferred_refits} series "
                f"(forecast.refits_per_cycle {self.settings.refits_per_cycle}); they update "
                "their older fit or forecast with the untrusted baseline"
            )
        return out

    def close(self) -> None:
        """Stop the worker processes or leave the cluster (a later call opens them again)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _fit_holds(
        self,
        kept: _Kept,
        item: _Prepared,
        selection: Selection,
        *,
        season: int,
        h: int,
        now: datetime,
        every: timedelta | None = None,
    ) -> bool:
        """Whether ``kept`` may forecast ``item`` now (``every``: default ``refit_every``)."""
        return kept.fit.exogenous == item.exogenous and kept.usable(
            selection=selection,
            step_seconds=item.step.total_seconds(),
            season=season,
            h=h,
            now=now,
            every=self.settings.refit_every if every is None else every,
        )

    @staticmethod
    def _parameter_free_holds(
        kept: _Kept, item: _Prepared, *, model: str, season: int, h: int
    ) -> bool:
        """Whether a kept parameter-free fit may forecast ``item``, whatever its age or choice.

        Such a model fits nothing: its ``forward`` on the new history is its forecast from a
        fresh fit (statsforecast's ``SeasonalNaive.forward`` calls ``forecast(y=...)``). So a
        series on the seasonal-naive fallback, whose stand-in choice is made again every cycle
        while it waits for its selection, is not refitted every cycle (at a cold start of
        10,000 pools: 20,000 refits and saves a cycle, about 7 ms a series).
        """
        return (
            model in PARAMETER_FREE
            and kept.fit.exogenous == item.exogenous
            and kept.made_for(
                model=model, step_seconds=item.step.total_seconds(), season=season, h=h
            )
        )

    def _budget_refits(
        self,
        prepared: list[_Prepared],
        selections: dict[tuple[str, str], Selection],
        *,
        now: datetime | None,
    ) -> set[tuple[str, str]]:
        """Refit at most ``forecast.refits_per_cycle`` series; the rest wait for later cycles.

        A refit costs 80-1,500 ms a series and every series falls due together (a cold start,
        a day's re-selection, ``refit_every``): at 10,000 pools a 23-26 minute storm in which
        the driver decides nothing. Over the budget, series without any fit go first (they are
        on the fallback), then the oldest fits. A series that waits keeps updating its older
        fit of the same model (the forecast says so), or, without one, forecasts with the
        seasonal-naive baseline marked untrusted until its turn. Parameter-free models and the
        models refitted every cycle anyway (conformal, global) are not counted, nor are series
        the same-hour profile forecasts (the caller leaves them out of ``prepared``).

        :returns: the series moved to the fallback (their entry in ``selections`` replaced).
        """
        self._stale_ok = {}
        self.deferred_refits = 0
        budget = self.settings.refits_per_cycle
        fallen_back: set[tuple[str, str]] = set()
        if budget is None:
            return fallen_back
        due: list[tuple[_Prepared, _Kept | None]] = []
        for it in prepared:
            selection = selections[it.key]
            if selection.model not in REUSABLE or selection.model in PARAMETER_FREE:
                continue
            kept = self._kept.get(it.key) or self._restore(it)
            season, decided = self._fallback_season(it), self._decided(it, now)
            if kept is None or not self._fit_holds(
                kept, it, selection, season=season, h=it.h, now=decided
            ):
                due.append((it, kept))
        if len(due) <= budget:
            return fallen_back
        epoch = datetime.min.replace(tzinfo=UTC)
        due.sort(key=lambda d: (d[1] is not None, d[1].fitted_at if d[1] else epoch, d[0].name))
        waiting = due[budget:]
        self.deferred_refits = len(waiting)
        for it, kept in waiting:
            selection = selections[it.key]
            season, decided = self._fallback_season(it), self._decided(it, now)
            older = (
                kept is not None
                and kept.model == selection.model
                and kept.fit.exogenous == it.exogenous
                and math.isclose(kept.step_seconds, it.step.total_seconds())
                and kept.season == season
                and kept.h == it.h
                and kept.fitted_at <= decided
            )
            if older:
                assert kept is not None
                self._stale_ok[it.key] = (
                    f"{kept.model} parameters fitted {kept.fitted_at:%Y-%m-%d %H:%M} UTC; refit "
                    f"deferred ({len(waiting)} series waiting, forecast.refits_per_cycle "
                    f"{budget})"
                )
                continue
            selections[it.key] = self._fallback_selection(
                it,
                decided=decided,
                why=f"fit of {selection.model} deferred to a later cycle ({len(waiting)} series "
                f"waiting, forecast.refits_per_cycle {budget})",
            )
            it.exogenous, it.past_x, it.future_x = (), None, None
            fallen_back.add(it.key)
        logger.info("refits: %d due, %d now, %d deferred", len(due), budget, len(waiting))
        return fallen_back

    def _fallback_selection(self, item: _Prepared, *, decided: datetime, why: str) -> Selection:
        """The untrusted seasonal-naive stand-in of a series whose model or fit is not ready."""
        return Selection(
            model=BASELINE,
            trusted=False,
            reason=f"{why}; seasonal-naive baseline until then",
            scores={},
            selected_at=decided,
            step_seconds=item.step.total_seconds(),
            season=item.season,
            candidates=tuple(self.settings.models),
        )

    def _restore(self, item: _Prepared) -> _Kept | None:
        """The series' fit from the cache directory, once per process, if made on this data."""
        if item.key in self._looked_up:
            return None
        self._looked_up.add(item.key)
        kept = self.fit_store.load(*item.key, values=item.values)
        if not isinstance(kept, _Kept):
            return None
        # A fit written before fits were kept lean still carries its in-sample arrays.
        lean_fit(kept.fit)
        self._kept[item.key] = kept
        self.restored += 1
        return kept

    @staticmethod
    def _decided(item: _Prepared, now: datetime | None) -> datetime:
        """The decision time: ``now``, else the series' last observation."""
        return _utc(now) if now is not None else item.issued

    def _output_step(self, data_step: timedelta, horizon: timedelta) -> timedelta:
        wanted = self.settings.step
        if wanted is None:
            wanted = data_step
            if horizon / data_step > _MAX_POINTS:
                wanted = next(
                    (s for s in _COARSE_STEPS if s >= data_step and horizon / s <= _MAX_POINTS),
                    _COARSE_STEPS[-1],
                )
        if wanted < data_step:
            # Finer than the data cannot be forecast honestly; the data's own step it is.
            return data_step
        # Coarser steps must be whole multiples of the data step to aggregate cleanly.
        return data_step * max(1, round(wanted / data_step))

    def _prepare(
        self,
        raw: pd.Series,
        *,
        key: tuple[str, str],
        name: str,
        spec: MetricSpec,
        now: datetime | None,
        horizon: timedelta,
        unit: str | None = None,
    ) -> _Prepared:
        cleaned = clean_series(raw, name=name, counter=spec.counter, end=now, unit=unit)
        repairs = list(cleaned.repairs)
        # Plain arrays until the end: this runs for every series every cycle.
        y = cleaned.values.to_numpy(dtype=float)
        index = cleaned.values.index
        # Wrapped again only when it is not a DatetimeIndex already (a tenth of a millisecond,
        # per series, every cycle).
        if not isinstance(index, pd.DatetimeIndex):
            index = pd.DatetimeIndex(index)
        stamps = index.as_unit("ns").asi8
        whole = len(y)
        # Only the configured history length is used: older data costs time and describes a
        # workload that may no longer exist.
        first = int(
            np.searchsorted(
                stamps, stamps[-1] - pd.Timedelta(self.settings.history).value, side="right"
            )
        )
        y, stamps = y[first:], stamps[first:]
        step = self._output_step(cleaned.step, horizon)
        if step != cleaned.step:
            y, stamps = _average_onto(
                y,
                stamps,
                ratio=round(step / cleaned.step),
                step_ns=pd.Timedelta(cleaned.step).value,
            )
            repairs.append(
                Repair("resampled", len(y), f"averaged onto a {step} grid for a {horizon} horizon")
            )
        # Trailing gaps would make the forecast start before the data ends; trim to the last value.
        valid = ~np.isnan(y)
        last = int(np.flatnonzero(valid)[-1]) + 1 if valid.any() else 0
        y, stamps = y[:last], stamps[:last]
        if int(valid.sum()) < 3:
            raise UnusableSeriesError(
                name, "fewer than 3 observations remain in the history window"
            )
        if first == 0 and last == whole and step == cleaned.step:
            # The cleaned series is the window already (a source returning forecast.history
            # of data on the grid, the usual case): no second index of the same times.
            values = cleaned.values
        elif step == cleaned.step and index.unit == "ns" and str(index.tz) == "UTC":
            # The window cut from the cleaned index (a view), not a new index localized again
            # (a source's 14 days hold one point more than the window: the usual case).
            values = pd.Series(y, index=index[first : first + last].rename(None), name=name)
        else:
            values = pd.Series(
                y,
                index=pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC"),
                name=name,
            )
        h = max(1, math.ceil(horizon / step))
        per_day = _DAY / step
        season = round(per_day) if per_day >= 2 and float(per_day).is_integer() else 1
        if step >= _DAY:
            season = 7
        n = len(values)
        reason: str | None = None
        needed = 2 * season + (self.cv_windows + 1) * h
        # Say it in the config's words (forecast.history, forecast.horizon) and in time, not
        # only in grid steps: the person fixing it edits durations.
        if season > 1 and n < needed:
            reason = (
                f"history of {n} steps is too short to learn a seasonal cycle of {season} steps "
                f"(needs {needed}); using the seasonal-naive baseline. With a {_words(horizon)} "
                f"horizon the series is forecast on a {_words(step)} grid, so forecast.history "
                f"needs at least {_words(step * needed)} of data (has {_words(step * n)}), or "
                "shorten forecast.horizon"
            )
        elif n < (self.cv_windows + 2) * h:
            reason = (
                f"history of {n} steps is too short for cross-validation at horizon {h}: "
                f"forecast.history needs at least {_words(step * (self.cv_windows + 2) * h)} "
                f"of data (has {_words(step * n)})"
            )
        filled, repair = fill_for_fit(values, season=season)
        if repair is not None:
            repairs.append(repair)
        caveat: str | None = None
        if reason is None and season > 1:
            strength = self._strength(key, filled, season=season, now=now)
            if strength < self.min_seasonal_strength:
                # Nothing periodic to learn: the best a model can do is track the level. Such
                # a forecast is still chosen by CV (a smoothed level beats the last point on
                # noisy series) but is marked untrusted, so the rules react instead of predict.
                caveat = (
                    f"no seasonality to learn (daily cycle strength {strength:.2f} < "
                    f"{self.min_seasonal_strength}); the forecast only extrapolates the current "
                    "level, so react to it instead of trusting a prediction"
                )
                season = 1
        return _Prepared(key, name, values, filled, step, season, h, repairs, reason, caveat)

    def _strength(
        self, key: tuple[str, str], filled: pd.Series, *, season: int, now: datetime | None
    ) -> float:
        """The series' daily-cycle strength, measured again once per ``reselect_every``.

        Whether a series has a cycle to learn is part of the model choice and is re-judged on
        the choice's schedule: a week of history barely changes in a cycle, and measuring it
        every cycle cost about 0.6 ms a series.
        """
        decided = _utc(now) if now is not None else filled.index[-1].to_pydatetime()
        known = self._strengths.get(key)
        if (
            known is not None
            and known[1] == season
            and known[0] <= decided < known[0] + self.settings.reselect_every
        ):
            return known[2]
        strength = seasonal_strength(filled.to_numpy(), season=season)
        self._strengths[key] = (decided, season, strength)
        return strength

    def _profiled(
        self,
        prepared: list[_Prepared],
        selections: dict[tuple[str, str], Selection],
        *,
        now: datetime | None,
    ) -> tuple[
        dict[tuple[str, str], tuple[dict[str, np.ndarray], Selection, str]],
        dict[tuple[str, str], tuple[dict[str, np.ndarray], str]],
    ]:
        """Untrusted series whose same-hour profile earned trust: its forecast columns instead.

        ``forecast.untrusted_profile``: where no model is trusted, the profile of the same step
        over the last days (AWS's scheduled predictive mechanism, ``seasonal_profile``) becomes
        the forecast when a floor at it beat reactive at the same cost on the series' own
        history (:func:`replay_profile_floor`); otherwise the series stays untrusted and the
        rules react, and its entry in ``selections`` is replaced by one whose reason also says
        why the profile was not used. The forecast says which was used and why.

        Trusted series whose profile earned trust the same way (``blend_trusted``) are returned
        apart, with the profile's columns for their model's forecast to be averaged with.
        """
        settings = self.settings.untrusted_profile
        found: dict[tuple[str, str], tuple[dict[str, np.ndarray], Selection, str]] = {}
        blends: dict[tuple[str, str], tuple[dict[str, np.ndarray], str]] = {}
        if not settings.enabled:
            return found, blends
        for item in prepared:
            selection = selections[item.key]
            season = _daily_season(item.step)
            # Only where the models were scored: a series waiting for its selection
            # (forecast.selections_per_cycle) or too short to select on is not known to have
            # untrusted models, and keeps the baseline. (The refit budget comes after this: a
            # series the profile forecasts needs no fit.)
            judged = bool(selection.scores)
            if not judged or season < 2 or len(item.filled) < 3 * season:
                continue
            if selection.trusted and not settings.blend_trusted:
                continue
            y = item.filled.to_numpy(dtype=float)
            verdict = self._profile_verdict(item, y, season=season, now=now)
            earned = verdict.earns_trust(max_ratio=settings.max_ratio, min_short=settings.min_short)
            if selection.trusted:
                # The profile knows no events: averaged with a model that takes an event in
                # the horizon as a regressor, it would halve the effect the model learned.
                event_ahead = item.future_x is not None and bool(np.any(item.future_x))
                if earned and not event_ahead:
                    # Measured on every shared trace (docs/backtest.md): where a trusted model
                    # alone was behind AWS's profile at the same money (tweet volumes, NASA) the
                    # average of the two was ahead; the calibration then scores the average.
                    blends[item.key] = (
                        profile_forecast(y, h=item.h, season=season, levels=self.levels),
                        f"averaged with the same-hour profile (forecast.untrusted_profile."
                        f"blend_trusted), which earned trust on this series' history: "
                        f"{verdict.describe()} (ratio {verdict.ratio:.2f} <= "
                        f"forecast.untrusted_profile.max_ratio {settings.max_ratio:g})",
                    )
                continue
            if not earned:
                # The explanation says the profile was weighed too, and why it was not used.
                selections[item.key] = replace(
                    selection,
                    reason=f"{selection.reason or 'untrusted'}; the same-hour profile was not "
                    f"used either: {verdict.describe()} (needs a ratio <= "
                    f"{settings.max_ratio:g} on >= {settings.min_short} reactive short steps)",
                )
                continue
            columns = profile_forecast(y, h=item.h, season=season, levels=self.levels)
            # The profile takes no event regressors: events attached for the untrusted model
            # get their learned or configured uplift in _result instead.
            item.exogenous, item.past_x, item.future_x = (), None, None
            frame = {PROFILE if k == "mean" else f"{PROFILE}-{k}": v for k, v in columns.items()}
            note = (
                f"models untrusted ({selection.reason or 'no model beat the baseline'}); "
                f"forecast by the same-hour profile, which earned trust on this series' history: "
                f"{verdict.describe()} (ratio {verdict.ratio:.2f} <= "
                f"forecast.untrusted_profile.max_ratio {settings.max_ratio:g})"
            )
            found[item.key] = (
                frame,
                replace(selection, model=PROFILE, trusted=True, reason=None),
                note,
            )
        return found, blends

    def _profile_verdict(
        self, item: _Prepared, y: np.ndarray, *, season: int, now: datetime | None
    ) -> ProfileReplay:
        """The profile's replay on ``item``'s history, judged again once per ``reselect_every``.

        Like the choice of a model, whether the profile pays is a property of days of history,
        not of the newest step.
        """
        decided = _utc(now) if now is not None else item.issued
        known = self._profile_verdicts.get(item.key)
        if known is not None and known[0] <= decided < known[0] + self.settings.reselect_every:
            return known[1]
        lag = max(1, round(_PROFILE_LAG / item.step))
        verdict = replay_profile_floor(y, season=season, lag=lag)
        self._profile_verdicts[item.key] = (decided, verdict)
        return verdict

    @staticmethod
    def _fallback_season(item: _Prepared) -> int:
        # A series without a learnable cycle (or too short for one) falls back to the last value
        # (seasonal naive of period 1), not to "same time yesterday", which would replay noise.
        return 1 if item.reason is not None else item.season

    def _selections(
        self, prepared: list[_Prepared], *, now: datetime | None
    ) -> dict[tuple[str, str], Selection]:
        candidates = tuple(self.settings.models)
        chosen: dict[tuple[str, str], Selection] = {}
        stale: dict[tuple[float, int, int], list[_Prepared]] = defaultdict(list)
        previous: dict[tuple[str, str], Selection] = {}  # out of date, usable while waiting
        for item in prepared:
            decided = _utc(now) if now is not None else item.issued
            if item.reason is not None:
                chosen[item.key] = Selection(
                    model=BASELINE,
                    trusted=False,
                    reason=item.reason,
                    scores={},
                    selected_at=decided,
                    step_seconds=item.step.total_seconds(),
                    season=item.season,
                    candidates=candidates,
                )
                continue
            cached = self.store.load(*item.key)
            if cached is not None and cached.fresh(
                now=decided,
                every=self.settings.reselect_every,
                step=item.step,
                season=item.season,
                candidates=candidates,
                values=item.values,
            ):
                chosen[item.key] = cached
                continue
            if cached is not None and cached.fresh(
                now=decided,
                every=timedelta.max,
                step=item.step,
                season=item.season,
                candidates=candidates,
                values=item.values,
            ):
                previous[item.key] = cached  # only its age is against it
            stale[(item.step.total_seconds(), item.season, item.h)].append(item)
        self.deferred_selections = 0
        budget = self.settings.selections_per_cycle
        waiting = [it for items in stale.values() for it in items]
        if budget is not None and len(waiting) > budget:
            # Series without any choice first (they are on the fallback), then the oldest.
            epoch = datetime.min.replace(tzinfo=UTC)
            waiting.sort(
                key=lambda it: (
                    it.key in previous,
                    previous[it.key].selected_at if it.key in previous else epoch,
                    it.name,
                )
            )
            later = waiting[budget:]
            self.deferred_selections = len(later)
            for it in later:
                decided = _utc(now) if now is not None else it.issued
                chosen[it.key] = previous.get(it.key) or self._fallback_selection(
                    it,
                    decided=decided,
                    why=f"model selection deferred to a later cycle ({len(later)} series "
                    f"waiting, forecast.selections_per_cycle {budget})",
                )
            deferred = {it.key for it in later}
            stale = {
                group: kept
                for group, items in stale.items()
                if (kept := [it for it in items if it.key not in deferred])
            }
            logger.info(
                "model selection: %d due, %d now, %d deferred", len(waiting), budget, len(later)
            )
        self.selections_run += sum(len(items) for items in stale.values())
        for (step_seconds, season, h), items in stale.items():
            decided = _utc(now) if now is not None else max(i.issued for i in items)

            def df_of(chunk: list[_Prepared]) -> pd.DataFrame:
                return pd.concat(
                    [
                        pd.DataFrame(
                            {
                                "unique_id": it.name,
                                "ds": it.filled.index.tz_localize(None),
                                "y": it.filled.to_numpy(),
                            }
                        )
                        for it in chunk
                    ],
                    ignore_index=True,
                )

            step = timedelta(seconds=step_seconds)
            history_steps = int(self.settings.history / step)
            arguments = {
                "candidates": candidates,
                "h": h,
                "freq": freq_of(step),
                "season": season,
                "levels": self.levels,
                "n_windows": self.cv_windows,
                "now": decided,
                "step": step,
                "options": self.options,
                "input_size": history_steps,
                "tolerance": self.tolerance,
                "update_kept_fits": not self.cv_refit_every_origin,
            }
            chunks = chunked(items, parallelism=self._parallelism(len(items), selecting=True))
            logger.info(
                "selecting models for %d series (step %s) in %d task(s) on %s",
                len(items),
                step,
                len(chunks),
                self._work_pool().name,
            )
            found: dict[str, Selection] = {}
            # Each chunk runs select_models exactly as one batch would: choices are per series.
            for part in self._map(_select_task, [(df_of(c), arguments) for c in chunks]):
                found.update(part)
            for it in items:
                selection = replace(found[it.name], anchor=anchor_of(it.values))
                if now is None:
                    # Each series' own clock: its last observation is its decision time.
                    own = it.issued
                    selection = replace(selection, selected_at=own)
                if it.caveat is not None:
                    selection = replace(selection, trusted=False, reason=it.caveat)
                chosen[it.key] = selection
                self.store.save(*it.key, selection)
        return chosen

    def _result(
        self,
        item: _Prepared,
        frame: Mapping[str, np.ndarray],
        selection: Selection,
        events: EventSchedule | None,
    ) -> Forecast:
        mean, quantiles = quantiles_from_frame(
            frame, model=selection.model, quantiles=self.quantiles
        )
        issued = item.issued
        notes: list[str] = []
        if events is not None and len(events) > 0:
            factor, notes = self._event_factor(item, item.future_index(), events)
            if notes:
                mean = mean * factor
                quantiles = {q: v * factor for q, v in quantiles.items()}
            if item.past_x is not None and item.future_x is not None:
                for position, column in enumerate(item.exogenous):
                    if item.future_x[:, position].any():
                        seen = int(item.past_x[:, position].sum())
                        notes.append(
                            f"event {column.removeprefix('event_')}: exogenous regressor of "
                            f"{selection.model}, learned from {seen} past steps"
                        )
        if item.key in self._stale_ok:
            notes.append(self._stale_ok[item.key])
        reason = selection.reason if not selection.trusted else None
        accuracy = dict(selection.scores.get(selection.model, {}))
        return Forecast(
            pool=item.key[0],
            metric=item.key[1],
            issued_at=issued,
            step=item.step,
            # What ``future_index`` holds, by datetime arithmetic: a DatetimeIndex of a dozen
            # points and its conversion back cost more than the rest of the record.
            times=[issued + item.step * (k + 1) for k in range(item.h)],
            mean=np.asarray(mean, dtype=float),
            quantiles={q: np.asarray(v, dtype=float) for q, v in quantiles.items()},
            model=selection.model,
            trusted=selection.trusted,
            reason=reason,
            accuracy=accuracy,
            repairs=tuple(item.repairs),
            adjustments=tuple(notes),
        )

    def _event_factor(
        self, item: _Prepared, future: pd.DatetimeIndex, events: EventSchedule
    ) -> tuple[np.ndarray, list[str]]:
        """Multiplicative factor per forecast point for events in the horizon.

        A kind seen in the history gets the uplift it actually caused (mean during past
        occurrences over the same slot one season earlier, or over the non-event median); a kind
        never seen gets its configured uplift.
        """
        factor = np.ones(len(future))
        notes: list[str] = []
        ahead = events.regressors(future)
        if ahead.empty:
            return factor, notes
        past = events.regressors(pd.DatetimeIndex(item.values.index))
        configured = events.uplift(future)
        y = item.values.to_numpy(dtype=float)
        for column in ahead.columns:
            active = ahead[column].to_numpy() > 0
            if not active.any() or column in item.exogenous:
                # A kind the model took as a regressor is already in its forecast: applying
                # an uplift on top would count the event twice.
                continue
            kind = column.removeprefix("event_")
            seen = past[column].to_numpy() > 0 if column in past.columns else np.zeros(len(y), bool)
            learned: float | None = None
            if seen.sum() >= 2:
                if item.season > 1 and len(y) > item.season:
                    before = np.roll(y, item.season)
                    usable = seen.copy()
                    usable[: item.season] = False
                    usable &= ~np.roll(seen, item.season)
                    base = np.nanmean(before[usable]) if usable.any() else np.nan
                else:
                    base = np.nanmedian(y[~seen])
                during = np.nanmean(y[seen])
                if np.isfinite(base) and base > 0 and np.isfinite(during):
                    learned = float(np.clip(during / base, 0.1, 10.0))
            if learned is not None:
                factor[active] = np.fmax(factor[active], learned) if learned >= 1 else learned
                notes.append(f"event {kind}: learned uplift x{learned:.2f} from past occurrences")
            else:
                factor[active] = configured[active]
                notes.append(
                    f"event {kind}: configured uplift x{float(np.max(configured[active])):.2f} (no past occurrence)"
                )
        return factor, notes


def _blended(
    columns: Mapping[str, np.ndarray], profile: Mapping[str, np.ndarray], *, model: str
) -> dict[str, np.ndarray]:
    """``model``'s forecast columns averaged, column by column, with the profile's.

    The mean with the profile's mean and each ``model-lo-L``/``model-hi-L`` with the profile's
    ``lo-L``/``hi-L`` (an equal-weight average of the members' quantiles); other columns as
    they are.
    """
    out = dict(columns)
    for name, values in columns.items():
        if name == model:
            theirs = profile["mean"]
        elif name.startswith(f"{model}-"):
            theirs = profile[name.removeprefix(f"{model}-")]
        else:
            continue
        out[name] = 0.5 * (np.asarray(values, dtype=float) + np.asarray(theirs, dtype=float))
    return out


def _daily_season(step: timedelta) -> int:
    """Steps per day on a grid of ``step`` (1 when a day is not a whole number of steps)."""
    per_day = _DAY / step
    return round(per_day) if per_day >= 2 and float(per_day).is_integer() else 1


def _words(value: timedelta) -> str:
    """A duration as stack config writes it, rounded up to whole hours or days past a day."""
    seconds = value.total_seconds()
    if seconds > 86400 and seconds % 86400:
        return f"{math.ceil(seconds / 86400)}d"
    if seconds > 3600 and seconds % 3600:
        return f"{math.ceil(seconds / 3600)}h"
    return format_duration(value)
