"""Weight ramps: one health-gated step per due cycle, and the cooldown between opposite moves."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from infra.config import (
    ShiftWeightsAction,
    format_duration,
)
from policies._evaluate import RuleEvaluation
from policies._guardrails import Clip
from policies._plan import Notice, RampState
from policies._planner.rollback import start_rollback
from policies._planner.work import PoolWork

logger = logging.getLogger(__name__)


def set_ramp(work: PoolWork, evaluation: RuleEvaluation, action: ShiftWeightsAction) -> None:
    memory, keys = work.memory, work.keys
    current = keys.mirror_weight
    target = action.mirror
    immediate = action.ramp.mode == "immediate" or memory.escalated
    step = max(1, target - current) if immediate else max(1, math.ceil(target / action.ramp.steps))
    ramp = memory.ramp
    if ramp is not None:
        better = target > ramp.target_mirror_share or (
            immediate and ramp.step_share < ramp.target_mirror_share - current
        )
        if not better:
            return
    memory.ramp = RampState(
        target_mirror_share=target,
        step_share=step,
        next_step_at=work.now,
        started_at=work.now,
        rule=evaluation.rule.name,
    )
    how = (
        "immediately"
        if immediate
        else f"in steps of {step}% every {format_duration(action.ramp.over / action.ramp.steps)}"
    )
    work.notes.append(
        f"weights go to {target}% on the mirror {how}, each step only once the mirror is healthy"
    )


def ramp_interval(work: PoolWork) -> timedelta:
    ramp = work.memory.ramp
    assert ramp is not None
    for rule in work.spec.rules:
        if rule.name == ramp.rule:
            for action in rule.actions:
                if isinstance(action, ShiftWeightsAction):
                    return action.ramp.over / action.ramp.steps
    return timedelta(0)


def advance_ramp(work: PoolWork) -> None:
    ramp = work.memory.ramp
    keys = work.keys
    if ramp is None or keys.mirror_weight >= ramp.target_mirror_share:
        return
    if ramp.next_step_at is not None and work.now < ramp.next_step_at:
        work.notes.append(f"next ramp step due at {ramp.next_step_at:%H:%M}")
        return
    step = ramp.target_mirror_share if work.memory.escalated else ramp.step_share
    share = min(ramp.target_mirror_share, keys.mirror_weight + step)
    why = work.health_gate(share)
    if why is not None:
        failing = work.primary_failing(share)
        if failing is None:
            wait_for_health(work, share, why)
            return
        work.notes.append(f"{why}; {failing}")
    work.memory.health_wait_since = None
    # Weights just moved down (demand fell short): moving them up again inside the cooldown
    # would flap. Escalation (demand above the forecast) overrides it.
    clip = shift_cooldown(work, since=work.memory.last_shift_down_at, direction="down")
    if clip is not None and not work.memory.escalated:
        work.decide("hold", "ramp step waits for the cooldown", rule=ramp.rule, clips=[clip])
        return
    old = keys.mirror_weight
    keys.mirror_weight = share
    keys.primary_weight = 100 - keys.mirror_weight
    ramp.next_step_at = work.now + ramp_interval(work)
    work.memory.last_shift_up_at = work.now
    work.decide(
        "shift_weights",
        f"mirror share {old}% -> {keys.mirror_weight}% (target {ramp.target_mirror_share}%)",
        rule=ramp.rule,
    )


def wait_for_health(work: PoolWork, share: int, why: str) -> None:
    """Hold the ramp step while the mirror is not healthy enough; past the timeout, roll back.

    The wait starts with the first step that had to wait and ends with the first that went
    ahead, so ``mirror.health_timeout`` bounds one continuous stretch of waiting.
    """
    memory = work.memory
    ramp = memory.ramp
    assert ramp is not None
    since = memory.health_wait_since or work.now
    memory.health_wait_since = since
    waited = work.now - since
    timeout = work.spec.mirror.health_timeout
    if waited >= timeout:
        reason = (
            f"the mirror was not healthy enough to take {share}% for "
            f"{format_duration(waited)} (mirror.health_timeout {format_duration(timeout)}): {why}"
        )
        memory.health_wait_since = None
        notice = Notice(
            pool=work.name,
            rule=ramp.rule,
            channel="log",
            message=f"activation rolled back: {reason}",
        )
        work.notices.append(notice)
        work.notifications.append(notice.text)
        work.decide("notify", f"to log: {notice.message}", rule=ramp.rule)
        start_rollback(work, reason)
        return
    left = format_duration(timeout - waited)
    work.decide(
        "hold",
        f"ramp step to {share}% waits for the mirror's health ({left} left of "
        f"mirror.health_timeout)",
        rule=ramp.rule,
        clips=[
            Clip(
                "mirror_not_ready",
                f"{why}; weights stay at {work.keys.mirror_weight}% for the mirror",
            )
        ],
    )


def shift_cooldown(work: PoolWork, *, since: datetime | None, direction: str) -> Clip | None:
    """A cooldown clip when mirror weight moved the other way less than ``cooldown`` ago."""
    cooldown = work.spec.guardrails.cooldown
    if since is None or work.now - since >= cooldown:
        return None
    wait = cooldown - (work.now - since)
    return Clip(
        "cooldown",
        f"mirror weight moved {direction} at {since:%H:%M}; cooldown {format_duration(cooldown)} "
        f"leaves {format_duration(wait)}",
    )
