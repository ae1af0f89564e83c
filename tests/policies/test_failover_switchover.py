"""Region failover: when the primary is observed failing, traffic moves without waiting for the
mirror's health, because the traffic it moves is not being served anyway.

The ramp gate (tests/policies/test_mirror_health_gate.py) holds every weight step until the
mirror has enough healthy targets. During a primary outage that wait costs a cycle, another
`pulumi up` and the DNS TTL (docs/backtest.md, "Outage"): the shift would only be planned on
the cycle after the mirror became healthy. A primary with no healthy targets serves nothing, so
the step goes ahead in the plan that activates the mirror and the TTL runs while it starts.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from policy_builders import T0, demo_with, flat, step_plan

from policies import MirrorHealth, Plan, PrimaryHealth

FAILOVER = {
    "name": "region-failover",
    "when": "current(primary_healthy) < 50%",
    "weight": 100,
    "actions": [
        {"type": "activate_mirror", "percent": 100},
        {"type": "shift_weights", "mirror": 100, "ramp": {"mode": "immediate"}},
    ],
}
HEALTH_METRIC = {"kind": "resource", "unit": "percent", "forecast": False}
NOT_HEALTHY = MirrorHealth(running=0, healthy=0, ready=False, detail="paused")


def failover_config():
    base = demo_with()
    web = base.pools["web"].model_dump(mode="json")
    return demo_with(
        metrics={**web["metrics"], "primary_healthy": HEALTH_METRIC},
        rules=[*web["rules"], FAILOVER],
    )


def health_checks(percent: float, *, end=T0) -> pd.Series:
    return flat(percent, end=end).rename("primary_healthy")


def first_plan(primary: PrimaryHealth | None, *, checks: float = 0) -> Plan:
    return step_plan(
        failover_config(),
        now=T0,
        extra_current={"primary_healthy": health_checks(checks)},
        health=NOT_HEALTHY,
        primary_health=primary,
    )


def mirror_share(result: Plan) -> int:
    return result.stack_config.pools["web"].balancer.weights.mirror


class TestAFailingPrimaryDoesNotWaitForTheMirror:
    def test_the_plan_that_activates_the_mirror_also_sends_it_the_traffic(self) -> None:
        result = first_plan(PrimaryHealth(fleet=4, healthy=0))
        web = result.stack_config.pools["web"]
        assert web.mirror.state.value == "active"
        assert mirror_share(result) == 100, result.explanation
        assert "the primary is failing (0 of 4 targets healthy)" in result.explanation
        assert any(d.action == "shift_weights" for d in result.decisions)

    def test_a_later_step_goes_ahead_while_the_mirror_is_still_starting(self) -> None:
        # The demo's cpu-now rule activates the mirror while the primary still serves: its step
        # waits for the mirror's health. Once the primary is observed failing it goes ahead.
        config = failover_config()
        memory = None
        result = None
        for minutes, primary in ((0, PrimaryHealth(fleet=4, healthy=4)), (5, None)):
            now = T0 + timedelta(minutes=minutes)
            result = step_plan(
                result.stack_config if result else config,
                now=now,
                cpu=flat(95, end=now),
                extra_current={"primary_healthy": health_checks(100, end=now)},
                memory=memory,
                health=NOT_HEALTHY,
                primary_health=primary,
            )
            memory = result.memory
        assert result is not None and mirror_share(result) == 0
        now = T0 + timedelta(minutes=10)
        failing = step_plan(
            result.stack_config,
            now=now,
            cpu=flat(95, end=now),
            extra_current={"primary_healthy": health_checks(100, end=now)},
            memory=memory,
            health=NOT_HEALTHY,
            primary_health=PrimaryHealth(fleet=4, healthy=0),
        )
        assert mirror_share(failing) > 0, failing.explanation
        assert not any("mirror_not_ready" in d.clipped_by for d in failing.decisions)


class TestAServingPrimaryKeepsTheGate:
    def test_a_healthy_primary_waits_for_the_mirror(self) -> None:
        # The rule fires on its metric, but the balancer sees every primary target healthy:
        # traffic sent to a starting mirror now would be lost, so the gate holds.
        result = first_plan(PrimaryHealth(fleet=4, healthy=4))
        assert result.stack_config.pools["web"].mirror.state.value == "active"
        assert mirror_share(result) == 0

    def test_an_unobserved_primary_is_never_taken_to_be_failing(self) -> None:
        assert mirror_share(first_plan(None)) == 0

    def test_a_primary_still_serving_part_of_the_traffic_keeps_the_gate_for_that_part(
        self,
    ) -> None:
        # Two of four targets healthy still serve half the traffic; moving all of it to a mirror
        # that is not serving yet would lose that half.
        assert mirror_share(first_plan(PrimaryHealth(fleet=4, healthy=2))) == 0

    def test_an_empty_primary_fleet_is_not_a_failure(self) -> None:
        assert PrimaryHealth(fleet=0, healthy=0).healthy_percent == 100.0
        assert mirror_share(first_plan(PrimaryHealth(fleet=0, healthy=0))) == 0


class TestTheMirrorKeepsTheSizeTheFailingPrimaryRan:
    """The mirror holds ``percent`` of the primary's desired size and has no autoscaler; the
    failing primary's autoscaler sees no traffic and shrinks it as far as ``capacity.min`` lets
    it. NASA's outage: a floor lowered to 6 the cycle before let the mirror at "100%" come up
    with 6 instances where the primary ran 7 (docs/backtest.md, "Failover")."""

    @staticmethod
    def cycle(config, *, minutes: int, primary: PrimaryHealth, observed: int, memory=None) -> Plan:  # type: ignore[no-untyped-def]
        now = T0 + timedelta(minutes=minutes)
        checks = 100.0 * primary.healthy / primary.fleet
        return step_plan(
            config,
            now=now,
            extra_current={"primary_healthy": health_checks(checks, end=now)},
            memory=memory,
            health=NOT_HEALTHY,
            primary_health=primary,
            observed_desired=observed,
        )

    @staticmethod
    def floor_lowered():  # type: ignore[no-untyped-def]
        """The failover stack where the cloud runs 7 (its autoscaler) over a floor of 5."""
        web = failover_config().pools["web"].model_dump(mode="json")
        return demo_with(
            metrics=web["metrics"],
            rules=web["rules"],
            primary__capacity={"min": 5, "max": 20, "desired": 7},
        )

    def test_the_failover_plan_holds_the_floor_at_the_size_the_primary_ran(self) -> None:
        # Fails on the old planner: min stayed 5, so the blind autoscaler could take the
        # primary, and the mirror at 100% of it, down to 5.
        result = self.cycle(
            self.floor_lowered(), minutes=0, primary=PrimaryHealth(fleet=7, healthy=0), observed=7
        )
        web = result.stack_config.pools["web"]
        assert web.mirror.state.value == "active" and mirror_share(result) == 100
        assert web.primary.capacity.min == 7, result.explanation
        assert web.mirror_size == 7
        assert "the size the primary ran when the mirror took over" in result.explanation

    def test_while_it_fails_a_shrinking_primary_does_not_shrink_the_mirror(self) -> None:
        first = self.cycle(
            self.floor_lowered(), minutes=0, primary=PrimaryHealth(fleet=7, healthy=0), observed=7
        )
        # The cloud reports the primary at 5 (an autoscaler that sees no traffic, before the
        # raised floor landed): the next plan sizes from 5 but keeps the floor at 7.
        later = self.cycle(
            first.stack_config,
            minutes=5,
            primary=PrimaryHealth(fleet=5, healthy=0),
            observed=5,
            memory=first.memory,
        )
        web = later.stack_config.pools["web"]
        assert web.primary.capacity.min == 7, later.explanation
        assert web.mirror_size == 7

    def test_once_the_primary_serves_again_the_size_is_forgotten(self) -> None:
        first = self.cycle(
            self.floor_lowered(), minutes=0, primary=PrimaryHealth(fleet=7, healthy=0), observed=7
        )
        assert first.memory.pools["web"].failover_size == 7
        back = self.cycle(
            first.stack_config,
            minutes=5,
            primary=PrimaryHealth(fleet=7, healthy=7),
            observed=7,
            memory=first.memory,
        )
        assert back.memory.pools["web"].failover_size is None
        assert not any("when the mirror took over" in d.detail for d in back.decisions)

    def test_a_serving_primary_with_an_active_mirror_keeps_its_floor_as_set(self) -> None:
        result = self.cycle(
            self.floor_lowered(), minutes=0, primary=PrimaryHealth(fleet=7, healthy=7), observed=7
        )
        assert result.stack_config.pools["web"].primary.capacity.min == 5
        assert result.memory.pools["web"].failover_size is None


# The example stacks that keep their mirror in another region or cloud, and what their failover
# rule reads when the primary's region has failed and when it serves (stacks/*.yaml).
EXAMPLES = {
    "multicloud": ({"healthy_hosts": 0.0, "unhealthy_hosts": 8.0}, {"healthy_hosts": 8.0}),
    "azure-api": ({"available": 0.0}, {"available": 1.0}),
}


def example_plan(stack: str, readings: dict[str, float], *, healthy: bool) -> Plan:
    from policy_builders import ROOT

    from infra.config import load_stack_file
    from policies import PlanningInput, plan

    config = load_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    (name,) = config.pools
    fleet = config.pools[name].primary.capacity.desired
    current = {metric: flat(value).rename(metric) for metric, value in readings.items()}
    if "unhealthy_hosts" in config.pools[name].metrics and "unhealthy_hosts" not in current:
        current["unhealthy_hosts"] = flat(0.0).rename("unhealthy_hosts")
    return plan(
        PlanningInput(
            config=config,
            now=T0,
            current={name: current},
            forecasts={name: {}},
            primary_health={name: PrimaryHealth(fleet=fleet, healthy=fleet if healthy else 0)},
        )
    )


class TestTheExampleStacksFailOver:
    @pytest.mark.parametrize("stack", sorted(EXAMPLES))
    def test_a_failed_primary_sends_all_traffic_to_a_full_size_mirror_in_one_plan(
        self, stack: str
    ) -> None:
        result = example_plan(stack, EXAMPLES[stack][0], healthy=False)
        (pool,) = result.stack_config.pools.values()
        assert pool.mirror.state.value == "active", result.explanation
        assert pool.mirror.percent == 100
        assert pool.balancer.weights.mirror == 100
        assert any(o.rule == "region-failover" and o.fired for o in result.rules)

    @pytest.mark.parametrize("stack", sorted(EXAMPLES))
    def test_a_serving_primary_keeps_its_traffic(self, stack: str) -> None:
        result = example_plan(stack, EXAMPLES[stack][1], healthy=True)
        (pool,) = result.stack_config.pools.values()
        assert pool.balancer.weights.mirror == 0
        assert not any(o.rule == "region-failover" and o.fired for o in result.rules)
