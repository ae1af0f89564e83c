"""The machine-learning family: one LightGBM model over all series, through mlforecast.

Features are lags (recent steps and the same time one season ago), a rolling mean and calendar
features; the target is differenced so the trees learn changes, not levels they never saw.
Quantiles come from conformal intervals over past windows (mlforecast ``PredictionIntervals``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from forecasting.errors import ModelUnavailableError
from forecasting.models._options import ModelOptions
from forecasting.models.records import ModelRecord

__all__ = ["EXOGENOUS", "NAMES", "RECORDS", "cross_validate", "forecast"]

logger = logging.getLogger(__name__)

RECORDS: tuple[ModelRecord, ...] = (ModelRecord("lightgbm", "ml", 5, exogenous=True),)
"""This family's models (forecasting.models.records); one mlforecast forecaster runs them all."""

NAMES: tuple[str, ...] = tuple(r.name for r in RECORDS)
"""Model names this family provides."""

EXOGENOUS: frozenset[str] = frozenset(r.name for r in RECORDS if r.exogenous)
"""Models of this family that take exogenous features (e.g. event indicators)."""


def _forecaster(*, h: int, freq: str, season: int, options: ModelOptions, shortest: int) -> Any:
    try:
        from lightgbm import LGBMRegressor
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean
        from mlforecast.target_transforms import Differences
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ModelUnavailableError(
            "lightgbm", f"needs the 'ml' extra (pip install 'mirrorcast[ml]'): {exc}"
        ) from exc
    lags = [1, 2, 3, 6, h]
    # The seasonal lag only where several seasons of rows remain after building features.
    if season > h and shortest > 3 * season:
        lags.append(season)
    step_seconds = pd.Timedelta(freq).total_seconds()
    date_features = ["hour", "dayofweek"] if step_seconds < 86400 else ["dayofweek"]
    model = LGBMRegressor(
        n_estimators=options.lightgbm_estimators,
        learning_rate=0.05,
        num_leaves=31,
        random_state=options.seed,
        n_jobs=1,
        verbosity=-1,
    )
    return MLForecast(
        models={"lightgbm": model},
        freq=freq,
        lags=sorted(set(lags)),
        lag_transforms={1: [RollingMean(window_size=max(3, h))]},
        date_features=date_features,
        target_transforms=[Differences([1])],
    )


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
    """Fit LightGBM on every series of ``df`` at once and forecast ``h`` steps.

    Parameters as :func:`forecasting.models.statistical.forecast`; columns of ``df`` besides
    ``unique_id, ds, y`` are exogenous features that change over time (event indicators).

    :param future: default ``None``; ``unique_id, ds`` and the exogenous columns over the
        horizon (required when ``df`` has exogenous columns).
    """
    from mlforecast.utils import PredictionIntervals

    exogenous = [c for c in df.columns if c not in ("unique_id", "ds", "y")]
    if exogenous and future is None:
        raise ValueError(f"exogenous columns {exogenous} given without their future values")
    shortest = int(df.groupby("unique_id").size().min())
    fc = _forecaster(h=h, freq=freq, season=season, options=options, shortest=shortest)
    # static_features=[]: every extra column varies over time and is read from X_df ahead.
    fc.fit(
        df,
        static_features=[],
        prediction_intervals=PredictionIntervals(n_windows=options.conformal_windows, h=h),
    )
    out: pd.DataFrame = fc.predict(h, level=list(levels), X_df=future if exogenous else None)
    return out


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
    """Rolling-origin cross-validation of LightGBM (refit at each origin).

    Parameters as :func:`forecasting.models.statistical.cross_validate`.
    """
    from mlforecast.utils import PredictionIntervals

    shortest = int(df.groupby("unique_id").size().min()) - n_windows * h
    fc = _forecaster(h=h, freq=freq, season=season, options=options, shortest=shortest)
    out: pd.DataFrame = fc.cross_validation(
        df,
        n_windows=n_windows,
        h=h,
        step_size=h,
        level=list(levels),
        prediction_intervals=PredictionIntervals(n_windows=options.conformal_windows, h=h),
        input_size=input_size,
    )
    return out
