"""While the primary fails and the mirror carries its traffic: keep the mirror at full size.

The mirror holds ``mirror.percent`` of the primary's desired size (``PoolSpec.mirror_size``) and
has no autoscaler of its own. While the primary fails, its autoscaler sees none of the traffic
(it goes to the mirror, or nowhere) and scales it in as far as ``capacity.min`` lets it, and the
mirror shrinks with it. On NASA's one-hour outage a floor lowered by the forecast let the mirror
at "100% of the primary" come up with 6 instances where the primary had run 7, one short a few
minutes later (docs/backtest.md, "Failover: where the outage's minutes go").
"""

from __future__ import annotations

from infra.config import MirrorState
from policies._planner.work import PoolWork

__all__ = ["hold_failing_primary"]


def hold_failing_primary(work: PoolWork) -> None:
    """Keep ``capacity.min`` at the size the primary ran when the mirror took over its traffic.

    Applies while the plan's mirror is active with traffic and the primary is observed failing
    for that share (:meth:`PoolWork.primary_failing`). The size is remembered on the first such
    cycle (``memory.failover_size``): the primary's desired size as the cloud reported it then
    (``_from_observed`` sized the plan from it), within ``capacity.max``: what was already
    running and paid for, not more. A forecast that asks for more still raises the floor above
    it; one that asks for less cannot take it below while the primary's own autoscaler is blind.
    Once the primary serves again the size is forgotten and the floor is the rules' again.
    """
    keys, memory = work.keys, work.memory
    failing = (
        keys.state == MirrorState.active
        and keys.mirror_weight > 0
        and work.primary_failing(keys.mirror_weight) is not None
    )
    if not failing:
        memory.failover_size = None
        return
    if memory.failover_size is None:
        memory.failover_size = work.spec.primary.capacity.desired
    ran = min(memory.failover_size, work.spec.primary.capacity.max)
    if keys.capacity_min >= ran:
        return
    before = keys.capacity_min
    keys.capacity_min = ran
    keys.capacity_desired = max(keys.capacity_desired, ran)
    work.decide(
        "scale_primary",
        f"the mirror carries {keys.mirror_weight}% for a failing primary: capacity.min "
        f"{before} -> {ran} (the size the primary ran when the mirror took over), so neither "
        f"the primary's autoscaler, which sees no traffic, nor a lower forecast shrinks the "
        f"mirror at {keys.percent}% of it",
    )
