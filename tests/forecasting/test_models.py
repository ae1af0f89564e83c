"""Every model the documentation lists runs on small real data and yields usable intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.intervals import levels_for, quantiles_from_frame
from forecasting.models import MODEL_NAMES, ModelOptions, forecast_models

TINY = ModelOptions(lightgbm_estimators=10, lstm_max_steps=5, lstm_hidden_size=8)


@pytest.fixture(scope="module")
def frame(seasonal_cpu: pd.Series) -> pd.DataFrame:
    # 2.5 days at 5 minutes: two daily cycles, and small enough for a training budget of seconds.
    y = seasonal_cpu.iloc[:720]
    return pd.DataFrame({"unique_id": "asg.cpu", "ds": y.index, "y": y.to_numpy()})


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_listed_model_forecasts_real_data_with_monotone_quantiles(
    frame: pd.DataFrame, model: str
) -> None:
    quantiles = [50, 80, 90, 95, 99]
    out = forecast_models(
        frame,
        models=[model],
        h=6,
        freq="300s",
        season=288,
        levels=levels_for(quantiles),
        options=TINY,
    )
    assert len(out) == 6
    mean, curves = quantiles_from_frame(out, model=model, quantiles=quantiles)
    assert np.isfinite(mean).all()
    stacked = np.vstack([curves[q] for q in quantiles])
    assert (np.diff(stacked, axis=0) >= 0).all()
    # A forecast of a CPU percentage stays in the range the series lives in.
    assert (mean >= 0).all() and (mean < 3 * frame["y"].max()).all()
