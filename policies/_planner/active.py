"""An active pool: demand present or gone, rule-requested rollbacks, the mirror standing down."""

from __future__ import annotations

import logging
from datetime import timedelta

from infra.config import (
    MirrorState,
    format_duration,
)
from policies._evaluate import RuleEvaluation
from policies._feedback import assess, demand_present
from policies._guardrails import activation_block, rollback_block
from policies._planner.activation import scale_up
from policies._planner.feedback import escalate, ramp_down
from policies._planner.ramps import advance_ramp, shift_cooldown
from policies._planner.rollback import start_rollback
from policies._planner.sizing import follow_forecast
from policies._planner.work import PoolWork
from policies._resolve import Resolution

logger = logging.getLogger(__name__)


def margin(work: PoolWork) -> float:
    trigger = work.memory.trigger or {}
    metric = trigger.get("metric")
    spec = work.spec.metrics.get(str(metric)) if metric else None
    hysteresis = work.spec.guardrails.hysteresis
    if spec is not None and spec.unit == "percent":
        return hysteresis
    return abs(float(trigger.get("threshold") or 0)) * hysteresis / 100


def step_active(
    work: PoolWork, resolution: Resolution, evaluations: list[RuleEvaluation], requested: bool
) -> None:
    memory, spec, now = work.memory, work.spec, work.now
    if requested:
        start_rollback(work, "requested by a person")
        return
    if resolution.rollback is not None:
        clip = rollback_block(spec, memory, now)
        if clip is None:
            start_rollback(work, f"rule {resolution.rollback.rule.name} asks for it")
            return
        work.decide(
            "hold",
            "rollback waits for the cooldown",
            rule=resolution.rollback.rule.name,
            clips=[clip],
        )
    current = work.inputs.current.get(work.name, {})
    present = demand_present(memory.trigger, current, now, margin=margin(work))
    reactive_fired = any(e.fired and e.reactive for e in evaluations)
    if present or reactive_fired:
        memory.demand_seen = memory.demand_seen or bool(present)
        memory.rollback_deadline = now + spec.guardrails.rollback_grace
    deadline = memory.rollback_deadline
    if deadline is not None and now >= deadline:
        clip = rollback_block(spec, memory, now)
        if clip is None:
            reason = (
                "demand has ended"
                if memory.demand_seen
                else "the predicted demand did not materialise"
            )
            start_rollback(
                work, f"{reason}: no demand for {format_duration(spec.guardrails.rollback_grace)}"
            )
            return
        work.decide("hold", "rollback waits for the cooldown", clips=[clip])
    if resolution.scales_up:
        allow_mirror = True
        was_paused = work.keys.state != MirrorState.active
        if was_paused and (resolution.activate or resolution.shift):
            # An activation that began without the mirror (refused then) is still an activation.
            clip = activation_block(spec, memory, now)
            if clip is not None:
                allow_mirror = False
                work.decide("hold", "mirror activation refused by a guardrail", clips=[clip])
        scale_up(work, resolution, allow_mirror=allow_mirror, fresh=False)
        if was_paused and work.keys.state == MirrorState.active:
            memory.activations = [t for t in memory.activations if now - t < timedelta(days=1)]
            memory.activations.append(now)
    feedback = assess(memory.trigger, current, now, tolerance=spec.guardrails.feedback_tolerance)
    if feedback.kind != "unknown":
        work.notes.append(f"feedback: {feedback.detail}")
    if (
        (present or reactive_fired)
        and feedback.kind != "above"
        and mirror_stands_down(work, resolution)
    ):
        return
    # Demand running well below the forecast means the forecast over-estimates: the floor may
    # follow it down but not back up (the ramp-down below lowers it further).
    follow_forecast(work, evaluations, allow_raise=feedback.kind != "below")
    if feedback.kind == "above":
        escalate(work, feedback.realised or 0.0, feedback.upper or 0.0)
    elif feedback.kind == "below":
        ramp_down(work, feedback.realised or 0.0, feedback.expected or 0.0)
        return
    advance_ramp(work)


def mirror_stands_down(work: PoolWork, resolution: Resolution) -> bool:
    """Take the mirror out of an activation that outlives the surge it was brought in for.

    An activation lasts while its trigger's demand is present, which for a floor rule written
    relative to current demand can be all day; the mirror (paid for while active) is only for
    surges the primary cannot absorb in time. Once no rule has asked for the mirror for
    ``rollback_grace`` and demand does not run above the forecast this cycle, the mirror
    stands down in the rollback's order: weights to the primary this cycle (the next cycle is
    the drain), then it is paused at its original size. The activation, its floor and its
    remembered original config stay; a rule asking again brings the mirror back (within the
    activation cap). It only acts while demand is present: without it the activation is on its
    way to a full rollback, which does the same and restores the primary too.

    :param work: the pool's scratch for this plan.
    :param resolution: this cycle's resolved rules (a mirror rule firing keeps the mirror).
    :returns: True when it acted this cycle (the ramp and feedback wait).
    """
    memory, keys, spec = work.memory, work.keys, work.spec
    if keys.state != MirrorState.active:
        return False
    if resolution.activate is not None or resolution.shift is not None:
        return False
    wanted = memory.mirror_wanted_at or memory.activated_at
    grace = spec.guardrails.rollback_grace
    if wanted is None or work.now - wanted < grace:
        return False
    memory.ramp = None
    why = f"no rule has asked for the mirror since {wanted:%H:%M} ({format_duration(grace)} grace)"
    if keys.mirror_weight > 0:
        clip = shift_cooldown(work, since=memory.last_shift_up_at, direction="up")
        if clip is not None:
            work.decide(
                "hold", "mirror stays: its weight went up within the cooldown", clips=[clip]
            )
            return False
        old = keys.mirror_weight
        keys.mirror_weight, keys.primary_weight = 0, 100
        memory.last_shift_down_at = work.now
        work.decide(
            "shift_weights",
            f"mirror stands down 1/2: {why}; mirror share {old}% -> 0%, draining next cycle",
        )
        return True
    original = work.original
    keys.state = MirrorState.paused
    keys.percent = original.percent
    work.decide(
        "pause_mirror",
        f"mirror stands down 2/2: {why}; paused at {keys.percent}%, the primary's floor stays",
    )
    return True
