"""The forecast evaluated as the driver makes it: the driver's engine, its calibration, its unit bounds."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import forecasting.as_driven
from driver.cli import app
from forecasting import CalibratedEngine, Forecast
from forecasting.as_driven import default_windows, driver_engine, evaluate_as_driven
from forecasting.evaluation import weighted_quantile_loss
from forecasting.trace import read_trace_csv
from infra.config import ForecastSettings, MetricSpec

runner = CliRunner()


class FixedEngine:
    """An engine whose every forecast is the same numbers: the scorer's input, known exactly."""

    def __init__(self) -> None:
        self.calls: list[datetime] = []

    def forecast(self, history: pd.Series, *, now: datetime, **_: Any) -> Forecast:
        self.calls.append(now)
        times = [now + timedelta(minutes=5 * i) for i in range(12)]
        return Forecast(
            pool="trace",
            metric="value",
            issued_at=now,
            step=timedelta(minutes=5),
            times=times,
            mean=np.full(12, 10.0),
            quantiles={q: np.full(12, float(q) / 5) for q in (10, 50, 80, 90, 95, 99)},
            model="fixed",
        )


def steady(days: float, value: float = 10.0) -> pd.Series:
    index = pd.date_range("2024-01-01", periods=int(days * 288), freq="5min", tz="UTC")
    return pd.Series(value, index=index, dtype=float)


class TestScoring:
    def test_every_quantile_is_scored_as_the_share_of_points_at_or_below_it(self) -> None:
        engine = FixedEngine()
        result = evaluate_as_driven(
            steady(3),
            name="steady",
            settings=ForecastSettings(calibration={"enabled": False}),
            spec=MetricSpec(unit="count"),
            windows=4,
            engine=engine,
        )
        # Actual 10 each step; p50 is 10 (covers), p10 is 2 (does not), p80 16 and up cover.
        assert result.coverage == {10: 0.0, 50: 1.0, 80: 1.0, 90: 1.0, 95: 1.0, 99: 1.0}
        assert result.coverage_80 == 1.0  # 10 lies between p10 (2) and p90 (18)
        assert result.mase == 0.0 and result.scored_points == 48 and result.origins == 4
        # One engine call per 5-minute cycle, as the driver makes them, not only at the four
        # origins: from the first origin to the last, three hours apart (no calibration to warm).
        assert len(engine.calls) == 3 * 12 + 1

    def test_gaps_are_not_scored(self) -> None:
        series = steady(3)
        series.iloc[-30:] = np.nan
        result = evaluate_as_driven(
            series,
            name="gappy",
            settings=ForecastSettings(calibration={"enabled": False}),
            spec=MetricSpec(unit="count"),
            windows=4,
            engine=FixedEngine(),
        )
        assert result.scored_points < 48

    def test_the_weighted_quantile_loss_is_zero_only_for_a_perfect_curve(self) -> None:
        y = np.array([1.0, 2.0, 3.0])
        assert weighted_quantile_loss(y, {50: y}) == 0.0
        # p90 one unit low at every point: 2 * 0.9 * 3 / 6.
        assert weighted_quantile_loss(y, {90: y - 1}) == pytest.approx(0.9)

    def test_the_default_windows_give_a_few_hundred_points(self) -> None:
        assert default_windows(horizon=timedelta(hours=1), step=timedelta(minutes=5)) == 25
        assert default_windows(horizon=timedelta(days=1), step=timedelta(hours=1)) == 13


def test_the_evaluation_runs_the_engine_the_driver_builds(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    built: list[Any] = []
    real = forecasting.as_driven.driver_engine

    def spy(settings: ForecastSettings, **kwargs: Any) -> Any:
        engine = real(settings, **kwargs)
        built.append(engine)
        return engine

    monkeypatch.setattr(forecasting.as_driven, "driver_engine", spy)
    series = read_trace_csv(data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv")
    result = evaluate_as_driven(
        series, name="asg", settings=ForecastSettings(), spec=MetricSpec(), windows=6
    )
    assert len(built) == 1 and isinstance(built[0], CalibratedEngine)
    assert result.calibrated_origins > 0  # days of 5-minute cycles: the calibration took over
    # The backtest's mirrorcast strategy runs the same factory's engine.
    from driver.backtest.stack import default_engine, load_backtest_stack

    default_engine(load_backtest_stack().config)
    assert len(built) == 2


def test_calibration_brings_the_p90_to_what_it_says_on_a_real_trace(data_dir: Path) -> None:
    series = read_trace_csv(data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv")
    calibrated = evaluate_as_driven(
        series, name="asg", settings=ForecastSettings(), spec=MetricSpec()
    )
    raw = evaluate_as_driven(
        series,
        name="asg",
        settings=ForecastSettings(calibration={"enabled": False}),
        spec=MetricSpec(),
    )
    assert calibrated.scored_points >= 300
    assert 0.8 <= calibrated.coverage[90] <= 0.97
    assert calibrated.coverage != raw.coverage


def test_percent_forecasts_stay_within_0_and_100(data_dir: Path) -> None:
    """A CPU near saturation: calibrated errors added to a high mean used to pass 100%."""
    series = read_trace_csv(data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv")
    hot = series * (99.0 / float(series.max()))
    settings = ForecastSettings()
    for unit, bounded in (("percent", True), ("rps", False)):
        engine = driver_engine(settings)
        tops = []
        for hours in range(24, 96, 1):
            now = hot.index[0] + pd.Timedelta(hours=hours)
            forecast = engine.forecast(
                hot[hot.index <= now],
                pool="p",
                metric="cpu",
                spec=MetricSpec(unit=unit),
                now=now.to_pydatetime(),
            )
            tops.append(max(float(np.max(v)) for v in forecast.quantiles.values()))
        assert (max(tops) <= 100.0) is bounded, unit


def test_the_command_takes_history_models_and_windows(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "r.json"
    trace = data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv"
    result = runner.invoke(
        app,
        [
            "evaluate-forecast",
            str(trace),
            "--windows",
            "8",
            "--history",
            "3d",
            "--models",
            "seasonal_naive,theta",
            "--unit",
            "percent",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(out.read_text())
    assert set(report["models"]) == {"seasonal_naive", "mstl", "theta"}
    assert report["windows"] == 8 and report["driver"]["origins"] == 8
    assert set(report["driver"]["models"]) <= {"seasonal_naive", "mstl", "theta"}
    assert "the forecast as the driver" in " ".join(result.output.split())


def test_an_unknown_unit_is_refused(data_dir: Path) -> None:
    trace = data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv"
    result = runner.invoke(app, ["evaluate-forecast", str(trace), "--unit", "furlongs"])
    assert result.exit_code == 2
    assert "--unit 'furlongs' is not one of percent" in result.output
