"""One pool's scratch for one plan: the keys being changed, the memory, decisions, clips, notes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from infra.config import MirrorState, PoolSpec
from policies._guardrails import Clip
from policies._plan import Decision, MirrorHealth, Notice, PlanningInput, PoolMemory, PrimaryHealth
from policies._planner.keys import DriverKeys

__all__ = ["PoolWork"]


@dataclass
class PoolWork:
    """Mutable scratch for one pool's plan (never leaves the planner)."""

    name: str
    spec: PoolSpec
    inputs: PlanningInput
    memory: PoolMemory
    keys: DriverKeys
    decisions: list[Decision] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    rollback_answered: bool = False  # a person's rollback request found nothing to roll back

    @property
    def now(self) -> datetime:
        return self.inputs.now

    @property
    def original(self) -> DriverKeys:
        """The keys remembered at activation, else the config's as it stands."""
        # A key missing from a remembered original (recorded before the key existed) is taken
        # from the config as it stands.
        return DriverKeys.from_paths(self.memory.original or {}, default=DriverKeys.of(self.spec))

    @property
    def remembered(self) -> DriverKeys | None:
        """The keys remembered at activation, or None when there is no remembered original."""
        return None if self.memory.original is None else self.original

    def decide(
        self, action: str, detail: str, *, rule: str | None = None, clips: list[Clip] | None = None
    ) -> None:
        clips = clips or []
        self.clips.extend(clips)
        self.decisions.append(
            Decision(
                pool=self.name,
                action=action,
                rule=rule,
                detail=detail,
                clipped_by=[c.guardrail for c in clips],
            )
        )

    @property
    def health(self) -> MirrorHealth:
        return self.inputs.health.get(self.name, MirrorHealth())

    @property
    def primary_health(self) -> PrimaryHealth | None:
        """The primary's health as its balancer reports it (``None``: not observed)."""
        return self.inputs.primary_health.get(self.name)

    def primary_failing(self, share: int) -> str | None:
        """Why moving ``share`` percent of traffic to the mirror loses nothing now, else ``None``.

        When the primary's healthy targets cover no more than the ``100 - share`` percent of
        the traffic it would keep, the traffic the step moves is traffic the primary is not
        serving: sending it to a mirror that is still starting loses nothing, and waiting for
        the mirror's health costs a cycle, another ``pulumi up`` and the DNS TTL of an outage.
        An unobserved primary is never taken to be failing.
        """
        health = self.primary_health
        if health is None or health.fleet <= 0:
            return None
        if health.healthy_percent > 100 - share:
            return None
        return (
            f"the primary is failing ({health.healthy} of {health.fleet} targets healthy): the "
            f"{share}% moved is not being served, so it goes before the mirror is healthy"
        )

    @property
    def ready(self) -> bool:
        """The deployed mirror is active and healthy: only then may it take traffic."""
        return self.spec.mirror.state is MirrorState.active and self.health.ready

    @property
    def observed_desired(self) -> int | None:
        """The primary's desired size as its cloud reports it (``None``: not observed)."""
        return self.inputs.observed_desired.get(self.name)

    def healthy_needed(self, share: int) -> int:
        """Healthy mirror targets needed before the mirror may take ``share`` percent of traffic.

        The traffic is what the primary's fleet (as observed, else as configured) serves, so
        the mirror needs ``ceil(share x primary)`` healthy instances; never more than it holds
        (``mirror_size``: a ramp to a share the mirror cannot carry is still gated on all of
        it being healthy) and at least one.
        """
        fleet = self.observed_desired
        if fleet is None:
            fleet = self.keys.capacity_desired
        wanted = math.ceil(round(share * fleet / 100, 9))
        return max(1, min(wanted, max(1, self.spec.mirror_size)))

    def health_gate(self, share: int) -> str | None:
        """``None`` when the mirror may take ``share`` percent now, else why not (one sentence)."""
        if self.spec.mirror.state is not MirrorState.active:
            return "the mirror is paused in the deployed config (it was activated this cycle)"
        health = self.health
        if not health.observed:
            return health.detail or "the mirror's health was not observed"
        needed = self.healthy_needed(share)
        if health.healthy < needed:
            seen = f" ({health.detail})" if health.detail else ""
            return (
                f"{health.healthy} healthy mirror target(s), {share}% of the traffic needs "
                f"{needed}{seen}"
            )
        return None

    def not_ready_clip(self) -> Clip:
        health = self.health
        if self.spec.mirror.state is not MirrorState.active:
            why = "the mirror is paused in the deployed config (it was activated this cycle)"
        else:
            why = f"the mirror is not ready ({health.running} running, {health.healthy} healthy)"
        return Clip(
            "mirror_not_ready",
            f"{why}; weights stay at {self.keys.mirror_weight}% for the mirror",
        )
