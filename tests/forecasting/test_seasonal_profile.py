"""The same-time-of-day / week profile (``seasonal_profile``): AWS predictive scaling's forecast
as a selection candidate.

Specification (issue 15): where a simple same-hour-of-week profile scheduled ahead wins,
mirrorcast learns from it as a candidate; selection keeps it only where it wins on the series'
own rolling-origin errors; its quantiles come from its own residuals.

Real excerpts (tests/data/nab/README.md): three weeks of AAPL tweet volume per hour (daily and
weekly cycles) and an EC2 instance's CPU without a daily cycle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastEngine
from forecasting.models import MODELS, forecast_models
from forecasting.models.profile import SeasonalProfile, profile_forecast
from infra.config import ForecastSettings

# The engine's default candidates (infra.config.ForecastSettings.models) plus the profile.
CANDIDATES = ["seasonal_naive", "auto_ets", "mstl", "theta", "seasonal_profile"]
CV_WINDOWS = 6
"""Rolling origins per selection: 144 scored points a day ahead, 72 an hour ahead."""


@pytest.fixture(scope="module")
def weekly_tweets(data_dir) -> pd.Series:  # type: ignore[no-untyped-def]
    """21 days of AAPL tweet volume, hourly means of NAB's 5-minute counts."""
    frame = pd.read_csv(
        data_dir / "nab" / "Twitter_volume_AAPL_hourly_21d.csv", parse_dates=["timestamp"]
    )
    return pd.Series(
        frame["value"].to_numpy(dtype=float), index=pd.DatetimeIndex(frame["timestamp"])
    )


# --------------------------------------------------------------------------- selection


def test_the_profile_wins_selection_a_day_ahead_on_a_daily_and_weekly_series(
    weekly_tweets: pd.Series,
) -> None:
    engine = ForecastEngine(
        ForecastSettings(horizon="1d", step="1h", history="21d", models=CANDIDATES),
        cv_windows=CV_WINDOWS,
    )
    forecast = engine.forecast(weekly_tweets, pool="web", metric="tweets")
    chosen = engine.store.load("web", "tweets")
    assert chosen is not None
    assert forecast.model == "seasonal_profile"
    assert forecast.trusted, chosen.reason
    profile = chosen.scores["seasonal_profile"]["mase"]
    others = {m: s["mase"] for m, s in chosen.scores.items() if m != "seasonal_profile"}
    # Not a tie broken by cost (selection's tolerance is 2%): ahead of every other candidate.
    assert all(profile < 0.95 * mase for mase in others.values()), (profile, others)


def test_the_profile_does_not_win_on_a_series_without_a_daily_cycle(flat_cpu: pd.Series) -> None:
    # The default 1h horizon. Without a cycle an average of past days is only a smoothed
    # level: over the engine's usual 3 origins (36 points) it ties the level models on this
    # excerpt and wins or loses by noise; over 6 origins a model that follows the current level
    # is ahead. Either way such a forecast is untrusted (no seasonality: the rules react).
    engine = ForecastEngine(ForecastSettings(models=CANDIDATES), cv_windows=CV_WINDOWS)
    forecast = engine.forecast(flat_cpu, pool="db", metric="cpu")
    chosen = engine.store.load("db", "cpu")
    assert chosen is not None
    assert forecast.model != "seasonal_profile"
    assert chosen.scores[forecast.model]["mase"] < 0.95 * chosen.scores["seasonal_profile"]["mase"]
    assert not forecast.trusted


# --------------------------------------------------------------------------- the forecast


def _rolling(y: np.ndarray, *, weekly: bool) -> tuple[float, float]:
    """Mean absolute error and 80% coverage a day ahead, at every day of the third week."""
    errors, covered = [], []
    for cut in range(14 * 24, 21 * 24, 24):
        out = profile_forecast(y[:cut], h=24, season=24, weekly=weekly, levels=[80])
        actual = y[cut : cut + 24]
        errors.append(float(np.abs(out["mean"] - actual).mean()))
        covered.append(float(((actual >= out["lo-80"]) & (actual <= out["hi-80"])).mean()))
    return float(np.mean(errors)), float(np.mean(covered))


def test_the_same_hour_of_the_week_improves_on_the_same_hour_of_the_day(
    weekly_tweets: pd.Series,
) -> None:
    y = weekly_tweets.to_numpy()
    blended, _ = _rolling(y, weekly=True)
    daily_only, _ = _rolling(y, weekly=False)
    assert blended < 0.95 * daily_only


def test_the_forecast_is_the_mean_of_the_same_step_over_the_last_days() -> None:
    # Ten days of a known shape: day d, step s holds 10 * d + s.
    y = np.array([10.0 * d + s for d in range(10) for s in range(4)])
    out = profile_forecast(y, h=6, season=4, weekly=False)
    # Days 3..9 (the last seven): mean day 6, so step s forecasts 60 + s, repeating daily.
    assert out["mean"].tolist() == [60.0, 61.0, 62.0, 63.0, 60.0, 61.0]


def test_two_weeks_blend_the_week_profile_in_half_and_half() -> None:
    season, week = 2, 14
    # 15 days; one day of the week (days 1 and 8) runs 100 above every other day.
    y = np.concatenate([np.full(season, 100.0 if d % 7 == 1 else 0.0) for d in range(15)])
    # The next day is day 15 (weekday 1): daily mean of days 8..14 is 100/7, the week
    # profile of the last two weeks (days 1..14) at weekday 1 is 100.
    out = profile_forecast(y, h=season, season=season)
    assert len(y) >= 2 * week
    assert out["mean"] == pytest.approx([0.5 * 100 / 7 + 0.5 * 100] * season)


# --------------------------------------------------------------------------- the quantiles


def test_its_quantiles_come_from_its_own_residuals_and_cover_held_out_days(
    weekly_tweets: pd.Series,
) -> None:
    _, covered = _rolling(weekly_tweets.to_numpy(), weekly=True)
    # The raw interval, before the engine's online calibration: roughly what it claims.
    assert 0.7 <= covered <= 0.9
    out = profile_forecast(weekly_tweets.to_numpy(), h=24, season=24, levels=[50, 80, 95])
    assert np.all(out["lo-95"] <= out["lo-80"]) and np.all(out["lo-80"] <= out["lo-50"])
    assert np.all(out["hi-50"] <= out["hi-80"]) and np.all(out["hi-80"] <= out["hi-95"])


def test_statsforecast_runs_it_batched_beside_its_own_models(weekly_tweets: pd.Series) -> None:
    frame = pd.DataFrame(
        {"unique_id": "aapl", "ds": weekly_tweets.index, "y": weekly_tweets.to_numpy()}
    )
    out = forecast_models(
        frame,
        models=["seasonal_naive", "seasonal_profile"],
        h=24,
        freq="1h",
        season=24,
        levels=[80],
    )
    direct = profile_forecast(weekly_tweets.to_numpy(), h=24, season=24, levels=[80])
    assert out["seasonal_profile"].to_numpy() == pytest.approx(direct["mean"])
    assert out["seasonal_profile-hi-80"].to_numpy() == pytest.approx(direct["hi-80"])
    assert MODELS["seasonal_profile"].parameter_free


def test_a_series_of_less_than_two_seasons_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"at least two seasons of 24 steps.*has 30 steps"):
        profile_forecast(np.ones(30), h=24, season=24)


def test_a_kept_fit_forwards_new_data_and_pickles_without_its_history() -> None:
    import pickle

    y = np.arange(96, dtype=float) % 24
    model = SeasonalProfile(24).fit(y)
    assert model.predict(h=3)["mean"].tolist() == [0.0, 1.0, 2.0]
    # Parameter-free: the newer history alone decides the forecast.
    assert model.forward(np.roll(y, 1), h=1)["mean"].tolist() == [23.0]
    assert len(pickle.dumps(model)) < 1_000


def test_the_engine_keeps_the_choice_and_forwards_the_newest_history(
    weekly_tweets: pd.Series,
) -> None:
    from datetime import UTC

    engine = ForecastEngine(
        ForecastSettings(horizon="1d", step="1h", history="21d", models=CANDIDATES),
        cv_windows=CV_WINDOWS,
    )
    at = [weekly_tweets.index[i].to_pydatetime().replace(tzinfo=UTC) for i in (479, 480)]
    first = engine.forecast(weekly_tweets, pool="web", metric="tweets", now=at[0])
    assert first.model == "seasonal_profile"
    fits = engine.fits
    later = engine.forecast(weekly_tweets, pool="web", metric="tweets", now=at[1])
    assert engine.fits == fits and engine.updates == 1
    # Parameter-free: the update is the profile of the history up to the later cycle.
    expected = profile_forecast(weekly_tweets.to_numpy()[:481], h=24, season=24)
    assert later.mean == pytest.approx(expected["mean"])
