"""Weighted rules: when several fire together, the heavier wins, compatible actions merge."""

from __future__ import annotations

from datetime import timedelta

from policy_builders import T0, demo_config, demo_with, flat, forecast, step_plan

SPIKE = [50, 60, 70, 78, 85, 88, 86, 80, 70, 60, 50, 45]


def _outcomes(result):  # type: ignore[no-untyped-def]
    return {o.rule: o for o in result.rules}


def _ramp_cycle(config, memory, *, cpu=95.0):  # type: ignore[no-untyped-def]
    now = T0 + timedelta(minutes=5)
    return step_plan(
        config,
        now=now,
        cpu_forecast=forecast(SPIKE[1:], issued_at=now),
        cpu=flat(cpu, end=now),
        memory=memory,
        ready=True,
    )


def test_demo_rules_conflict_the_heavier_gradual_ramp_overrules_the_immediate_switchover() -> None:
    # Both demo rules fire: predicted-cpu (weight 10) wants a gradual ramp to 30%,
    # cpu-now (weight 5) an immediate switchover to 50%.
    result = step_plan(demo_config(), now=T0, cpu=flat(95), cpu_forecast=forecast(SPIKE))
    outcome = _outcomes(result)
    assert outcome["predicted-cpu"].status == "won"
    assert outcome["cpu-now"].status == "overruled"
    assert "immediate switchover to 50%" in outcome["cpu-now"].detail
    assert "overruled by predicted-cpu (weight 10" in outcome["cpu-now"].detail
    assert "activate" not in outcome["cpu-now"].detail or "merged" in outcome["cpu-now"].detail
    assert result.memory.pools["web"].ramp is not None
    assert result.memory.pools["web"].ramp.target_mirror_share == 30
    # The next (healthy) cycle takes the winner's first step, not the loser's 50%.
    step = _ramp_cycle(result.stack_config, result.memory, cpu=70)
    assert step.stack_config.pools["web"].balancer.weights.mirror == 10


def test_reweighted_the_immediate_switchover_wins() -> None:
    config = demo_config()
    rules = [r.model_dump(mode="json") for r in config.pools["web"].rules]
    rules[1]["weight"] = 20
    result = step_plan(demo_with(rules=rules), now=T0, cpu=flat(95), cpu_forecast=forecast(SPIKE))
    outcome = _outcomes(result)
    assert outcome["cpu-now"].status == "won" and outcome["predicted-cpu"].status == "overruled"
    # The scale_primary action of predicted-cpu is not contested, so it still runs (merged).
    assert result.stack_config.pools["web"].primary.capacity.min == 6
    step = _ramp_cycle(result.stack_config, result.memory, cpu=70)
    assert step.stack_config.pools["web"].balancer.weights.mirror == 50


def test_equal_weights_fall_to_priority_then_name() -> None:
    a = {
        "name": "a-rule",
        "when": "current(cpu) > 50%",
        "weight": 2,
        "priority": 1,
        "actions": [{"type": "scale_primary", "to": 8}],
    }
    b = {
        "name": "b-rule",
        "when": "current(cpu) > 50%",
        "weight": 2,
        "priority": 5,
        "actions": [{"type": "scale_primary", "to": 12}],
    }
    result = step_plan(demo_with(rules=[a, b]), now=T0, cpu=flat(60))
    assert result.stack_config.pools["web"].primary.capacity.min == 12
    assert _outcomes(result)["b-rule"].status == "won"
    assert _outcomes(result)["a-rule"].status == "overruled"


def test_identical_actions_from_two_rules_are_merged_not_overruled() -> None:
    same = [
        {"type": "activate_mirror"},
        {"type": "shift_weights", "mirror": 20, "ramp": {"mode": "immediate"}},
    ]
    a = {"name": "first", "when": "current(cpu) > 50%", "weight": 3, "actions": same}
    b = {"name": "second", "when": "current(cpu) > 60%", "weight": 1, "actions": same}
    result = step_plan(demo_with(rules=[a, b]), now=T0, cpu=flat(70))
    outcome = _outcomes(result)
    assert outcome["first"].status == "won" and outcome["second"].status == "merged"
    assert "merged with first" in outcome["second"].detail


def test_a_heavier_scale_up_overrules_a_rollback_rule_and_vice_versa() -> None:
    up = {
        "name": "up",
        "when": "current(cpu) > 50%",
        "weight": 5,
        "actions": [{"type": "activate_mirror"}],
    }
    down = {
        "name": "down",
        "when": "current(cpu) > 50%",
        "weight": 1,
        "actions": [{"type": "rollback"}],
    }
    result = step_plan(demo_with(rules=[up, down]), now=T0, cpu=flat(70))
    assert _outcomes(result)["down"].status == "overruled"
    assert result.stack_config.pools["web"].mirror.state == "active"

    down["weight"] = 9
    result = step_plan(demo_with(rules=[up, down]), now=T0, cpu=flat(70))
    assert (
        _outcomes(result)["down"].status == "won" and _outcomes(result)["up"].status == "overruled"
    )
    assert result.stack_config.pools["web"].mirror.state == "paused"


def test_notifications_of_fired_rules_are_all_delivered() -> None:
    a = {
        "name": "tell-ops",
        "when": "current(cpu) > 50%",
        "actions": [{"type": "notify", "message": "cpu high"}],
    }
    b = {
        "name": "tell-chat",
        "when": "current(cpu) > 50%",
        "actions": [{"type": "notify", "channel": "CHAT_WEBHOOK", "message": "cpu high"}],
    }
    result = step_plan(demo_with(rules=[a, b]), now=T0, cpu=flat(70))
    # In rank order: equal weights and priorities, so by name.
    assert result.notifications == ["CHAT_WEBHOOK: [web] cpu high", "log: [web] cpu high"]
    assert result.empty
