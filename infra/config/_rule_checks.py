"""Load-time checks of a pool's rules, called from the config model's validators.

They live beside the model (not in ``policies``, which imports ``infra.config``) so loading a
stack needs nothing above this layer. They raise a pydantic ``ValidationError`` whose location is the rule's
``when`` (or the action's field), so the stack loader reports ``pools.web.rules.0.when`` with
the file position, followed by the line and column inside the rule text.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from infra.config.rules import (
    Current,
    Predicted,
    Quantity,
    RuleError,
    check_rule,
    comparisons,
    metric_terms,
    parse_rule,
)

if TYPE_CHECKING:
    from infra.config._model import MirrorcastConfig, PoolSpec, RuleSpec

__all__ = ["check_pool_rules", "check_rule_quantiles", "rule_problems", "rule_warnings"]

logger = logging.getLogger(__name__)


def _detail(loc: tuple[str | int, ...], message: str, given: Any) -> InitErrorDetails:
    # "value_error" with ctx["error"] is rendered verbatim by the stack loader.
    return InitErrorDetails(
        type=PydanticCustomError("value_error", "{error}", {"error": message}),
        loc=loc,
        input=given,
    )


def rule_problems(
    rules: list[RuleSpec],
    pool: PoolSpec,
    *,
    quantiles: Collection[int] | None,
    first_index: int = 0,
) -> list[tuple[tuple[str | int, ...], str, Any]]:
    """Problems in ``rules`` for ``pool``, as (location below the rules list, message, input).

    :param rules: the rules to check.
    :param pool: the pool they belong to (its metrics give names and units).
    :param quantiles: the forecast's percentiles; None skips the quantile checks.
    :param first_index: index of ``rules[0]`` in the pool's rule list (for rules files).
    """
    problems: list[tuple[tuple[str | int, ...], str, Any]] = []
    # What check_rule reads of the pool's metrics: their names and units.
    units = tuple(sorted((name, spec.unit) for name, spec in pool.metrics.items()))
    wanted = None if quantiles is None else frozenset(quantiles)
    for offset, rule in enumerate(rules):
        index = first_index + offset
        problem, rule_metrics = _checked_when(rule.when, units, wanted)
        if problem is not None:
            problems.append(((index, "when"), problem, rule.when))
            continue
        for position, action in enumerate(rule.actions):
            if action.type != "scale_primary" or not action.to_forecast:
                continue
            loc: tuple[str | int, ...] = (index, "actions", position)
            metric = action.metric or (rule_metrics[0] if rule_metrics else None)
            if metric is None:
                problems.append(
                    (
                        (*loc, "metric"),
                        "scale_primary with to_forecast needs a metric (the rule names none)",
                        None,
                    )
                )
                continue
            spec = pool.metrics.get(metric)
            if spec is None:
                known = ", ".join(sorted(pool.metrics))
                problems.append(
                    (
                        (*loc, "metric"),
                        f"unknown metric {metric!r}; this pool's metrics are {known}",
                        metric,
                    )
                )
            elif spec.unit != "percent" and spec.per_instance_capacity is None:
                problems.append(
                    (
                        (*loc, "metric"),
                        f"sizing to the forecast of {metric} ({spec.unit}) needs "
                        f"metrics.{metric}.per_instance_capacity (what one instance serves)",
                        metric,
                    )
                )
            if quantiles is not None and action.quantile not in quantiles:
                have = ", ".join(str(q) for q in sorted(quantiles))
                problems.append(
                    (
                        (*loc, "quantile"),
                        f"forecasts do not produce the {action.quantile}th percentile "
                        f"(forecast.quantiles is {have})",
                        action.quantile,
                    )
                )
    return problems


@lru_cache(maxsize=4096)
def _checked_when(
    when: str, units: tuple[tuple[str, str], ...], quantiles: frozenset[int] | None
) -> tuple[str | None, tuple[str, ...]]:
    """A rule text's problem (or None) for metrics of these units, and the metrics it names.

    Cached: every plan validates its stack config again, which checked each rule of each pool
    (parse, walk, units) once per cycle; the answer depends only on these three arguments.
    """
    try:
        condition = parse_rule(when)
        check_rule(condition, metrics=_UnitsOnly(units), quantiles=quantiles)
    except RuleError as error:
        return str(error), ()
    return None, tuple(t.metric for c in comparisons(condition) for t in metric_terms(c))


class _UnitsOnly(dict[str, Any]):
    """metric name -> an object with ``unit``: the part of a pool's metrics check_rule reads."""

    def __init__(self, units: tuple[tuple[str, str], ...]) -> None:
        super().__init__((name, _Unit(unit)) for name, unit in units)


class _Unit:
    __slots__ = ("unit",)

    def __init__(self, unit: str) -> None:
        self.unit = unit


def check_pool_rules(pool: PoolSpec) -> None:
    """Raise a ``ValidationError`` (located at ``rules.<i>...``) if a rule of ``pool`` is unusable.

    Quantiles are checked by :func:`check_rule_quantiles`, which knows the forecast settings.
    """
    details = [
        _detail(("rules", *loc), message, given)
        for loc, message, given in rule_problems(pool.rules, pool, quantiles=None)
    ]
    seen: dict[str, int] = {}
    for index, rule in enumerate(pool.rules):
        if rule.name in seen:
            details.append(
                _detail(
                    ("rules", index, "name"),
                    f"rule name {rule.name!r} is already used by rule {seen[rule.name]}; names must be unique in a pool",
                    rule.name,
                )
            )
        seen.setdefault(rule.name, index)
    if details:
        raise ValidationError.from_exception_data("PoolSpec", details)


def check_rule_quantiles(config: MirrorcastConfig) -> None:
    """Raise a ``ValidationError`` if a rule reads a quantile the forecast does not produce."""
    quantiles = set(config.forecast.quantiles)
    details: list[InitErrorDetails] = []
    for name, pool in config.pools.items():
        for loc, message, given in rule_problems(pool.rules, pool, quantiles=quantiles):
            details.append(_detail(("pools", name, "rules", *loc), message, given))
    if details:
        raise ValidationError.from_exception_data("MirrorcastConfig", details)


def rule_warnings(config: MirrorcastConfig) -> list[str]:
    """Rules that are valid but can never fire, one sentence each (the driver shows them as notes).

    A percent metric (``unit: percent``) is a share of the pool's capacity, so it lies in 0..100:
    ``current(cpu) > 140%`` never holds. Only a bare ``metric <op> number`` comparison is checked.
    """
    out: list[str] = []
    for pool_name, pool in config.pools.items():
        for index, rule in enumerate(pool.rules):
            if not rule.enabled:
                continue
            try:
                condition = parse_rule(rule.when)
            except RuleError:
                continue  # reported as an error by the validators
            for comparison in comparisons(condition):
                term, number = comparison.left, comparison.right
                op: str = comparison.op
                if isinstance(term, Quantity):
                    term, number = number, term
                    op = {">": "<", ">=": "<=", "<": ">", "<=": ">="}[op]
                if not isinstance(term, Predicted | Current) or not isinstance(number, Quantity):
                    continue
                spec = pool.metrics.get(term.metric)
                if spec is None or spec.unit != "percent":
                    continue
                never = (op == ">" and number.value >= 100) or (op == ">=" and number.value > 100)
                never = (
                    never or (op == "<" and number.value <= 0) or (op == "<=" and number.value < 0)
                )
                if never:
                    out.append(
                        f"pools.{pool_name}.rules.{index} ({rule.name}): {term.metric} "
                        f"{op} {number.value:g}% can never hold: {term.metric} is a percent "
                        "metric (0 to 100), so this rule never fires"
                    )
    return out
