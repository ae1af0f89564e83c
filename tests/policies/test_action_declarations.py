"""Adding a variant is one class plus one registration: each rule action declares how it counts.

Conflict resolution and the rule look-ahead read each action class's declared ``direction``
and ``lead``; before, an action type the resolver did not know counted as "scale up", and the
look-ahead was chosen by comparing ``type`` strings.
"""

from __future__ import annotations

import typing
from typing import Literal

import pytest
from policy_builders import demo_config

from infra.config import ActionSpec, RuleAction, RuleSpec
from policies import RuleEvaluation, resolve
from policies._planner.phases import lead


def _action_classes() -> tuple[type[RuleAction], ...]:
    union, *_ = typing.get_args(ActionSpec)
    return typing.get_args(union)


class _ToyPause(RuleAction):
    """A toy action in the rollback direction that waits for nothing (what a recipe adds)."""

    direction = "down"
    lead = "none"
    type: Literal["toy_pause"] = "toy_pause"


class _ToyWarm(RuleAction):
    """A toy scale-up action that waits for the primary's ready time."""

    direction = "up"
    lead = "primary"
    type: Literal["toy_warm"] = "toy_warm"


def _fired(name: str, *actions: RuleAction, weight: float = 1.0) -> RuleEvaluation:
    rule = RuleSpec.model_construct(
        name=name, when="current(cpu) > 1", actions=list(actions), weight=weight, priority=0
    )
    return RuleEvaluation(rule=rule, fired=True, status="fired", detail="")


class TestEveryActionDeclaresItself:
    def test_each_configurable_action_has_a_direction_and_a_lead(self) -> None:
        declared = {c.__name__: (c.direction, c.lead) for c in _action_classes()}
        assert declared == {
            "ActivateMirrorAction": ("up", "mirror"),
            "ShiftWeightsAction": ("up", "mirror"),
            "ScalePrimaryAction": ("up", "primary"),
            "RollbackAction": ("down", "none"),
            "NotifyAction": ("none", "none"),
        }

    def test_an_action_without_a_direction_is_refused_where_it_is_defined(self) -> None:
        with pytest.raises(TypeError, match="_Forgetful must declare direction"):

            class _Forgetful(RuleAction):  # no direction: once silently "scale up"
                lead = "none"
                type: Literal["forgetful"] = "forgetful"


class TestResolutionAndLeadReadTheDeclarations:
    def test_a_new_down_action_counts_as_a_rollback_not_as_scaling_up(self) -> None:
        resolution = resolve([_fired("pause-it", _ToyPause())])
        assert resolution.rollback is not None and resolution.rollback.rule.name == "pause-it"
        assert not resolution.scales_up

    def test_a_new_up_action_contests_a_rollback_by_weight(self) -> None:
        resolution = resolve(
            [_fired("warm", _ToyWarm(), weight=2.0), _fired("pause-it", _ToyPause())]
        )
        assert resolution.rollback is None
        assert resolution.statuses["pause-it"] == "overruled"

    def test_the_look_ahead_waits_for_the_ready_time_the_action_names(self) -> None:
        pool = demo_config().pools["web"]
        warm = RuleSpec.model_construct(name="w", when="x", actions=[_ToyWarm()])
        pause = RuleSpec.model_construct(name="p", when="x", actions=[_ToyPause()])
        assert lead(warm, pool) == pool.guardrails.primary_ready_time
        assert lead(pause, pool) == pool.guardrails.primary_ready_time * 0
