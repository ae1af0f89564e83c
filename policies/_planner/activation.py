"""Idle -> active: start an activation (mirror, weights ramp, primary) within the guardrails."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from infra.config import (
    MirrorState,
    format_duration,
)
from policies._evaluate import RuleEvaluation
from policies._guardrails import Clip, activation_block, fit_cost
from policies._planner.keys import DriverKeys, number
from policies._planner.ramps import advance_ramp, set_ramp
from policies._planner.sizing import scale_primary
from policies._planner.work import PoolWork
from policies._resolve import Resolution

logger = logging.getLogger(__name__)


def trigger(resolution: Resolution, fired: list[RuleEvaluation]) -> dict[str, Any] | None:
    leaders = [w[0] for w in (resolution.activate, resolution.shift, resolution.scale) if w]
    for evaluation in [*leaders, *fired]:
        if evaluation.trigger is not None:
            return evaluation.trigger.as_memory()
    for evaluation in [*leaders, *fired]:
        if evaluation.reactive:
            metric, threshold = evaluation.reactive[0]
            return {"kind": "reactive", "metric": metric, "threshold": threshold}
    return None


def activate(work: PoolWork, resolution: Resolution) -> None:
    memory = work.memory
    wants_mirror = resolution.activate is not None or resolution.shift is not None
    before = work.keys.copy()
    mirror_clip: Clip | None = None
    if wants_mirror:
        mirror_clip = activation_block(work.spec, memory, work.now)
        if mirror_clip is not None:
            leader = (resolution.activate or resolution.shift)[0]  # type: ignore[index]
            work.decide(
                "hold",
                "mirror activation refused by a guardrail",
                rule=leader.rule.name,
                clips=[mirror_clip],
            )
            if resolution.scale is None:
                return
    fired = [w[0] for w in (resolution.activate, resolution.shift, resolution.scale) if w]
    memory.original = before.as_paths()
    scale_up(work, resolution, allow_mirror=mirror_clip is None, fresh=True)
    if memory.ramp is not None and work.primary_failing(memory.ramp.step_share) is not None:
        # The primary serves nothing of what the first step moves: shifting in the plan that
        # activates the mirror lets the DNS TTL run while the mirror starts, instead of after
        # it (the next cycle, another `up`, then the TTL: minutes of an outage lost).
        advance_ramp(work)
    if work.keys == before:
        memory.original = None
        return
    memory.activation_id = f"{work.name}-{work.now:%Y%m%dT%H%M%SZ}"
    memory.activated_at = work.now
    memory.trigger = trigger(resolution, fired)
    memory.last_up_at = work.now
    memory.demand_seen = False
    memory.escalated = False
    expected = work.now
    crossing = (memory.trigger or {}).get("crossing_at")
    if crossing:
        expected = max(expected, datetime.fromisoformat(crossing))
    memory.rollback_deadline = expected + work.spec.guardrails.rollback_grace
    if work.keys.state == MirrorState.active and before.state != MirrorState.active:
        memory.activations = [t for t in memory.activations if work.now - t < timedelta(days=1)]
        memory.activations.append(work.now)
    work.notes.append(
        f"activation {memory.activation_id}: original config remembered; rolls back at "
        f"{memory.rollback_deadline:%H:%M} unless demand arrives"
    )


def scale_up(work: PoolWork, resolution: Resolution, *, allow_mirror: bool, fresh: bool) -> None:
    """Apply the winning scale-up actions to ``work.keys`` (raising only), within guardrails."""
    keys, memory, spec = work.keys, work.memory, work.spec
    before = keys.copy()
    original = work.original
    if allow_mirror and (resolution.activate or resolution.shift):
        evaluation = (resolution.activate or resolution.shift)[0]  # type: ignore[index]
        memory.mirror_wanted_at = work.now
        percent = keys.percent
        if resolution.activate is not None and resolution.activate[1].percent is not None:
            wanted = resolution.activate[1].percent
            percent = wanted if fresh else max(percent, wanted)
        if keys.state != MirrorState.active or percent != keys.percent:
            keys.state = MirrorState.active
            keys.percent = number(percent)
            ready_in = format_duration(spec.mirror_ready_time)
            work.decide(
                "activate_mirror",
                f"mirror {before.state} -> active at {keys.percent}% of the primary "
                f"(the mirror itself is ready in about {ready_in})",
                rule=evaluation.rule.name,
            )
        if resolution.shift is not None:
            set_ramp(work, *resolution.shift)
    if resolution.scale is not None:
        scale_primary(work, *resolution.scale, original=original)
    # The cost cap may cut back what was raised this cycle, never below what is deployed.
    fitted = _fit_cost(work, floor=before, mirror_active=keys.state == MirrorState.active)
    if fitted is None and keys.state == MirrorState.active and before.state != MirrorState.active:
        keys.state, keys.percent = before.state, before.percent
        memory.ramp = None
        work.decisions = [d for d in work.decisions if d.action != "activate_mirror"]
        work.notes = [n for n in work.notes if not n.startswith("weights go to")]
        work.decide(
            "hold",
            "mirror activation refused: even the smallest mirror would exceed the cost cap",
            clips=[Clip("cost_cap", "the cost cap leaves no room for a mirror instance")],
        )
        fitted = _fit_cost(work, floor=before, mirror_active=False)
    if fitted is None:
        keys.capacity_min, keys.capacity_desired = before.capacity_min, before.capacity_desired
        work.clips.append(
            Clip("cost_cap", "already at or over the cost cap; the primary stays as it is")
        )
        return
    new_min, new_desired, new_percent, clips = fitted
    if clips:
        keys.capacity_min, keys.capacity_desired, keys.percent = (
            new_min,
            new_desired,
            number(new_percent),
        )
        work.decide("hold", "scale-up cut back to fit the cost cap", clips=clips)


def _fit_cost(
    work: PoolWork, *, floor: DriverKeys, mirror_active: bool
) -> tuple[int, int, float, list[Clip]] | None:
    """:func:`fit_cost` for the keys as they stand now, cut back no lower than ``floor``.

    The scale-up fits the cost cap with the mirror as planned and, when that is impossible,
    again without the mirror; both ask about the same pool, keys and floor, so they are built
    here once (``keys.percent`` is read at the call, after any reset).
    """
    keys = work.keys
    return fit_cost(
        pool=work.spec,
        primary_min=keys.capacity_min,
        primary_desired=keys.capacity_desired,
        floor_min=floor.capacity_min,
        floor_desired=floor.capacity_desired,
        mirror_active=mirror_active,
        percent=float(keys.percent),
    )
