"""Invariants of the planner over random multi-cycle histories (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_builders import T0, demo_config, demo_with, flat, forecast, step_plan

from infra.config import WEIGHT_RANGES, BalancerKind, MirrorcastConfig, product_weight
from policies import Plan, PlannerMemory

MIN5 = timedelta(minutes=5)


@dataclass(frozen=True)
class Cycle:
    cpu: float
    peak: float
    trusted: bool
    ready: bool
    rollback: bool


cycles = st.lists(
    st.builds(
        Cycle,
        cpu=st.floats(min_value=0, max_value=100),
        peak=st.floats(min_value=0, max_value=150),
        trusted=st.booleans(),
        ready=st.booleans(),
        rollback=st.sampled_from([False, False, False, False, True]),  # a person asks, now and then
    ),
    min_size=1,
    max_size=12,
)

configs = st.builds(
    lambda native, low, high, grace: demo_with(
        primary__native_autoscaling=native,
        primary__capacity={"min": low, "max": high, "desired": low},
        guardrails__rollback_grace=grace,
    ),
    st.booleans(),
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=5, max_value=12),
    st.sampled_from(["10m", "30m"]),
)


def _run(
    config: MirrorcastConfig, history: list[Cycle]
) -> list[tuple[MirrorcastConfig, Cycle, Plan]]:
    memory = PlannerMemory()
    steps = []
    for index, cycle in enumerate(history):
        now = T0 + MIN5 * index
        curve = [cycle.cpu + (cycle.peak - cycle.cpu) * min(1, i / 4) for i in range(12)]
        result = step_plan(
            config,
            now=now,
            cpu=flat(cycle.cpu, end=now),
            cpu_forecast=forecast(curve, issued_at=now, trusted=cycle.trusted),
            memory=memory,
            ready=cycle.ready,
            rollback=frozenset({"web"}) if cycle.rollback else frozenset(),
        )
        steps.append((config, cycle, result))
        config, memory = result.stack_config, result.memory
    return steps


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, history=cycles)
def test_weights_are_always_valid_and_never_send_traffic_to_a_paused_or_unready_mirror(
    config: MirrorcastConfig, history: list[Cycle]
) -> None:
    for deployed, cycle, result in _run(config, history):
        before = deployed.pools["web"]
        after = result.stack_config.pools["web"]
        weights = after.balancer.weights
        assert weights.primary + weights.mirror == 100
        for kind in BalancerKind:
            low, high = WEIGHT_RANGES[kind]
            translated = [
                product_weight(kind, weights.primary),
                product_weight(kind, weights.mirror),
            ]
            assert all(low <= w.weight <= high for w in translated)
            assert any(w.enabled and w.weight > 0 for w in translated)
        if after.mirror.state == "paused":
            assert weights.mirror == 0
        if weights.mirror > before.balancer.weights.mirror:
            assert before.mirror.state == "active" and cycle.ready, result.explanation


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, history=cycles)
def test_capacity_never_leaves_the_original_min_and_max(
    config: MirrorcastConfig, history: list[Cycle]
) -> None:
    original = config.pools["web"].primary.capacity
    for _, _, result in _run(config, history):
        capacity = result.stack_config.pools["web"].primary.capacity
        assert original.min <= capacity.min <= capacity.desired <= original.max
        assert capacity.max == original.max


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, history=cycles)
def test_a_rollback_restores_the_exact_original_config(
    config: MirrorcastConfig, history: list[Cycle]
) -> None:
    steps = _run(config, history)
    result = steps[-1][2]
    current, memory = result.stack_config, result.memory
    now = T0 + MIN5 * len(history)
    for extra in range(6):
        if memory.pools["web"].activation_id is None and not memory.pools["web"].rolling_back:
            break
        result = step_plan(
            current,
            now=now + MIN5 * extra,
            cpu=flat(10, end=now + MIN5 * extra),
            cpu_forecast=forecast([10] * 12, issued_at=now + MIN5 * extra),
            memory=memory,
            ready=True,
            rollback=frozenset({"web"}),
        )
        current, memory = result.stack_config, result.memory
    assert memory.pools["web"].activation_id is None
    # Whatever happened in between, the pool is back to exactly what it was.
    assert current.pools["web"] == config.pools["web"]
    assert current == config


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, history=cycles)
def test_the_same_inputs_give_the_same_plan(config: MirrorcastConfig, history: list[Cycle]) -> None:
    first = _run(config, history)
    second = _run(config, history)
    for (_, _, a), (_, _, b) in zip(first, second, strict=True):
        assert a.model_dump() == b.model_dump()
        assert a.explanation == b.explanation


def test_the_demo_stack_round_trips_through_a_plan_unchanged_when_nothing_fires() -> None:
    config = demo_config()
    result = step_plan(config, now=T0, cpu=flat(10), cpu_forecast=forecast([10] * 12))
    assert result.empty and result.stack_config == config
