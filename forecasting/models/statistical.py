"""The statsforecast family: the baseline, exponential smoothing, ARIMA, MSTL, Theta.

All of these are fitted per series but run for many series in one batched call
(``StatsForecast`` with numba-compiled kernels), which is what makes the production path fast.
Models without native prediction intervals get conformal intervals from their own past errors.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasting.models._imports import import_statsforecast
from forecasting.models._intervals import cache_normal_quantiles
from forecasting.models._options import ModelOptions
from forecasting.models.profile import SeasonalProfile
from forecasting.models.records import BuildContext, ModelRecord

__all__ = [
    "EXOGENOUS",
    "NAMES",
    "PARAMETER_FREE",
    "RECORDS",
    "REUSABLE",
    "FittedSeries",
    "cross_validate",
    "cross_validate_updating",
    "fit",
    "fit_each",
    "forecast",
    "forecast_each",
    "forward",
    "forward_columns",
    "lean",
    "stl_jumps",
]

logger = logging.getLogger(__name__)


def _theta_record(name: str, *, model: str) -> ModelRecord:
    """The record of one Theta variant: statsforecast class ``model``, additive, on the season.

    The three Theta models differ only in the statsforecast class; their tier, reusability and
    arguments (additive decomposition over the daily season, aliased by name) must stay alike.
    """
    return ModelRecord(
        name,
        "statistical",
        3,
        lambda sf, c: getattr(sf, model)(
            season_length=c.season, decomposition_type="additive", alias=name
        ),
        reusable=True,
    )


RECORDS: tuple[ModelRecord, ...] = (
    ModelRecord(
        "seasonal_naive",
        "statistical",
        0,
        lambda sf, c: sf.SeasonalNaive(season_length=c.season, alias="seasonal_naive"),
        reusable=True,
        parameter_free=True,
    ),
    ModelRecord(
        "naive",
        "statistical",
        0,
        lambda sf, c: sf.Naive(alias="naive"),
        reusable=True,
        parameter_free=True,
    ),
    ModelRecord(
        "ses",
        "statistical",
        1,
        lambda sf, c: sf.SimpleExponentialSmoothingOptimized(
            alias="ses", prediction_intervals=c.conformal
        ),
    ),
    ModelRecord(
        "seasonal_window_average",
        "statistical",
        1,
        lambda sf, c: sf.SeasonalWindowAverage(
            season_length=c.season,
            window_size=2,
            alias="seasonal_window_average",
            prediction_intervals=c.conformal,
        ),
    ),
    ModelRecord(
        "seasonal_profile",
        "statistical",
        1,
        # What AWS predictive scaling forecasts from: the same step of the last 7 days, blended
        # with the same step of the week once two weeks exist (forecasting/models/profile.py).
        lambda sf, c: SeasonalProfile(c.season, alias="seasonal_profile"),
        reusable=True,
        parameter_free=True,
    ),
    ModelRecord(
        "auto_ets",
        "statistical",
        2,
        lambda sf, c: sf.AutoETS(season_length=c.small_season, alias="auto_ets"),
        reusable=True,
    ),
    ModelRecord(
        "auto_arima",
        "statistical",
        4,
        lambda sf, c: sf.AutoARIMA(season_length=c.small_season, alias="auto_arima"),
        reusable=True,
        exogenous=True,
    ),
    ModelRecord(
        "mstl",
        "statistical",
        4,
        lambda sf, c: sf.MSTL(season_length=[c.season], alias="mstl", stl_kwargs=c.stl_kwargs),
        reusable=True,
        needs_season=True,
    ),
    ModelRecord(
        "prophet_like",
        "statistical",
        4,
        # Prophet's shape: an additive trend plus daily and (with two weeks of data) weekly
        # seasonality; here as an MSTL decomposition with an additive-trend ETS on the trend.
        lambda sf, c: sf.MSTL(
            season_length=[c.season, 7 * c.season] if c.weekly else [c.season],
            trend_forecaster=sf.AutoETS(model="ZAN"),
            alias="prophet_like",
            stl_kwargs=c.stl_kwargs,
        ),
        reusable=True,
        needs_season=True,
    ),
    _theta_record("theta", model="Theta"),
    _theta_record("optimized_theta", model="OptimizedTheta"),
    _theta_record("dynamic_optimized_theta", model="DynamicOptimizedTheta"),
)
"""This family's models (forecasting.models.records): the conformal-interval models (``ses``,
``seasonal_window_average``) are not reusable: their intervals come from refitting on past
windows, so reusing them would save nothing."""

NAMES: tuple[str, ...] = tuple(r.name for r in RECORDS)
"""Model names this family provides, as written in ``forecast.models`` of a stack."""

# ETS and ARIMA estimate one parameter per season slot; beyond a day of hourly points that is
# neither feasible nor sensible, so for finer data they model level/trend and MSTL/Theta model
# the daily cycle.
_MAX_ETS_SEASON = 24


_MSTL_FIRST_WINDOW = 11
"""Seasonal smoothing window of the first (shortest) period in statsforecast's ``mstl``."""


def stl_jumps(period: int, *, options: ModelOptions) -> dict[str, int]:
    """STL keyword arguments for MSTL: R ``stats::stl``'s loess jumps, or none.

    R's ``stl`` (which ``forecast::mstl``, the model statsforecast ports, calls) evaluates the
    trend and low-pass loess smoothers at every ``ceiling(window / 10)``-th point and
    interpolates between them; statsmodels' STL defaults to every point. On a week of 5-minute
    data (period 288: windows 501 and 289) that is 0.36 s against 0.03 s per decomposition for
    seasonal and trend components within 0.5% of each other: MSTL's decomposition was most of a
    re-selection's time. The seasonal smoother keeps a jump of 1 (it is cheap, and R's jump of 2
    moved the seasonal shape by 4%). The last point is always evaluated exactly, so the trend a
    forecast starts from is not interpolated.

    :param period: the shortest season length in steps (its windows size the jumps; longer
        periods have longer windows, for which these jumps are finer than R's).
    :param options: ``options.loess_jumps`` (default ``True``); ``False`` gives ``{}``, i.e.
        statsmodels' every-point smoothing as statsforecast ships it.
    """
    if not options.loess_jumps or period < 2:
        return {}
    seasonal = _MSTL_FIRST_WINDOW
    # statsmodels' STL defaults for the trend and low-pass windows (both made odd).
    trend = math.ceil(1.5 * period / (1 - 1.5 / seasonal))
    trend += trend % 2 == 0
    low_pass = period + 1
    low_pass += low_pass % 2 == 0
    return {
        "trend_jump": math.ceil(trend / 10),
        "low_pass_jump": math.ceil(low_pass / 10),
    }


def _statsforecast() -> None:
    """statsforecast imported (:func:`import_statsforecast`), its interval multipliers kept
    per set of levels (:mod:`forecasting.models._intervals`)."""
    import_statsforecast()
    cache_normal_quantiles()


def _build(name: str, *, season: int, h: int, weekly: bool, options: ModelOptions) -> Any:
    _statsforecast()
    import statsforecast.models as sf
    from statsforecast.utils import ConformalIntervals

    m = max(season, 1)
    context = BuildContext(
        season=m,
        small_season=m if m <= _MAX_ETS_SEASON else 1,
        weekly=weekly,
        conformal=ConformalIntervals(h=h, n_windows=options.conformal_windows),
        stl_kwargs=stl_jumps(m, options=options),
    )
    build = _BY_NAME[name].build
    assert build is not None, "every statsforecast record has a build"
    return build(sf, context)


def _weekly(df: pd.DataFrame, season: int) -> bool:
    shortest = int(df.groupby("unique_id").size().min())
    return season > 1 and shortest >= 14 * season


def forecast(
    df: pd.DataFrame,
    *,
    models: Sequence[str],
    h: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions,
    future: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Forecast ``h`` steps of every series in ``df`` with every model in ``models``.

    :param df: long frame ``unique_id, ds, y`` (gap-free, regular at ``freq``).
    :param models: names from :data:`NAMES`.
    :param h: steps ahead.
    :param freq: pandas frequency of the grid, e.g. ``"300s"``.
    :param season: season length in steps (``1``: none).
    :param levels: interval levels to produce.
    :param options: conformal windows.
    :param future: default ``None``; exogenous values over the horizon (``unique_id, ds`` and
        the extra columns of ``df``), for :data:`EXOGENOUS` models.
    :returns: ``unique_id, ds, <model>, <model>-lo-L, <model>-hi-L``.
    """
    _statsforecast()
    from statsforecast import StatsForecast

    weekly = _weekly(df, season)
    built = [_build(n, season=season, h=h, weekly=weekly, options=options) for n in models]
    engine = StatsForecast(models=built, freq=freq, n_jobs=1)
    out = engine.forecast(df=df, h=h, level=list(levels), X_df=future)
    return out.reset_index() if "unique_id" not in out.columns else out


def forecast_each(
    series: Mapping[str, np.ndarray],
    *,
    model: str,
    h: int,
    season: int,
    levels: Sequence[int],
    options: ModelOptions,
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`forecast` of one model without exogenous columns, on arrays, series by series.

    What ``StatsForecast.forecast`` does inside (statsforecast 2.1 ``core.GroupedArray.forecast``:
    one model object, its ``forecast(y=..., h=..., X=None, X_future=None, fitted=False,
    level=...)`` per series, float64 kept), without the long frame in and the long frame out:
    for the engine's warm cycle, building, sorting and splitting those frames cost twice the
    forecasts themselves. Same numbers as :func:`forecast` (``tests/forecasting/
    test_warm_path_equivalence.py``).

    :param series: gap-free float64 histories by ``unique_id``, in time order.
    Other parameters as :func:`forecast`.
    :returns: each series' columns (``<model>``, ``<model>-lo-L``, ``<model>-hi-L``).
    """
    if not series:
        return {}
    # As :func:`_weekly` decides it for the whole batch: on the shortest series.
    weekly = season > 1 and min(len(y) for y in series.values()) >= 14 * season
    estimator = _build(model, season=season, h=h, weekly=weekly, options=options)
    level = list(levels)
    return {
        uid: _as_columns(
            estimator.forecast(y=y, h=h, X=None, X_future=None, fitted=False, level=level),
            model,
        )
        for uid, y in series.items()
    }


def cross_validate(
    df: pd.DataFrame,
    *,
    models: Sequence[str],
    h: int,
    n_windows: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions,
    input_size: int | None = None,
) -> pd.DataFrame:
    """Rolling-origin cross-validation: ``n_windows`` origins ``h`` steps apart, refit at each.

    :param input_size: default ``None`` (all history before each origin); a number caps the
        training window, which bounds the cost of slow models on long histories.
    :returns: ``unique_id, ds, cutoff, y, <model>, <model>-lo-L, <model>-hi-L``.
    """
    _statsforecast()
    from statsforecast import StatsForecast

    weekly = _weekly(df, season) and input_size is None
    built = [_build(n, season=season, h=h, weekly=weekly, options=options) for n in models]
    engine = StatsForecast(models=built, freq=freq, n_jobs=1)
    out = engine.cross_validation(
        df=df, h=h, n_windows=n_windows, step_size=h, level=list(levels), input_size=input_size
    )
    return out.reset_index() if "unique_id" not in out.columns else out


_BY_NAME = {r.name: r for r in RECORDS}

REUSABLE: frozenset[str] = frozenset(r.name for r in RECORDS if r.reusable)
"""Models whose fitted parameters can be applied to newer data (statsforecast ``forward``)."""

PARAMETER_FREE: frozenset[str] = frozenset(r.name for r in RECORDS if r.parameter_free)
"""Models that fit no parameters: a kept fit and a refit forecast alike."""

EXOGENOUS: frozenset[str] = frozenset(r.name for r in RECORDS if r.exogenous)
"""Models of this family that take exogenous regressors (``X``), e.g. event indicators."""


@dataclass
class FittedSeries:
    """One series' fitted model, kept so later calls can forecast without refitting.

    :param model: the model name.
    :param estimator: the fitted statsforecast model object.
    :param end: time of the last observation it was fitted on (naive UTC).
    :param step: the grid step.
    :param seasonal: for MSTL-type models, one full cycle of the fitted seasonal component
        ending at ``end``; ``None`` otherwise.
    :param exogenous: names of the exogenous columns the model was fitted with.
    """

    model: str
    estimator: Any
    end: pd.Timestamp
    step: pd.Timedelta
    seasonal: np.ndarray | None = None
    exogenous: tuple[str, ...] = ()


_IN_SAMPLE_KEYS = frozenset({"fitted", "residuals", "actual_residuals", "states", "x"})
"""Entries of a fitted statsforecast model's ``model_`` that hold one value per observation
it was fitted on (in-sample fits and residuals, ETS's state matrix, ARIMA's copy of the data),
none of which ``forward`` reads: it runs the kept parameters over the newer history it is
handed (``SeasonalNaive.forward`` and ``Naive.forward`` call ``forecast(y)``,
``AutoETS.forward`` calls ``forward_ets(model_, y)``, ``ARIMA.forward`` ``Arima(x=y,
model=model_)``, statsforecast 2.x). Kept, they were most of a warm series' kept fit (two
weeks at 5 minutes: 32 KB each, up to 128 KB for AutoETS);
``tests/forecasting/test_lean_fits.py`` shows every reusable model's ``forward`` unchanged,
bit for bit, without them."""


def lean(fitted: FittedSeries) -> FittedSeries:
    """``fitted`` without the per-observation arrays its later forecasts never read.

    What the engine keeps between cycles (in memory, and pickled per series on disk) is the
    model's parameters; a fit also carries in-sample arrays as long as its history
    (:data:`_IN_SAMPLE_KEYS`; an MSTL fit its whole decomposition, a frame of four series, of
    which :func:`fit` has already taken the seasonal cycle :func:`forward` uses; the seasonal
    profile the history it was fitted on). Changes the estimator in place and returns it.
    """
    _drop_in_sample(fitted.estimator)
    if fitted.model in ("mstl", "prophet_like"):
        # forward_columns runs the trend model on the deseasonalised history and adds the kept
        # cycle (fitted.seasonal): the decomposition frame is never read after fit().
        fitted.estimator.model_ = None
        _drop_in_sample(fitted.estimator.trend_forecaster)
    if isinstance(fitted.estimator, SeasonalProfile):
        # forward() is handed the newest history every time (predict() then says so).
        vars(fitted.estimator).pop("y_", None)
    return fitted


def _drop_in_sample(estimator: Any) -> None:
    model = getattr(estimator, "model_", None)
    if isinstance(model, dict):
        estimator.model_ = {k: v for k, v in model.items() if k not in _IN_SAMPLE_KEYS}


def _as_columns(result: Mapping[str, np.ndarray], model: str) -> dict[str, np.ndarray]:
    # statsforecast's per-model dict ("mean", "lo-80", ...) -> the frame columns of `forecast`.
    return {
        (model if key == "mean" else f"{model}-{key}"): np.asarray(value, dtype=float)
        for key, value in result.items()
        if key == "mean" or key.startswith(("lo-", "hi-"))
    }


def _frame(
    uid: str, end: pd.Timestamp, step: pd.Timedelta, columns: dict[str, Any]
) -> pd.DataFrame:
    h = len(next(iter(columns.values())))
    ds = pd.date_range(end + step, periods=h, freq=step)
    return pd.DataFrame({"unique_id": uid, "ds": ds, **columns})


_THETA = frozenset({"theta", "optimized_theta", "dynamic_optimized_theta"})


def _forward_theta(
    estimator: Any,
    y: np.ndarray,
    h: int,
    level: list[int],
    *,
    seasonal: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The fitted Theta parameters applied to ``y`` (what ``AutoTheta.forward`` should do).

    statsforecast 2.1's ``AutoTheta.forward`` re-runs ``auto_theta`` without the model's
    decomposition type and distribution, so on the very data it was fitted on it gives other
    forecasts (multiplicative instead of additive seasonality); this passes them through.

    :param seasonal: default ``None``; the fit's additive seasonal component laid over ``y``
        and the steps after it (see :func:`_aligned`). Given, the seasonal test and
        decomposition are not redone (they cost most of an update); the theta model runs on
        the adjusted data exactly as ``auto_theta`` runs it after decomposing.
    """
    _statsforecast()
    from statsforecast.theta import auto_theta, forecast_theta, thetamodel

    fitted = estimator.model_
    par = fitted["par"]
    if seasonal is not None:
        insample, ahead = seasonal
        adjusted = np.asarray(y, dtype=float) - insample
        model = thetamodel(
            y=adjusted,
            m=fitted["m"],
            modeltype=fitted["modeltype"],
            initial_smoothed=par["initial_smoothed"],
            alpha=par["alpha"],
            theta=par["theta"],
            nmse=3,
            distribution=estimator.distribution,
        )
        # As auto_theta leaves a decomposed fit: residuals on the original scale, and the
        # seasonal forecast forecast_theta adds back.
        model["residuals"] = model["residuals"] + insample
        model["decompose"] = True
        model["decomposition_type"] = "additive"
        model["seas_forecast"] = {"mean": ahead}
        frozen: dict[str, Any] = forecast_theta(model, h, level=level)
        return frozen
    model = auto_theta(
        y=np.asarray(y, dtype=float),
        m=fitted["m"],
        model=fitted["modeltype"],
        initial_smoothed=par["initial_smoothed"],
        alpha=par["alpha"],
        theta=par["theta"],
        decomposition_type=estimator.decomposition_type,
        distribution=estimator.distribution,
    )
    result: dict[str, Any] = forecast_theta(model, h, level=level)
    return result


def fit(
    df: pd.DataFrame,
    *,
    model: str,
    h: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions,
    future: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, FittedSeries]]:
    """Fit ``model`` on every series of ``df`` and forecast ``h`` steps, keeping the fits.

    Costs the same as :func:`forecast` (statsforecast also fits series one by one); the kept
    fits let :func:`forward` forecast later data without refitting.

    :param df: long frame ``unique_id, ds, y`` plus, for :data:`EXOGENOUS` models, exogenous
        columns (gap-free, regular at ``freq``).
    :param model: one name from :data:`REUSABLE`.
    :param future: default ``None``; ``unique_id, ds`` and the exogenous columns over the
        horizon (required when ``df`` has exogenous columns).
    Other parameters as :func:`forecast`.
    :returns: the forecast frame (as :func:`forecast`) and the fit per ``unique_id``.
    """
    step = pd.Timedelta(freq)
    exogenous = tuple(c for c in df.columns if c not in ("unique_id", "ds", "y"))
    frames: list[pd.DataFrame] = []
    fits: dict[str, FittedSeries] = {}
    for uid, series in df.groupby("unique_id", sort=False):
        x = series[list(exogenous)].to_numpy(dtype=float) if exogenous else None
        x_future = None
        if exogenous:
            if future is None:
                raise ValueError(f"series {uid}: exogenous columns given without their future")
            ahead = future[future["unique_id"] == uid]
            x_future = ahead[list(exogenous)].to_numpy(dtype=float)[:h]
        end = pd.Timestamp(series["ds"].iloc[-1])
        columns, fits[str(uid)] = _fit_one(
            series["y"].to_numpy(dtype=float),
            model=model,
            end=end,
            step=step,
            h=h,
            season=season,
            levels=levels,
            options=options,
            x=x,
            x_future=x_future,
            exogenous=exogenous,
        )
        frames.append(_frame(str(uid), end, step, columns))
    return pd.concat(frames, ignore_index=True), fits


def fit_each(
    series: Mapping[str, tuple[np.ndarray, pd.Timestamp]],
    *,
    model: str,
    h: int,
    step: pd.Timedelta,
    season: int,
    levels: Sequence[int],
    options: ModelOptions,
) -> dict[str, tuple[dict[str, np.ndarray], FittedSeries]]:
    """:func:`fit` of one model without exogenous columns, on arrays, series by series.

    The same fit and forecast per series as :func:`fit`, without the long frame in and the
    long frame out. At a fleet's cold start every series waits on the parameter-free fallback
    and is fitted here: for 1,000 series, building, splitting and reassembling those frames
    cost 8 s of CPU against 1 s for the fits (``tests/forecasting/test_cycle_budget.py``
    shows the numbers equal to :func:`fit`'s).

    :param series: gap-free float64 histories, in time order, with the time of their last value
        (naive UTC), by ``unique_id``.
    :param step: the grid step.
    Other parameters as :func:`fit`.
    :returns: each series' forecast columns (``<model>``, ``<model>-lo-L``, ...) and its fit.
    """
    return {
        uid: _fit_one(
            y,
            model=model,
            end=end,
            step=step,
            h=h,
            season=season,
            levels=levels,
            options=options,
        )
        for uid, (y, end) in series.items()
    }


def _fit_one(
    y: np.ndarray,
    *,
    model: str,
    end: pd.Timestamp,
    step: pd.Timedelta,
    h: int,
    season: int,
    levels: Sequence[int],
    options: ModelOptions,
    x: np.ndarray | None = None,
    x_future: np.ndarray | None = None,
    exogenous: tuple[str, ...] = (),
) -> tuple[dict[str, np.ndarray], FittedSeries]:
    """One series' fit of ``model`` and its forecast columns (the body of :func:`fit`)."""
    weekly = season > 1 and len(y) >= 14 * season
    estimator = _build(model, season=season, h=h, weekly=weekly, options=options)
    estimator.fit(y=y, X=x)
    result = estimator.predict(h=h, X=x_future, level=list(levels))
    seasonal = None
    decomposed = getattr(estimator, "model_", None)
    if (
        model in _THETA
        and isinstance(decomposed, dict)
        and decomposed.get("decompose", False)
        and decomposed.get("decomposition_type") == "additive"
    ):
        # The next cycle of the fit's seasonal component; the same cycle, seen from the
        # fit's last step (index -1 is that step, 0 the next one).
        seasonal = np.asarray(decomposed["seas_forecast"]["mean"], dtype=float)
    if model in ("mstl", "prophet_like"):
        period = max(np.atleast_1d(estimator.season_length))
        components = estimator.model_.filter(regex="^seasonal")
        seasonal = components.sum(axis=1).to_numpy(dtype=float)[-int(period) :]
    # Only what later forecasts read is kept (lean): the forecast above is made already.
    fitted = lean(FittedSeries(model, estimator, end, step, seasonal, exogenous))
    return _as_columns(result, model), fitted


def forward(
    fitted: FittedSeries,
    y: np.ndarray,
    *,
    uid: str,
    end: pd.Timestamp,
    h: int,
    levels: Sequence[int],
    x: np.ndarray | None = None,
    x_future: np.ndarray | None = None,
) -> pd.DataFrame | None:
    """Forecast ``h`` steps after ``y`` with the parameters fitted earlier (no refit).

    MSTL-type models keep their fitted seasonal shape, aligned by time, and only run their
    trend model forward: re-decomposing every call is what made them cost 300 ms per series.

    :param fitted: the kept fit.
    :param y: the newest gap-free history, ending at ``end``.
    :param uid: the series' ``unique_id`` in the returned frame.
    :param end: time of the last value of ``y`` (naive UTC).
    :param h: steps ahead.
    :param levels: interval levels.
    :param x: default ``None``; exogenous values over ``y`` (models fitted with them).
    :param x_future: default ``None``; exogenous values over the horizon.
    :returns: the frame :func:`forecast` produces for this series, or ``None`` when ``y`` is
        not on the fitted grid (the caller refits).
    """
    columns = forward_columns(fitted, y, end=end, h=h, levels=levels, x=x, x_future=x_future)
    return None if columns is None else _frame(uid, end, fitted.step, columns)


def forward_columns(
    fitted: FittedSeries,
    y: np.ndarray,
    *,
    end: pd.Timestamp,
    h: int,
    levels: Sequence[int],
    x: np.ndarray | None = None,
    x_future: np.ndarray | None = None,
) -> dict[str, np.ndarray] | None:
    """:func:`forward`'s forecast as plain columns (``<model>``, ``<model>-lo-L``, ...).

    The engine's per-cycle path: building a frame for one series' dozen points cost more than
    updating the model. Parameters as :func:`forward`; the forecast's timestamps are the ``h``
    steps after ``end``.
    """
    offset = (end - fitted.end) / fitted.step
    if offset < 0 or not float(offset).is_integer():
        return None
    _statsforecast()  # a kept fit restored from disk imports statsforecast's classes only
    level = list(levels)
    estimator = fitted.estimator
    if fitted.seasonal is None:
        if fitted.model in _THETA:
            result = _forward_theta(estimator, y, h, level)
        else:
            result = estimator.forward(y=y, h=h, X=x, X_future=x_future, level=level)
        return _as_columns(result, fitted.model)
    insample, ahead = _aligned(fitted.seasonal, k=int(offset), n=len(y), h=h)
    if fitted.model in _THETA:
        result = _forward_theta(estimator, y, h, level, seasonal=(insample, ahead))
        return _as_columns(result, fitted.model)
    trend = estimator.trend_forecaster.forward(
        y=y - insample, h=h, X=x, X_future=x_future, level=level
    )
    columns = _as_columns(trend, fitted.model)
    return {name: v + ahead[:h] for name, v in columns.items()}


def _aligned(seasonal: np.ndarray, *, k: int, n: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """A kept seasonal cycle laid over ``n`` values ending ``k`` steps after the fit's end.

    ``seasonal[-1]`` belongs to the fit's last step; returns the values over the history and
    over the next ``max(h, period)`` steps.
    """
    period = len(seasonal)
    # Position i of the history lies k - (n - 1 - i) steps after the fitted end.
    insample = seasonal[(period - 1 + k - (n - 1 - np.arange(n))) % period]
    ahead = seasonal[(period - 1 + k + np.arange(1, max(h, period) + 1)) % period]
    return insample, ahead


def cross_validate_updating(
    df: pd.DataFrame,
    *,
    models: Sequence[str],
    h: int,
    n_windows: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions,
    input_size: int | None = None,
) -> pd.DataFrame:
    """Rolling-origin cross-validation of kept fits: fitted at the first origin, updated after.

    This is how the engine uses these models: it fits once (at a re-selection or every
    ``refit_every``) and between refits applies the kept parameters to each new history
    (:func:`forward`). Scoring the candidates the same way measures the forecasts the engine
    will make, at one fit per candidate and series instead of one per origin (the origins span
    ``n_windows`` horizons, less than a refit interval). No origin sees data after it: the fit
    uses the history before the first origin, each later origin only the history before it.

    Parameters as :func:`cross_validate`; ``models`` must all be in :data:`REUSABLE`, and
    ``input_size`` caps the fitted window (each later origin's window has the same length,
    ending at that origin, as the engine's history window slides).

    :returns: ``unique_id, ds, cutoff, y, <model>, <model>-lo-L, <model>-hi-L``.
    """
    not_kept = [m for m in models if m not in REUSABLE]
    if not_kept:
        raise ValueError(f"models {not_kept} keep no fit to update; cross-validate them refitting")
    holdout = n_windows * h
    series: dict[str, np.ndarray] = {}
    stamps: dict[str, pd.DatetimeIndex] = {}
    lengths: dict[str, int] = {}
    train: list[pd.DataFrame] = []
    for uid, group in df.groupby("unique_id", sort=False):
        y = group["y"].to_numpy(dtype=float)
        if len(y) <= holdout:
            raise ValueError(
                f"series {uid}: {len(y)} points leave nothing to fit before {n_windows} "
                f"windows of {h} steps"
            )
        start = 0 if input_size is None else max(0, len(y) - holdout - input_size)
        series[str(uid)] = y
        stamps[str(uid)] = pd.DatetimeIndex(group["ds"])
        lengths[str(uid)] = len(y) - holdout - start
        train.append(group.iloc[start : len(y) - holdout][["unique_id", "ds", "y"]])
    first = pd.concat(train, ignore_index=True)
    first["unique_id"] = first["unique_id"].astype(str)
    frames: list[pd.DataFrame] = []
    for model in models:
        forecast, fits = fit(
            first, model=model, h=h, freq=freq, season=season, levels=levels, options=options
        )
        per_window: list[pd.DataFrame] = [forecast]
        for uid, fitted in fits.items():
            y, ds, length = series[uid], stamps[uid], lengths[uid]
            for w in range(1, n_windows):
                cut = len(y) - holdout + w * h
                frame = forward(
                    fitted,
                    y[max(0, cut - length) : cut],
                    uid=uid,
                    end=pd.Timestamp(ds[cut - 1]),
                    h=h,
                    levels=levels,
                )
                if frame is None:  # pragma: no cover - the CV grid is the fitted grid
                    raise ValueError(f"series {uid}: origin {ds[cut - 1]} is off the fitted grid")
                per_window.append(frame)
        frames.append(pd.concat(per_window, ignore_index=True))
    out = frames[0]
    for frame in frames[1:]:
        out = out.merge(frame, on=["unique_id", "ds"], how="inner")
    # The actuals and each window's cutoff (the last training timestamp), as statsforecast names them.
    actual = pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": stamps[uid][len(y) - holdout :],
                    "cutoff": np.repeat(
                        stamps[uid][len(y) - holdout - 1 : len(y) - 1 : h].to_numpy(), h
                    ),
                    "y": y[len(y) - holdout :],
                }
            )
            for uid, y in series.items()
        ],
        ignore_index=True,
    )
    return actual.merge(out, on=["unique_id", "ds"], how="inner")
