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
from forecasting.as_driven import (
    RecordingEngine,
    ReplayedEngine,
    default_windows,
    driver_engine,
    evaluate_as_driven,
    tie_aware_coverage,
)
from forecasting.engine import ForecastEngine
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


LEVELS = (10, 50, 80, 90, 95, 99)


def marginal_forecast(values: np.ndarray) -> dict[int, np.ndarray]:
    """Every point's quantiles the values' own quantiles: the correct forecast of a draw from
    their distribution (numpy's "inverted_cdf", the distribution's own quantile function)."""
    at = np.quantile(values, [q / 100 for q in LEVELS], method="inverted_cdf")
    return {q: np.full(len(values), v) for q, v in zip(LEVELS, at, strict=True)}


class TestTieAwareCoverage:
    """Issue 15's coverage target, scored with ties spread (randomised PIT) beside as written."""

    def test_a_correct_forecast_of_sparse_counts_covers_its_levels_once_ties_are_spread(
        self, data_dir: Path
    ) -> None:
        # Three days of CVS tweet counts per 5 minutes (NAB, real): 83% of steps are 0, so the
        # distribution's own p10 and p50 are 0 and every zero step sits on both at once.
        counts = read_trace_csv(data_dir / "nab" / "Twitter_volume_CVS_excerpt.csv").to_numpy()
        assert np.mean(counts == 0) > 0.8
        curves = marginal_forecast(counts)
        plain = {q: float(np.mean(counts <= curve)) for q, curve in curves.items()}
        spread = tie_aware_coverage(counts, curves)
        # As written, the correct p10 "covers" 83% of points and the interval 96%.
        assert plain[10] > 0.8
        assert np.mean((counts >= curves[10]) & (counts <= curves[90])) > 0.95
        # Spread across the jump at 0, the levels are what they say, to within the 6-level grid.
        assert spread[10] == pytest.approx(0.10, abs=0.02)
        assert spread[90] == pytest.approx(0.90, abs=0.02)
        assert spread[90] - spread[10] == pytest.approx(0.80, abs=0.03)

    def test_points_between_two_quantiles_count_as_in_the_plain_coverage(
        self, data_dir: Path
    ) -> None:
        # A real CPU excerpt (continuous values) against the quantiles of its first day: no
        # value equals a quantile, so nothing is spread.
        cpu = read_trace_csv(
            data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv"
        ).to_numpy()
        first_day = marginal_forecast(cpu[:288])
        # Quantiles of the first day are values of it: moved off them by far less than the
        # data's 0.001 resolution so that no point equals one.
        curves = {q: np.full(len(cpu), c[0] + 1e-6) for q, c in first_day.items()}
        plain = {q: float(np.mean(cpu <= curve)) for q, curve in curves.items()}
        assert tie_aware_coverage(cpu, curves) == pytest.approx(plain, abs=1e-12)

    def test_the_evaluation_reports_both_figures(self) -> None:
        # Actual 10 at every step, and the fixed forecast's p50 is exactly 10: a tie.
        result = evaluate_as_driven(
            steady(3),
            name="steady",
            settings=ForecastSettings(calibration={"enabled": False}),
            spec=MetricSpec(unit="count"),
            windows=4,
            engine=FixedEngine(),
        )
        assert result.coverage[50] == 1.0
        # Spread between p10 (2, below 10) and p80 (16, above): (0.5 - 0.1) / (0.8 - 0.1).
        assert result.tie_aware_coverage[50] == pytest.approx(0.4 / 0.7)
        assert result.tie_aware_coverage[10] == 0.0 and result.tie_aware_coverage[90] == 1.0
        assert result.tie_aware_coverage_80 == 1.0 and result.tied_points == 1.0
        assert result.to_json()["tie_aware_coverage"]["50"] == round(0.4 / 0.7, 4)


def test_a_replayed_stream_calibrates_as_the_live_engine_did(data_dir: Path) -> None:
    """The benchmark's variants calibrate a recorded stream: it must give what the live run gave."""
    series = read_trace_csv(data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv")
    settings = ForecastSettings(quantiles=[10, 50, 80, 90, 95, 99])
    recorder = RecordingEngine(ForecastEngine(settings))
    live = evaluate_as_driven(
        series,
        name="asg",
        settings=settings,
        spec=MetricSpec(),
        windows=6,
        engine=CalibratedEngine(recorder, settings=settings.calibration),
    )
    replayed = evaluate_as_driven(
        series,
        name="asg",
        settings=settings,
        spec=MetricSpec(),
        windows=6,
        engine=CalibratedEngine(
            ReplayedEngine(recorder.stream, name="asg"), settings=settings.calibration
        ),
    )
    assert live.calibrated_origins > 0
    assert replayed.to_json() == live.to_json()
    # A decision time the recording never made is refused with a sentence, not invented.
    with pytest.raises(LookupError, match="no forecast was recorded"):
        evaluate_as_driven(
            series,
            name="asg",
            settings=settings,
            spec=MetricSpec(),
            windows=7,
            engine=ReplayedEngine(recorder.stream, name="asg"),
        )


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
    # The models' calibrated quantiles are what overshoot; forecast.untrusted_profile off so
    # that this untrusted excerpt is forecast by them rather than by the same-hour profile.
    settings = ForecastSettings(untrusted_profile={"enabled": False})
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
    # The candidates given, plus the same-hour profile where they are untrusted
    # (forecast.untrusted_profile: a fallback, like the seasonal-naive baseline).
    assert set(report["driver"]["models"]) <= {
        "seasonal_naive",
        "mstl",
        "theta",
        "seasonal_profile",
    }
    assert "the forecast as the driver" in " ".join(result.output.split())


def test_the_command_reports_coverage_with_ties_spread_on_sparse_counts(
    tmp_path: Path, data_dir: Path
) -> None:
    out = tmp_path / "r.json"
    trace = data_dir / "nab" / "Twitter_volume_CVS_excerpt.csv"
    result = runner.invoke(
        app,
        [
            "evaluate-forecast",
            str(trace),
            "--windows",
            "6",
            "--models",
            "seasonal_naive",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    driver = json.loads(out.read_text())["driver"]
    # Most steps are zero counts at a p10 of 0: as written they count inside the interval.
    assert driver["tied_points"] > 0.5
    assert driver["tie_aware_coverage_80"] < driver["coverage_80"]
    assert "with ties spread (randomised PIT)" in " ".join(result.output.split())
    # 6 origins of 12 points: too few for issue 15's bands to say anything.
    assert driver["bands"] is None and driver["tie_aware_bands"] is None
    assert "coverage bands: not judged (72 scored points" in " ".join(result.output.split())


def test_an_unknown_unit_is_refused(data_dir: Path) -> None:
    trace = data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv"
    result = runner.invoke(app, ["evaluate-forecast", str(trace), "--unit", "furlongs"])
    assert result.exit_code == 2
    assert "--unit 'furlongs' is not one of percent" in result.output


def test_the_candidates_percent_quantiles_are_scored_within_0_and_100(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """evaluate-forecast's candidates, like the driver's forecast: a CPU near saturation has
    model intervals past 100%, which are clipped to the unit's range before they are scored."""
    import forecasting.trace as trace_module

    series = read_trace_csv(data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv")
    # Saturating in the scored last hours: their busiest minute at 99%, anything above at 100%.
    hot = (series * (99.0 / float(series.iloc[-36:].max()))).clip(upper=100.0)
    scored: list[pd.DataFrame] = []
    real = trace_module.score_cross_validation

    def keep(cv: pd.DataFrame, **kwargs: Any) -> Any:
        scored.append(cv)
        return real(cv, **kwargs)

    monkeypatch.setattr(trace_module, "score_cross_validation", keep)
    tops: dict[tuple[float, float] | None, float] = {}
    for bounds in (None, (0.0, 100.0)):
        scored.clear()
        trace_module.evaluate_trace(
            hot,
            name="hot",
            horizon=timedelta(hours=1),
            models=["seasonal_naive"],
            n_windows=3,
            bounds=bounds,
        )
        # The first call scores what is reported; the last the engine's choice (unclipped).
        reported = scored[0].drop(columns=["unique_id", "ds", "cutoff", "y"])
        tops[bounds] = float(reported.max().max())
    assert tops[None] > 100.0
    assert tops[(0.0, 100.0)] <= 100.0
