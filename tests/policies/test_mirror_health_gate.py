"""The ramp gate is the mirror's observed health: enough healthy targets for the share, or wait;
too long waiting rolls the activation back (mirror.health_timeout)."""

from __future__ import annotations

from datetime import timedelta

from policy_builders import T0, demo_config, flat, forecast, step_plan

from policies import MirrorHealth, Plan

SPIKE = [50, 60, 70, 78, 85, 88, 86, 80, 70, 60, 50, 45]
MIN5 = timedelta(minutes=5)


def activated() -> Plan:
    first = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE))
    web = first.stack_config.pools["web"]
    # The demo activates a 50% mirror of a primary raised to 6 and ramps to 30% in 10% steps.
    assert web.mirror.state.value == "active" and web.primary.capacity.desired == 6
    assert web.mirror_size == 3
    return first


def cycle(previous: Plan, minutes: int, health: MirrorHealth) -> Plan:
    now = T0 + timedelta(minutes=minutes)
    return step_plan(
        previous.stack_config,
        now=now,
        cpu_forecast=forecast(SPIKE[1:], issued_at=now),
        cpu=flat(60, end=now),
        memory=previous.memory,
        health=health,
    )


def mirror_share(result: Plan) -> int:
    return result.stack_config.pools["web"].balancer.weights.mirror


class TestEnoughForTheShare:
    def test_a_step_goes_ahead_with_as_many_healthy_targets_as_its_share_needs(self) -> None:
        # 10% of the traffic six primary instances carry needs ceil(0.6) = 1 healthy target.
        one = MirrorHealth(running=3, healthy=1, ready=False, detail="3 running, 1 healthy")
        result = cycle(activated(), 5, one)
        assert mirror_share(result) == 10, result.explanation

    def test_the_next_step_waits_until_its_share_has_enough(self) -> None:
        one = MirrorHealth(running=3, healthy=1, ready=False)
        first = cycle(activated(), 5, one)
        # 20% needs ceil(1.2) = 2 healthy targets; one is not enough.
        waiting = cycle(first, 10, one)
        assert mirror_share(waiting) == 10
        hold = next(d for d in waiting.decisions if d.action == "hold")
        assert hold.clipped_by == ["mirror_not_ready"]
        assert "1 healthy mirror target(s), 20% of the traffic needs 2" in waiting.explanation
        two = MirrorHealth(running=3, healthy=2, ready=False)
        assert mirror_share(cycle(waiting, 15, two)) == 20

    def test_a_mirror_that_was_not_observed_is_never_taken_as_healthy(self) -> None:
        unknown = MirrorHealth(observed=False, detail="mirror not observed (aws: no credentials)")
        result = cycle(activated(), 5, unknown)
        assert mirror_share(result) == 0
        assert "mirror not observed (aws: no credentials)" in result.explanation


class TestHealthTimeout:
    def test_waiting_past_the_timeout_rolls_the_activation_back_and_says_why(self) -> None:
        none = MirrorHealth(running=3, healthy=0, ready=False, detail="3 running, 3 unhealthy")
        result = activated()
        # The first step is due on the cycle after the activation: the wait starts there, and
        # 15 minutes of it later the activation is rolled back.
        for minutes in (5, 10, 15):
            result = cycle(result, minutes, none)
            assert not any(d.action == "rollback" for d in result.decisions)
        result = cycle(result, 20, none)
        rollback = next(d for d in result.decisions if d.action == "rollback")
        assert "for 15m (mirror.health_timeout 15m)" in rollback.detail
        assert "0 healthy mirror target(s)" in rollback.detail
        (notice,) = result.notices
        assert notice.channel == "log" and "activation rolled back" in notice.message
        assert result.memory.pools["web"].rolling_back

    def test_a_healthy_step_restarts_the_clock(self) -> None:
        none = MirrorHealth(running=3, healthy=0, ready=False)
        all_three = MirrorHealth(running=3, healthy=3, ready=True)
        result = cycle(activated(), 5, none)
        result = cycle(result, 10, all_three)  # a step goes ahead: the wait is over
        assert mirror_share(result) == 10
        for minutes in (15, 20, 25):
            result = cycle(result, minutes, none)
            assert not any(d.action == "rollback" for d in result.decisions), minutes
