"""Realised demand against the triggering forecast: escalate when above, ramp down when well below."""

from __future__ import annotations

import logging
import math

from policies._planner.ramps import ramp_interval, shift_cooldown
from policies._planner.sizing import instances_for, raise_primary
from policies._planner.work import PoolWork

logger = logging.getLogger(__name__)

DEFAULT_STEP = 10
"""Share (points) a ramp-down step takes off when no ramp was recorded."""


def escalate(work: PoolWork, realised: float, upper: float) -> None:
    memory, keys = work.memory, work.keys
    first = not memory.escalated
    memory.escalated = True
    if memory.ramp is not None:
        memory.ramp.step_share = max(1, memory.ramp.target_mirror_share - keys.mirror_weight)
        memory.ramp.next_step_at = work.now
    original = work.original
    current = max(keys.capacity_min, keys.capacity_desired)
    wanted, how = escalation_need(work, realised=realised, upper=upper, current=current)
    old_min, old_desired, clips = raise_primary(work, wanted=wanted, original=original)
    changed = (keys.capacity_min, keys.capacity_desired) != (old_min, old_desired)
    if changed:
        memory.floor_raised_at = work.now
    if first or changed or clips:
        work.decide(
            "escalate",
            f"demand {realised:.4g} runs above the forecast ({upper:.4g}): the ramp is skipped "
            f"(straight to the target once healthy); primary min {old_min} -> {keys.capacity_min}, "
            f"desired {old_desired} -> {keys.capacity_desired} ({how})",
            clips=clips,
        )
    memory.last_up_at = work.now


def escalation_need(
    work: PoolWork, *, realised: float, upper: float, current: int
) -> tuple[int, str]:
    """The primary count an escalation asks for, and how it was computed.

    A demand metric with a per-instance capacity (requests per second) is sized for the demand
    that came, at the autoscaler's configured target: the capacity there was sized for the
    forecast's peak, usually above the forecast at this instant, so scaling it by ``realised /
    upper`` asked for far more than the demand needs (Twitter CVS: demand 3 against a p90 of
    0.73 multiplied a floor already sized for 2.8 by 4.1). A utilisation metric (percent of
    the fleet) has no such unit, so the fleet grows by ``realised / upper``.
    """
    trigger = work.memory.trigger or {}
    metric = str(trigger.get("metric", ""))
    spec = work.spec.metrics.get(metric)
    if spec is not None and spec.unit != "percent" and spec.per_instance_capacity:
        target = work.spec.primary.autoscaler_target
        need, how = instances_for(work, metric, realised, target, current)
        return max(current, need), how
    factor = realised / upper if upper > 0 else 1.0
    return math.ceil(current * factor), f"x{factor:.2f}"


def ramp_down(work: PoolWork, realised: float, expected: float) -> None:
    memory, keys, spec = work.memory, work.keys, work.spec
    original = work.original
    step = memory.ramp.step_share if memory.ramp is not None else DEFAULT_STEP
    old_share = keys.mirror_weight
    clip = shift_cooldown(work, since=memory.last_shift_up_at, direction="up")
    if clip is not None:
        # Weights went up moments ago; taking them down now would flap. The floor may still fall.
        work.decide(
            "hold", "mirror share stays: weights moved up within the cooldown", clips=[clip]
        )
    elif old_share > 0:
        keys.mirror_weight = max(0, old_share - step)
        keys.primary_weight = 100 - keys.mirror_weight
        memory.last_shift_down_at = work.now
    old_min, old_desired = keys.capacity_min, keys.capacity_desired
    ratio = realised / expected if expected > 0 else 1.0
    lowered = max(int(original.capacity_min), math.ceil(old_min * ratio))
    # A floor that follows the forecast is already re-sized from the newest forecast (which has
    # seen the shortfall); scaling it down again by the miss ratio would fight that every cycle.
    if lowered < old_min and memory.floor_rule is None:
        keys.capacity_min = lowered
        if not spec.primary.native_autoscaling:
            keys.capacity_desired = max(
                lowered, int(original.capacity_desired), math.ceil(old_desired * ratio)
            )
    if memory.ramp is not None:
        memory.ramp.next_step_at = work.now + ramp_interval(work)
    if (keys.mirror_weight, keys.capacity_min, keys.capacity_desired) != (
        old_share,
        old_min,
        old_desired,
    ):
        work.decide(
            "shift_weights",
            f"demand {realised:.4g} is well below the forecast median {expected:.4g}: mirror share "
            f"{old_share}% -> {keys.mirror_weight}%, primary floor {old_min} -> {keys.capacity_min}",
        )
