"""Rolling back, one step per cycle: weights to the primary, drain, pause the mirror, restore."""

from __future__ import annotations

import logging

from infra.config import (
    MirrorState,
)
from policies._planner.work import PoolWork

logger = logging.getLogger(__name__)


def start_rollback(work: PoolWork, reason: str) -> None:
    memory = work.memory
    memory.rolling_back = True
    memory.rollback_stage = "weights"
    memory.ramp = None
    work.decide("rollback", f"rollback started: {reason}")
    rollback_step(work)


def rollback_step(work: PoolWork) -> None:
    memory, keys = work.memory, work.keys
    stage = memory.rollback_stage or "weights"
    if stage == "weights":
        if keys.mirror_weight > 0:
            old = keys.mirror_weight
            keys.mirror_weight, keys.primary_weight = 0, 100
            memory.rollback_stage = "drain"
            work.decide(
                "shift_weights",
                f"rollback 1/4: mirror share {old}% -> 0%, all traffic to the primary",
            )
            return
        stage = "pause"  # no traffic ever reached the mirror: nothing to drain
    if stage == "drain":
        memory.rollback_stage = "pause"
        work.decide(
            "rollback", "rollback 2/4: draining the mirror's connections (one cycle, weights at 0)"
        )
        return
    if stage == "pause":
        original = work.remembered
        keys.state = MirrorState.paused
        if original is not None:
            keys.percent = original.percent
        memory.rollback_stage = "restore"
        work.decide("pause_mirror", f"rollback 3/4: mirror paused at {keys.percent}%")
        return
    original = work.remembered
    if original is not None:
        keys.capacity_min, keys.capacity_desired = original.capacity_min, original.capacity_desired
        keys.autoscaler_target = original.autoscaler_target
        work.decide(
            "restore_primary",
            f"rollback 4/4: primary restored to its original capacity min {original.capacity_min}, "
            f"desired {original.capacity_desired}, autoscaler target {keys.autoscaler_target}%",
        )
    else:
        work.decide(
            "restore_primary",
            "rollback 4/4: no original config remembered; the primary is left as it is",
        )
    memory.activation_id = None
    memory.activated_at = None
    memory.original = None
    memory.trigger = None
    memory.ramp = None
    memory.rolling_back = False
    memory.rollback_stage = None
    memory.rollback_deadline = None
    memory.demand_seen = False
    memory.escalated = False
    memory.floor_rule = None
    memory.floor_raised_at = None
    memory.mirror_wanted_at = None
    memory.last_down_at = work.now
