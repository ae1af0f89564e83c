"""Weighted conflict resolution: several rules fired in one cycle; which actions run.

Rules are ranked by weight, then priority, then name (so the order never depends on dict or
list order). Per kind of action the best-ranked rule wins; a lower-ranked rule that wants the
same thing is *merged*, one that wants something else is *overruled*, with the reason recorded.
Scaling up (the actions whose class declares ``direction = "up"``) and rolling back
(``"down"``) are opposite directions: the best-ranked rule of either side decides the direction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from infra.config import (
    ActivateMirrorAction,
    NotifyAction,
    ScalePrimaryAction,
    ShiftWeightsAction,
)
from policies._evaluate import RuleEvaluation

__all__ = ["Resolution", "rank", "resolve"]

logger = logging.getLogger(__name__)


def rank(evaluation: RuleEvaluation) -> tuple[float, int, str]:
    """Sort key: heavier first, then higher priority, then name (deterministic)."""
    rule = evaluation.rule
    return (-rule.weight, -rule.priority, rule.name)


def _who(evaluation: RuleEvaluation) -> str:
    rule = evaluation.rule
    return f"{rule.name} (weight {rule.weight:g}, priority {rule.priority})"


def _describe(action: object) -> str:
    if isinstance(action, ShiftWeightsAction):
        if action.ramp.mode == "immediate":
            return f"an immediate switchover to {action.mirror}% on the mirror"
        return (
            f"a gradual ramp to {action.mirror}% on the mirror "
            f"in {action.ramp.steps} steps over {int(action.ramp.over.total_seconds() // 60)}m"
        )
    if isinstance(action, ScalePrimaryAction):
        if action.to is not None:
            return f"the primary at {action.to} instances"
        if action.by_percent is not None:
            return f"the primary {action.by_percent:+g}%"
        return (
            f"the primary sized for p{action.quantile} of {action.metric or 'the rule metric'} "
            f"at {action.target_utilisation:g}% utilisation"
        )
    if isinstance(action, ActivateMirrorAction):
        return f"the mirror at {action.percent:g}%" if action.percent is not None else "the mirror"
    return type(action).__name__


@dataclass
class Resolution:
    """The actions that run this cycle and how each fired rule came out.

    :param activate: the winning activation (None: no rule activates the mirror).
    :param shift: the winning weight change.
    :param scale: the winning primary scaling, with the evaluation of its rule (for sizing).
    :param rollback: the rule whose rollback won, if rolling back won.
    :param notify: (rule, action) for every notification of a fired rule whose direction won.
    :param statuses: rule -> won / overruled / merged / fired.
    :param notes: rule -> what happened to its actions, in words.
    """

    activate: tuple[RuleEvaluation, ActivateMirrorAction] | None = None
    shift: tuple[RuleEvaluation, ShiftWeightsAction] | None = None
    scale: tuple[RuleEvaluation, ScalePrimaryAction] | None = None
    rollback: RuleEvaluation | None = None
    notify: list[tuple[RuleEvaluation, NotifyAction]] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def scales_up(self) -> bool:
        return any((self.activate, self.shift, self.scale))


def resolve(fired: Sequence[RuleEvaluation]) -> Resolution:
    """Resolve the actions of the rules that fired this cycle (in any order)."""
    ranked = sorted(fired, key=rank)
    result = Resolution()
    won: set[str] = set()
    lost: set[str] = set()
    contested = False

    def note(evaluation: RuleEvaluation, text: str) -> None:
        result.notes.setdefault(evaluation.rule.name, []).append(text)

    # Each action class declares its direction (infra.config's rule actions), so an action
    # added later counts where it says, not as "scale up" by default.
    up = [e for e in ranked if any(a.direction == "up" for a in e.rule.actions)]
    down = [e for e in ranked if any(a.direction == "down" for a in e.rule.actions)]
    direction_losers: set[str] = set()
    if up and down:
        contested = True
        leader_up, leader_down = up[0], down[0]
        if rank(leader_down) < rank(leader_up):
            result.rollback = leader_down
            won.add(leader_down.rule.name)
            note(leader_down, f"rollback won over scaling up by {_who(leader_up)}")
            for evaluation in up:
                if evaluation is not leader_down:
                    lost.add(evaluation.rule.name)
                    direction_losers.add(evaluation.rule.name)
                    note(evaluation, f"scaling up overruled by the rollback of {_who(leader_down)}")
            up = []
        else:
            for evaluation in down:
                if evaluation is not leader_up:
                    lost.add(evaluation.rule.name)
                    direction_losers.add(evaluation.rule.name)
                    note(evaluation, f"rollback overruled by {_who(leader_up)}, which scales up")
            won.add(leader_up.rule.name)
            down = []
    elif down:
        result.rollback = down[0]
        for evaluation in down[1:]:
            note(evaluation, f"rollback merged with {_who(down[0])}")

    def contest(
        kind: type[ActivateMirrorAction] | type[ShiftWeightsAction] | type[ScalePrimaryAction],
    ) -> None:
        nonlocal contested
        wanting = [(e, a) for e in up for a in e.rule.actions if isinstance(a, kind)]
        if not wanting:
            return
        if kind is ActivateMirrorAction:
            # Activation merges: the heaviest rule that names a percentage sets it.
            explicit = [(e, a) for e, a in wanting if a.percent is not None]  # type: ignore[union-attr]
            winner = explicit[0] if explicit else wanting[0]
        else:
            winner = wanting[0]
        if len(wanting) > 1:
            contested = True
        for evaluation, action in wanting:
            if evaluation is winner[0]:
                continue
            same = action == winner[1] or (
                isinstance(action, ActivateMirrorAction) and action.percent is None
            )
            if same:
                note(evaluation, f"{_describe(action)}: merged with {_who(winner[0])}")
            else:
                lost.add(evaluation.rule.name)
                note(
                    evaluation,
                    f"wanted {_describe(action)}; overruled by {_who(winner[0])}, "
                    f"which wants {_describe(winner[1])}",
                )
        if len(wanting) > 1:
            won.add(winner[0].rule.name)
        if isinstance(winner[1], ActivateMirrorAction):
            result.activate = (winner[0], winner[1])
        elif isinstance(winner[1], ShiftWeightsAction):
            result.shift = (winner[0], winner[1])
        else:
            result.scale = (winner[0], winner[1])

    contest(ActivateMirrorAction)
    contest(ShiftWeightsAction)
    contest(ScalePrimaryAction)

    for evaluation in ranked:
        if evaluation.rule.name in direction_losers:
            continue
        for action in evaluation.rule.actions:
            if isinstance(action, NotifyAction):
                result.notify.append((evaluation, action))

    for evaluation in ranked:
        name = evaluation.rule.name
        if not contested:
            result.statuses[name] = "fired"
        elif name in won:
            result.statuses[name] = "won"
        elif name in lost:
            result.statuses[name] = "overruled"
        else:
            result.statuses[name] = "merged"
    return result
