"""The planner on a stack of many pools: what it keeps per pool is what full revalidation gives.

The planner re-checks only the pools a plan changes (an unchanged pool keeps its already
validated spec object; pydantic does not revalidate model instances). These tests run a
twelve-pool stack over cycles of a real CloudWatch CPU excerpt (tests/data/nab, NAB licence),
where some pools fire their rules and some never do, and compare every plan's config with the
old path: the whole result dumped and validated again.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from policy_builders import T0, demo_config, forecast, series

from infra.config import MirrorcastConfig, config_from_mapping
from policies import MirrorHealth, Plan, PlannerMemory, PlanningInput, plan

EXCERPT = (
    Path(__file__).resolve().parents[1] / "data" / "nab" / "ec2_cpu_utilization_825cc2_excerpt.csv"
)
POOLS = 12
MIN5 = timedelta(minutes=5)


def _stack() -> MirrorcastConfig:
    """The demo stack with its pool ``web`` copied ``POOLS`` times (validated like a stack file)."""
    data = demo_config().model_dump(mode="json")
    web = data["pools"].pop("web")
    data["pools"] = {f"web{i:02d}": web for i in range(POOLS)}
    return config_from_mapping({f"mirrorcast:{k}": v for k, v in data.items()})


def _cpu() -> np.ndarray:
    return pd.read_csv(EXCERPT)["value"].to_numpy(dtype=float)


def _cycle(config: MirrorcastConfig, memory: PlannerMemory, step: int, cpu: np.ndarray) -> Plan:
    now = T0 + MIN5 * step
    current = {}
    forecasts = {}
    for index, name in enumerate(sorted(config.pools)):
        # Each pool reads the excerpt at its own offset and scale: the lower pools stay far
        # below both rules' thresholds, the upper ones cross them at some cycles.
        level = 0.4 + 0.07 * index
        start = 37 * index + step
        values = cpu[start : start + 31] * level
        ahead = cpu[start + 31 : start + 43] * level
        current[name] = {"cpu": series(values, end=now, step=timedelta(minutes=1))}
        forecasts[name] = {"cpu": forecast(ahead, issued_at=now, pool=name)}
    return plan(
        PlanningInput(
            config=config,
            now=now,
            current=current,
            forecasts=forecasts,
            health={
                name: MirrorHealth(
                    running=pool.mirror_running, healthy=pool.mirror_running, ready=True
                )
                for name, pool in config.pools.items()
            },
            memory=memory,
        )
    )


def _run(cycles: int) -> list[tuple[MirrorcastConfig, Plan]]:
    config, memory, cpu = _stack(), PlannerMemory(), _cpu()
    steps = []
    for step in range(cycles):
        result = _cycle(config, memory, step, cpu)
        steps.append((config, result))
        config, memory = result.stack_config, result.memory
    return steps


@pytest.fixture(scope="module")
def steps() -> list[tuple[MirrorcastConfig, Plan]]:
    return _run(10)


def test_the_run_has_pools_that_change_and_pools_that_do_not(
    steps: list[tuple[MirrorcastConfig, Plan]],
) -> None:
    # Without both kinds the comparison below would not cover the reuse of unchanged pools.
    changed = {c.path.split(".")[1] for _, result in steps for c in result.changes}
    assert 0 < len(changed) < POOLS
    assert any(r.fired for _, result in steps for r in result.rules)


def test_every_plans_config_equals_the_whole_result_validated_again(
    steps: list[tuple[MirrorcastConfig, Plan]],
) -> None:
    for deployed, result in steps:
        # The old path: every pool of the planned config dumped and validated again.
        reference = MirrorcastConfig.model_validate(
            deployed.model_copy(update={"pools": dict(result.stack_config.pools)}).model_dump()
        )
        assert result.stack_config.model_dump(mode="json") == reference.model_dump(mode="json")
        assert result.stack_config == reference


def test_an_unchanged_pool_keeps_its_spec_and_a_changed_one_is_validated_anew(
    steps: list[tuple[MirrorcastConfig, Plan]],
) -> None:
    for deployed, result in steps:
        touched = {c.path.split(".")[1] for c in result.changes}
        for name, pool in result.stack_config.pools.items():
            if name in touched:
                assert pool is not deployed.pools[name]
            else:
                assert pool is deployed.pools[name]


def test_the_same_inputs_give_byte_identical_plans() -> None:
    first, second = _run(6), _run(6)
    for (_, a), (_, b) in zip(first, second, strict=True):
        assert a.model_dump_json() == b.model_dump_json()


def test_a_stack_level_invariant_is_still_checked_on_every_plan() -> None:
    config = _stack()
    cpu = _cpu()
    # A pool whose region policy no longer allows: the stack-level validator must run on the
    # plan's result even though no pool changed (unchanged pools skip only pool validators).
    restricted = config.model_copy(
        update={"policy": config.policy.model_copy(update={"allowed_regions": ["eu-west-9"]})}
    )
    with pytest.raises(ValueError, match="allowed_regions"):
        _cycle(restricted, PlannerMemory(), 0, cpu)
