"""The mirrorcast strategy is the driver's own cycle (forecasting engine, rules, planner) on a simulated cloud."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

import driver.cycle
from driver.backtest import (
    BacktestResult,
    BacktestSettings,
    CloudTiming,
    run_backtest,
    trace_from_series,
)
from driver.backtest.stack import build_strategies, load_backtest_stack
from driver.backtest.strategies import MirrorcastStrategy
from forecasting import Forecast
from forecasting.errors import UnusableSeriesError

SETTINGS = BacktestSettings(history=timedelta(days=3), warmup=timedelta(hours=1))
DAY3_NOON = 3 * 1440 + 12 * 60


def noon_surge(minutes: int, *, seed: int = 5) -> np.ndarray:
    """20 units with a little noise, 80 from 12:00 to 13:59 every day (the trace starts at midnight)."""
    rng = np.random.default_rng(seed)
    clock = np.arange(minutes) % 1440
    base = np.where((clock >= 12 * 60) & (clock < 14 * 60), 80.0, 20.0)
    return base * rng.uniform(0.97, 1.03, minutes)


def backtest(
    values: np.ndarray, names: list[str], *, start_hour: int = 11, profile: bool = True
) -> BacktestResult:
    """The built-in stack on ``values``; ``profile=False`` turns forecast.untrusted_profile off."""
    index = pd.date_range("2024-03-04", periods=len(values), freq="min", tz="UTC")
    trace = trace_from_series(pd.Series(values, index=index), name="noon-surge")
    settings = BacktestSettings(
        history=timedelta(days=3, hours=start_hour), warmup=timedelta(minutes=30)
    )
    stack = load_backtest_stack()
    if not profile:
        forecast = stack.config.forecast
        off = forecast.untrusted_profile.model_copy(update={"enabled": False})
        config = stack.config.model_copy(
            update={"forecast": forecast.model_copy(update={"untrusted_profile": off})}
        )
        stack = replace(stack, config=config)
    return run_backtest(trace, build_strategies(names, stack=stack), settings=settings)


@pytest.fixture(scope="module")
def surge() -> tuple[BacktestResult, list[dict[str, Any]]]:
    """Three days of history, then 10:30-12:40 of the fourth day; every decide() call is recorded."""
    calls: list[dict[str, Any]] = []
    real = driver.cycle.decide

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(**kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(driver.cycle, "decide", spy)
        result = backtest(noon_surge(DAY3_NOON + 40), ["reactive", "mirrorcast"])
    return result, calls


def test_every_cycle_goes_through_the_drivers_decide(
    surge: tuple[BacktestResult, list[dict[str, Any]]],
) -> None:
    result, calls = surge
    assert len(calls) == result.runs["mirrorcast"].extra["cycles"] > 20
    first = calls[0]
    # The trace as the pool's demand, and the simulated region's health checks.
    assert set(first["history"]) == {"app"}
    assert set(first["history"]["app"]) == {"rps", "primary_healthy"}
    assert first["config"].pools["app"].metrics["rps"].per_instance_capacity == pytest.approx(
        result.model.instance_capacity
    )
    # Only the past is handed over, at the cycle's own time.
    for call in calls:
        assert call["history"]["app"]["rps"].index[-1] < call["now"]


def test_the_planners_explanations_are_in_the_result(
    surge: tuple[BacktestResult, list[dict[str, Any]]],
) -> None:
    result, _ = surge
    notes = result.runs["mirrorcast"].notes
    assert notes, "the forecast surge should have produced at least one plan"
    first = notes[0]
    assert first.at < result.trace.demand.index[DAY3_NOON]
    assert "forecast-floor" in first.explanation
    assert any("primary.capacity.min" in change for change in first.changes)
    plans = result.to_json()["strategies"]["mirrorcast"]["plans"]
    assert plans[0]["explanation"] == first.explanation


def test_capacity_for_a_forecast_surge_is_ready_before_it_where_reactive_falls_short(
    surge: tuple[BacktestResult, list[dict[str, Any]]],
) -> None:
    result, _ = surge
    reactive = result.runs["reactive"]
    mirrorcast = result.runs["mirrorcast"]
    short = result.model.underprovisioned(result.demand, reactive.record)
    assert short[DAY3_NOON : DAY3_NOON + 10].all()  # reactive needs two cycles to catch up
    need = result.model.instances_for(80 * 1.03)
    # Raised ahead by the forecast-floor rule, serving before 12:00.
    assert mirrorcast.record.primary_ready[DAY3_NOON - 1] >= need
    assert reactive.record.primary_ready[DAY3_NOON - 1] < need


def test_a_forecast_surge_is_served_from_its_first_minute(
    surge: tuple[BacktestResult, list[dict[str, Any]]],
) -> None:
    result, _ = surge
    assert result.runs["mirrorcast"].score.underprovisioned_minutes == 0


def test_mirrorcast_never_sees_a_poisoned_future() -> None:
    clean = noon_surge(DAY3_NOON + 20)
    poisoned = clean.copy()
    cut = DAY3_NOON - 25
    poisoned[cut:] = 1e6
    runs = [
        backtest(values, ["mirrorcast"], start_hour=11).runs["mirrorcast"]
        for values in (clean, poisoned)
    ]
    before = cut + 5
    assert np.array_equal(
        runs[0].record.primary_running[:before], runs[1].record.primary_running[:before]
    )
    assert [n.at for n in runs[0].notes if n.at.minute + 60 * n.at.hour <= (cut % 1440)] == [
        n.at for n in runs[1].notes if n.at.minute + 60 * n.at.hour <= (cut % 1440)
    ]
    assert not np.array_equal(runs[0].record.primary_running, runs[1].record.primary_running)


def test_without_seasonality_mirrorcast_falls_back_to_the_reactive_autoscaler() -> None:
    # With forecast.untrusted_profile off: the untrusted forecast leaves the pool to the
    # reactive autoscaler. (With it on, the same-hour profile of this noise is a floor at its
    # usual level, which the profile's replay credits for covering the noise's troughs:
    # tests/forecasting/test_untrusted_profile.py.)
    rng = np.random.default_rng(2)
    noise = rng.gamma(4.0, 10.0, 3 * 1440 + 12 * 60 + 60)
    result = backtest(noise, ["reactive", "mirrorcast"], profile=False)
    mirrorcast = result.runs["mirrorcast"]
    assert mirrorcast.extra["untrusted_cycles"] == mirrorcast.extra["cycles"]
    assert not mirrorcast.notes
    assert np.array_equal(
        mirrorcast.record.primary_running, result.runs["reactive"].record.primary_running
    )


def test_the_simulated_autoscaler_tracks_the_target_the_plans_set() -> None:
    values = noon_surge(DAY3_NOON + 20)
    index = pd.date_range("2024-03-04", periods=len(values), freq="min", tz="UTC")
    trace = trace_from_series(pd.Series(values, index=index), name="noon-surge")
    (strategy,) = build_strategies(["mirrorcast"], stack=load_backtest_stack())
    assert isinstance(strategy, MirrorcastStrategy)
    settings = BacktestSettings(history=timedelta(days=3, hours=11), warmup=timedelta(minutes=30))
    result = run_backtest(trace, [strategy], settings=settings)

    changes = [c for note in result.runs["mirrorcast"].notes for c in note.changes]
    # The default stack's floor rule runs the autoscaler at 85% while it follows the forecast
    # (the stack configures 60%), and the simulated target-tracking policy follows the stack.
    assert "pools.app.primary.autoscaler_target: 60 -> 85" in changes
    assert strategy.config.pools["app"].primary.autoscaler_target == 85
    assert strategy._tracker is not None and strategy._tracker.target == pytest.approx(0.85)


class TestActuationDelay:
    """A plan reaches the cloud one actuation delay (the cycle and `pulumi up`) after it is made."""

    @staticmethod
    def run(delay: timedelta) -> BacktestResult:
        values = noon_surge(DAY3_NOON + 40)
        index = pd.date_range("2024-03-04", periods=len(values), freq="min", tz="UTC")
        trace = trace_from_series(pd.Series(values, index=index), name="noon-surge")
        settings = BacktestSettings(
            history=timedelta(days=3, hours=11),
            warmup=timedelta(minutes=30),
            timing=CloudTiming(actuation_delay=delay),
        )
        stack = load_backtest_stack()
        return run_backtest(trace, build_strategies(["mirrorcast"], stack=stack), settings=settings)

    def test_the_floor_starts_booting_only_after_the_delay(self) -> None:
        for delay in (0, 3):
            result = self.run(timedelta(minutes=delay))
            run = result.runs["mirrorcast"]
            running = run.record.primary_running
            # The first plan that raises the floor above what runs (the noon surge's).
            for note in run.notes:
                decided = int((note.at - result.trace.start).total_seconds() // 60)
                raised = [int(c.rsplit("-> ", 1)[1]) for c in note.changes if "capacity.min" in c]
                if raised and raised[0] > running[decided - 1]:
                    break
            else:
                raise AssertionError("no plan raised the floor above the running primary")
            # Nothing new runs between the decision and the change reaching the cloud.
            assert running[decided : decided + delay].max(initial=0) < raised[0]
            assert running[decided + delay] >= raised[0]

    def test_a_longer_delay_is_planned_for_with_a_longer_lead(self) -> None:
        # The planner adds the (simulated, as measured) actuation time to the rule's lead, so
        # even a 4-minute `pulumi up` has the floor serving when the noon surge arrives.
        result = self.run(timedelta(minutes=4))
        assert result.runs["mirrorcast"].score.underprovisioned_minutes == 0
        explanations = " ".join(n.explanation for n in result.runs["mirrorcast"].notes)
        assert "time-to-ready 9m" in explanations


class GapThenUnusable:
    """An engine that forecasts once from whatever history it is given, then never again.

    Its one forecast is issued at the last observation it was shown, as the real engine's is
    (``Forecast.issued_at``); every later call fails as an unusable series does.
    """

    def __init__(self) -> None:
        self.issued: list[pd.Timestamp] = []

    def forecast(self, history: pd.Series, *, pool: str, metric: str, **_: Any) -> Forecast:
        if self.issued:
            raise UnusableSeriesError(f"{pool}.{metric}", "no points in the last hour")
        issued = history.index[-1].to_pydatetime()
        self.issued.append(history.index[-1])
        step = timedelta(minutes=5)
        level = np.full(48, float(history.iloc[-1]))
        return Forecast(
            pool=pool,
            metric=metric,
            issued_at=issued,
            step=step,
            times=[issued + step * i for i in range(1, 49)],
            mean=level,
            quantiles={q: level for q in (50, 80, 90, 95, 99)},
            model="gap-then-unusable",
        )


class TestTheLastGoodForecastsAreTheServices:
    """The backtest falls back on the forecasts the service would fall back on (CycleState)."""

    def test_a_fresh_forecast_after_a_gap_is_kept_for_the_next_failing_cycle(self) -> None:
        # Three days of history, then a 15-minute gap just before the first cycle (day 3,
        # 23:00 with a one-hour warm-up): the first forecast is issued at the gap's start,
        # 16 minutes before its cycle, more than one 5-minute cycle ago. The service keeps it
        # (driver.cycle.good_forecasts: every trusted forecast); the backtest used to keep only
        # forecasts issued within one interval, so the next cycle had nothing to fall back on.
        values = np.full(3 * 1440 + 60, 20.0)
        first_cycle = 3 * 1440 - 60
        values[first_cycle - 15 : first_cycle] = np.nan
        index = pd.date_range("2024-03-04", periods=len(values), freq="min", tz="UTC")
        trace = trace_from_series(pd.Series(values, index=index), name="gap")
        stack = load_backtest_stack()
        engine = GapThenUnusable()
        strategy = MirrorcastStrategy(
            config=stack.config, pool=stack.pool, metric=stack.metric, engine=engine
        )

        run_backtest(trace, [strategy], settings=SETTINGS)

        assert engine.issued == [index[first_cycle - 16]]
        second = next(line for line in strategy.degraded if line.startswith("app.rps:"))
        assert second == (
            "app.rps: unusable series: no points in the last hour; "
            "using the forecast issued 21m ago"
        )
        # Kept while younger than forecast.max_staleness (30m), then passed on untrusted.
        assert strategy.state.last_good["app"]["rps"].issued_at == engine.issued[0]
