"""Fitted models are kept between calls: later data updates them, refits happen on schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastEngine, ModelOptions
from forecasting.models import statistical
from infra.config import ForecastSettings

STEP = timedelta(minutes=5)


def _engine(model: str, *, refit_every: str = "6h") -> ForecastEngine:
    # One candidate besides the baseline, so the chosen model is known when it is trusted.
    settings = ForecastSettings.model_validate(
        {"models": ["seasonal_naive", model], "refit_every": refit_every}
    )
    return ForecastEngine(settings)


@pytest.fixture(scope="module")
def nasa_5min(data_dir: Path) -> pd.Series:
    """4 days of real web requests per 5 minutes with a daily cycle that models can learn."""
    frame = pd.read_csv(data_dir / "nasa_http_5min_excerpt.csv")
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_local_minus0400"]))
    return pd.Series(frame["requests"].to_numpy(dtype=float), index=index)


def _at(series: pd.Series, position: int) -> datetime:
    return series.index[position].to_pydatetime().replace(tzinfo=UTC)


@pytest.mark.parametrize("model", ["auto_ets", "mstl", "theta"])
def test_a_later_cycle_updates_the_kept_model_instead_of_refitting(
    nasa_5min: pd.Series, model: str
) -> None:
    engine = _engine(model)
    first = engine.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1100))
    assert first.model == model and first.trusted
    fits = engine.fits
    later = engine.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1106))
    assert engine.fits == fits, "the second cycle refitted"
    assert engine.updates == 1
    assert later.issued_at == first.issued_at + 6 * STEP
    # The update forecasts from the new observations, close to what a full refit gives.
    refit = _engine(model).forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1106))
    assert later.times == refit.times
    scale = float(np.nanstd(nasa_5min.to_numpy()))
    assert np.max(np.abs(later.mean - refit.mean)) < 0.25 * scale
    assert np.max(np.abs(later.quantile(95) - refit.quantile(95))) < 0.5 * scale


def test_the_update_sees_new_observations(nasa_5min: pd.Series) -> None:
    engine = _engine("auto_ets")
    now = _at(nasa_5min, 1100)
    engine.forecast(nasa_5min, pool="web", metric="rps", now=now)
    surged = nasa_5min.copy()
    surged.iloc[1101:1104] = nasa_5min.max() * 3
    calm = engine.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1103))
    surge = engine.forecast(surged, pool="web", metric="rps", now=_at(nasa_5min, 1103))
    assert engine.updates == 2
    assert surge.mean[0] > calm.mean[0] * 1.5


def test_the_model_is_refitted_after_refit_every(nasa_5min: pd.Series) -> None:
    engine = _engine("auto_ets", refit_every="30m")
    engine.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1100))
    fits = engine.fits
    engine.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1105))
    assert engine.fits == fits
    engine.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1106))
    assert engine.fits == fits + 1, "30 minutes after the fit the model is refitted"


def test_a_clock_going_back_refits_rather_than_reusing_a_model_fitted_on_later_data(
    nasa_5min: pd.Series,
) -> None:
    engine = _engine("auto_ets")
    engine.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1100))
    fits = engine.fits
    engine.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1090))
    assert engine.fits == fits + 1


@pytest.mark.parametrize(
    "model", ["seasonal_naive", "naive", "auto_ets", "theta", "optimized_theta", "mstl"]
)
def test_a_kept_fit_applied_to_its_own_data_reproduces_its_forecast(
    nasa_5min: pd.Series, model: str
) -> None:
    # Guards the update path against drifting from the fit (statsforecast 2.1's own Theta
    # forward drops the decomposition type and fails this).
    history = nasa_5min.iloc[:1000]
    df = pd.DataFrame({"unique_id": "web", "ds": history.index, "y": history.to_numpy(dtype=float)})
    frame, fits = statistical.fit(
        df, model=model, h=12, freq="300s", season=288, levels=[80, 95], options=ModelOptions()
    )
    again = statistical.forward(
        fits["web"],
        history.to_numpy(dtype=float),
        uid="web",
        end=history.index[-1],
        h=12,
        levels=[80, 95],
    )
    assert again is not None
    np.testing.assert_allclose(again[model], frame[model], rtol=1e-9)
    if model != "mstl":  # MSTL's trend model recomputes its interval width when updated
        np.testing.assert_allclose(again[f"{model}-hi-95"], frame[f"{model}-hi-95"], rtol=1e-9)


def test_data_off_the_fitted_grid_is_refused_so_the_engine_refits(nasa_5min: pd.Series) -> None:
    history = nasa_5min.iloc[:1000]
    df = pd.DataFrame({"unique_id": "web", "ds": history.index, "y": history.to_numpy(dtype=float)})
    _, fits = statistical.fit(
        df, model="auto_ets", h=12, freq="300s", season=288, levels=[80], options=ModelOptions()
    )
    shifted = history.index[-1] + pd.Timedelta(minutes=2)
    earlier = history.index[-1] - pd.Timedelta(minutes=5)
    for end in (shifted, earlier):
        y = history.to_numpy(dtype=float)
        assert statistical.forward(fits["web"], y, uid="web", end=end, h=12, levels=[80]) is None
