"""``--outage``: the primary's region serves nothing for a while; the warm mirror takes over."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driver.backtest import BacktestSettings, CloudTiming, SimulatedCloud, run_backtest
from driver.backtest.errors import BacktestError
from driver.backtest.stack import build_strategies, load_backtest_stack
from driver.backtest.trace import trace_from_series
from infra.config import MirrorcastConfig


class TestTheSimulatedRegion:
    def test_serves_nothing_while_out_and_starts_cold_after(self) -> None:
        cloud = SimulatedCloud(minutes=60, initial=4, timing=CloudTiming(), outage=(10, 20))
        cloud.advance(60)
        record = cloud.record()
        assert record.primary_ready[:10].tolist() == [4] * 10
        assert record.primary_ready[10:25].tolist() == [0] * 15  # out, then a 5-minute boot
        assert record.primary_ready[25:].tolist() == [4] * 35
        # Nobody turned the instances off: they cost throughout.
        assert record.primary_running.tolist() == [4] * 60
        assert cloud.primary_down(10) and not cloud.primary_down(20)


def steady_day(days: float = 3.5, *, seed: int = 3) -> pd.Series:
    """A daily cycle (20 at night, 60 by day) with a little noise, per minute."""
    minutes = int(days * 1440)
    rng = np.random.default_rng(seed)
    clock = np.arange(minutes) % 1440
    base = 20 + 40 * np.exp(-(((clock - 720) / 240.0) ** 2))
    index = pd.date_range("2024-03-04", periods=minutes, freq="min", tz="UTC")
    return pd.Series(base * rng.uniform(0.97, 1.03, minutes), index=index)


@pytest.fixture(scope="module")
def outage_run():  # type: ignore[no-untyped-def]
    trace = trace_from_series(steady_day(), name="steady-day")
    start = trace.start + pd.Timedelta(days=3, hours=2)
    settings = BacktestSettings(
        history=timedelta(days=3),
        warmup=timedelta(minutes=30),
        outage=(start, timedelta(hours=1)),
    )
    strategies = build_strategies(["reactive", "mirrorcast"], stack=load_backtest_stack())
    return run_backtest(trace, strategies, settings=settings)


def test_a_single_region_pool_loses_the_whole_outage(outage_run) -> None:  # type: ignore[no-untyped-def]
    reactive = outage_run.runs["reactive"].extra
    assert reactive["outage_minutes"] == 60
    assert reactive["outage_underprovisioned_minutes"] == 60


def test_the_health_driven_switchover_serves_most_of_it_from_the_mirror(outage_run) -> None:  # type: ignore[no-untyped-def]
    mirrorcast = outage_run.runs["mirrorcast"]
    lost = mirrorcast.extra["outage_underprovisioned_minutes"]
    # The outage starts on a cycle: the health watch sees it a minute later (driver.health_watch
    # 1m), and the plan of that early cycle activates the mirror and moves the traffic at once;
    # then `up` (2 min) and the warm mirror (2 min), with the DNS TTL (1 min) running meanwhile:
    # five minutes of the hour. Before the watch and the early shift: 14.
    assert lost <= 6, lost
    assert mirrorcast.extra["early_cycles"] == 1
    assert mirrorcast.score.mirror_activations == 1
    explanations = " ".join(note.explanation for note in mirrorcast.notes)
    assert "region-failover" in explanations
    # Once the region is back and healthy past the rollback grace, traffic returns.
    assert mirrorcast.record.mirror_share[-1] == 0


def test_the_failover_plan_moves_the_traffic_in_the_plan_that_activates_the_mirror(
    outage_run,
) -> None:  # type: ignore[no-untyped-def]
    # The simulated balancer sees no healthy primary target while the region is out, so the
    # planner does not wait a cycle for the mirror's health (tests/policies/test_failover_switchover.py).
    mirrorcast = outage_run.runs["mirrorcast"]
    first = next(
        note for note in mirrorcast.notes if any("mirror.state" in c for c in note.changes)
    )
    assert any("balancer.weights.mirror: 0 -> 100" in c for c in first.changes), first.changes


def test_the_simulated_balancer_reports_no_healthy_primary_target_while_out() -> None:
    from driver.backtest.cloud import SimulatedObserver

    config = load_backtest_stack().config
    spec = config.pools["app"]
    cloud = SimulatedCloud(minutes=60, initial=4, timing=CloudTiming(), outage=(10, 20))
    observer = SimulatedObserver(cloud)
    cloud.advance(10)  # the cycle at minute 10 has seen minutes 0-9: all healthy
    assert observer.observe_side(pool="app", spec=spec, role="primary").healthy_targets == 4
    cloud.advance(11)
    side = observer.observe_side(pool="app", spec=spec, role="primary")
    assert side.healthy_targets == 0 and side.serving == 4
    assert side.targets == {"healthy": 0, "unhealthy": 4, "initial": 0}


def test_a_primary_scaling_out_is_not_failing() -> None:
    # Three serving and five booting: the new instances are not failures, and a watch that took
    # them for one would start a needless cycle at every scale-out.
    from datetime import UTC, datetime

    from driver.backtest.cloud import SimulatedObserver
    from driver.observers import PoolObservation, primary_health

    spec = load_backtest_stack().config.pools["app"]
    cloud = SimulatedCloud(minutes=60, initial=3, timing=CloudTiming(), outage=(30, 40))
    observer = SimulatedObserver(cloud)
    cloud.advance(10)
    cloud.set_primary(8, at=10)
    side = observer.observe_side(pool="app", spec=spec, role="primary")
    seen = PoolObservation(pool="app", at=datetime(2024, 3, 4, tzinfo=UTC), primary=side)
    health = primary_health(seen)
    assert health is not None and (health.fleet, health.healthy) == (3, 3)
    cloud.advance(31)  # minute 30 is out: the eight now run, none passes
    side = observer.observe_side(pool="app", spec=spec, role="primary")
    out = primary_health(
        PoolObservation(pool="app", at=datetime(2024, 3, 4, tzinfo=UTC), primary=side)
    )
    assert out is not None and (out.fleet, out.healthy) == (8, 0)


def test_without_the_health_watch_the_failure_waits_for_the_next_cycle(outage_run) -> None:  # type: ignore[no-untyped-def]
    stack = load_backtest_stack()
    data = stack.config.model_dump(mode="json", by_alias=True)
    data["driver"]["health_watch"] = None
    unwatched = replace(stack, config=MirrorcastConfig.model_validate(data))
    result = run_backtest(
        outage_run.trace,
        build_strategies(["mirrorcast"], stack=unwatched),
        settings=outage_run.settings,
    )
    mirrorcast = result.runs["mirrorcast"]
    assert mirrorcast.extra["early_cycles"] == 0
    # Seen at the next cycle (5 min), then `up` and the warm mirror: nine minutes or more.
    assert mirrorcast.extra["outage_underprovisioned_minutes"] >= 9
    watched = outage_run.runs["mirrorcast"].extra["outage_underprovisioned_minutes"]
    assert watched < mirrorcast.extra["outage_underprovisioned_minutes"]


def test_without_an_outage_the_failover_rule_never_fires() -> None:
    trace = trace_from_series(steady_day(3.2), name="steady-day")
    settings = BacktestSettings(history=timedelta(days=3), warmup=timedelta(minutes=30))
    result = run_backtest(
        trace, build_strategies(["mirrorcast"], stack=load_backtest_stack()), settings=settings
    )
    assert result.runs["mirrorcast"].score.mirror_activations == 0
    assert result.runs["mirrorcast"].extra["early_cycles"] == 0  # the watch woke nothing
    assert "outage_minutes" not in result.runs["mirrorcast"].extra


def test_an_outage_outside_the_scored_part_is_refused(elb_excerpt: Path) -> None:
    from driver.backtest import load_trace

    trace = load_trace(elb_excerpt)
    settings = BacktestSettings(history=timedelta(days=3), outage=(trace.start, timedelta(hours=1)))
    with pytest.raises(BacktestError, match=r"--outage starts at .* outside the scored part"):
        run_backtest(
            trace, build_strategies(["reactive"], stack=load_backtest_stack()), settings=settings
        )


def test_a_metric_marked_forecast_false_is_read_but_never_forecast() -> None:
    """The health check feeds current(...) only: forecasting it cost a model fit every cycle."""
    from datetime import datetime

    from driver.backtest.stack import default_engine
    from driver.cycle import decide
    from policies import PlannerMemory

    config = load_backtest_stack().config
    assert config.pools["app"].metrics["primary_healthy"].forecast is False
    asked: list[tuple[str, str]] = []
    engine = default_engine(config)
    real = engine.forecast_many

    def spy(histories, **kwargs):  # type: ignore[no-untyped-def]
        asked.extend(histories)
        return real(histories, **kwargs)

    engine.forecast_many = spy  # type: ignore[method-assign]
    demand = steady_day(3.0)
    now = demand.index[-1].to_pydatetime()
    health = pd.Series(0.0, index=demand.index[-30:])
    result = decide(
        config=config,
        history={"app": {"rps": demand, "primary_healthy": health}},
        engine=engine,
        now=now,
        memory=PlannerMemory(),
    )
    assert asked == [("app", "rps")]
    assert set(result.forecasts["app"]) == {"rps"}
    assert not any("primary_healthy" in line for line in result.degraded)
    # ... and the failover rule read it: the primary's health checks fail, the mirror is asked for.
    assert any(o.rule == "region-failover" and o.fired for o in result.plan.rules)
    assert isinstance(now, datetime)


def test_the_command_takes_an_outage_and_refuses_a_bad_one(
    elb_excerpt: Path, tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from driver.cli import app

    out = tmp_path / "r.json"
    runner = CliRunner()
    args = ["backtest", str(elb_excerpt), "--history", "3d", "--strategies", "reactive"]
    result = runner.invoke(app, [*args, "--outage", "12h,1h", "--json", str(out)])
    assert result.exit_code == 0, result.output
    entry = json.loads(out.read_text())["strategies"]["reactive"]
    assert entry["outage_minutes"] == 60
    assert entry["outage_underprovisioned_minutes"] == 60
    assert "reactive: short 60 of the 60 outage minutes" in result.stdout
    bad = runner.invoke(app, [*args, "--outage", "soon,1h"])
    assert bad.exit_code == 2
    assert "--outage start 'soon' is neither a time" in " ".join(bad.output.split())
