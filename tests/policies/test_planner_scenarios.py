"""Scenarios from the spec, run through ``plan`` cycle by cycle with memory carried between cycles."""

from __future__ import annotations

from datetime import timedelta

from policy_builders import (
    DEMO_STACK,
    T0,
    changed,
    demo_config,
    demo_with,
    flat,
    forecast,
    step_plan,
)

from policies import PlannerMemory

MIN5 = timedelta(minutes=5)

# p50 of cpu every 5 minutes from 12:05; p90 is 5 points higher. Crosses 80% (p90) at 12:20.
SPIKE = [50, 60, 70, 78, 85, 88, 86, 80, 70, 60, 50, 45]
CALM = [40] * 12


def test_predicted_cpu_over_80_within_30m_activates_the_mirrored_web_servers() -> None:
    # Spec: "If CPU utilisation is predicted to exceed 80% within 30 minutes, activate mirrored
    # web servers", with the demo stack exactly as shipped.
    result = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE))

    assert changed(result) == {
        "pools.web.mirror.state": "active",
        # native autoscaling: the floor is raised, desired follows; ceil(4 * 93 / 70) = 6
        "pools.web.primary.capacity.min": 6,
        "pools.web.primary.capacity.desired": 6,
    }
    outcome = {o.rule: o for o in result.rules}
    assert outcome["predicted-cpu"].fired and outcome["predicted-cpu"].status == "fired"
    assert not outcome["cpu-now"].fired
    assert "threshold 80" in outcome["predicted-cpu"].detail
    assert "peaks at 93" in outcome["predicted-cpu"].detail
    memory = result.memory.pools["web"]
    assert memory.original == {
        "mirror.state": "paused",
        "mirror.percent": 50,
        "balancer.weights.primary": 100,
        "balancer.weights.mirror": 0,
        "primary.capacity.min": 2,
        "primary.capacity.desired": 4,
        "primary.autoscaler_target": 60,
    }
    assert memory.trigger is not None and memory.trigger["threshold"] == 80
    assert memory.activations == [T0]
    assert "pools.web.mirror.state: 'paused' -> 'active'" in result.explanation


def test_calm_forecast_changes_nothing() -> None:
    result = step_plan(demo_config(), now=T0, cpu_forecast=forecast(CALM))
    assert result.empty
    assert result.memory.pools["web"].activation_id is None
    assert "(none)" in result.explanation


def test_activation_lands_before_the_peak_by_the_time_to_ready() -> None:
    # The crossing is 33 minutes ahead: outside the 30m window, but the rule also needs the
    # primary's 5m ready time (it scales the primary) after the decision takes effect (the
    # configured 2m actuation time until one is measured), so it must act now, not at 12:03.
    late = forecast([50] * 5 + [90, 90], step=timedelta(minutes=5.5))
    result = step_plan(demo_config(), now=T0, cpu_forecast=late)
    assert changed(result)["pools.web.mirror.state"] == "active"
    detail = {o.rule: o for o in result.rules}["predicted-cpu"].detail
    assert "time-to-ready 7m" in detail and "crosses at 12:33" in detail

    # Without the lead it would not fire: a crossing 45 minutes ahead is beyond window + lead.
    later = forecast([50] * 8 + [90], step=timedelta(minutes=5))
    assert step_plan(demo_config(), now=T0, cpu_forecast=later).empty


def test_a_measured_actuation_time_lengthens_every_rules_lead() -> None:
    # `pulumi up` on this stack has been taking 12 minutes: a crossing 45 minutes ahead is
    # inside 30m window + 5m ready + 12m, and the rule acts now.
    later = forecast([50] * 8 + [90], step=timedelta(minutes=5))
    result = step_plan(
        demo_config(), now=T0, cpu_forecast=later, actuation_time=timedelta(minutes=12)
    )
    assert changed(result)["pools.web.mirror.state"] == "active"
    detail = {o.rule: o for o in result.rules}["predicted-cpu"].detail
    assert "time-to-ready 17m" in detail


def test_the_configured_actuation_time_stands_in_until_measured() -> None:
    later = forecast([50] * 8 + [90], step=timedelta(minutes=5))
    config = demo_config()
    data = config.model_dump(mode="json", by_alias=True)
    data["driver"]["actuation_time"] = "15m"
    slow = type(config).model_validate(data)
    assert changed(step_plan(slow, now=T0, cpu_forecast=later))["pools.web.mirror.state"] == (
        "active"
    )


def test_gradual_ramp_takes_one_health_gated_step_per_due_cycle() -> None:
    first = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE))
    # The mirror was paused in the deployed config: no traffic on the activation cycle.
    assert "pools.web.balancer.weights.mirror" not in changed(first)

    # Next cycle, the mirror is active but not healthy yet: the step waits.
    now = T0 + MIN5
    waiting = step_plan(
        first.stack_config,
        now=now,
        cpu_forecast=forecast(SPIKE[1:], issued_at=now),
        cpu=flat(60, end=now),
        memory=first.memory,
        ready=False,
    )
    assert "pools.web.balancer.weights.mirror" not in changed(waiting)
    holds = [d for d in waiting.decisions if d.action == "hold"]
    assert holds and holds[0].clipped_by == ["mirror_not_ready"]

    # Healthy now: 10% (30% in 3 steps), then 20% five minutes later, then 30%.
    shares = []
    config, memory = waiting.stack_config, waiting.memory
    for cycle in range(2, 6):
        now = T0 + MIN5 * cycle
        result = step_plan(
            config,
            now=now,
            cpu_forecast=forecast(SPIKE[cycle:] + [45] * cycle, issued_at=now),
            cpu=flat(SPIKE[cycle - 1], end=now),
            memory=memory,
            ready=True,  # as forecast
        )
        config, memory = result.stack_config, result.memory
        assert not result.memory.pools["web"].escalated
        shares.append(config.pools["web"].balancer.weights.mirror)
    assert shares == [10, 20, 30, 30]
    assert config.pools["web"].balancer.weights.primary == 70


def test_false_alarm_ends_in_an_ordered_rollback_to_the_exact_original_config() -> None:
    original = demo_config()
    result = step_plan(original, now=T0, cpu_forecast=forecast(SPIKE))
    config, memory = result.stack_config, result.memory
    assert memory.pools["web"].rollback_deadline == T0 + timedelta(minutes=20 + 30)

    # The spike never comes: cpu stays at 40 and later forecasts are calm.
    log: list[list[str]] = []
    now = T0
    for _ in range(40):
        now += MIN5
        result = step_plan(
            config,
            now=now,
            cpu_forecast=forecast(CALM, issued_at=now),
            cpu=flat(40, end=now),
            memory=memory,
            ready=True,
        )
        config, memory = result.stack_config, result.memory
        log.append([d.action for d in result.decisions])
        if memory.pools["web"].activation_id is None:
            break
    actions = [a for cycle in log for a in cycle]
    # Demand well below the forecast first ramps weights down; then the rollback, in order.
    assert (
        actions.index("rollback") < actions.index("pause_mirror") < actions.index("restore_primary")
    )
    rollback_cycles = log[-4:]
    assert rollback_cycles[0][:2] == ["rollback", "shift_weights"]  # weights to the primary
    assert rollback_cycles[1] == ["rollback"]  # drain
    assert rollback_cycles[2] == ["pause_mirror"]
    assert rollback_cycles[3] == ["restore_primary"]
    assert now == T0 + timedelta(minutes=50 + 15)  # grace ran out at 12:50, four steps

    assert config.pools["web"] == original.pools["web"]
    assert config == original
    web = memory.pools["web"]
    assert web.activation_id is None and web.original is None and web.last_down_at == now


def test_under_forecast_escalates_straight_to_the_target_and_raises_capacity() -> None:
    first = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE))
    config, memory = first.stack_config, first.memory
    # Twenty minutes in, cpu is at 97% where the forecast said p90 83%: demand above the forecast.
    now = T0 + timedelta(minutes=20)
    result = step_plan(
        config,
        now=now,
        cpu_forecast=forecast(SPIKE[4:] + [45] * 4, issued_at=now),
        cpu=flat(97, end=now),
        memory=memory,
        ready=True,
    )
    escalations = [d for d in result.decisions if d.action == "escalate"]
    assert escalations, result.explanation
    web = result.stack_config.pools["web"]
    # The whole 30% at once (the ramp is skipped), and the primary raised by realised / p90.
    assert web.balancer.weights.mirror == 30
    assert web.primary.capacity.min == 8  # ceil(6 * 97 / 83)
    assert result.memory.pools["web"].escalated
    assert "runs above the forecast" in result.explanation


def test_escalation_never_exceeds_the_configured_max() -> None:
    config = demo_with(primary__capacity={"min": 2, "max": 7, "desired": 4})
    first = step_plan(config, now=T0, cpu_forecast=forecast(SPIKE))
    now = T0 + timedelta(minutes=20)
    result = step_plan(
        first.stack_config,
        now=now,
        cpu_forecast=forecast(SPIKE[4:] + [45] * 4, issued_at=now),
        cpu=flat(160, end=now),
        memory=first.memory,
        ready=True,
    )
    web = result.stack_config.pools["web"]
    assert web.primary.capacity.min == 7 and web.primary.capacity.desired == 7
    assert any("max_capacity" in d.clipped_by for d in result.decisions)


def test_activation_cap_refuses_a_fifth_activation_in_24h() -> None:
    memory = PlannerMemory.model_validate(
        {"pools": {"web": {"activations": [T0 - timedelta(hours=h) for h in (1, 5, 9, 23)]}}}
    )
    result = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE), memory=memory)
    assert "pools.web.mirror.state" not in changed(result)
    held = [d for d in result.decisions if d.action == "hold"]
    assert held and "activation_cap" in held[0].clipped_by
    assert "max_activations_per_day" in result.explanation

    # One of them is 25 hours old: the rolling window lets this activation through.
    memory.pools["web"].activations[-1] = T0 - timedelta(hours=25)
    result = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE), memory=memory)
    assert changed(result)["pools.web.mirror.state"] == "active"


def test_cooldown_blocks_reactivation_right_after_a_rollback() -> None:
    memory = PlannerMemory.model_validate(
        {"pools": {"web": {"last_down_at": T0 - timedelta(minutes=10)}}}
    )
    result = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE), memory=memory)
    assert "pools.web.mirror.state" not in changed(result)
    assert any("cooldown" in d.clipped_by for d in result.decisions)
    # The primary is still raised for the forecast: only the mirror waits for the cooldown.
    assert changed(result)["pools.web.primary.capacity.min"] == 6

    later = step_plan(
        demo_config(),
        now=T0 + MIN5,
        cpu_forecast=forecast(SPIKE, issued_at=T0 + MIN5),
        cpu=flat(40, end=T0 + MIN5),
        memory=memory,
    )
    assert changed(later)["pools.web.mirror.state"] == "active"


def test_cooldown_delays_an_automatic_rollback_after_activation() -> None:
    config = demo_with(guardrails__rollback_grace="5m", guardrails__cooldown="30m")
    first = step_plan(config, now=T0, cpu_forecast=forecast([90] * 12))
    now = T0 + timedelta(minutes=12)
    result = step_plan(
        first.stack_config,
        now=now,
        cpu_forecast=forecast(CALM, issued_at=now),
        cpu=flat(40, end=now),
        memory=first.memory,
        ready=True,
    )
    assert result.memory.pools["web"].rollback_stage is None
    assert any(d.action == "hold" and "cooldown" in d.clipped_by for d in result.decisions)


def test_a_person_can_roll_back_at_once() -> None:
    first = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE))
    result = step_plan(
        first.stack_config,
        now=T0 + MIN5,
        cpu_forecast=forecast(SPIKE, issued_at=T0 + MIN5),
        cpu=flat(60, end=T0 + MIN5),
        memory=first.memory,
        rollback=frozenset({"web"}),
    )
    # No traffic went to the mirror yet, so the drain is skipped: straight to the pause.
    assert [d.action for d in result.decisions] == ["rollback", "pause_mirror"]
    assert changed(result) == {"pools.web.mirror.state": "paused"}
    assert result.memory.pools["web"].rollback_stage == "restore"


def test_cost_cap_cuts_the_scale_up_and_says_so() -> None:
    config = demo_with(
        guardrails__cost={"instance_hourly_cost": 0.0416, "max_instance_hours_per_day": 192}
    )
    # 192 instance-hours a day allow 8 instances at once: primary 6 + mirror 3 = 9 does not fit.
    result = step_plan(config, now=T0, cpu_forecast=forecast(SPIKE))
    web = result.stack_config.pools["web"]
    running = max(web.primary.capacity.min, web.primary.capacity.desired) + web.mirror_running
    assert running <= 8
    assert any("cost_cap" in d.clipped_by for d in result.decisions)
    assert "cost cap" in result.explanation


def test_the_explanation_names_rules_values_guardrails_and_the_diff() -> None:
    result = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE))
    text = result.explanation
    for expected in (
        "pool web:",
        "predicted-cpu [fired, weight 10]",
        "p90 of cpu peaks at 93",
        "threshold 80",
        "cpu-now [not_fired, weight 5]",
        "scale_primary (predicted-cpu)",
        "changes:",
        "pools.web.primary.capacity.min: 2 -> 6",
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"


def test_a_mirror_refused_by_the_cooldown_is_activated_later_within_the_same_episode() -> None:
    memory = PlannerMemory.model_validate(
        {"pools": {"web": {"last_down_at": T0 - timedelta(minutes=10)}}}
    )
    first = step_plan(demo_config(), now=T0, cpu_forecast=forecast(SPIKE), memory=memory)
    assert first.memory.pools["web"].activation_id is not None  # the primary was raised
    assert first.memory.pools["web"].activations == []
    now = T0 + MIN5
    later = step_plan(
        first.stack_config,
        now=now,
        cpu_forecast=forecast(SPIKE, issued_at=now),
        cpu=flat(50, end=now),
        memory=first.memory,
    )
    assert changed(later) == {"pools.web.mirror.state": "active"}
    assert later.memory.pools["web"].activations == [now]


def test_every_shipped_stack_plans_an_activation_and_a_full_rollback() -> None:
    from infra.config import load_stack_file
    from policies import MirrorHealth, PlanningInput, plan

    for path in sorted(DEMO_STACK.parent.glob("Pulumi.*.yaml")):
        original = load_stack_file(path)
        config, memory, now = original, PlannerMemory(), T0
        activated = False
        for cycle in range(16):
            hot = cycle == 0
            current = {
                name: {metric: flat(95 if hot else 5, end=now) for metric in pool.metrics}
                for name, pool in original.pools.items()
            }
            forecasts = {
                name: {
                    metric: forecast(
                        [95 if hot else 5] * 12, issued_at=now, metric=metric, pool=name
                    )
                    for metric in pool.metrics
                }
                for name, pool in original.pools.items()
            }
            result = plan(
                PlanningInput(
                    config=config,
                    now=now,
                    current=current,
                    forecasts=forecasts,
                    health={name: MirrorHealth(2, 2, True) for name in original.pools},
                    memory=memory,
                )
            )
            activated = activated or any(c.path.endswith("mirror.state") for c in result.changes)
            config, memory = result.stack_config, result.memory
            now += timedelta(minutes=15)
        assert activated, path.name
        assert config == original, path.name


def test_no_room_for_a_single_mirror_instance_refuses_the_activation() -> None:
    # 96 instance-hours a day = 4 instances at once: the primary's 4 leave no room for a mirror.
    config = demo_with(
        guardrails__cost={"instance_hourly_cost": 0.0416, "max_instance_hours_per_day": 96}
    )
    result = step_plan(config, now=T0, cpu_forecast=forecast(SPIKE))
    assert "pools.web.mirror.state" not in changed(result)
    # The floor may still rise as far as the cap allows (4, the desired count), no further.
    web = result.stack_config.pools["web"]
    assert max(web.primary.capacity.min, web.primary.capacity.desired) == 4
    assert any(d.action == "hold" and "cost_cap" in d.clipped_by for d in result.decisions)
    assert "no room for a mirror instance" in result.explanation
