"""The same-hour profile averaged into a trusted model's forecast (``blend_trusted``).

Specification (issue 15): "where a simple same-hour-of-week profile scheduled ahead wins,
mirrorcast must learn from it (as a candidate, an ensemble member, ...), not lose to it". On
the daily-cycle traces (the tweet volumes, NASA) a model was trusted in every cycle, so the
profile never touched them, and AWS's scheduled profile was ahead at the same money. Where
the profile earns trust on the series' own history by the same replay as on untrusted series
(``replay_profile_floor``), the forecast is now the equal-weight average of the trusted model's
and the profile's, mean and intervals alike, and says so; elsewhere the model stands alone.

Real excerpt: 4 days of the NASA-HTTP requests at 5 minutes (tests/data/nasa_http_excerpt.README.md),
where the engine trusts a model and the profile's replay wins (ratio about 0.6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import Forecast, ForecastEngine
from forecasting.models.profile import profile_forecast
from infra.config import ForecastSettings

NASA = Path(__file__).resolve().parents[1] / "data" / "nasa_http_5min_excerpt.csv"
DAY = 288
"""5-minute steps per day."""


@pytest.fixture(scope="module")
def history() -> pd.Series:
    frame = pd.read_csv(NASA)
    index = pd.DatetimeIndex(pd.to_datetime(frame.iloc[:, 0])).tz_localize("UTC")
    series = pd.Series(frame.iloc[:, 1].to_numpy(dtype=float), index=index)
    assert series.notna().all() and len(series) == 4 * DAY  # gap-free: the engine fills none
    return series


def engine(**profile: object) -> ForecastEngine:
    # The backtest's grid (1h horizon on 5-minute steps); 4 days is what the excerpt holds.
    return ForecastEngine(
        ForecastSettings(horizon="1h", step="5m", history="4d", untrusted_profile=profile)
    )


@pytest.fixture(scope="module")
def alone(history: pd.Series) -> Forecast:
    return engine(blend_trusted=False).forecast(history, pool="app", metric="rps")


@pytest.fixture(scope="module")
def blended(history: pd.Series) -> Forecast:
    return engine().forecast(history, pool="app", metric="rps")


def test_the_excerpt_has_a_trusted_model(alone: Forecast) -> None:
    assert alone.trusted and alone.model not in ("seasonal_profile", "seasonal_naive")
    assert not any("same-hour profile" in a for a in alone.adjustments)


def test_a_trusted_forecast_is_the_average_of_the_model_and_the_profile(
    history: pd.Series, alone: Forecast, blended: Forecast
) -> None:
    assert blended.trusted and blended.model == alone.model and blended.reason is None
    profile = profile_forecast(history.to_numpy(), h=12, season=DAY, levels=[80])
    np.testing.assert_allclose(blended.mean, 0.5 * (alone.mean + profile["mean"]))
    # Each interval too (the model's p90 is its 80% interval's upper end, as the profile's).
    np.testing.assert_allclose(
        blended.quantiles[90], 0.5 * (alone.quantiles[90] + profile["hi-80"])
    )
    # Where the two differ, the forecast is not the model's alone.
    assert np.abs(blended.mean - alone.mean).max() > 0.05 * alone.mean.mean()


def test_the_forecast_says_it_was_averaged_and_on_what_evidence(blended: Forecast) -> None:
    note = blended.adjustments[-1]
    assert note.startswith("averaged with the same-hour profile")
    assert "forecast.untrusted_profile.blend_trusted" in note
    assert "would have been short in" in note and "max_ratio 0.9" in note


def test_a_profile_that_did_not_earn_trust_leaves_the_model_alone(
    history: pd.Series, alone
) -> None:
    strict = engine(max_ratio=0.3).forecast(history, pool="app", metric="rps")
    np.testing.assert_array_equal(strict.mean, alone.mean)
    assert not any("same-hour profile" in a for a in strict.adjustments)


def test_with_the_profile_off_nothing_is_blended(history: pd.Series, alone: Forecast) -> None:
    off = engine(enabled=False).forecast(history, pool="app", metric="rps")
    np.testing.assert_array_equal(off.mean, alone.mean)


def test_it_is_on_by_default_and_part_of_the_contract() -> None:
    # On by default since the measurement on every shared trace (docs/backtest.md).
    assert ForecastSettings().untrusted_profile.blend_trusted is True
    with pytest.raises(ValueError, match="blend_trusted"):
        ForecastSettings(untrusted_profile={"blend_trusted": "sometimes"})
