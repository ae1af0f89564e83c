"""The statsforecast family: the baseline, exponential smoothing, ARIMA, MSTL, Theta.

All of these are fitted per series but run for many series in one batched call
(``StatsForecast`` with numba-compiled kernels), which is what makes the production path fast.
Models without native prediction intervals get conformal intervals from their own past errors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from forecasting.models._options import ModelOptions

__all__ = ["NAMES", "cross_validate", "forecast"]

logger = logging.getLogger(__name__)

NAMES: tuple[str, ...] = (
    "seasonal_naive",
    "naive",
    "ses",
    "seasonal_window_average",
    "auto_ets",
    "auto_arima",
    "mstl",
    "prophet_like",
    "theta",
    "optimized_theta",
    "dynamic_optimized_theta",
)
"""Model names this family provides, as written in ``forecast.models`` of a stack."""

# ETS and ARIMA estimate one parameter per season slot; beyond a day of hourly points that is
# neither feasible nor sensible, so for finer data they model level/trend and MSTL/Theta model
# the daily cycle.
_MAX_ETS_SEASON = 24


def _build(name: str, *, season: int, h: int, weekly: bool, options: ModelOptions) -> Any:
    from statsforecast.models import (
        MSTL,
        AutoARIMA,
        AutoETS,
        DynamicOptimizedTheta,
        Naive,
        OptimizedTheta,
        SeasonalNaive,
        SeasonalWindowAverage,
        SimpleExponentialSmoothingOptimized,
        Theta,
    )
    from statsforecast.utils import ConformalIntervals

    conformal = ConformalIntervals(h=h, n_windows=options.conformal_windows)
    m = max(season, 1)
    small = m if m <= _MAX_ETS_SEASON else 1
    if name == "seasonal_naive":
        return SeasonalNaive(season_length=m, alias=name)
    if name == "naive":
        return Naive(alias=name)
    if name == "ses":
        return SimpleExponentialSmoothingOptimized(alias=name, prediction_intervals=conformal)
    if name == "seasonal_window_average":
        return SeasonalWindowAverage(
            season_length=m, window_size=2, alias=name, prediction_intervals=conformal
        )
    if name == "auto_ets":
        return AutoETS(season_length=small, alias=name)
    if name == "auto_arima":
        return AutoARIMA(season_length=small, alias=name)
    if name == "mstl":
        return MSTL(season_length=[m], alias=name)
    if name == "prophet_like":
        # Prophet's shape: an additive trend plus daily and (with two weeks of data) weekly
        # seasonality; here as an MSTL decomposition with an additive-trend ETS on the trend.
        seasons = [m, 7 * m] if weekly else [m]
        return MSTL(season_length=seasons, trend_forecaster=AutoETS(model="ZAN"), alias=name)
    if name == "theta":
        return Theta(season_length=m, decomposition_type="additive", alias=name)
    if name == "optimized_theta":
        return OptimizedTheta(season_length=m, decomposition_type="additive", alias=name)
    if name == "dynamic_optimized_theta":
        return DynamicOptimizedTheta(season_length=m, decomposition_type="additive", alias=name)
    raise KeyError(name)


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
) -> pd.DataFrame:
    """Forecast ``h`` steps of every series in ``df`` with every model in ``models``.

    :param df: long frame ``unique_id, ds, y`` (gap-free, regular at ``freq``).
    :param models: names from :data:`NAMES`.
    :param h: steps ahead.
    :param freq: pandas frequency of the grid, e.g. ``"300s"``.
    :param season: season length in steps (``1``: none).
    :param levels: interval levels to produce.
    :param options: conformal windows.
    :returns: ``unique_id, ds, <model>, <model>-lo-L, <model>-hi-L``.
    """
    from statsforecast import StatsForecast

    weekly = _weekly(df, season)
    built = [_build(n, season=season, h=h, weekly=weekly, options=options) for n in models]
    engine = StatsForecast(models=built, freq=freq, n_jobs=1)
    out = engine.forecast(df=df, h=h, level=list(levels))
    return out.reset_index() if "unique_id" not in out.columns else out


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
    from statsforecast import StatsForecast

    weekly = _weekly(df, season) and input_size is None
    built = [_build(n, season=season, h=h, weekly=weekly, options=options) for n in models]
    engine = StatsForecast(models=built, freq=freq, n_jobs=1)
    out = engine.cross_validation(
        df=df, h=h, n_windows=n_windows, step_size=h, level=list(levels), input_size=input_size
    )
    return out.reset_index() if "unique_id" not in out.columns else out
