"""Each baseline does what its name promises, on traces whose answer is known."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np

from driver.backtest import (
    BacktestSettings,
    CapacityModel,
    OracleStrategy,
    ReactiveStrategy,
    ScheduledPredictiveStrategy,
    StaticPeakStrategy,
    TargetTracker,
    Trace,
    run_backtest,
)

MinuteTrace = Callable[..., Trace]

MODEL = CapacityModel(instance_capacity=10.0)  # 6 units per instance at the 60% target


def daily_noon_peak(days: int) -> np.ndarray:
    """10 units all day, 100 from 12:00 to 12:59, every day (the trace starts at midnight)."""
    day = np.full(1440, 10.0)
    day[12 * 60 : 13 * 60] = 100.0
    return np.tile(day, days)


SETTINGS = BacktestSettings(instance_capacity=10.0, history=timedelta(days=7))


def test_target_tracking_scales_out_at_once_and_in_after_fifteen_minutes() -> None:
    tracker = TargetTracker(model=MODEL, interval=5, initial=2)
    calm = np.full(60, 12.0)  # needs 2 at 60%
    busy = np.concatenate([calm[:55], np.full(5, 60.0)])  # last cycle needs 10
    assert tracker.update(55, calm[:55]) == 2
    assert tracker.update(60, busy) == 10
    quiet = np.concatenate([busy, np.full(20, 12.0)])
    assert tracker.update(65, quiet[:65]) == 10
    assert tracker.update(70, quiet[:70]) == 10
    assert tracker.update(75, quiet[:75]) == 2  # three cycles (15 minutes) below target


def test_reactive_is_short_until_its_scale_out_is_ready(minute_trace: MinuteTrace) -> None:
    trace = minute_trace(daily_noon_peak(9))
    result = run_backtest(trace, [ReactiveStrategy()], settings=SETTINGS)
    # Each scored noon: the 12:05 cycle sees the surge, new instances serve from 12:10.
    assert result.runs["reactive"].score.underprovisioned_minutes == 2 * 10


def test_scheduled_predictive_launches_the_forecast_hour_ahead_with_its_buffer(
    minute_trace: MinuteTrace,
) -> None:
    trace = minute_trace(daily_noon_peak(9))
    result = run_backtest(trace, [ScheduledPredictiveStrategy()], settings=SETTINGS)
    run = result.runs["scheduled-predictive"]
    assert run.score.underprovisioned_minutes == 0
    noon_day8 = 8 * 1440 + 12 * 60
    # Launched at 11:55 (5-minute buffer), serving from 12:00: 100 / 6 -> 17 instances.
    assert run.record.primary_running[noon_day8 - 5] == 17
    assert run.record.primary_ready[noon_day8 - 1] < 17
    assert run.record.primary_ready[noon_day8] == 17


def test_scheduled_predictive_never_drops_below_reactive(minute_trace: MinuteTrace) -> None:
    rng = np.random.default_rng(7)
    trace = minute_trace(daily_noon_peak(9) * rng.uniform(0.5, 1.5, 9 * 1440))
    result = run_backtest(
        trace, [ReactiveStrategy(), ScheduledPredictiveStrategy()], settings=SETTINGS
    )
    reactive = result.runs["reactive"].record.primary_running
    scheduled = result.runs["scheduled-predictive"].record.primary_running
    assert (scheduled[result.score_start :] >= reactive[result.score_start :]).all()


def test_static_peak_holds_enough_for_the_scored_peak_all_the_time(
    minute_trace: MinuteTrace,
) -> None:
    trace = minute_trace(daily_noon_peak(9))
    result = run_backtest(trace, [StaticPeakStrategy()], settings=SETTINGS)
    run = result.runs["static-peak"]
    assert run.score.underprovisioned_minutes == 0
    assert set(run.record.primary_running[result.score_start :]) == {13.0}  # 100 / 8
    assert run.score.scaling_actions == 0


def test_oracle_keeps_instances_through_gaps_shorter_than_a_relaunch(
    minute_trace: MinuteTrace,
) -> None:
    values = np.zeros(7 * 1440 + 40)
    start = 7 * 1440
    values[start + 10 : start + 12] = 16.0  # 2 instances for 2 minutes
    values[start + 15] = 8.0  # 1 instance, 3 minutes later (< 5-minute boot): kept running
    values[start + 30] = 8.0  # 14 minutes later: relaunched, booting from minute 25
    result = run_backtest(minute_trace(values), [OracleStrategy()], settings=SETTINGS)
    running = result.runs["oracle"].record.primary_running[start:]
    assert running[:5].tolist() == [0] * 5
    assert running[5:12].tolist() == [2] * 7  # both boot from minute 5
    assert running[12:16].tolist() == [1] * 4
    assert running[16:25].tolist() == [0] * 9
    assert running[25:31].tolist() == [1] * 6
    assert result.runs["oracle"].score.underprovisioned_minutes == 0


def test_oracle_is_a_lower_bound_on_the_cost_of_serving_every_minute(
    minute_trace: MinuteTrace,
) -> None:
    rng = np.random.default_rng(3)
    for _ in range(3):
        values = rng.gamma(2.0, 20.0, 8 * 1440) * np.repeat(rng.uniform(0.3, 3, 8 * 48), 30)
        trace = minute_trace(values)
        result = run_backtest(
            trace,
            [
                ReactiveStrategy(),
                ScheduledPredictiveStrategy(),
                StaticPeakStrategy(),
                OracleStrategy(),
            ],
            settings=SETTINGS,
        )
        oracle = result.runs["oracle"].score
        assert oracle.underprovisioned_minutes == 0
        for name, run in result.runs.items():
            if run.score.underprovisioned_minutes == 0:
                assert oracle.instance_hours <= run.score.instance_hours, name
        assert oracle.instance_hours < result.runs["static-peak"].score.instance_hours
