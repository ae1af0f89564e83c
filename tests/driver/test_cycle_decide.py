"""``driver.cycle.decide``: forecasts with stated fallbacks, then the real planner."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from driver_helpers import NOW, ScriptedEngine, flat, history, with_changes

from driver.cycle import decide
from infra.config import load_stack
from policies import PlannerMemory


def test_a_predicted_peak_plans_the_mirror_activation(project: Path) -> None:
    config = load_stack("demo", project)
    engine = ScriptedEngine({"cpu": 95.0, "rps": 100.0})

    result = decide(
        config=config, history=history(), engine=engine, now=NOW, memory=PlannerMemory()
    )

    changed = {c.path: c.new for c in result.plan.changes}
    assert (
        str(getattr(changed["pools.web.mirror.state"], "value", changed["pools.web.mirror.state"]))
        == "active"
    )
    assert any(r.rule == "predicted-cpu" and r.fired for r in result.plan.rules)
    assert result.degraded == []
    assert set(result.forecasts["web"]) == {"cpu", "rps"}
    assert result.plan.memory.pools["web"].activation_id is not None


def test_observations_after_now_are_never_seen_by_the_engine(project: Path) -> None:
    config = load_stack("demo", project)
    engine = ScriptedEngine({"cpu": 40.0, "rps": 100.0})

    decide(config=config, history=history(), engine=engine, now=NOW, memory=PlannerMemory())

    assert engine.seen["cpu"].index.max() <= pd.Timestamp(NOW)
    assert engine.seen["cpu"].index.max() == pd.Timestamp(NOW)


def test_an_unusable_series_falls_back_to_a_recent_forecast(project: Path) -> None:
    config = load_stack("demo", project)
    engine = ScriptedEngine({"rps": 100.0}, unusable=("cpu",))
    recent = flat("web", "cpu", issued=NOW - timedelta(minutes=10), level=50.0)

    result = decide(
        config=config,
        history=history(),
        engine=engine,
        now=NOW,
        memory=PlannerMemory(),
        last_good={"web": {"cpu": recent}},
    )

    assert result.forecasts["web"]["cpu"] is recent
    assert result.degraded == [
        "web.cpu: unusable series: only 3 points in the last 14 days; using the forecast issued 10m ago"
    ]


def test_a_forecast_older_than_max_staleness_is_passed_on_as_untrusted(project: Path) -> None:
    config = load_stack("demo", project)
    engine = ScriptedEngine({"rps": 100.0}, unusable=("cpu",))
    old = flat("web", "cpu", issued=NOW - timedelta(hours=2), level=95.0)

    result = decide(
        config=config,
        history=history(),
        engine=engine,
        now=NOW,
        memory=PlannerMemory(),
        last_good={"web": {"cpu": old}},
    )

    used = result.forecasts["web"]["cpu"]
    assert not used.trusted and "older than max_staleness 30m" in (used.reason or "")
    assert "passed on as untrusted" in result.degraded[0]
    # The rule then follows on_untrusted (reactive by default) instead of firing on a stale peak.
    assert not any(r.rule == "predicted-cpu" and r.fired for r in result.plan.rules)


def test_with_no_forecast_and_nothing_to_fall_back_on_the_metric_is_left_out(project: Path) -> None:
    config = load_stack("demo", project)
    engine = ScriptedEngine({"rps": 100.0}, unusable=("cpu",))

    result = decide(
        config=config, history=history(), engine=engine, now=NOW, memory=PlannerMemory()
    )

    assert "cpu" not in result.forecasts["web"]
    assert result.degraded == [
        "web.cpu: unusable series: only 3 points in the last 14 days; no earlier forecast, left out"
    ]


def test_a_metric_without_observations_is_reported(project: Path) -> None:
    config = load_stack("demo", project)
    data = history()
    del data["web"]["rps"]

    result = decide(
        config=config,
        history=data,
        engine=ScriptedEngine({"cpu": 40.0}),
        now=NOW,
        memory=PlannerMemory(),
    )

    assert result.degraded == ["web.rps: no observations; no earlier forecast, left out"]


def test_a_persons_rollback_request_reaches_the_planner(project: Path) -> None:
    config = load_stack("demo", project)
    engine = ScriptedEngine({"cpu": 95.0, "rps": 100.0})
    activated = decide(
        config=config, history=history(), engine=engine, now=NOW, memory=PlannerMemory()
    )
    active_config = with_changes(config, activated.plan.changes)
    later = NOW + timedelta(minutes=20)
    calm = ScriptedEngine({"cpu": 95.0, "rps": 100.0})

    result = decide(
        config=active_config,
        history=history(),
        engine=calm,
        now=later,
        memory=activated.plan.memory,
        rollback_requested=frozenset({"web"}),
    )

    assert any(d.action == "rollback" for d in result.plan.decisions), result.plan.explanation
    assert "person" in result.plan.explanation


def test_decide_refuses_a_naive_now(project: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(
            config=load_stack("demo", project),
            history={},
            engine=ScriptedEngine({}),
            now=NOW.replace(tzinfo=None),
            memory=PlannerMemory(),
        )
