"""A backtest scores every strategy warm: its cycles start early enough for mirrorcast's online
calibration to size the floor from its own errors at the first scored minute."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from driver.backtest import BacktestSettings, load_trace, run_backtest
from driver.backtest.simulator import MIN_WARMUP, run_warmup
from driver.backtest.stack import BacktestStack, build_strategies, load_backtest_stack
from driver.backtest.strategies import MirrorcastStrategy, ReactiveStrategy

NASA_5MIN = Path(__file__).parents[1] / "data" / "nasa_http_5min_excerpt.csv"
FIVE_MINUTES = BacktestSettings(history=timedelta(days=7))


def stack_with_calibration(**changes: Any) -> BacktestStack:
    """The built-in stack with ``forecast.calibration`` changed."""
    stack = load_backtest_stack()
    forecast = stack.config.forecast
    calibration = forecast.calibration.model_copy(update=changes)
    config = stack.config.model_copy(
        update={"forecast": forecast.model_copy(update={"calibration": calibration})}
    )
    return replace(stack, config=config)


def mirrorcast(stack: BacktestStack) -> MirrorcastStrategy:
    (strategy,) = build_strategies(["mirrorcast"], stack=stack)
    assert isinstance(strategy, MirrorcastStrategy)
    return strategy


class TestHowLongTheWarmupIs:
    def test_the_built_in_stack_warms_for_its_calibrations_errors_in_every_level_band(
        self,
    ) -> None:
        """100 errors (min_samples) in each of 3 level bands, one error a lead per 5-minute
        cycle: 25 hours, which is already an hour and whole days."""
        strategy = mirrorcast(load_backtest_stack())
        calibration = strategy.base_config.forecast.calibration
        assert (calibration.min_samples, calibration.bins) == (100, 3)
        assert strategy.warmup(interval=timedelta(minutes=5)) == timedelta(hours=25)
        assert run_warmup([strategy], settings=FIVE_MINUTES) == timedelta(hours=25)

    def test_a_shorter_need_is_rounded_up_to_whole_days_past_the_hour(self) -> None:
        """So a baseline on a clock of its own is at the same phase with or without mirrorcast."""
        strategy = mirrorcast(stack_with_calibration(min_samples=10, bins=2))
        assert strategy.warmup(interval=timedelta(minutes=5)) == timedelta(minutes=100)
        assert run_warmup([strategy], settings=FIVE_MINUTES) == MIN_WARMUP + timedelta(days=1)

    def test_without_calibration_or_mirrorcast_an_hour_is_enough(self) -> None:
        uncalibrated = mirrorcast(stack_with_calibration(enabled=False))
        assert run_warmup([uncalibrated], settings=FIVE_MINUTES) == MIN_WARMUP
        assert run_warmup([ReactiveStrategy()], settings=FIVE_MINUTES) == MIN_WARMUP

    def test_a_warmup_given_in_the_settings_is_used_as_given(self) -> None:
        settings = replace(FIVE_MINUTES, warmup=timedelta(minutes=30))
        assert run_warmup([mirrorcast(load_backtest_stack())], settings=settings) == timedelta(
            minutes=30
        )


class RecordingEngine:
    """The strategy's own (calibrated) engine, keeping what each cycle's forecast said."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.adjustments: dict[datetime, tuple[str, ...]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def forecast_many(self, histories: Any, *, now: datetime, **options: Any) -> Any:
        results = self.engine.forecast_many(histories, now=now, **options)
        for result in results.values():
            self.adjustments[now] = tuple(getattr(result, "adjustments", ()))
        return results

    def forecast(self, history: Any, *, now: datetime, **options: Any) -> Any:
        result = self.engine.forecast(history, now=now, **options)
        self.adjustments[now] = tuple(getattr(result, "adjustments", ()))
        return result


def test_on_real_traffic_the_first_scored_floor_is_sized_from_calibrated_bands() -> None:
    """NASA's requests, 3.5 days of history and 2 hours scored, the built-in stack: the first
    scored cycle's forecast has every step calibrated from the engine's own errors. Started an
    hour before scoring, as before, it had 11 errors a lead (under min_samples) and went out
    with the models' quantiles."""
    trace = load_trace(NASA_5MIN)
    history = timedelta(days=3, hours=12)
    trace = trace.head(int((history + timedelta(hours=2)).total_seconds() // 60))
    strategy = mirrorcast(load_backtest_stack())
    recorder = RecordingEngine(strategy.engine)
    strategy.engine = recorder
    run_backtest(trace, [strategy], settings=BacktestSettings(history=history))
    scoring = pd.Timestamp(trace.start) + history
    first_scored = min(now for now in recorder.adjustments if now >= scoring)
    notes = [n for n in recorder.adjustments[first_scored] if "quantiles calibrated" in n]
    assert notes, recorder.adjustments[first_scored]
    # Every one of the hour's 12 steps from at least min_samples of the engine's own errors
    # (some of the later leads' still from the whole lead's, their bands filling up).
    assert "from >= " in notes[0] and "(12/12 steps, 3 level bands" in notes[0], notes[0]
    assert int(notes[0].split("from >= ")[1].split()[0]) >= 100, notes[0]
    # The warm-up was the derived 25 hours, not more.
    assert min(recorder.adjustments) >= scoring - timedelta(hours=25)
