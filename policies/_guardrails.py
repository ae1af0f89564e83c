"""Guardrails every plan honours: capacity bounds, the cost cap, the activation cap, cooldowns.

Each check returns what it allows and, when it had to cut something, a named clip
(``max_capacity``, ``min_capacity``, ``cost_cap``, ``activation_cap``, ``cooldown``) with a
sentence for the explanation. Hysteresis and time-to-ready act inside rule evaluation
(:mod:`policies._evaluate`); health gating acts in the planner.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from infra.config import PoolSpec, format_duration
from policies._plan import PoolMemory

__all__ = [
    "Clip",
    "activation_block",
    "clip_capacity",
    "concurrent_instance_limit",
    "fit_cost",
    "instances",
    "mirror_instances",
    "rollback_block",
]

logger = logging.getLogger(__name__)

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Clip:
    """A guardrail that limited an action: its name and what it did, in words."""

    guardrail: str
    detail: str


def clip_capacity(value: int, *, low: int, high: int, what: str) -> tuple[int, list[Clip]]:
    """``value`` clamped to ``[low, high]`` (the original config's min and the hard max).

    :param value: wanted instance count.
    :param low: the original config's capacity.min.
    :param high: capacity.max (a hard ceiling).
    :param what: which key, for the words (e.g. ``capacity.min``).
    """
    if value > high:
        return high, [
            Clip("max_capacity", f"{what} {value} exceeds capacity.max {high}; set to {high}")
        ]
    if value < low:
        return low, [
            Clip(
                "min_capacity",
                f"{what} {value} is below the original capacity.min {low}; set to {low}",
            )
        ]
    return value, []


def mirror_instances(percent: float, desired: int) -> int:
    """Instances a mirror of ``percent`` of ``desired`` runs (same rounding as the config model)."""
    return math.ceil(percent / 100 * desired)


def instances(
    *, primary_min: int, primary_desired: int, mirror_active: bool, percent: float
) -> int:
    """Instances running under a config: the primary (at least its floor) plus an active mirror."""
    primary = max(primary_min, primary_desired)
    return primary + (mirror_instances(percent, primary) if mirror_active else 0)


def concurrent_instance_limit(pool: PoolSpec) -> tuple[int | None, str]:
    """Most instances the cost cap allows at once, and how that was worked out (None: no cap)."""
    cost = pool.guardrails.cost
    limits: list[tuple[int, str]] = []
    if cost.max_instance_hours_per_day is not None:
        per_hour = math.floor(cost.max_instance_hours_per_day / 24)
        limits.append(
            (
                per_hour,
                f"{cost.max_instance_hours_per_day:g} instance-hours/day = {per_hour} instances",
            )
        )
    price = cost.instance_hourly_cost or pool.primary.instance_hourly_cost
    if cost.hourly_budget is not None and price:
        count = math.floor(cost.hourly_budget / price)
        limits.append(
            (
                count,
                f"budget {cost.hourly_budget:g}/h at {price:g}/instance-hour = {count} instances",
            )
        )
    if not limits:
        return None, ""
    return min(limits)


def fit_cost(
    *,
    pool: PoolSpec,
    primary_min: int,
    primary_desired: int,
    floor_min: int,
    floor_desired: int,
    mirror_active: bool,
    percent: float,
) -> tuple[int, int, float, list[Clip]] | None:
    """Cut the primary back towards ``floor_*`` and then the mirror's percent until the cost cap holds.

    Returns (min, desired, percent, clips), or None when even the floor with the smallest
    mirror does not fit (the activation is then refused).
    """
    limit, how = concurrent_instance_limit(pool)
    count = instances(
        primary_min=primary_min,
        primary_desired=primary_desired,
        mirror_active=mirror_active,
        percent=percent,
    )
    if limit is None or count <= limit:
        return primary_min, primary_desired, percent, []
    wanted = count
    new_min, new_desired = primary_min, primary_desired
    while instances(
        primary_min=new_min,
        primary_desired=new_desired,
        mirror_active=mirror_active,
        percent=percent,
    ) > limit and (new_min > floor_min or new_desired > floor_desired):
        new_min = max(floor_min, new_min - 1)
        new_desired = max(floor_desired, new_min, new_desired - 1)
    new_percent = percent
    primary = max(new_min, new_desired)
    if mirror_active and primary + mirror_instances(new_percent, primary) > limit:
        room = limit - primary
        if room < 1:
            return None
        new_percent = math.floor(room / primary * 100) if primary else 0
        while new_percent > 0 and mirror_instances(new_percent, primary) > room:
            new_percent -= 1
        if new_percent <= 0:
            return None
    if primary + (mirror_instances(new_percent, primary) if mirror_active else 0) > limit:
        return None
    clip = Clip(
        "cost_cap",
        f"{wanted} instances would exceed the cost cap ({how}); "
        f"planned primary min {new_min}, desired {new_desired}"
        + (f", mirror {new_percent:g}%" if mirror_active else ""),
    )
    return new_min, new_desired, new_percent, [clip]


def activation_block(pool: PoolSpec, memory: PoolMemory, now: datetime) -> Clip | None:
    """Why the mirror may not be activated now (activation cap or cooldown), or None."""
    guard = pool.guardrails
    recent = [t for t in memory.activations if now - t < _DAY]
    if len(recent) >= guard.max_activations_per_day:
        return Clip(
            "activation_cap",
            f"already {len(recent)} activations in the last 24h (max_activations_per_day {guard.max_activations_per_day})",
        )
    if memory.last_down_at is not None and now - memory.last_down_at < guard.cooldown:
        wait = guard.cooldown - (now - memory.last_down_at)
        return Clip(
            "cooldown",
            f"rolled back at {memory.last_down_at:%H:%M}; cooldown {format_duration(guard.cooldown)} "
            f"allows activating again in {format_duration(wait)}",
        )
    return None


def rollback_block(pool: PoolSpec, memory: PoolMemory, now: datetime) -> Clip | None:
    """Why an automatic rollback may not start now (cooldown after the activation), or None."""
    cooldown = pool.guardrails.cooldown
    if memory.last_up_at is not None and now - memory.last_up_at < cooldown:
        wait = cooldown - (now - memory.last_up_at)
        return Clip(
            "cooldown",
            f"activated at {memory.last_up_at:%H:%M}; cooldown {format_duration(cooldown)} "
            f"allows rolling back in {format_duration(wait)}",
        )
    return None
