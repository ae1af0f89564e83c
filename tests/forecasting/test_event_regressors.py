"""Known events reach the models that take regressors as regressors, the others as uplifts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastEngine
from forecasting.events import Event, EventSchedule
from infra.config import ForecastSettings

# The first three days of the excerpt each had a "launch" from 13:00 to 15:00, a busy part of
# the day, so the series holds 72 five-minute steps from which a model can learn its effect.
PAST_LAUNCHES = [datetime(1995, 7, day, 13, tzinfo=UTC) for day in (1, 2, 3)]


@pytest.fixture(scope="module")
def nasa_5min(data_dir: Path) -> pd.Series:
    frame = pd.read_csv(data_dir / "nasa_http_5min_excerpt.csv")
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_local_minus0400"]))
    return pd.Series(frame["requests"].to_numpy(dtype=float), index=index)


@pytest.fixture(scope="module")
def now(nasa_5min: pd.Series) -> datetime:
    return nasa_5min.index[1100].to_pydatetime().replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def arima() -> ForecastEngine:
    # One engine for the module: the model choice is made once and reused. These tests are of
    # the model's own regressors, so the same-hour profile is not averaged in (blend_trusted:
    # tests/forecasting/test_trusted_profile_blend.py; the engine never blends a forecast with
    # an event in its horizon taken as a regressor).
    return ForecastEngine(
        ForecastSettings(
            models=["seasonal_naive", "auto_arima"], untrusted_profile={"blend_trusted": False}
        )
    )


def _launches(now: datetime, *, uplift: float | None = None, kind: str = "launch") -> EventSchedule:
    past = [
        Event(name=f"launch-{i}", start=s, end=s + timedelta(hours=2), kind="launch")
        for i, s in enumerate(PAST_LAUNCHES)
    ]
    # In the horizon: from 15 to 45 minutes after the decision (forecast steps 3 to 8).
    ahead = Event(
        name="next",
        start=now + timedelta(minutes=15),
        end=now + timedelta(minutes=45),
        kind=kind,
        uplift=uplift,
    )
    return EventSchedule([*past, ahead])


def test_an_event_in_the_horizon_raises_an_arima_forecast_through_its_regressor(
    arima: ForecastEngine, nasa_5min: pd.Series, now: datetime
) -> None:
    plain = arima.forecast(nasa_5min, pool="web", metric="rps", now=now)
    assert plain.model == "auto_arima" and plain.trusted
    with_events = arima.forecast(
        nasa_5min, pool="web", metric="rps", now=now, events=_launches(now)
    )
    during = slice(2, 8)
    assert np.all(with_events.mean[during] > plain.mean[during] + 1.0)
    # Before the event starts the forecast is the same model's.
    assert with_events.mean[0] == pytest.approx(plain.mean[0], rel=0.05)
    assert with_events.adjustments == (
        "event launch: exogenous regressor of auto_arima, learned from 72 past steps",
    )


def test_a_configured_uplift_is_not_applied_on_top_of_the_regressor(
    arima: ForecastEngine, nasa_5min: pd.Series, now: datetime
) -> None:
    regressor_only = arima.forecast(
        nasa_5min, pool="web", metric="rps", now=now, events=_launches(now)
    )
    configured = arima.forecast(
        nasa_5min, pool="web", metric="rps", now=now, events=_launches(now, uplift=3.0)
    )
    np.testing.assert_allclose(configured.mean, regressor_only.mean, rtol=1e-6)
    assert not any("uplift" in note for note in configured.adjustments)


def test_a_kind_never_seen_before_keeps_its_configured_uplift_for_arima(
    arima: ForecastEngine, nasa_5min: pd.Series, now: datetime
) -> None:
    plain = arima.forecast(nasa_5min, pool="web", metric="rps", now=now)
    sale = arima.forecast(
        nasa_5min,
        pool="web",
        metric="rps",
        now=now,
        events=_launches(now, uplift=1.5, kind="sale"),
    )
    assert "event sale: configured uplift x1.50 (no past occurrence)" in sale.adjustments
    assert sale.mean[3] == pytest.approx(plain.mean[3] * 1.5, rel=0.01)


def test_lightgbm_takes_events_as_features(nasa_5min: pd.Series, now: datetime) -> None:
    engine = ForecastEngine(ForecastSettings(models=["seasonal_naive", "lightgbm"]))
    forecast = engine.forecast(nasa_5min, pool="web", metric="rps", now=now, events=_launches(now))
    assert forecast.model == "lightgbm"
    assert forecast.adjustments == (
        "event launch: exogenous regressor of lightgbm, learned from 72 past steps",
    )
