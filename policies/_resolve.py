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


_ScaleUp = ActivateMirrorAction | ShiftWeightsAction | ScalePrimaryAction


@dataclass
class _Tally:
    """What resolving has decided so far: the result, and which rules won or lost what."""

    result: Resolution = field(default_factory=Resolution)
    won: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)
    direction_losers: set[str] = field(default_factory=set)
    contested: bool = False

    def note(self, evaluation: RuleEvaluation, text: str) -> None:
        self.result.notes.setdefault(evaluation.rule.name, []).append(text)

    def lose(self, evaluation: RuleEvaluation, text: str, *, direction: bool = False) -> None:
        self.lost.add(evaluation.rule.name)
        if direction:
            self.direction_losers.add(evaluation.rule.name)
        self.note(evaluation, text)


def resolve(fired: Sequence[RuleEvaluation]) -> Resolution:
    """Resolve the actions of the rules that fired this cycle (in any order)."""
    ranked = sorted(fired, key=rank)
    tally = _Tally()
    up = _direction(ranked, tally)
    for kind in (ActivateMirrorAction, ShiftWeightsAction, ScalePrimaryAction):
        _contest(kind, up, tally)
    result = tally.result
    for evaluation in ranked:
        if evaluation.rule.name in tally.direction_losers:
            continue
        for action in evaluation.rule.actions:
            if isinstance(action, NotifyAction):
                result.notify.append((evaluation, action))
    for evaluation in ranked:
        result.statuses[evaluation.rule.name] = _status(evaluation.rule.name, tally)
    return result


def _direction(ranked: list[RuleEvaluation], tally: _Tally) -> list[RuleEvaluation]:
    """Scaling up against rolling back: the best-ranked rule of either side decides.

    :returns: the rules whose scale-up actions go on to be contested (none when rollback won).
    """
    # Each action class declares its direction (infra.config's rule actions), so an action
    # added later counts where it says, not as "scale up" by default.
    up = [e for e in ranked if any(a.direction == "up" for a in e.rule.actions)]
    down = [e for e in ranked if any(a.direction == "down" for a in e.rule.actions)]
    if not down:
        return up
    if not up:
        tally.result.rollback = down[0]
        for evaluation in down[1:]:
            tally.note(evaluation, f"rollback merged with {_who(down[0])}")
        return up
    tally.contested = True
    leader_up, leader_down = up[0], down[0]
    if rank(leader_down) < rank(leader_up):
        tally.result.rollback = leader_down
        tally.won.add(leader_down.rule.name)
        tally.note(leader_down, f"rollback won over scaling up by {_who(leader_up)}")
        for evaluation in up:
            if evaluation is not leader_down:
                tally.lose(
                    evaluation,
                    f"scaling up overruled by the rollback of {_who(leader_down)}",
                    direction=True,
                )
        return []
    for evaluation in down:
        if evaluation is not leader_up:
            tally.lose(
                evaluation,
                f"rollback overruled by {_who(leader_up)}, which scales up",
                direction=True,
            )
    tally.won.add(leader_up.rule.name)
    return up


def _contest(kind: type[_ScaleUp], up: list[RuleEvaluation], tally: _Tally) -> None:
    """The best-ranked rule wanting ``kind`` wins it; the others merge or are overruled."""
    wanting = [(e, a) for e in up for a in e.rule.actions if isinstance(a, kind)]
    if not wanting:
        return
    winner = wanting[0]
    if kind is ActivateMirrorAction:
        # Activation merges: the heaviest rule that names a percentage sets it.
        explicit = [(e, a) for e, a in wanting if a.percent is not None]  # type: ignore[union-attr]
        winner = explicit[0] if explicit else wanting[0]
    if len(wanting) > 1:
        tally.contested = True
        tally.won.add(winner[0].rule.name)
    for evaluation, action in wanting:
        if evaluation is winner[0]:
            continue
        same = action == winner[1] or (
            isinstance(action, ActivateMirrorAction) and action.percent is None
        )
        if same:
            tally.note(evaluation, f"{_describe(action)}: merged with {_who(winner[0])}")
        else:
            tally.lose(
                evaluation,
                f"wanted {_describe(action)}; overruled by {_who(winner[0])}, "
                f"which wants {_describe(winner[1])}",
            )
    result, (evaluation, action) = tally.result, winner
    if isinstance(action, ActivateMirrorAction):
        result.activate = (evaluation, action)
    elif isinstance(action, ShiftWeightsAction):
        result.shift = (evaluation, action)
    else:
        assert isinstance(action, ScalePrimaryAction)
        result.scale = (evaluation, action)


def _status(name: str, tally: _Tally) -> str:
    if not tally.contested:
        return "fired"
    if name in tally.won:
        return "won"
    return "overruled" if name in tally.lost else "merged"
