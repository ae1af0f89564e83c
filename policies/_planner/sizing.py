"""Sizing the primary: fixed, by percent, or from the forecast (with the floor following it)."""

from __future__ import annotations

import logging
import math

from infra.config import (
    ScalePrimaryAction,
    format_duration,
)
from infra.config.rules import comparisons, metric_terms
from policies._evaluate import RuleEvaluation, parsed
from policies._feedback import latest
from policies._guardrails import Clip, clip_capacity
from policies._planner.keys import DriverKeys, number
from policies._planner.work import PoolWork

logger = logging.getLogger(__name__)


def forecast_need(
    work: PoolWork,
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
    metric = sizing_metric(evaluation, action)
    if metric is None:
        return None, "no metric to size for"
    forecast = work.inputs.forecasts.get(work.name, {}).get(metric)
    why = forecast_usable(work, evaluation, action)
    if forecast is None or why is not None:
        why = why or "no forecast"
        if action.untrusted_utilisation is not None:
            return current_need(work, metric, action.untrusted_utilisation, base, headroom, why)
        return None, f"cannot size for the {metric} forecast ({why}); scale_primary skipped"
    lookahead = evaluation.lookahead or work.inputs.config.forecast.horizon
    window = work.now + lookahead - forecast.issued_at
    peak, when = forecast.peak(action.quantile, window)
    if when is None or not math.isfinite(peak):
        return None, f"the {metric} forecast has no points in the next {format_duration(lookahead)}"
    peak *= headroom
    need, how = instances_for(work, metric, peak, action.target_utilisation, base)
    return need, f"p{action.quantile} of {metric} peaks at {peak:.4g} by {when:%H:%M}: {how}"


def instances_for(
    work: PoolWork, metric: str, level: float, utilisation: float, base: int
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


def sizing_metric(evaluation: RuleEvaluation, action: ScalePrimaryAction) -> str | None:
    """The metric a ``to_forecast`` action sizes for: its own, else the rule's first."""
    if action.metric is not None:
        return action.metric
    terms = [t.metric for c in comparisons(parsed(evaluation.rule.when)) for t in metric_terms(c)]
    return terms[0] if terms else None


def forecast_usable(
    work: PoolWork, evaluation: RuleEvaluation, action: ScalePrimaryAction
) -> str | None:
    """``None`` when ``action`` can size from a trusted forecast, else why not."""
    metric = sizing_metric(evaluation, action)
    forecast = work.inputs.forecasts.get(work.name, {}).get(metric) if metric else None
    if forecast is None:
        return "no forecast"
    if not forecast.trusted:
        return forecast.reason or "untrusted"
    if action.quantile not in forecast.quantiles:
        return f"no p{action.quantile}"
    return None


def set_autoscaler_target(
    work: PoolWork, evaluation: RuleEvaluation, action: ScalePrimaryAction
) -> None:
    """Run the cloud's autoscaler at the action's target while a trusted forecast sizes the floor.

    The floor then covers forecast demand and the autoscaler only has to catch what the
    forecast misses, so it can hold less headroom; without a trusted forecast the autoscaler is
    the only protection left, so its configured target (the original) comes back at once.
    """
    if action.autoscaler_target is None or not work.spec.primary.native_autoscaling:
        return
    keys, original = work.keys, work.original
    why_not = forecast_usable(work, evaluation, action)
    wanted = number(action.autoscaler_target if why_not is None else original.autoscaler_target)
    if keys.autoscaler_target == wanted:
        return
    old = keys.autoscaler_target
    keys.autoscaler_target = wanted
    if why_not is None:
        detail = (
            f"autoscaler target {old}% -> {wanted}%: the floor follows a trusted forecast, "
            "the autoscaler only catches what it misses"
        )
    else:
        detail = f"autoscaler target {old}% -> {wanted}% (its configured value): forecast unusable ({why_not})"
    work.decide("scale_primary", detail, rule=evaluation.rule.name)


def current_need(
    work: PoolWork, metric: str, utilisation: float, base: int, headroom: float, why: str
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
    need, how = instances_for(work, metric, level, utilisation, base)
    return need, (
        f"forecast unusable ({why}): sized for the current {metric} at the untrusted "
        f"utilisation: {how}"
    )


def clip_primary(work: PoolWork, *, wanted: int, original: DriverKeys) -> tuple[int, list[Clip]]:
    """``wanted`` primary instances clipped to [the original config's min, the hard max].

    Every sizing of the primary (a rule's scale-up, an escalation, the floor that follows the
    forecast) is bounded by the same two limits; one place keeps them the same.
    """
    return clip_capacity(
        wanted,
        low=int(original.capacity_min),
        high=work.spec.primary.capacity.max,
        what="primary capacity",
    )


def raise_primary(
    work: PoolWork, *, wanted: int, original: DriverKeys
) -> tuple[int, int, list[Clip]]:
    """Raise the primary to ``wanted`` instances (clipped to [original min, max]), never lower.

    Scaling the primary up for a rule and escalating on demand above the forecast must move
    the same keys the same way: with the cloud's own autoscaler the floor (``capacity.min``)
    goes up and desired follows, as the autoscaler owns desired and raising the floor moves it
    without a fight; without one, desired goes up. Shared so the two cannot drift apart.

    :returns: min and desired as they were before, and the clips applied to ``wanted``.
    """
    keys, spec = work.keys, work.spec
    target, clips = clip_primary(work, wanted=wanted, original=original)
    old_min, old_desired = keys.capacity_min, keys.capacity_desired
    if spec.primary.native_autoscaling:
        keys.capacity_min = max(old_min, target)
        keys.capacity_desired = max(old_desired, keys.capacity_min)
    else:
        keys.capacity_desired = max(old_desired, target)
    return old_min, old_desired, clips


def scale_primary(
    work: PoolWork,
    evaluation: RuleEvaluation,
    action: ScalePrimaryAction,
    *,
    original: DriverKeys,
) -> None:
    keys, spec = work.keys, work.spec
    base = int(original.capacity_desired)
    if action.to is not None:
        wanted, how = action.to, f"to {action.to}"
    elif action.by_percent is not None:
        wanted = math.ceil(base * (1 + action.by_percent / 100))
        how = f"{base} {action.by_percent:+g}% = {wanted}"
    else:
        need, how = forecast_need(work, evaluation, action, base)
        if need is None:
            work.decide("hold", how, rule=evaluation.rule.name)
            return
        wanted = need
    old_min, old_desired, clips = raise_primary(work, wanted=wanted, original=original)
    if spec.primary.native_autoscaling:
        what = f"capacity.min {old_min} -> {keys.capacity_min} (desired {old_desired} -> {keys.capacity_desired})"
    else:
        what = f"capacity.desired {old_desired} -> {keys.capacity_desired}"
    if action.to_forecast:
        # From now on this rule's sizing of the current forecast sets the floor every cycle
        # (see follow_forecast), so it can come down as soon as the forecast does.
        work.memory.floor_rule = evaluation.rule.name
        set_autoscaler_target(work, evaluation, action)
    if (keys.capacity_min, keys.capacity_desired) == (old_min, old_desired) and not clips:
        return
    if (keys.capacity_min, keys.capacity_desired) != (old_min, old_desired):
        work.memory.floor_raised_at = work.now  # scale_primary only ever raises
    work.decide("scale_primary", f"{how}; {what}", rule=evaluation.rule.name, clips=clips)


def floor_action(
    work: PoolWork, evaluations: list[RuleEvaluation]
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


def follow_forecast(
    work: PoolWork, evaluations: list[RuleEvaluation], *, allow_raise: bool
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
    found = floor_action(work, evaluations)
    if found is None:
        return
    evaluation, action = found
    memory, keys, spec = work.memory, work.keys, work.spec
    original = work.original
    set_autoscaler_target(work, evaluation, action)
    need, how = forecast_need(work, evaluation, action, int(original.capacity_desired))
    if need is None:
        work.notes.append(f"floor holds at {keys.capacity_min}: {how.split(';')[0]}")
        return
    target, clips = clip_primary(work, wanted=need, original=original)
    old_min, old_desired = keys.capacity_min, keys.capacity_desired
    floor = old_min if spec.primary.native_autoscaling else old_desired
    if target > floor and allow_raise:
        if spec.primary.native_autoscaling:
            keys.capacity_min = target
            keys.capacity_desired = max(old_desired, target)
        else:
            keys.capacity_desired = target
        memory.floor_raised_at = work.now
        work.decide(
            "scale_primary",
            f"floor follows the forecast up: {how}; capacity.min {old_min} -> {keys.capacity_min}, "
            f"desired {old_desired} -> {keys.capacity_desired}",
            rule=evaluation.rule.name,
            clips=clips,
        )
        return
    if target >= floor:
        return
    # Hysteresis on the value: the floor comes down only to what the forecast needs with the
    # pool's hysteresis added, so a forecast hovering at an instance boundary does not flap it.
    hysteresis = spec.guardrails.hysteresis
    kept, _ = forecast_need(
        work,
        evaluation,
        action,
        int(original.capacity_desired),
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
        keys.capacity_min = target
    else:
        keys.capacity_min = min(old_min, target)
        keys.capacity_desired = target
    work.decide(
        "scale_primary",
        f"floor follows the forecast down: {how}; capacity.min {old_min} -> {keys.capacity_min}, "
        f"desired {old_desired} -> {keys.capacity_desired}",
        rule=evaluation.rule.name,
        clips=clips,
    )
