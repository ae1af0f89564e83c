"""One pool's plan: evaluate its rules, resolve them, and hand over to the phase it is in."""

from __future__ import annotations

import logging
from datetime import timedelta

from infra.config import (
    MirrorcastConfig,
    MirrorState,
    PoolSpec,
    RuleSpec,
)
from policies._evaluate import PoolView, RuleEvaluation, evaluate_rule
from policies._plan import Notice, RuleOutcome
from policies._planner.activation import activate
from policies._planner.active import step_active
from policies._planner.failover import hold_failing_primary
from policies._planner.rollback import rollback_step, start_rollback
from policies._planner.work import PoolWork
from policies._resolve import Resolution, resolve

logger = logging.getLogger(__name__)


def lead(rule: RuleSpec, pool: PoolSpec, *, actuation: timedelta = timedelta(0)) -> timedelta:
    """Time the rule's actions need before they help: the mirror's and/or the primary's ready
    time, after the decision has taken effect (``actuation``: the cycle and ``pulumi up``)."""
    # Each action class declares whose ready time it waits for (infra.config's rule actions).
    ready = {"mirror": pool.mirror_ready_time, "primary": pool.guardrails.primary_ready_time}
    lead: timedelta | None = None
    for action in rule.actions:
        if action.lead != "none":
            lead = max(lead or timedelta(0), ready[action.lead])
    # Only actions that go through `pulumi up` wait for it (a notification does not).
    return timedelta(0) if lead is None else lead + actuation


def actuation(work: PoolWork, config: MirrorcastConfig) -> timedelta:
    """The decision-to-effect time: measured (the driver passes it in), else the configured one."""
    measured = work.inputs.actuation_time
    return measured if measured is not None else config.driver.actuation_time


def evaluate(work: PoolWork, config: MirrorcastConfig) -> list[RuleEvaluation]:
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
                lead=lead(rule, work.spec, actuation=actuation(work, config)),
                hysteresis=work.spec.guardrails.hysteresis,
            )
        )
    return evaluations


def outcomes(
    work: PoolWork, evaluations: list[RuleEvaluation], resolution: Resolution
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


def plan_pool(work: PoolWork, config: MirrorcastConfig) -> list[RuleOutcome]:
    evaluations = evaluate(work, config)
    work.memory.rule_state = {e.rule.name: e.fired for e in evaluations}
    fired = [e for e in evaluations if e.fired]
    resolution = resolve(fired)
    for evaluation, action in resolution.notify:
        message = action.message or f"rule {evaluation.rule.name} fired for pool {work.name}"
        notice = Notice(
            pool=work.name,
            rule=evaluation.rule.name,
            channel=action.channel,
            message=message,
            format=action.format,
        )
        work.notices.append(notice)
        work.notifications.append(notice.text)
        work.decide("notify", f"to {action.channel}: {message}", rule=evaluation.rule.name)

    memory = work.memory
    requested = work.name in work.inputs.rollback_requested
    if memory.rolling_back:
        if resolution.scales_up:
            work.notes.append(
                "a rule asks to scale up, but the rollback in progress finishes first"
            )
        rollback_step(work)
    elif memory.activation_id is not None:
        step_active(work, resolution, evaluations, requested)
    elif requested or resolution.rollback is not None:
        if work.keys.state == MirrorState.active or work.keys.mirror_weight > 0:
            who = "a person" if requested else f"rule {resolution.rollback.rule.name}"  # type: ignore[union-attr]
            work.notes.append(
                f"rollback asked by {who} with no activation remembered: the mirror is drained and "
                "paused, the primary is left as it is"
            )
            start_rollback(work, f"requested by {who}")
        else:
            work.notes.append("rollback asked, but nothing is activated: nothing to roll back")
            # The request is answered, not kept: left pending it would block every later
            # activation of the pool. A person's request does not overrule rules that fire now.
            work.rollback_answered = requested
            if resolution.rollback is None and resolution.scales_up:
                activate(work, resolution)
    elif resolution.scales_up:
        activate(work, resolution)
    if not memory.rolling_back:
        hold_failing_primary(work)
    return outcomes(work, evaluations, resolution)
