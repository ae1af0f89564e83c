"""The simulated clock: strategies see only the past, history is not scored, gaps are masked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pytest

from driver.backtest import (
    BacktestSettings,
    ReactiveStrategy,
    ScheduledPredictiveStrategy,
    StaticPeakStrategy,
    Strategy,
    Trace,
    run_backtest,
)

MinuteTrace = Callable[..., Trace]
SETTINGS = BacktestSettings(instance_capacity=10.0, history=timedelta(days=7))


def busy_week(days: int = 9, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 1440) / 60
    return 40 + 30 * np.sin(hours / 24 * 2 * np.pi) + rng.gamma(2, 5, days * 1440)


class Recorder(Strategy):
    """Remembers what it was shown each cycle."""

    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int, bool]] = []

    def step(self, now: int, observed: npt.NDArray[np.float64]) -> None:
        self.seen.append((now, len(observed), observed.flags.writeable))


def test_a_strategy_is_shown_exactly_the_minutes_before_now_read_only(
    minute_trace: MinuteTrace,
) -> None:
    recorder = Recorder()
    run_backtest(minute_trace(busy_week()), [recorder], settings=SETTINGS)
    assert recorder.seen, "the recorder was never asked"
    assert all(length == now and not writeable for now, length, writeable in recorder.seen)
    gaps = {b[0] - a[0] for a, b in zip(recorder.seen, recorder.seen[1:], strict=False)}
    assert gaps == {5}


@pytest.mark.parametrize("make", [ReactiveStrategy, ScheduledPredictiveStrategy])
def test_a_poisoned_future_changes_nothing_before_it(
    minute_trace: MinuteTrace, make: Callable[[], Strategy]
) -> None:
    clean = busy_week()
    poisoned = clean.copy()
    cut = 8 * 1440 + 7 * 60  # a cycle minute (the trace starts at midnight)
    poisoned[cut:] = 1e6
    runs = [
        run_backtest(minute_trace(values), [make()], settings=SETTINGS).runs
        for values in (clean, poisoned)
    ]
    (name,) = runs[0]
    before = cut + 5  # the cycle at ``cut`` decides from data before ``cut``
    for field in ("primary_running", "primary_ready"):
        a = getattr(runs[0][name].record, field)
        b = getattr(runs[1][name].record, field)
        assert np.array_equal(a[:before], b[:before]), field
        assert not np.array_equal(a, b), "the poison should change the later decisions"


def test_the_history_part_is_not_scored(minute_trace: MinuteTrace) -> None:
    values = busy_week()
    values[: 7 * 1440] *= 50  # a wild history nobody could serve with static-peak's fleet
    result = run_backtest(minute_trace(values), [StaticPeakStrategy()], settings=SETTINGS)
    assert result.scored_minutes == 2 * 1440
    assert result.score_start == 7 * 1440
    assert result.runs["static-peak"].score.underprovisioned_minutes == 0
    assert result.runs["static-peak"].score.instance_hours == pytest.approx(
        result.runs["static-peak"].record.primary_running[-1] * 48
    )


def test_gap_minutes_are_masked_not_scored(minute_trace: MinuteTrace) -> None:
    values = busy_week()
    gap = slice(8 * 1440, 8 * 1440 + 180)
    values[gap] = np.nan
    result = run_backtest(minute_trace(values), [ReactiveStrategy()], settings=SETTINGS)
    assert result.scored_minutes == 2 * 1440 - 180
    assert not result.scored[gap].any()
    record = result.runs["reactive"].record
    expected = record.primary_running[result.scored].sum() / 60
    assert result.runs["reactive"].score.instance_hours == pytest.approx(expected)


def test_a_trace_shorter_than_its_history_is_refused(minute_trace: MinuteTrace) -> None:
    with pytest.raises(ValueError, match="first 7 days are history only; nothing would be scored"):
        run_backtest(minute_trace(busy_week(days=3)), [ReactiveStrategy()], settings=SETTINGS)


def test_the_default_instance_capacity_is_a_tenth_of_the_history_p95(
    minute_trace: MinuteTrace,
) -> None:
    values = busy_week()
    result = run_backtest(minute_trace(values), [ReactiveStrategy()], settings=BacktestSettings())
    assert result.model.instance_capacity == pytest.approx(
        np.percentile(values[: 7 * 1440], 95) / 10
    )
