"""``backtest --sweep``: every strategy over its knob, frontiers, and the same-money ratio."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from driver.backtest import (
    BacktestSettings,
    ReactiveStrategy,
    Trace,
    load_trace,
    run_backtest,
    trace_from_series,
)
from driver.backtest.stack import (
    BacktestStack,
    build_strategies,
    default_engine,
    load_backtest_stack,
)
from driver.backtest.strategies import ScheduledPredictiveStrategy
from driver.backtest.sweep import (
    ForecastReplay,
    Frontier,
    FrontierPoint,
    SweepResult,
    compare_frontiers,
    floor_knobs,
    floor_strategy,
    run_sweep,
    same_money,
    with_floor_knobs,
)
from driver.commands.backtest import register

RUNNER = CliRunner()


def point(hours: float, short: int) -> FrontierPoint:
    return FrontierPoint(
        knobs={},
        underprovisioned_minutes=short,
        instance_hours=hours,
        cost_instance_hours=hours,
        default=False,
    )


REACTIVE = [point(100.0, 400), point(150.0, 100), point(200.0, 20)]


class TestTheSameMoneyRatio:
    def test_is_read_against_reactive_interpolated_at_the_same_instance_hours(self) -> None:
        judged = same_money(REACTIVE, instance_hours=125.0, short=125)
        assert judged is not None
        assert judged.reactive_short == pytest.approx(250.0)
        assert judged.ratio == pytest.approx(0.5)
        assert judged.bound == "exact"

    def test_cheaper_than_reactive_ever_runs_is_an_upper_bound(self) -> None:
        judged = same_money(REACTIVE, instance_hours=80.0, short=200)
        assert judged is not None
        assert (judged.ratio, judged.bound) == (pytest.approx(0.5), "at most")

    def test_dearer_than_reactive_ever_runs_is_a_lower_bound(self) -> None:
        judged = same_money(REACTIVE, instance_hours=300.0, short=10)
        assert judged is not None
        assert (judged.ratio, judged.bound) == (pytest.approx(0.5), "at least")

    def test_never_short_where_reactive_is_never_short_is_a_tie(self) -> None:
        flat = [point(100.0, 0), point(200.0, 0)]
        tie, worse = (same_money(flat, instance_hours=150.0, short=n) for n in (0, 3))
        assert tie is not None and tie.ratio == 1.0
        assert worse is not None and worse.ratio == math.inf


def surge_trace(days: int = 4) -> pd.Series:
    """20 units with noise, 80 from 12:00 to 13:59 every day: a cycle the engine learns."""
    minutes = days * 1440 + 14 * 60
    rng = np.random.default_rng(5)
    clock = np.arange(minutes) % 1440
    base = np.where((clock >= 12 * 60) & (clock < 14 * 60), 80.0, 20.0)
    index = pd.date_range("2024-03-04", periods=minutes, freq="min", tz="UTC")
    return pd.Series(base * rng.uniform(0.97, 1.03, minutes), index=index)


Surge = tuple[Trace, BacktestStack, SweepResult]

SURGE_SETTINGS = BacktestSettings(history=timedelta(days=3, hours=11), warmup=timedelta(minutes=30))


@pytest.fixture(scope="module")
def surge_sweep() -> Surge:
    trace = trace_from_series(surge_trace(), name="noon-surge")
    stack = load_backtest_stack()
    sweep = run_sweep(
        trace,
        stack=stack,
        settings=SURGE_SETTINGS,
        targets=(40, 60, 80),
        quantiles=(50, 95),
        utilisations=(60, 80),
    )
    return trace, stack, sweep


class TestASweep:
    def test_runs_each_strategy_over_its_knob_with_its_configured_point_marked(
        self, surge_sweep: Surge
    ) -> None:
        _, _, sweep = surge_sweep
        reactive = sweep.frontiers["reactive"]
        assert [p.knobs["target_utilisation"] for p in reactive.points] == [40, 60, 80]
        assert [p.knobs["target_utilisation"] for p in reactive.points if p.default] == [60]
        mirrorcast = sweep.frontiers["mirrorcast"]
        settings = {p.setting for p in mirrorcast.points}
        # The grid plus the stack's own floor (p90 at 75%).
        assert settings == {"p50 at 60%", "p50 at 80%", "p95 at 60%", "p95 at 80%", "p90 at 75%"}
        assert mirrorcast.default is not None and mirrorcast.default.setting == "p90 at 75%"

    def test_a_lower_target_spends_more_and_is_short_less(self, surge_sweep: Surge) -> None:
        _, _, sweep = surge_sweep
        for name in ("reactive", "scheduled-predictive"):
            hours = [p.instance_hours for p in sweep.frontiers[name].points]
            assert hours == sorted(hours, reverse=True), name
        low, _, high = sweep.frontiers["reactive"].points
        assert low.underprovisioned_minutes <= high.underprovisioned_minutes

    def test_the_floor_knobs_change_what_mirrorcast_spends(self, surge_sweep: Surge) -> None:
        _, _, sweep = surge_sweep
        by = {p.setting: p for p in sweep.frontiers["mirrorcast"].points}
        assert by["p95 at 60%"].instance_hours > by["p50 at 80%"].instance_hours

    def test_each_point_equals_a_plain_backtest_at_that_setting(self, surge_sweep: Surge) -> None:
        """The shared forecasts (ForecastReplay) change nothing: the sweep's points are real runs."""
        trace, stack, sweep = surge_sweep
        plain = run_backtest(
            trace, build_strategies(["mirrorcast"], stack=stack), settings=SURGE_SETTINGS
        ).runs["mirrorcast"]
        default = sweep.frontiers["mirrorcast"].default
        assert default is not None
        assert default.underprovisioned_minutes == plain.score.underprovisioned_minutes
        assert default.instance_hours == pytest.approx(plain.score.instance_hours)
        reactive = run_backtest(trace, [ReactiveStrategy(target=0.4)], settings=SURGE_SETTINGS)
        first = sweep.frontiers["reactive"].points[0]
        assert first.instance_hours == pytest.approx(reactive.runs["reactive"].score.instance_hours)

    def test_reactive_at_its_own_point_has_a_ratio_of_one_and_mirrorcast_beats_it_here(
        self, surge_sweep: Surge
    ) -> None:
        _, _, sweep = surge_sweep
        own, ours = sweep.same_money_ratio("reactive"), sweep.same_money_ratio("mirrorcast")
        assert own is not None and own.ratio == pytest.approx(1.0)
        # A daily surge the forecast sees coming: fewer short minutes than reactive buying
        # the same instance-hours of headroom.
        assert ours is not None and ours.ratio < 1.0
        document = sweep.to_json()
        assert set(document["frontiers"]) == {"reactive", "scheduled-predictive", "mirrorcast"}
        assert document["same_money_ratio"]["mirrorcast"]["ratio"] < 1.0
        efficient = [p for p in document["frontiers"]["reactive"]["points"] if p["efficient"]]
        assert efficient


class TestTheFloorKnobs:
    def test_are_read_from_the_stack_and_written_into_condition_and_floor(self) -> None:
        stack = load_backtest_stack()
        assert floor_knobs(stack.config, stack.pool) == {
            "quantile": 90.0,
            "target_utilisation": 75.0,
        }
        changed = with_floor_knobs(stack.config, stack.pool, quantile=95, target_utilisation=60)
        rule = changed.pools["app"].rules[0]
        assert "p95" in rule.when and "p90" not in rule.when
        assert floor_knobs(changed, "app") == {"quantile": 95.0, "target_utilisation": 60.0}

    def test_a_quantile_the_engine_does_not_forecast_is_refused(self) -> None:
        stack = load_backtest_stack()
        with pytest.raises(ValueError, match=r"quantile 75 is not in forecast.quantiles"):
            with_floor_knobs(stack.config, stack.pool, quantile=75, target_utilisation=60)

    def test_a_stack_without_a_forecast_floor_says_what_to_add(self) -> None:
        stack = load_backtest_stack()
        data = stack.config.model_dump(mode="json", by_alias=True)
        data["pools"]["app"]["rules"] = []
        bare = type(stack.config).model_validate(data)
        with pytest.raises(ValueError, match="no rule with a 'scale_primary' action"):
            floor_knobs(bare, "app")


class CountingEngine:
    def __init__(self) -> None:
        self.calls = 0

    def forecast(self, history: pd.Series, **kwargs: object) -> str:
        self.calls += 1
        return f"forecast of {len(history)} points"


def test_forecast_replay_forecasts_each_cycle_once() -> None:
    inner = CountingEngine()
    replay = ForecastReplay(inner)
    series = surge_trace(1)
    now = series.index[-1].to_pydatetime()
    first = replay.forecast(series, pool="app", metric="rps", now=now)
    again = replay.forecast(series, pool="app", metric="rps", now=now)
    longer = replay.forecast(series, pool="app", metric="rps", now=now + timedelta(minutes=5))
    assert first == again and inner.calls == 2 and longer == first
    assert (replay.hits, replay.misses) == (1, 2)


def app() -> typer.Typer:
    application = typer.Typer()

    @application.callback()
    def main() -> None:
        """mirrorcast (test)."""

    register(application)
    return application


def test_the_command_writes_frontiers_and_a_frontier_plot(
    elb_excerpt: Path, tmp_path: Path
) -> None:
    out, png = tmp_path / "sweep.json", tmp_path / "sweep.png"
    result = RUNNER.invoke(
        app(),
        [
            "backtest",
            str(elb_excerpt),
            "--history",
            "3d",
            "--sweep",
            "--strategies",
            "reactive,scheduled-predictive,oracle",
            "--json",
            str(out),
            "--plot",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["trace"] == load_trace(elb_excerpt).name
    targets = [
        p["knobs"]["target_utilisation"] for p in document["frontiers"]["reactive"]["points"]
    ]
    assert targets == list(range(30, 90, 5))
    assert set(document["references"]) == {"oracle"}
    assert "scheduled-predictive: same-money ratio" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweeping_a_knobless_strategy_alone_is_refused_with_the_reason(elb_excerpt: Path) -> None:
    stack = load_backtest_stack()
    with pytest.raises(ValueError, match="static-peak and oracle are run once for reference"):
        run_sweep(
            load_trace(elb_excerpt),
            stack=stack,
            settings=BacktestSettings(history=timedelta(days=3)),
            strategies=["oracle"],
        )


NASA_5MIN = Path(__file__).parents[1] / "data" / "nasa_http_5min_excerpt.csv"
# Half a day scored (the rest history): enough cycles for the floor settings to differ. An
# hour's warm-up, not the calibration's day (test_warmup.py): the points only have to agree.
NASA_SETTINGS = BacktestSettings(history=timedelta(days=3, hours=12), warmup=timedelta(hours=1))


class CountingForecasts:
    """The default engine, counting the cycles it is asked to forecast."""

    def __init__(self, engine: object) -> None:
        self.engine = engine
        self.calls = 0

    def forecast(self, history: pd.Series, **kwargs: object) -> object:
        self.calls += 1
        return self.engine.forecast(history, **kwargs)  # type: ignore[attr-defined]

    def forecast_many(self, histories: object, **kwargs: object) -> object:
        self.calls += 1
        return self.engine.forecast_many(histories, **kwargs)  # type: ignore[attr-defined]


def test_a_sweep_on_real_traffic_equals_every_setting_run_the_slow_way() -> None:
    """Four days of NASA's requests (a daily cycle the engine trusts), half a day scored: the sweep
    forecasts each cycle once and replays it to every floor setting, and every point it reports
    is what a plain backtest of that setting with its own engine gives; a frontier comparison
    is read from those points."""
    trace = load_trace(NASA_5MIN)
    stack = load_backtest_stack()
    engines: list[CountingForecasts] = []

    def counted(config: object) -> CountingForecasts:
        engines.append(CountingForecasts(default_engine(config)))  # type: ignore[arg-type]
        return engines[-1]

    sweep = run_sweep(
        trace,
        stack=stack,
        settings=NASA_SETTINGS,
        targets=(40, 70),
        quantiles=(50,),
        utilisations=(60,),
        engine_factory=counted,
    )
    (shared,) = engines
    points = sweep.frontiers["mirrorcast"].points
    assert {p.setting for p in points} == {"p50 at 60%", "p90 at 75%"}
    cycles = None
    for point in points:
        strategy = floor_strategy(
            stack, point.knobs, engine_factory=lambda c: CountingForecasts(default_engine(c))
        )
        own = strategy.engine
        assert isinstance(own, CountingForecasts)
        plain = run_backtest(trace, [strategy], settings=NASA_SETTINGS).runs["mirrorcast"]
        assert point.underprovisioned_minutes == plain.score.underprovisioned_minutes, point
        assert point.instance_hours == plain.score.instance_hours, point
        assert point.cost_instance_hours == plain.score.cost_instance_hours, point
        cycles = own.calls
    # One forecasting pass for the whole sweep, where the slow way makes one per setting.
    assert cycles and shared.calls == cycles
    by = {p.setting: p for p in points}
    assert by["p90 at 75%"].instance_hours != by["p50 at 60%"].instance_hours
    for name, strategy_cls in (
        ("reactive", ReactiveStrategy),
        ("scheduled-predictive", ScheduledPredictiveStrategy),
    ):
        for point in sweep.frontiers[name].points:
            target = point.knobs["target_utilisation"] / 100
            alone = run_backtest(trace, [strategy_cls(target=target)], settings=NASA_SETTINGS)
            score = alone.runs[name].score
            assert (point.underprovisioned_minutes, point.instance_hours) == (
                score.underprovisioned_minutes,
                score.instance_hours,
            )
    comparisons = sweep.comparisons()
    assert set(comparisons) == {"reactive", "scheduled-predictive"}
    document = sweep.to_json()["mirrorcast_frontier"]
    assert document["reactive"]["on_or_below"] == comparisons["reactive"].on_or_below


def frontier(name: str, *points: tuple[float, int]) -> Frontier:
    return Frontier(
        strategy=name, knob="-", points=[point(hours, short) for hours, short in points]
    )


class TestComparingFrontiers:
    def test_below_at_every_instance_hours_both_span(self) -> None:
        mine = frontier("mirrorcast", (120.0, 200), (160.0, 40), (220.0, 0))
        judged = compare_frontiers(
            mine,
            frontier(
                "reactive", *[(p.instance_hours, p.underprovisioned_minutes) for p in REACTIVE]
            ),
        )
        assert judged.overlap == (120.0, 200.0)
        assert judged.on_or_below is True
        # Reactive at 120 is interpolated (400 -> 100 from 100 to 150): 280; mine 200 there.
        assert judged.worst_excess is not None and judged.worst_excess < 0

    def test_above_between_points_is_found_where_the_other_curve_bends(self) -> None:
        # Equal at both ends, but the other frontier dips at 150 where mine is a straight line.
        mine = frontier("mirrorcast", (100.0, 400), (200.0, 20))
        other = frontier("reactive", (100.0, 400), (150.0, 100), (200.0, 20))
        judged = compare_frontiers(mine, other)
        assert judged.on_or_below is False
        assert judged.at_hours == 150.0
        assert judged.worst_excess == pytest.approx(210.0 - 100.0)
        assert judged.other_short == pytest.approx(100.0)

    def test_equal_frontiers_are_on_it(self) -> None:
        same = [(100.0, 400), (150.0, 100), (200.0, 20)]
        judged = compare_frontiers(frontier("mirrorcast", *same), frontier("reactive", *same))
        assert (judged.on_or_below, judged.worst_excess) == (True, 0.0)

    def test_only_efficient_points_make_the_curve(self) -> None:
        # A dominated point (dearer and shorter of capacity than another) is no part of it.
        mine = frontier("mirrorcast", (100.0, 50), (150.0, 80), (200.0, 10))
        other = frontier("reactive", (100.0, 60), (200.0, 12))
        assert compare_frontiers(mine, other).on_or_below is True

    def test_frontiers_that_do_not_overlap_are_not_judged(self) -> None:
        judged = compare_frontiers(
            frontier("mirrorcast", (300.0, 5), (400.0, 0)), frontier("reactive", (100.0, 9))
        )
        assert (judged.overlap, judged.on_or_below) == (None, None)


def test_the_command_says_whether_mirrorcasts_frontier_lies_on_or_below() -> None:
    from rich.console import Console

    from driver.commands.backtest import _print_sweep

    sweep = SweepResult(
        trace=trace_from_series(surge_trace(1), name="t"),
        scored_minutes=1440,
        instance_capacity=10.0,
        frontiers={
            "reactive": frontier("reactive", (100.0, 400), (150.0, 100), (200.0, 20)),
            "scheduled-predictive": frontier("scheduled-predictive", (90.0, 300), (130.0, 90)),
            "mirrorcast": frontier("mirrorcast", (120.0, 200), (160.0, 40), (220.0, 0)),
        },
    )
    console = Console(record=True, width=200)
    _print_sweep(sweep, console)
    text = console.export_text()
    assert (
        "mirrorcast's frontier lies on or below reactive's over 120.0-200.0 instance-hours" in text
    )
    # At 130 instance-hours mirrorcast's line is at 160 short minutes (200 -> 40 from 120 to
    # 160), scheduled-predictive's last point at 90.
    assert (
        "lies above scheduled-predictive's over 120.0-130.0 instance-hours (worst gap +70 "
        "short min at 130.0)" in text
    )


def test_a_frontier_is_flat_from_its_last_efficient_point_to_its_dearest_setting() -> None:
    # Reactive is never short from 150 instance-hours on; mirrorcast, dearer, still is: above.
    other = frontier("reactive", (100.0, 30), (150.0, 0), (200.0, 0), (260.0, 0))
    mine = frontier("mirrorcast", (210.0, 4), (240.0, 2))
    judged = compare_frontiers(mine, other)
    assert judged.overlap == (210.0, 240.0)
    assert (judged.on_or_below, judged.worst_excess, judged.at_hours) == (False, 4.0, 210.0)
