"""The engine's forecasts: quantiles, trust, fallbacks, events, horizons and unusable data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastEngine, ForecastUnavailable, UnusableSeriesError
from forecasting.events import Event, EventSchedule
from infra.config import ForecastSettings, MetricSpec

FAST = ["seasonal_naive", "ses", "auto_ets"]


def _engine(*, models: list[str] | None = None) -> ForecastEngine:
    # The models' own forecasts (their accuracy, intervals, fallbacks): forecast.untrusted_profile
    # off, which would forecast an untrusted choice with the same-hour profile instead
    # (tests/forecasting/test_untrusted_profile.py).
    settings = ForecastSettings(models=models or FAST, untrusted_profile={"enabled": False})
    return ForecastEngine(settings)


def test_forecast_carries_monotone_quantiles_over_the_horizon(seasonal_cpu: pd.Series) -> None:
    forecast = _engine().forecast(seasonal_cpu, pool="asg", metric="cpu")
    assert forecast.step == timedelta(minutes=5)
    assert len(forecast.times) == 12
    assert forecast.times[0] == forecast.issued_at + forecast.step
    for q in (50, 80, 90, 95, 99):
        assert len(forecast.quantile(q)) == 12
    stacked = np.vstack([forecast.quantiles[q] for q in sorted(forecast.quantiles)])
    assert (np.diff(stacked, axis=0) >= 0).all()
    assert set(forecast.accuracy) >= {"mase", "coverage_80", "coverage_95"}


def test_intervals_cover_what_actually_happened_next(seasonal_cpu: pd.Series) -> None:
    # Decide at 4 days, then look at the real next hour: p99 must be above most of it and p50
    # must be inside the observed range of the day.
    now = seasonal_cpu.index[1151].to_pydatetime().replace(tzinfo=UTC)
    forecast = _engine().forecast(seasonal_cpu, pool="asg", metric="cpu", now=now)
    actual = seasonal_cpu.iloc[1152 : 1152 + 12].to_numpy()
    assert forecast.issued_at == now
    assert np.mean(actual <= forecast.quantile(99)) >= 0.75
    assert 0.0 <= forecast.accuracy["coverage_80"] <= 1.0


def test_series_without_seasonality_is_untrusted_and_only_tracks_the_level(
    flat_cpu: pd.Series,
) -> None:
    forecast = _engine(models=[*FAST, "mstl"]).forecast(flat_cpu, pool="db", metric="cpu")
    assert not forecast.trusted
    assert "no seasonality" in (forecast.reason or "")
    # No daily cycle is replayed: the curve stays near the recent level.
    assert forecast.model in ("seasonal_naive", "ses", "auto_ets")
    recent = flat_cpu.iloc[-12:]
    assert recent.min() * 0.8 <= forecast.mean[0] <= recent.max() * 1.2


def test_one_burst_in_the_week_does_not_hide_the_daily_cycle() -> None:
    # A week of 5-minute counts with a clear daily cycle and one news spike 40x the level, as
    # in Twitter FB: a Pearson autocorrelation sees only the spike (0.02 there), ranks see the
    # cycle every day.
    rng = np.random.default_rng(2)
    steps = np.arange(7 * 288)
    level = 20 + 10 * np.sin(2 * np.pi * steps / 288)
    values = rng.poisson(level).astype(float)
    values[3 * 288 + 100 : 3 * 288 + 112] = 800.0
    series = pd.Series(
        values, index=pd.date_range("2026-11-01", periods=len(values), freq="5min", tz="UTC")
    )

    pearson = np.corrcoef(values[288:], values[:-288])[0, 1]
    forecast = _engine(models=[*FAST, "mstl"]).forecast(series, pool="web", metric="rps")

    assert pearson < 0.2
    assert "no seasonality" not in (forecast.reason or ""), forecast.reason


def test_history_too_short_for_a_daily_cycle_is_untrusted_and_says_why(
    seasonal_cpu: pd.Series,
) -> None:
    forecast = _engine().forecast(seasonal_cpu.iloc[:200], pool="asg", metric="cpu")
    assert not forecast.trusted
    assert "too short" in (forecast.reason or "")
    assert forecast.model == "seasonal_naive"


def test_repairs_of_messy_input_are_reported_in_the_forecast(seasonal_cpu: pd.Series) -> None:
    messy = seasonal_cpu.copy()
    messy.iloc[100:110] = np.nan
    messy = pd.concat([messy, messy.iloc[[50]]]).sample(frac=1.0, random_state=1)
    forecast = _engine().forecast(messy, pool="asg", metric="cpu")
    kinds = {r.kind for r in forecast.repairs}
    assert {"reordered", "duplicates", "nan", "gap", "filled_for_fit"} <= kinds


def test_an_event_in_the_horizon_raises_the_forecast(seasonal_cpu: pd.Series) -> None:
    engine = _engine()
    plain = engine.forecast(seasonal_cpu, pool="asg", metric="cpu")
    start = plain.times[3]
    sale = EventSchedule(
        [Event("spring-sale", start, start + timedelta(minutes=30), kind="campaign", uplift=1.5)]
    )
    boosted = engine.forecast(seasonal_cpu, pool="asg", metric="cpu", events=sale)
    assert boosted.quantile(90)[5] == pytest.approx(1.5 * plain.quantile(90)[5])
    assert boosted.quantile(90)[0] == pytest.approx(plain.quantile(90)[0])
    assert any("campaign" in note for note in boosted.adjustments)


def test_an_event_seen_before_gets_the_uplift_it_caused(seasonal_cpu: pd.Series) -> None:
    history = seasonal_cpu.copy()
    index = history.index.tz_localize("UTC")
    history.index = index
    # Yesterday at this time the same kind of event doubled demand.
    last = index[-1]
    past_start, past_end = (
        last - pd.Timedelta("1D") + pd.Timedelta("5min"),
        last - pd.Timedelta("1D") + pd.Timedelta("35min"),
    )
    during = (index >= past_start) & (index < past_end)
    history[during] = history[during] * 2
    events = EventSchedule(
        [
            Event("launch-1", past_start.to_pydatetime(), past_end.to_pydatetime(), kind="release"),
            Event(
                "launch-2",
                (last + pd.Timedelta("5min")).to_pydatetime(),
                (last + pd.Timedelta("35min")).to_pydatetime(),
                kind="release",
            ),
        ]
    )
    engine = _engine()
    plain = engine.forecast(history, pool="asg", metric="cpu")
    boosted = engine.forecast(history, pool="asg", metric="cpu", events=events)
    assert boosted.mean[0] > 1.5 * plain.mean[0]
    assert any("learned uplift" in note for note in boosted.adjustments)


def test_a_day_horizon_is_forecast_at_a_coarser_step(seasonal_cpu: pd.Series) -> None:
    forecast = _engine().forecast(
        seasonal_cpu, pool="asg", metric="cpu", horizon=timedelta(weeks=1)
    )
    assert forecast.step == timedelta(hours=1)
    assert len(forecast.times) == 168


def test_counter_metrics_are_forecast_as_rates(seasonal_cpu: pd.Series) -> None:
    counter = seasonal_cpu.cumsum() * 300
    forecast = _engine().forecast(
        counter, pool="asg", metric="requests", spec=MetricSpec(unit="rps", counter=True)
    )
    assert 0 < forecast.mean[0] < 3 * seasonal_cpu.max()


def test_unusable_history_is_an_error_naming_the_series() -> None:
    empty = pd.Series([np.nan] * 10, index=pd.date_range("2024-01-01", periods=10, freq="5min"))
    with pytest.raises(UnusableSeriesError, match=r"series web\.cpu: every value is missing"):
        _engine().forecast(empty, pool="web", metric="cpu")


def test_forecast_many_reports_unusable_series_as_a_state_and_forecasts_the_rest(
    seasonal_cpu: pd.Series,
) -> None:
    bad = pd.Series(["x"] * 5, index=pd.date_range("2024-01-01", periods=5, freq="5min"))
    results = _engine().forecast_many({("asg", "cpu"): seasonal_cpu, ("web", "cpu"): bad})
    assert isinstance(results[("web", "cpu")], ForecastUnavailable)
    assert "web.cpu" in results[("web", "cpu")].reason
    assert not isinstance(results[("asg", "cpu")], ForecastUnavailable)


def test_unknown_model_in_settings_is_refused_with_the_choices() -> None:
    with pytest.raises(Exception, match=r"model 'prophet2': unknown model; choose from"):
        _engine(models=["prophet2"])


def test_decision_time_before_the_data_end_hides_the_future(seasonal_cpu: pd.Series) -> None:
    now = datetime(2014, 7, 10, tzinfo=UTC)
    index = seasonal_cpu.index.tz_localize("UTC")
    forecast = _engine().forecast(seasonal_cpu, pool="asg", metric="cpu", now=now)
    assert forecast.issued_at <= now
    assert forecast.issued_at == max(t for t in index if t <= now)


class TestUnitBoundsApplyOnlyToStatedUnits:
    def test_a_series_handed_in_without_its_spec_keeps_values_above_100(
        self, seasonal_cpu: pd.Series
    ) -> None:
        """MetricSpec's default unit is percent; a bare series (requests, say) is not one."""
        requests = seasonal_cpu * 40  # a request rate in the thousands
        bare = _engine().forecast(requests, pool="web", metric="rps")
        stated = _engine().forecast(requests, pool="web", metric="rps", spec=MetricSpec(unit="rps"))

        assert not any(r.kind == "out_of_range" for r in bare.repairs)
        assert float(np.max(bare.mean)) > 100
        assert np.allclose(bare.mean, stated.mean)

    def test_a_stated_percentage_above_100_is_still_rejected(self, seasonal_cpu: pd.Series) -> None:
        broken = seasonal_cpu.copy()
        broken.iloc[-5] = 1e12  # a broken exporter's sample
        forecast = _engine().forecast(
            broken, pool="web", metric="cpu", spec=MetricSpec(unit="percent")
        )

        assert float(np.max(forecast.mean)) < 1e6
