"""A floor raised by ``scale_primary to_forecast`` follows the forecast, up and down.

The pool is the backtest's default stack (``driver/backtest/default_stack.yaml``) pinned to
these settings, so the cases specify the planner rather than that file's current tuning: one
pool ``app`` on the cloud's autoscaler (configured target 60%), an ``rps`` metric (10 rps per
instance here) and the rule ``forecast-floor``: ``predicted(rps, p90) > current(rps) within
10m`` sizing the floor to the p90 forecast at 75% utilisation, i.e. ``ceil(p90 / 7.5)``
instances. Guardrails: cooldown 15m, hysteresis 5%, primary ready in 5m, rollback grace 30m.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from policy_builders import T0, flat, forecast

from forecasting import Forecast
from infra.config import MirrorcastConfig, config_from_mapping, load_stack_file
from policies import MirrorHealth, Plan, PlannerMemory, PlanningInput, plan

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STACK = ROOT / "driver" / "backtest" / "default_stack.yaml"
MIN5 = timedelta(minutes=5)
FLOOR = "pools.app.primary.capacity.min"
SAME = {50: 0.0, 80: 0.0, 90: 0.0, 95: 0.0}  # quantiles equal to the median: sizes are exact


def app_data(**capacity: int) -> dict[str, Any]:
    """The default backtest stack pinned to the settings in the module docstring."""
    data = load_stack_file(DEFAULT_STACK).model_dump(mode="json")
    app = data["pools"]["app"]
    app["metrics"]["rps"]["per_instance_capacity"] = 10
    app["primary"]["capacity"].update(capacity)
    app["primary"]["autoscaler_target"] = 60
    app["guardrails"]["cooldown"] = "15m"
    rule = app["rules"][0]
    rule["when"] = "predicted(rps, p90) > current(rps) within 10m"
    rule["actions"][0].update(quantile=90, target_utilisation=75, autoscaler_target=None)
    return data


def app_config(
    *, rule: dict[str, Any] | None = None, action: dict[str, Any] | None = None, **capacity: int
) -> MirrorcastConfig:
    """The pinned stack at 10 rps per instance, with capacity keys and floor-rule keys replaced."""
    data = app_data(**capacity)
    floor = data["pools"]["app"]["rules"][0]
    floor.update(rule or {})
    floor["actions"][0].update(action or {})
    return config_from_mapping({f"mirrorcast:{k}": v for k, v in data.items()})


def rps_forecast(values: Sequence[float], *, now: datetime, trusted: bool = True) -> Forecast:
    return forecast(
        values,
        issued_at=now,
        metric="rps",
        pool="app",
        spread=SAME,
        trusted=trusted,
        reason=None if trusted else "no seasonality to learn",
    )


def cycle(
    config: MirrorcastConfig,
    *,
    now: datetime,
    demand: float,
    ahead: Sequence[float],
    memory: PlannerMemory | None,
    trusted: bool = True,
) -> Plan:
    """One planning cycle: demand flat at ``demand`` up to now, the forecast ``ahead``."""
    return plan(
        PlanningInput(
            config=config,
            now=now,
            current={"app": {"rps": flat(demand, end=now)}},
            forecasts={"app": {"rps": rps_forecast(ahead, now=now, trusted=trusted)}},
            health={"app": MirrorHealth()},
            memory=memory or PlannerMemory(),
        )
    )


def run(config: MirrorcastConfig, steps: Sequence[tuple[float, Sequence[float]]]) -> list[Plan]:
    """Cycles every 5 minutes from T0, each applying the last plan's config (as the driver does)."""
    plans: list[Plan] = []
    memory: PlannerMemory | None = None
    for i, (demand, ahead) in enumerate(steps):
        result = cycle(config, now=T0 + MIN5 * i, demand=demand, ahead=ahead, memory=memory)
        plans.append(result)
        config, memory = result.stack_config, result.memory
    return plans


def floors(plans: Sequence[Plan]) -> list[int]:
    return [p.stack_config.pools["app"].primary.capacity.min for p in plans]


def needs(value: float) -> int:
    return math.ceil(value / 7.5)


def test_a_forecast_rise_raises_the_floor_one_ready_time_ahead() -> None:
    # Demand 30 now; the forecast reaches 90 in 15 minutes (inside 10m window + 5m ready time).
    result = cycle(app_config(), now=T0, demand=30, ahead=[30, 60, 90, 90], memory=None)

    assert {c.path: c.new for c in result.changes}[FLOOR] == needs(90) == 12
    assert result.memory.pools["app"].floor_rule == "forecast-floor"


def test_the_floor_follows_the_forecast_down_once_it_falls() -> None:
    # Demand arrives as forecast; from 12:20 the forecast falls to 40.
    plans = run(
        app_config(),
        [
            (30, [30, 60, 90, 90]),
            (30, [60, 90, 90, 90]),
            (60, [90] * 4),
            (90, [90] * 4),
            (90, [40] * 4),
            (40, [40] * 4),
        ],
    )

    # Up at once to the peak's need, held while the peak is forecast, down to the lower
    # forecast's need once it falls (the raise was 20 minutes ago: past the 15m cooldown).
    assert floors(plans) == [12, 12, 12, 12, needs(40), needs(40)]
    assert "floor follows the forecast down" in plans[4].explanation
    # The activation is still on (demand is there): only the floor moved.
    assert plans[4].memory.pools["app"].activation_id is not None


def test_the_floor_follows_a_second_rise_within_the_same_activation() -> None:
    plans = run(
        app_config(),
        [
            (30, [30, 60, 90, 90]),
            (30, [60, 90, 90, 90]),
            (60, [90] * 4),
            (90, [90] * 4),
            (90, [45] * 4),
            (45, [45, 75, 120, 120]),
        ],
    )

    assert floors(plans)[4] == needs(45 * 1.05)  # down, keeping the 5% hysteresis
    assert floors(plans)[5] == needs(120) == 16


def test_the_floor_waits_for_the_cooldown_before_coming_down() -> None:
    # The forecast falls one cycle after the raise: the floor holds until 15 minutes after it.
    fall = [40] * 4
    plans = run(
        app_config(), [(30, [30, 60, 90, 90]), (30, fall), (60, fall), (90, fall), (40, fall)]
    )

    assert floors(plans) == [12, 12, 12, needs(40), needs(40)]
    assert "cooldown" in {c for d in plans[1].decisions for c in d.clipped_by}


def test_a_forecast_hovering_at_an_instance_boundary_does_not_flap_the_floor() -> None:
    # 91 needs 13 instances, 89 needs 12, but 89 is within the 5% hysteresis of 91.
    demand = [30, 30, 60, 91, 91] + [90] * 7
    ahead = [[30, 60, 91, 91]] + [[89] * 4 if i % 2 else [91] * 4 for i in range(1, 12)]
    plans = run(app_config(), list(zip(demand, ahead, strict=True)))

    assert floors(plans) == [13] * 12
    assert all(FLOOR not in {c.path for c in p.changes} for p in plans[1:])


def test_a_forecast_falling_by_more_than_the_hysteresis_lowers_the_floor() -> None:
    demand = [30, 30, 60, 91, 91, 80]
    ahead = [[30, 60, 91, 91], [91] * 4, [91] * 4, [91] * 4, [80] * 4, [80] * 4]
    plans = run(app_config(), list(zip(demand, ahead, strict=True)))

    # 80 x 1.05 = 84 still needs fewer instances (12) than 91 does (13).
    assert floors(plans) == [13, 13, 13, 13, needs(80 * 1.05), needs(80 * 1.05)]


def test_the_floor_never_goes_below_the_original_min() -> None:
    plans = run(
        app_config(min=3, desired=3),
        [
            (3, [3, 30, 60, 60]),
            (3, [30, 60, 60, 60]),
            (30, [60] * 4),
            (60, [60] * 4),
            (60, [0] * 4),
        ],
    )

    assert floors(plans)[0] == needs(60)
    assert floors(plans)[-1] == 3


def test_the_floor_never_goes_above_the_max() -> None:
    plans = run(
        app_config(max=10),
        [(30, [30, 60, 90, 90]), (30, [90] * 4), (60, [300] * 4)],
    )

    assert floors(plans) == [10, 10, 10]
    assert all(
        p.stack_config.pools["app"].primary.capacity.min <= 10
        and p.stack_config.pools["app"].primary.capacity.desired <= 10
        for p in plans
    )
    assert "max_capacity" in {c for d in plans[0].decisions for c in d.clipped_by}


def test_an_untrusted_forecast_holds_the_floor() -> None:
    config = app_config()
    first = cycle(config, now=T0, demand=30, ahead=[30, 60, 90, 90], memory=None)
    held = cycle(
        first.stack_config,
        now=T0 + MIN5 * 4,
        demand=90,
        ahead=[10] * 4,
        memory=first.memory,
        trusted=False,
    )

    assert FLOOR not in {c.path for c in held.changes}
    assert "floor holds at 12" in held.explanation


def _with_surge_mirror(config: MirrorcastConfig) -> MirrorcastConfig:
    data: dict[str, Any] = config.model_dump(mode="json")
    data["pools"]["app"]["rules"].append(
        {
            "name": "surge-mirror",
            "when": "predicted(rps, p95) > 2 * current(rps) within 5m",
            "weight": 5,
            "actions": [
                {"type": "activate_mirror"},
                {"type": "shift_weights", "mirror": 20, "ramp": {"mode": "immediate"}},
            ],
        }
    )
    return config_from_mapping({f"mirrorcast:{k}": v for k, v in data.items()})


def test_the_mirror_stands_down_when_the_surge_has_passed_but_demand_stays() -> None:
    config = _with_surge_mirror(app_config())
    memory: PlannerMemory | None = None
    steps = [(30, [90] * 4)] + [(90, [90] * 4)] * 10
    states: list[tuple[str, int]] = []
    plans: list[Plan] = []
    for i, (demand, ahead) in enumerate(steps):
        now = T0 + MIN5 * i
        result = plan(
            PlanningInput(
                config=config,
                now=now,
                current={"app": {"rps": flat(demand, end=now)}},
                forecasts={"app": {"rps": rps_forecast(ahead, now=now)}},
                health={"app": MirrorHealth(running=3, healthy=3, ready=i > 0)},
                memory=memory or PlannerMemory(),
            )
        )
        plans.append(result)
        config, memory = result.stack_config, result.memory
        pool = config.pools["app"]
        states.append((pool.mirror.state.value, pool.balancer.weights.mirror))

    # Surge forecast at T0: mirror in, 20% once healthy. The surge rule stops firing at 12:05
    # (demand is at the forecast); 30 minutes after its last ask the mirror's weight goes to 0, one cycle of
    # drain, then it is paused, while the floor stays where the forecast puts it.
    assert states[0] == ("active", 0)
    assert states[1] == ("active", 20)
    stand_down = next(i for i, s in enumerate(states) if s[1] == 0 and i > 1)
    assert stand_down == 6  # 12:30: the last ask was at 12:00 (the 12:05 cycle did not ask)
    assert states[stand_down + 1] == ("paused", 0)
    assert all(s == ("paused", 0) for s in states[stand_down + 1 :])
    assert floors(plans)[-1] == needs(90)
    assert plans[-1].memory.pools["app"].activation_id is not None
    assert "mirror stands down 2/2" in plans[stand_down + 1].explanation


def fallback_config() -> MirrorcastConfig:
    """The pinned stack with the floor rule's reactive fallback: fire when untrusted, size at 60%."""
    return app_config(rule={"on_untrusted": "fire"}, action={"untrusted_utilisation": 60})


def test_an_untrusted_forecast_sizes_the_floor_for_current_demand_at_the_fallback_utilisation() -> (
    None
):
    result = cycle(
        fallback_config(), now=T0, demand=90, ahead=[500] * 4, memory=None, trusted=False
    )

    # The untrusted forecast (500) is ignored; current demand 90 at 60% of 10 rps needs 15.
    assert {c.path: c.new for c in result.changes}[FLOOR] == math.ceil(90 / 6) == 15
    assert "forecast unusable (no seasonality to learn)" in result.explanation
    assert "sized for the current rps at the untrusted utilisation" in result.explanation


def test_without_a_fallback_utilisation_an_untrusted_forecast_leaves_the_floor_alone() -> None:
    result = cycle(app_config(), now=T0, demand=90, ahead=[500] * 4, memory=None, trusted=False)

    assert FLOOR not in {c.path for c in result.changes}


def hot_config() -> MirrorcastConfig:
    """The pinned stack whose floor rule runs the autoscaler at 85% while it follows a forecast."""
    return app_config(action={"autoscaler_target": 85})


AUTOSCALER = "pools.app.primary.autoscaler_target"


def targets(plans: Sequence[Plan]) -> list[float]:
    return [p.stack_config.pools["app"].primary.autoscaler_target for p in plans]


def test_the_autoscaler_runs_hot_while_a_trusted_forecast_sizes_the_floor() -> None:
    result = cycle(hot_config(), now=T0, demand=30, ahead=[30, 60, 90, 90], memory=None)

    changes = {c.path: (c.old, c.new) for c in result.changes}
    assert changes[AUTOSCALER] == (60, 85)
    assert changes[FLOOR][1] == needs(90)
    assert "autoscaler target 60% -> 85%: the floor follows a trusted forecast" in (
        result.explanation
    )


def test_the_configured_autoscaler_target_returns_as_soon_as_the_forecast_is_untrusted() -> None:
    config, memory = hot_config(), None
    plans: list[Plan] = []
    for i, trusted in enumerate([True, True, False, False, True]):
        result = cycle(
            config,
            now=T0 + MIN5 * i,
            demand=60,
            ahead=[90] * 4,
            memory=memory,
            trusted=trusted,
        )
        plans.append(result)
        config, memory = result.stack_config, result.memory

    assert targets(plans) == [85, 85, 60, 60, 85]
    assert "(its configured value): forecast unusable (no seasonality to learn)" in (
        plans[2].explanation
    )


def test_rollback_restores_the_configured_autoscaler_target() -> None:
    # A rise is forecast, then demand and forecast fall to nothing for longer than the grace.
    steps: list[tuple[float, Sequence[float]]] = [(30, [30, 60, 90, 90])]
    steps += [(5, [5] * 4)] * 14
    plans = run(hot_config(), steps)

    (restored,) = [p for p in plans if "rollback 4/4" in p.explanation]
    assert targets(plans)[0] == 85
    assert restored.stack_config.pools["app"].primary.autoscaler_target == 60
    assert "desired 1, autoscaler target 60%" in restored.explanation


class TestDemandAboveTheForecast:
    """Escalation on a demand metric sizes the primary for the demand that came."""

    def test_the_primary_is_sized_for_the_demand_at_the_autoscalers_target(self) -> None:
        # The floor was sized for the p90 of 90 (12 instances); five minutes later 95 rps
        # arrive where the forecast said 30.
        plans = run(app_config(), [(30, [30, 60, 90, 90]), (95, [95, 95, 95, 95])])

        # 95 rps at the configured 60% of 10 rps: 16, not 12 x 95 / 30 = 38.
        assert floors(plans) == [12, 16]
        assert "ceil(95 / (10 x 60%)) = 16" in plans[-1].explanation
        assert plans[-1].memory.pools["app"].escalated

    def test_demand_the_raised_floor_already_serves_adds_nothing(self) -> None:
        # 40 rps is above the forecast of 30 for this time, and 12 instances serve it at 33%.
        plans = run(app_config(), [(30, [30, 60, 90, 90]), (40, [40, 60, 90, 90])])

        assert floors(plans) == [12, 12]
        assert "runs above the forecast" in plans[-1].explanation
