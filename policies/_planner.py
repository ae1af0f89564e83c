"""The planner: ``plan(PlanningInput) -> Plan``. Pure; the driver and the backtest call the same code.

Each pool is in one of three phases, kept in :class:`~policies._plan.PoolMemory`:

- **idle**: rules may start an activation (mirror active, weights ramped, primary raised),
  within the activation cap, the cooldown and the cost cap. The pool's original driver keys
  are remembered then.
- **active**: the ramp advances one health-gated step per due cycle; realised demand is
  compared with the triggering forecast (escalate when above, ramp down when well below); when
  no demand has been seen for ``rollback_grace`` (or a rule or a person asks) a rollback starts.
- **rolling back**: one step per cycle, in order: weights to the primary, drain, pause the
  mirror, restore the primary's remembered config exactly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from infra.config import (
    Capacity,
    MirrorcastConfig,
    MirrorState,
    PoolSpec,
    RuleSpec,
    ScalePrimaryAction,
    ShiftWeightsAction,
    Weights,
    format_duration,
)
from policies._evaluate import PoolView, RuleEvaluation, evaluate_rule, parsed
from policies._explain import PoolReport, explain
from policies._feedback import assess, demand_present, latest
from policies._guardrails import (
    Clip,
    activation_block,
    clip_capacity,
    fit_cost,
    rollback_block,
)
from policies._language import comparisons, metric_terms
from policies._plan import (
    ConfigChange,
    Decision,
    MirrorHealth,
    Plan,
    PlanningInput,
    PoolMemory,
    RampState,
    RuleOutcome,
)
from policies._resolve import Resolution, resolve

__all__ = ["DRIVER_KEYS", "plan"]

logger = logging.getLogger(__name__)

STATE = "mirror.state"
PERCENT = "mirror.percent"
W_PRIMARY = "balancer.weights.primary"
W_MIRROR = "balancer.weights.mirror"
CAP_MIN = "primary.capacity.min"
CAP_DESIRED = "primary.capacity.desired"
AUTOSCALER = "primary.autoscaler_target"

DRIVER_KEYS: tuple[str, ...] = (
    STATE,
    PERCENT,
    W_PRIMARY,
    W_MIRROR,
    CAP_MIN,
    CAP_DESIRED,
    AUTOSCALER,
)
"""The pool keys a plan may change (below ``pools.<pool>.``), in the order changes are listed."""

_DEFAULT_STEP = 10
"""Share (points) a ramp-down step takes off when no ramp was recorded."""


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _keys(pool: PoolSpec) -> dict[str, Any]:
    return {
        STATE: pool.mirror.state.value,
        PERCENT: _number(pool.mirror.percent),
        W_PRIMARY: pool.balancer.weights.primary,
        W_MIRROR: pool.balancer.weights.mirror,
        CAP_MIN: pool.primary.capacity.min,
        CAP_DESIRED: pool.primary.capacity.desired,
        AUTOSCALER: _number(pool.primary.autoscaler_target),
    }


def _lead(rule: RuleSpec, pool: PoolSpec) -> timedelta:
    """Time the rule's actions need before they help: the mirror's and/or the primary's."""
    lead = timedelta(0)
    for action in rule.actions:
        if action.type in ("activate_mirror", "shift_weights"):
            lead = max(lead, pool.mirror_ready_time)
        elif action.type == "scale_primary":
            lead = max(lead, pool.guardrails.primary_ready_time)
    return lead


@dataclass
class _PoolWork:
    """Mutable scratch for one pool's plan (never leaves this module)."""

    name: str
    spec: PoolSpec
    inputs: PlanningInput
    memory: PoolMemory
    keys: dict[str, Any]
    decisions: list[Decision] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.inputs.now

    @property
    def original(self) -> dict[str, Any]:
        # A key missing from a remembered original (recorded before the key existed) is taken
        # from the config as it stands.
        return {**_keys(self.spec), **(self.memory.original or {})}

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
    def ready(self) -> bool:
        """The deployed mirror is active and healthy: only then may it take traffic."""
        return self.spec.mirror.state is MirrorState.active and self.health.ready

    def not_ready_clip(self) -> Clip:
        health = self.health
        if self.spec.mirror.state is not MirrorState.active:
            why = "the mirror is paused in the deployed config (it was activated this cycle)"
        else:
            why = f"the mirror is not ready ({health.running} running, {health.healthy} healthy)"
        return Clip(
            "mirror_not_ready", f"{why}; weights stay at {self.keys[W_MIRROR]}% for the mirror"
        )


def plan(inputs: PlanningInput) -> Plan:
    """Decide the next desired config for every pool, and say why.

    :param inputs: config, observations, forecasts, events, mirror health, memory, requests.
    :returns: the next config, the changed keys, decisions, rule outcomes, new memory and the
        explanation. The same input always gives the same plan.
    """
    config = inputs.config
    memory = inputs.memory.model_copy(deep=True)
    unknown = sorted(set(inputs.rollback_requested) - set(config.pools))
    if unknown:
        raise ValueError(
            f"rollback requested for unknown pool(s) {', '.join(unknown)}; pools are {', '.join(sorted(config.pools))}"
        )
    new_pools: dict[str, PoolSpec] = {}
    outcomes: list[RuleOutcome] = []
    decisions: list[Decision] = []
    notifications: list[str] = []
    reports: list[PoolReport] = []
    for name in sorted(config.pools):
        spec = config.pools[name]
        work = _PoolWork(
            name=name,
            spec=spec,
            inputs=inputs,
            memory=memory.pools.get(name, PoolMemory()).model_copy(deep=True),
            keys=_keys(spec),
        )
        pool_outcomes = _plan_pool(work, config)
        memory.pools[name] = work.memory
        new_pools[name] = _apply_keys(spec, work.keys)
        outcomes.extend(pool_outcomes)
        decisions.extend(work.decisions)
        notifications.extend(work.notifications)
        reports.append(
            PoolReport(
                pool=name,
                outcomes=pool_outcomes,
                weights={r.name: r.weight for r in spec.rules},
                decisions=work.decisions,
                clips=work.clips,
                notes=work.notes,
            )
        )
    # Validating the whole result guards every invariant the config model states (weights sum to
    # 100, min <= desired <= max, no traffic to a paused mirror) on every plan.
    stack_config = MirrorcastConfig.model_validate(
        config.model_copy(update={"pools": new_pools}).model_dump()
    )
    changes = _diff(config, stack_config)
    return Plan(
        now=inputs.now,
        stack_config=stack_config,
        changes=changes,
        decisions=decisions,
        rules=outcomes,
        memory=memory,
        explanation=explain(inputs.now, reports, changes),
        notifications=notifications,
    )


def _apply_keys(spec: PoolSpec, keys: dict[str, Any]) -> PoolSpec:
    capacity = Capacity(
        min=int(keys[CAP_MIN]), max=spec.primary.capacity.max, desired=int(keys[CAP_DESIRED])
    )
    return spec.model_copy(
        update={
            "mirror": spec.mirror.model_copy(
                update={"state": MirrorState(keys[STATE]), "percent": float(keys[PERCENT])}
            ),
            "balancer": spec.balancer.model_copy(
                update={
                    "weights": Weights(
                        primary=100 - int(keys[W_MIRROR]), mirror=int(keys[W_MIRROR])
                    )
                }
            ),
            "primary": spec.primary.model_copy(
                update={"capacity": capacity, "autoscaler_target": float(keys[AUTOSCALER])}
            ),
        }
    )


def _diff(old: MirrorcastConfig, new: MirrorcastConfig) -> list[ConfigChange]:
    changes: list[ConfigChange] = []
    for name in sorted(old.pools):
        before, after = _keys(old.pools[name]), _keys(new.pools[name])
        for key in DRIVER_KEYS:
            if before[key] != after[key]:
                changes.append(
                    ConfigChange(path=f"pools.{name}.{key}", old=before[key], new=after[key])
                )
    return changes


# --------------------------------------------------------------------------- one pool


def _evaluate(work: _PoolWork, config: MirrorcastConfig) -> list[RuleEvaluation]:
    view = PoolView(
        name=work.name,
        spec=work.spec,
        now=work.now,
        current=work.inputs.current.get(work.name, {}),
        forecasts=work.inputs.forecasts.get(work.name, {}),
        active_events=work.inputs.active_events,
        horizon=config.forecast.horizon,
        max_staleness=config.forecast.max_staleness,
    )
    evaluations = []
    for rule in work.spec.rules:
        if not rule.enabled:
            continue
        evaluations.append(
            evaluate_rule(
                rule,
                view,
                fired_before=work.memory.rule_state.get(rule.name, False),
                lead=_lead(rule, work.spec),
                hysteresis=work.spec.guardrails.hysteresis,
            )
        )
    return evaluations


def _outcomes(
    work: _PoolWork, evaluations: list[RuleEvaluation], resolution: Resolution
) -> list[RuleOutcome]:
    outcomes = []
    for evaluation in evaluations:
        name = evaluation.rule.name
        detail = evaluation.detail
        notes = resolution.notes.get(name, [])
        if notes:
            detail += "; " + "; ".join(notes)
        if evaluation.status == "untrusted_fallback":
            status = "untrusted_fallback"
            if evaluation.fired and name in resolution.statuses:
                detail += f" (resolution: {resolution.statuses[name]})"
        elif evaluation.fired:
            status = resolution.statuses.get(name, "fired")
        else:
            status = "not_fired"
        outcomes.append(
            RuleOutcome(
                pool=work.name,
                rule=name,
                fired=evaluation.fired,
                status=status,
                detail=detail,
            )
        )
    disabled = [r.name for r in work.spec.rules if not r.enabled]
    for name in disabled:
        outcomes.append(
            RuleOutcome(
                pool=work.name, rule=name, fired=False, status="not_fired", detail="disabled"
            )
        )
    return outcomes


def _plan_pool(work: _PoolWork, config: MirrorcastConfig) -> list[RuleOutcome]:
    evaluations = _evaluate(work, config)
    work.memory.rule_state = {e.rule.name: e.fired for e in evaluations}
    fired = [e for e in evaluations if e.fired]
    resolution = resolve(fired)
    for evaluation, action in resolution.notify:
        message = action.message or f"rule {evaluation.rule.name} fired for pool {work.name}"
        work.notifications.append(f"{action.channel}: [{work.name}] {message}")
        work.decide("notify", f"to {action.channel}: {message}", rule=evaluation.rule.name)

    memory = work.memory
    requested = work.name in work.inputs.rollback_requested
    if memory.rolling_back:
        if resolution.scales_up:
            work.notes.append(
                "a rule asks to scale up, but the rollback in progress finishes first"
            )
        _rollback_step(work)
    elif memory.activation_id is not None:
        _active(work, resolution, evaluations, requested)
    elif requested or resolution.rollback is not None:
        if work.keys[STATE] == MirrorState.active.value or work.keys[W_MIRROR] > 0:
            who = "a person" if requested else f"rule {resolution.rollback.rule.name}"  # type: ignore[union-attr]
            work.notes.append(
                f"rollback asked by {who} with no activation remembered: the mirror is drained and "
                "paused, the primary is left as it is"
            )
            _start_rollback(work, f"requested by {who}")
        else:
            work.notes.append("rollback asked, but nothing is activated: nothing to roll back")
    elif resolution.scales_up:
        _activate(work, resolution)
    return _outcomes(work, evaluations, resolution)


# --------------------------------------------------------------------------- activation


def _trigger(resolution: Resolution, fired: list[RuleEvaluation]) -> dict[str, Any] | None:
    leaders = [w[0] for w in (resolution.activate, resolution.shift, resolution.scale) if w]
    for evaluation in [*leaders, *fired]:
        if evaluation.trigger is not None:
            return evaluation.trigger.as_memory()
    for evaluation in [*leaders, *fired]:
        if evaluation.reactive:
            metric, threshold = evaluation.reactive[0]
            return {"kind": "reactive", "metric": metric, "threshold": threshold}
    return None


def _activate(work: _PoolWork, resolution: Resolution) -> None:
    memory = work.memory
    wants_mirror = resolution.activate is not None or resolution.shift is not None
    before = dict(work.keys)
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
    memory.original = dict(before)
    _scale_up(work, resolution, allow_mirror=mirror_clip is None, fresh=True)
    if work.keys == before:
        memory.original = None
        return
    memory.activation_id = f"{work.name}-{work.now:%Y%m%dT%H%M%SZ}"
    memory.activated_at = work.now
    memory.trigger = _trigger(resolution, fired)
    memory.last_up_at = work.now
    memory.demand_seen = False
    memory.escalated = False
    expected = work.now
    crossing = (memory.trigger or {}).get("crossing_at")
    if crossing:
        expected = max(expected, datetime.fromisoformat(crossing))
    memory.rollback_deadline = expected + work.spec.guardrails.rollback_grace
    if work.keys[STATE] == MirrorState.active.value and before[STATE] != MirrorState.active.value:
        memory.activations = [t for t in memory.activations if work.now - t < timedelta(days=1)]
        memory.activations.append(work.now)
    work.notes.append(
        f"activation {memory.activation_id}: original config remembered; rolls back at "
        f"{memory.rollback_deadline:%H:%M} unless demand arrives"
    )


def _scale_up(work: _PoolWork, resolution: Resolution, *, allow_mirror: bool, fresh: bool) -> None:
    """Apply the winning scale-up actions to ``work.keys`` (raising only), within guardrails."""
    keys, memory, spec = work.keys, work.memory, work.spec
    before = dict(keys)
    original = work.original
    if allow_mirror and (resolution.activate or resolution.shift):
        evaluation = (resolution.activate or resolution.shift)[0]  # type: ignore[index]
        memory.mirror_wanted_at = work.now
        percent = keys[PERCENT]
        if resolution.activate is not None and resolution.activate[1].percent is not None:
            wanted = resolution.activate[1].percent
            percent = wanted if fresh else max(percent, wanted)
        if keys[STATE] != MirrorState.active.value or percent != keys[PERCENT]:
            keys[STATE] = MirrorState.active.value
            keys[PERCENT] = _number(percent)
            ready_in = format_duration(spec.mirror_ready_time)
            work.decide(
                "activate_mirror",
                f"mirror {before[STATE]} -> active at {keys[PERCENT]}% of the primary "
                f"(ready in about {ready_in})",
                rule=evaluation.rule.name,
            )
        if resolution.shift is not None:
            _set_ramp(work, *resolution.shift)
    if resolution.scale is not None:
        _scale_primary(work, *resolution.scale, original=original)
    # The cost cap may cut back what was raised this cycle, never below what is deployed.
    fitted = fit_cost(
        pool=spec,
        primary_min=keys[CAP_MIN],
        primary_desired=keys[CAP_DESIRED],
        floor_min=before[CAP_MIN],
        floor_desired=before[CAP_DESIRED],
        mirror_active=keys[STATE] == MirrorState.active.value,
        percent=float(keys[PERCENT]),
    )
    if (
        fitted is None
        and keys[STATE] == MirrorState.active.value
        and before[STATE] != MirrorState.active.value
    ):
        keys[STATE], keys[PERCENT] = before[STATE], before[PERCENT]
        memory.ramp = None
        work.decisions = [d for d in work.decisions if d.action != "activate_mirror"]
        work.notes = [n for n in work.notes if not n.startswith("weights go to")]
        work.decide(
            "hold",
            "mirror activation refused: even the smallest mirror would exceed the cost cap",
            clips=[Clip("cost_cap", "the cost cap leaves no room for a mirror instance")],
        )
        fitted = fit_cost(
            pool=spec,
            primary_min=keys[CAP_MIN],
            primary_desired=keys[CAP_DESIRED],
            floor_min=before[CAP_MIN],
            floor_desired=before[CAP_DESIRED],
            mirror_active=False,
            percent=float(keys[PERCENT]),
        )
    if fitted is None:
        keys[CAP_MIN], keys[CAP_DESIRED] = before[CAP_MIN], before[CAP_DESIRED]
        work.clips.append(
            Clip("cost_cap", "already at or over the cost cap; the primary stays as it is")
        )
        return
    new_min, new_desired, new_percent, clips = fitted
    if clips:
        keys[CAP_MIN], keys[CAP_DESIRED], keys[PERCENT] = new_min, new_desired, _number(new_percent)
        work.decide("hold", "scale-up cut back to fit the cost cap", clips=clips)


def _set_ramp(work: _PoolWork, evaluation: RuleEvaluation, action: ShiftWeightsAction) -> None:
    memory, keys = work.memory, work.keys
    current = keys[W_MIRROR]
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


def _ramp_interval(work: _PoolWork) -> timedelta:
    ramp = work.memory.ramp
    assert ramp is not None
    for rule in work.spec.rules:
        if rule.name == ramp.rule:
            for action in rule.actions:
                if isinstance(action, ShiftWeightsAction):
                    return action.ramp.over / action.ramp.steps
    return timedelta(0)


def _advance_ramp(work: _PoolWork) -> None:
    ramp = work.memory.ramp
    keys = work.keys
    if ramp is None or keys[W_MIRROR] >= ramp.target_mirror_share:
        return
    if ramp.next_step_at is not None and work.now < ramp.next_step_at:
        work.notes.append(f"next ramp step due at {ramp.next_step_at:%H:%M}")
        return
    if not work.ready:
        work.decide(
            "hold", "ramp step waits for the mirror", rule=ramp.rule, clips=[work.not_ready_clip()]
        )
        return
    # Weights just moved down (demand fell short): moving them up again inside the cooldown
    # would flap. Escalation (demand above the forecast) overrides it.
    clip = _shift_cooldown(work, since=work.memory.last_shift_down_at, direction="down")
    if clip is not None and not work.memory.escalated:
        work.decide("hold", "ramp step waits for the cooldown", rule=ramp.rule, clips=[clip])
        return
    step = ramp.target_mirror_share if work.memory.escalated else ramp.step_share
    old = keys[W_MIRROR]
    keys[W_MIRROR] = min(ramp.target_mirror_share, old + step)
    keys[W_PRIMARY] = 100 - keys[W_MIRROR]
    ramp.next_step_at = work.now + _ramp_interval(work)
    work.memory.last_shift_up_at = work.now
    work.decide(
        "shift_weights",
        f"mirror share {old}% -> {keys[W_MIRROR]}% (target {ramp.target_mirror_share}%)",
        rule=ramp.rule,
    )


def _forecast_need(
    work: _PoolWork,
    evaluation: RuleEvaluation,
    action: ScalePrimaryAction,
    base: int,
    *,
    headroom: float = 1.0,
) -> tuple[int | None, str]:
    """Instances the forecast needs for ``action`` over ``evaluation``'s look-ahead.

    :param work: the pool's scratch for this plan.
    :param evaluation: the rule's evaluation this cycle (its look-ahead and metric).
    :param action: the ``scale_primary to_forecast`` action (quantile, target utilisation).
    :param base: the original desired count (percent metrics scale it).
    :param headroom: factor on the forecast peak (default 1.0; the follow-down passes
        ``1 + hysteresis/100``).
    :returns: the need (None when the forecast cannot size it) and how it was computed.
    """
    metric = _sizing_metric(evaluation, action)
    if metric is None:
        return None, "no metric to size for"
    forecast = work.inputs.forecasts.get(work.name, {}).get(metric)
    why = _forecast_usable(work, evaluation, action)
    if forecast is None or why is not None:
        why = why or "no forecast"
        if action.untrusted_utilisation is not None:
            return _current_need(work, metric, action.untrusted_utilisation, base, headroom, why)
        return None, f"cannot size for the {metric} forecast ({why}); scale_primary skipped"
    lookahead = evaluation.lookahead or work.inputs.config.forecast.horizon
    window = work.now + lookahead - forecast.issued_at
    peak, when = forecast.peak(action.quantile, window)
    if when is None or not math.isfinite(peak):
        return None, f"the {metric} forecast has no points in the next {format_duration(lookahead)}"
    peak *= headroom
    need, how = _instances_for(work, metric, peak, action.target_utilisation, base)
    return need, f"p{action.quantile} of {metric} peaks at {peak:.4g} by {when:%H:%M}: {how}"


def _instances_for(
    work: _PoolWork, metric: str, level: float, utilisation: float, base: int
) -> tuple[int, str]:
    """Instances ``level`` of ``metric`` needs at ``utilisation`` percent, and the sum shown.

    A percent metric scales the original ``base`` count; a metric with a per-instance capacity
    divides by what one instance serves at that utilisation.
    """
    spec = work.spec.metrics[metric]
    if spec.unit == "percent":
        need = math.ceil(base * level / utilisation)
        return need, f"ceil({base} x {level:.4g}% / {utilisation:g}%) = {need}"
    capacity = spec.per_instance_capacity
    assert capacity is not None, "checked when the config was loaded"
    need = math.ceil(level / (capacity * utilisation / 100))
    return need, f"ceil({level:.4g} / ({capacity:g} x {utilisation:g}%)) = {need}"


def _sizing_metric(evaluation: RuleEvaluation, action: ScalePrimaryAction) -> str | None:
    """The metric a ``to_forecast`` action sizes for: its own, else the rule's first."""
    if action.metric is not None:
        return action.metric
    terms = [t.metric for c in comparisons(parsed(evaluation.rule.when)) for t in metric_terms(c)]
    return terms[0] if terms else None


def _forecast_usable(
    work: _PoolWork, evaluation: RuleEvaluation, action: ScalePrimaryAction
) -> str | None:
    """``None`` when ``action`` can size from a trusted forecast, else why not."""
    metric = _sizing_metric(evaluation, action)
    forecast = work.inputs.forecasts.get(work.name, {}).get(metric) if metric else None
    if forecast is None:
        return "no forecast"
    if not forecast.trusted:
        return forecast.reason or "untrusted"
    if action.quantile not in forecast.quantiles:
        return f"no p{action.quantile}"
    return None


def _set_autoscaler_target(
    work: _PoolWork, evaluation: RuleEvaluation, action: ScalePrimaryAction
) -> None:
    """Run the cloud's autoscaler at the action's target while a trusted forecast sizes the floor.

    The floor then covers forecast demand and the autoscaler only has to catch what the
    forecast misses, so it can hold less headroom; without a trusted forecast the autoscaler is
    the only protection left, so its configured target (the original) comes back at once.
    """
    if action.autoscaler_target is None or not work.spec.primary.native_autoscaling:
        return
    keys, original = work.keys, work.original
    why_not = _forecast_usable(work, evaluation, action)
    wanted = _number(action.autoscaler_target if why_not is None else original[AUTOSCALER])
    if keys[AUTOSCALER] == wanted:
        return
    old = keys[AUTOSCALER]
    keys[AUTOSCALER] = wanted
    if why_not is None:
        detail = (
            f"autoscaler target {old}% -> {wanted}%: the floor follows a trusted forecast, "
            "the autoscaler only catches what it misses"
        )
    else:
        detail = f"autoscaler target {old}% -> {wanted}% (its configured value): forecast unusable ({why_not})"
    work.decide("scale_primary", detail, rule=evaluation.rule.name)


def _current_need(
    work: _PoolWork, metric: str, utilisation: float, base: int, headroom: float, why: str
) -> tuple[int | None, str]:
    """Instances the metric's current level needs at ``utilisation``: the reactive fallback.

    The level is the mean over the last driver interval, as the clouds' target tracking
    averages over its evaluation period rather than reacting to one sample.
    """
    series = work.inputs.current.get(work.name, {}).get(metric)
    interval = work.inputs.config.driver.interval
    level: float | None = None
    if series is not None and len(series):
        recent = series[(series.index > work.now - interval) & (series.index <= work.now)]
        values = recent.dropna()
        level = float(values.mean()) if len(values) else latest(series, work.now)
    if level is None or not math.isfinite(level):
        return None, f"cannot size for the {metric} forecast ({why}) nor its current level"
    level *= headroom
    need, how = _instances_for(work, metric, level, utilisation, base)
    return need, (
        f"forecast unusable ({why}): sized for the current {metric} at the untrusted "
        f"utilisation: {how}"
    )


def _scale_primary(
    work: _PoolWork,
    evaluation: RuleEvaluation,
    action: ScalePrimaryAction,
    *,
    original: dict[str, Any],
) -> None:
    keys, spec = work.keys, work.spec
    base = int(original[CAP_DESIRED])
    if action.to is not None:
        wanted, how = action.to, f"to {action.to}"
    elif action.by_percent is not None:
        wanted = math.ceil(base * (1 + action.by_percent / 100))
        how = f"{base} {action.by_percent:+g}% = {wanted}"
    else:
        need, how = _forecast_need(work, evaluation, action, base)
        if need is None:
            work.decide("hold", how, rule=evaluation.rule.name)
            return
        wanted = need
    target, clips = clip_capacity(
        wanted, low=int(original[CAP_MIN]), high=spec.primary.capacity.max, what="primary capacity"
    )
    old_min, old_desired = keys[CAP_MIN], keys[CAP_DESIRED]
    if spec.primary.native_autoscaling:
        # The cloud autoscaler owns desired; raising the floor moves it without a fight.
        keys[CAP_MIN] = max(old_min, target)
        keys[CAP_DESIRED] = max(old_desired, keys[CAP_MIN])
        what = f"capacity.min {old_min} -> {keys[CAP_MIN]} (desired {old_desired} -> {keys[CAP_DESIRED]})"
    else:
        keys[CAP_DESIRED] = max(old_desired, target)
        what = f"capacity.desired {old_desired} -> {keys[CAP_DESIRED]}"
    if action.to_forecast:
        # From now on this rule's sizing of the current forecast sets the floor every cycle
        # (see _follow_forecast), so it can come down as soon as the forecast does.
        work.memory.floor_rule = evaluation.rule.name
        _set_autoscaler_target(work, evaluation, action)
    if (keys[CAP_MIN], keys[CAP_DESIRED]) == (old_min, old_desired) and not clips:
        return
    if (keys[CAP_MIN], keys[CAP_DESIRED]) != (old_min, old_desired):
        work.memory.floor_raised_at = work.now  # scale_primary only ever raises
    work.decide("scale_primary", f"{how}; {what}", rule=evaluation.rule.name, clips=clips)


# --------------------------------------------------------------------------- active


def _margin(work: _PoolWork) -> float:
    trigger = work.memory.trigger or {}
    metric = trigger.get("metric")
    spec = work.spec.metrics.get(str(metric)) if metric else None
    hysteresis = work.spec.guardrails.hysteresis
    if spec is not None and spec.unit == "percent":
        return hysteresis
    return abs(float(trigger.get("threshold") or 0)) * hysteresis / 100


def _active(
    work: _PoolWork, resolution: Resolution, evaluations: list[RuleEvaluation], requested: bool
) -> None:
    memory, spec, now = work.memory, work.spec, work.now
    if requested:
        _start_rollback(work, "requested by a person")
        return
    if resolution.rollback is not None:
        clip = rollback_block(spec, memory, now)
        if clip is None:
            _start_rollback(work, f"rule {resolution.rollback.rule.name} asks for it")
            return
        work.decide(
            "hold",
            "rollback waits for the cooldown",
            rule=resolution.rollback.rule.name,
            clips=[clip],
        )
    current = work.inputs.current.get(work.name, {})
    present = demand_present(memory.trigger, current, now, margin=_margin(work))
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
            _start_rollback(
                work, f"{reason}: no demand for {format_duration(spec.guardrails.rollback_grace)}"
            )
            return
        work.decide("hold", "rollback waits for the cooldown", clips=[clip])
    if resolution.scales_up:
        allow_mirror = True
        was_paused = work.keys[STATE] != MirrorState.active.value
        if was_paused and (resolution.activate or resolution.shift):
            # An activation that began without the mirror (refused then) is still an activation.
            clip = activation_block(spec, memory, now)
            if clip is not None:
                allow_mirror = False
                work.decide("hold", "mirror activation refused by a guardrail", clips=[clip])
        _scale_up(work, resolution, allow_mirror=allow_mirror, fresh=False)
        if was_paused and work.keys[STATE] == MirrorState.active.value:
            memory.activations = [t for t in memory.activations if now - t < timedelta(days=1)]
            memory.activations.append(now)
    feedback = assess(memory.trigger, current, now, tolerance=spec.guardrails.feedback_tolerance)
    if feedback.kind != "unknown":
        work.notes.append(f"feedback: {feedback.detail}")
    if (
        (present or reactive_fired)
        and feedback.kind != "above"
        and _mirror_stands_down(work, resolution)
    ):
        return
    # Demand running well below the forecast means the forecast over-estimates: the floor may
    # follow it down but not back up (the ramp-down below lowers it further).
    _follow_forecast(work, evaluations, allow_raise=feedback.kind != "below")
    if feedback.kind == "above":
        _escalate(work, feedback.realised or 0.0, feedback.upper or 0.0)
    elif feedback.kind == "below":
        _ramp_down(work, feedback.realised or 0.0, feedback.expected or 0.0)
        return
    _advance_ramp(work)


def _mirror_stands_down(work: _PoolWork, resolution: Resolution) -> bool:
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
    if keys[STATE] != MirrorState.active.value:
        return False
    if resolution.activate is not None or resolution.shift is not None:
        return False
    wanted = memory.mirror_wanted_at or memory.activated_at
    grace = spec.guardrails.rollback_grace
    if wanted is None or work.now - wanted < grace:
        return False
    memory.ramp = None
    why = f"no rule has asked for the mirror since {wanted:%H:%M} ({format_duration(grace)} grace)"
    if keys[W_MIRROR] > 0:
        clip = _shift_cooldown(work, since=memory.last_shift_up_at, direction="up")
        if clip is not None:
            work.decide(
                "hold", "mirror stays: its weight went up within the cooldown", clips=[clip]
            )
            return False
        old = keys[W_MIRROR]
        keys[W_MIRROR], keys[W_PRIMARY] = 0, 100
        memory.last_shift_down_at = work.now
        work.decide(
            "shift_weights",
            f"mirror stands down 1/2: {why}; mirror share {old}% -> 0%, draining next cycle",
        )
        return True
    original = work.original
    keys[STATE] = MirrorState.paused.value
    keys[PERCENT] = original[PERCENT]
    work.decide(
        "pause_mirror",
        f"mirror stands down 2/2: {why}; paused at {keys[PERCENT]}%, the primary's floor stays",
    )
    return True


def _floor_action(
    work: _PoolWork, evaluations: list[RuleEvaluation]
) -> tuple[RuleEvaluation, ScalePrimaryAction] | None:
    """The remembered floor rule's evaluation this cycle and its ``to_forecast`` action."""
    name = work.memory.floor_rule
    for evaluation in evaluations:
        if evaluation.rule.name != name:
            continue
        for action in evaluation.rule.actions:
            if isinstance(action, ScalePrimaryAction) and action.to_forecast:
                return evaluation, action
    return None


def _follow_forecast(
    work: _PoolWork, evaluations: list[RuleEvaluation], *, allow_raise: bool
) -> None:
    """Set the primary's floor to what the current forecast needs over the look-ahead window.

    The floor raised by a ``scale_primary to_forecast`` rule is re-sized every cycle from the
    newest forecast over that rule's look-ahead (its window plus the primary's ready time),
    whether or not the rule fires now: a floor only has to be up one ready time ahead of a
    forecast rise, and holding it at the activation's peak until rollback costs most of the
    instance-hours a forecast could save. It goes up at once (capacity late is SLO lost), but
    down only when the need is below it by more than the pool's hysteresis (at least one
    instance) and the last raise is a ``cooldown`` old, so a forecast hovering at an instance
    boundary does not flap the floor. It never leaves [original min, max]. Without a usable
    forecast (untrusted, stale) the floor holds: the reactive rules and the cloud's autoscaler
    are the fallback, and the rollback restores the original config once demand has gone.

    :param work: the pool's scratch for this plan.
    :param evaluations: this cycle's rule evaluations (the floor rule's look-ahead comes from
        its own evaluation).
    :param allow_raise: False when realised demand runs well below the forecast: the floor may
        then only fall.
    """
    found = _floor_action(work, evaluations)
    if found is None:
        return
    evaluation, action = found
    memory, keys, spec = work.memory, work.keys, work.spec
    original = work.original
    _set_autoscaler_target(work, evaluation, action)
    need, how = _forecast_need(work, evaluation, action, int(original[CAP_DESIRED]))
    if need is None:
        work.notes.append(f"floor holds at {keys[CAP_MIN]}: {how.split(';')[0]}")
        return
    target, clips = clip_capacity(
        need, low=int(original[CAP_MIN]), high=spec.primary.capacity.max, what="primary capacity"
    )
    old_min, old_desired = keys[CAP_MIN], keys[CAP_DESIRED]
    floor = old_min if spec.primary.native_autoscaling else old_desired
    if target > floor and allow_raise:
        if spec.primary.native_autoscaling:
            keys[CAP_MIN] = target
            keys[CAP_DESIRED] = max(old_desired, target)
        else:
            keys[CAP_DESIRED] = target
        memory.floor_raised_at = work.now
        work.decide(
            "scale_primary",
            f"floor follows the forecast up: {how}; capacity.min {old_min} -> {keys[CAP_MIN]}, "
            f"desired {old_desired} -> {keys[CAP_DESIRED]}",
            rule=evaluation.rule.name,
            clips=clips,
        )
        return
    if target >= floor:
        return
    # Hysteresis on the value: the floor comes down only to what the forecast needs with the
    # pool's hysteresis added, so a forecast hovering at an instance boundary does not flap it.
    hysteresis = spec.guardrails.hysteresis
    kept, _ = _forecast_need(
        work,
        evaluation,
        action,
        int(original[CAP_DESIRED]),
        headroom=1 + hysteresis / 100,
    )
    target = max(target, min(kept if kept is not None else floor, floor))
    if target >= floor:
        work.notes.append(
            f"floor stays at {floor}: the forecast needs less, but not by more than the "
            f"{hysteresis:g}% hysteresis"
        )
        return
    cooldown = spec.guardrails.cooldown
    raised = memory.floor_raised_at
    if raised is not None and work.now - raised < cooldown:
        work.decide(
            "hold",
            f"floor stays at {floor} although the forecast needs {target}: it went up within "
            "the cooldown",
            rule=evaluation.rule.name,
            clips=[
                Clip(
                    "cooldown",
                    f"floor raised at {raised:%H:%M}; cooldown {format_duration(cooldown)} leaves "
                    f"{format_duration(cooldown - (work.now - raised))}",
                )
            ],
        )
        return
    if spec.primary.native_autoscaling:
        # The cloud autoscaler owns desired: lowering the floor lets it scale in by itself.
        keys[CAP_MIN] = target
    else:
        keys[CAP_MIN] = min(old_min, target)
        keys[CAP_DESIRED] = target
    work.decide(
        "scale_primary",
        f"floor follows the forecast down: {how}; capacity.min {old_min} -> {keys[CAP_MIN]}, "
        f"desired {old_desired} -> {keys[CAP_DESIRED]}",
        rule=evaluation.rule.name,
        clips=clips,
    )


def _escalate(work: _PoolWork, realised: float, upper: float) -> None:
    memory, keys, spec = work.memory, work.keys, work.spec
    first = not memory.escalated
    memory.escalated = True
    if memory.ramp is not None:
        memory.ramp.step_share = max(1, memory.ramp.target_mirror_share - keys[W_MIRROR])
        memory.ramp.next_step_at = work.now
    original = work.original
    current = max(keys[CAP_MIN], keys[CAP_DESIRED])
    wanted, how = _escalation_need(work, realised=realised, upper=upper, current=current)
    target, clips = clip_capacity(
        wanted, low=int(original[CAP_MIN]), high=spec.primary.capacity.max, what="primary capacity"
    )
    old_min, old_desired = keys[CAP_MIN], keys[CAP_DESIRED]
    if spec.primary.native_autoscaling:
        keys[CAP_MIN] = max(old_min, target)
        keys[CAP_DESIRED] = max(old_desired, keys[CAP_MIN])
    else:
        keys[CAP_DESIRED] = max(old_desired, target)
    changed = (keys[CAP_MIN], keys[CAP_DESIRED]) != (old_min, old_desired)
    if changed:
        memory.floor_raised_at = work.now
    if first or changed or clips:
        work.decide(
            "escalate",
            f"demand {realised:.4g} runs above the forecast ({upper:.4g}): the ramp is skipped "
            f"(straight to the target once healthy); primary min {old_min} -> {keys[CAP_MIN]}, "
            f"desired {old_desired} -> {keys[CAP_DESIRED]} ({how})",
            clips=clips,
        )
    memory.last_up_at = work.now


def _escalation_need(
    work: _PoolWork, *, realised: float, upper: float, current: int
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
        need, how = _instances_for(work, metric, realised, target, current)
        return max(current, need), how
    factor = realised / upper if upper > 0 else 1.0
    return math.ceil(current * factor), f"x{factor:.2f}"


def _ramp_down(work: _PoolWork, realised: float, expected: float) -> None:
    memory, keys, spec = work.memory, work.keys, work.spec
    original = work.original
    step = memory.ramp.step_share if memory.ramp is not None else _DEFAULT_STEP
    old_share = keys[W_MIRROR]
    clip = _shift_cooldown(work, since=memory.last_shift_up_at, direction="up")
    if clip is not None:
        # Weights went up moments ago; taking them down now would flap. The floor may still fall.
        work.decide(
            "hold", "mirror share stays: weights moved up within the cooldown", clips=[clip]
        )
    elif old_share > 0:
        keys[W_MIRROR] = max(0, old_share - step)
        keys[W_PRIMARY] = 100 - keys[W_MIRROR]
        memory.last_shift_down_at = work.now
    old_min, old_desired = keys[CAP_MIN], keys[CAP_DESIRED]
    ratio = realised / expected if expected > 0 else 1.0
    lowered = max(int(original[CAP_MIN]), math.ceil(old_min * ratio))
    # A floor that follows the forecast is already re-sized from the newest forecast (which has
    # seen the shortfall); scaling it down again by the miss ratio would fight that every cycle.
    if lowered < old_min and memory.floor_rule is None:
        keys[CAP_MIN] = lowered
        if not spec.primary.native_autoscaling:
            keys[CAP_DESIRED] = max(
                lowered, int(original[CAP_DESIRED]), math.ceil(old_desired * ratio)
            )
    if memory.ramp is not None:
        memory.ramp.next_step_at = work.now + _ramp_interval(work)
    if (keys[W_MIRROR], keys[CAP_MIN], keys[CAP_DESIRED]) != (old_share, old_min, old_desired):
        work.decide(
            "shift_weights",
            f"demand {realised:.4g} is well below the forecast median {expected:.4g}: mirror share "
            f"{old_share}% -> {keys[W_MIRROR]}%, primary floor {old_min} -> {keys[CAP_MIN]}",
        )


def _shift_cooldown(work: _PoolWork, *, since: datetime | None, direction: str) -> Clip | None:
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


# --------------------------------------------------------------------------- rollback


def _start_rollback(work: _PoolWork, reason: str) -> None:
    memory = work.memory
    memory.rolling_back = True
    memory.rollback_stage = "weights"
    memory.ramp = None
    work.decide("rollback", f"rollback started: {reason}")
    _rollback_step(work)


def _rollback_step(work: _PoolWork) -> None:
    memory, keys = work.memory, work.keys
    stage = memory.rollback_stage or "weights"
    if stage == "weights":
        if keys[W_MIRROR] > 0:
            old = keys[W_MIRROR]
            keys[W_MIRROR], keys[W_PRIMARY] = 0, 100
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
        original = memory.original
        keys[STATE] = MirrorState.paused.value
        if original is not None:
            keys[PERCENT] = original[PERCENT]
        memory.rollback_stage = "restore"
        work.decide("pause_mirror", f"rollback 3/4: mirror paused at {keys[PERCENT]}%")
        return
    original = memory.original
    if original is not None:
        keys[CAP_MIN], keys[CAP_DESIRED] = original[CAP_MIN], original[CAP_DESIRED]
        keys[AUTOSCALER] = original.get(AUTOSCALER, keys[AUTOSCALER])
        work.decide(
            "restore_primary",
            f"rollback 4/4: primary restored to its original capacity min {original[CAP_MIN]}, "
            f"desired {original[CAP_DESIRED]}, autoscaler target {keys[AUTOSCALER]}%",
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
