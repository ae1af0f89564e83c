"""The planner's inputs and outputs: the contract between ``policies``, the driver and the backtest.

The planner is a pure function ``plan(PlanningInput) -> Plan``. Everything it remembers between
cycles is in :class:`PlannerMemory`, which the driver stores in its journal and the backtest
keeps in memory; nothing else carries state. Extend these classes by adding fields with
defaults (stored memories must keep loading); do not rename fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from forecasting import Forecast
from infra.config import MirrorcastConfig

__all__ = [
    "ConfigChange",
    "Decision",
    "MirrorHealth",
    "Plan",
    "PlannerMemory",
    "PlanningInput",
    "PoolMemory",
    "PrimaryHealth",
    "RampState",
    "RuleOutcome",
]


class ConfigChange(BaseModel):
    """One key the plan changes, as a dotted path below the ``mirrorcast:`` namespace.

    ``path`` is what ``pulumi config set --path 'mirrorcast:<path>'`` and the gitops YAML
    editor both take, e.g. ``pools.web.mirror.state``.
    """

    model_config = ConfigDict(frozen=True)

    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {self.old!r} -> {self.new!r}"


class RampState(BaseModel):
    """A weight ramp in progress: where it goes and when the next step is due."""

    target_mirror_share: int
    step_share: int
    next_step_at: datetime | None = None
    started_at: datetime
    rule: str


class PoolMemory(BaseModel):
    """What the planner remembers about one pool between cycles."""

    activation_id: str | None = Field(
        default=None, description="Set while an activation is in effect."
    )
    activated_at: datetime | None = None
    original: dict[str, Any] | None = Field(
        default=None,
        description="The pool's config keys as they were before the activation, to restore on rollback.",
    )
    trigger: dict[str, Any] | None = Field(
        default=None,
        description="The forecast that triggered activation: metric, quantile, peak, peak_at, threshold.",
    )
    ramp: RampState | None = None
    rolling_back: bool = False
    rollback_deadline: datetime | None = Field(
        default=None, description="Roll back if demand has not come by then."
    )
    activations: list[datetime] = Field(
        default_factory=list, description="Activation times (for the per-day cap)."
    )
    last_change_at: datetime | None = None
    rule_state: dict[str, bool] = Field(
        default_factory=dict, description="Per rule: fired last cycle (hysteresis)."
    )
    last_decision: dict[str, Any] | None = Field(
        default=None, description="For on_untrusted: hold."
    )
    rollback_stage: Literal["weights", "drain", "pause", "restore"] | None = Field(
        default=None,
        description="Next step of a rollback in progress: weights -> drain -> pause -> restore.",
    )
    last_up_at: datetime | None = Field(
        default=None, description="Last activation (for the cooldown before a rollback)."
    )
    last_down_at: datetime | None = Field(
        default=None, description="Last completed rollback (for the cooldown before an activation)."
    )
    last_shift_up_at: datetime | None = Field(
        default=None, description="Last time mirror weight went up (cooldown before it goes down)."
    )
    last_shift_down_at: datetime | None = Field(
        default=None, description="Last time mirror weight went down (cooldown before it goes up)."
    )
    floor_rule: str | None = Field(
        default=None,
        description="The rule whose `scale_primary to_forecast` raised the primary's floor in this "
        "activation: each cycle the floor follows that rule's sizing of the current forecast.",
    )
    mirror_wanted_at: datetime | None = Field(
        default=None,
        description="Last cycle a rule asked for the mirror in this activation (it stands down "
        "once no rule has for `rollback_grace`).",
    )
    failover_size: int | None = Field(
        default=None,
        description="The primary's desired size when the mirror took over its traffic because it "
        "was failing; held as the primary's floor (so the mirror's size) while it fails.",
    )
    floor_raised_at: datetime | None = Field(
        default=None,
        description="Last time the floor went up (the cooldown before it may follow the forecast down).",
    )
    demand_seen: bool = Field(
        default=False, description="Realised demand reached the trigger threshold since activation."
    )
    escalated: bool = Field(
        default=False, description="Demand ran above the forecast; the ramp was skipped."
    )
    health_wait_since: datetime | None = Field(
        default=None,
        description="First cycle a ramp step waited for the mirror's health (cleared when a "
        "step goes ahead); past mirror.health_timeout the activation rolls back.",
    )


class PlannerMemory(BaseModel):
    """All of the planner's memory. JSON-serialisable; the driver journals it every cycle."""

    version: int = 1
    pools: dict[str, PoolMemory] = Field(default_factory=dict)


@dataclass(frozen=True)
class MirrorHealth:
    """Whether a pool's mirror can take traffic now (from the cloud's health checks or the simulator).

    :param running: mirror instances in service or starting.
    :param healthy: mirror targets the balancer reports healthy.
    :param ready: at least one healthy target and every running instance healthy.
    :param observed: the cloud was read; ``False`` means nothing is known (never "healthy").
    :param detail: what was read, in words, for the plan's explanation.
    """

    running: int = 0
    healthy: int = 0
    ready: bool = False
    observed: bool = True
    detail: str = ""


@dataclass(frozen=True)
class PrimaryHealth:
    """How much of a pool's primary fleet its balancer reports healthy (the cloud's health checks).

    :param fleet: primary instances the group holds (its desired size as observed).
    :param healthy: primary targets the balancer reports healthy.
    """

    fleet: int
    healthy: int

    @property
    def healthy_percent(self) -> float:
        """Healthy targets as a percentage of the fleet (100 for an empty fleet: nothing fails)."""
        if self.fleet <= 0:
            return 100.0
        return min(100.0, 100.0 * self.healthy / self.fleet)


@dataclass(frozen=True)
class PlanningInput:
    """Everything a plan depends on. Same input, same plan.

    :param config: the stack's current config (what is deployed or about to be).
    :param now: the decision time (UTC, timezone-aware).
    :param current: pool -> metric -> recent observations (UTC index), long enough for every rule's
        ``for`` window.
    :param forecasts: pool -> metric -> forecast; a missing entry means no forecast at all.
    :param active_events: names of calendar events in effect now (for ``during(...)``).
    :param health: pool -> the mirror's health.
    :param primary_health: pool -> the primary's health as its balancer reports it (absent: not
        observed). A primary observed failing lets a weight step go ahead before the mirror is
        healthy: the traffic it moves is not being served anyway.
    :param memory: what previous cycles left.
    :param rollback_requested: pools a person asked to roll back now (bypasses the cooldown).
    :param observed_desired: pool -> the primary's desired size as its cloud reports it (absent:
        not observed). When it differs from the config's, the plan says so and sizes from it.
    :param actuation_time: the measured decision-to-effect time (a recent high percentile of
        cycle start to ``pulumi up`` finished); ``None``: not measured yet, and
        ``driver.actuation_time`` stands in. Every rule's lead includes it.
    """

    config: MirrorcastConfig
    now: datetime
    current: dict[str, dict[str, pd.Series]]
    forecasts: dict[str, dict[str, Forecast]]
    active_events: frozenset[str] = frozenset()
    health: dict[str, MirrorHealth] = field(default_factory=dict)
    primary_health: dict[str, PrimaryHealth] = field(default_factory=dict)
    memory: PlannerMemory = field(default_factory=PlannerMemory)
    rollback_requested: frozenset[str] = frozenset()
    observed_desired: dict[str, int] = field(default_factory=dict)
    actuation_time: timedelta | None = None


class RuleOutcome(BaseModel):
    """How one rule came out this cycle, for the explanation and the journal."""

    pool: str
    rule: str
    fired: bool
    status: Literal[
        "fired", "not_fired", "won", "overruled", "merged", "untrusted_fallback", "held"
    ]
    detail: str = Field(description="The values and thresholds involved, in words.")


class Decision(BaseModel):
    """One thing the plan does to a pool, e.g. activate the mirror or take a ramp step."""

    pool: str
    action: Literal[
        "activate_mirror",
        "shift_weights",
        "scale_primary",
        "rollback",
        "pause_mirror",
        "restore_primary",
        "notify",
        "escalate",
        "hold",
        "resync",
    ]
    rule: str | None = None
    detail: str = ""
    clipped_by: list[str] = Field(default_factory=list, description="Guardrails that limited it.")


class Notice(BaseModel):
    """A notification a fired rule asks for; the driver delivers it (:mod:`driver.notify`)."""

    pool: str
    rule: str
    channel: str = Field(description="log, or the environment variable holding a webhook URL.")
    message: str
    format: Literal["json", "slack"] = "json"

    @property
    def text(self) -> str:
        """The one-line form kept in :attr:`Plan.notifications`."""
        return f"{self.channel}: [{self.pool}] {self.message}"


class Plan(BaseModel):
    """The planner's answer: the next desired config, what changes, and why."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    now: datetime
    stack_config: MirrorcastConfig
    changes: list[ConfigChange] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    rules: list[RuleOutcome] = Field(default_factory=list)
    memory: PlannerMemory = Field(default_factory=PlannerMemory)
    explanation: str = ""
    notifications: list[str] = Field(default_factory=list)
    notices: list[Notice] = Field(
        default_factory=list, description="The notifications as records, for delivery."
    )
    resync: list[str] = Field(
        default_factory=list,
        description=(
            "Pools whose live mirror or primary drifted from the config with sync.on_drift "
            "resync: the update re-applies the config (`pulumi up`) even with no key changed."
        ),
    )
    rollbacks_answered: list[str] = Field(
        default_factory=list,
        description=(
            "Pools whose requested rollback found nothing to roll back (no activation, mirror "
            "paused and drained): the request is answered and cleared, in every mode."
        ),
    )

    @property
    def empty(self) -> bool:
        """True when the plan changes no config key."""
        return not self.changes
