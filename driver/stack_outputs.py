"""Metric dimensions that name what a cloud calls a resource once deployed, from stack outputs.

An auto-named resource's name is known only after ``pulumi up`` (an NLB target group is
``targetgroup/checkout-primary-front-tg-3f9a2c1/6d0ecf831eec9f09``), so a stack cannot write it
by hand. A metric's dimension value names it as ``${outputs.<path>}``
(:data:`infra.config.OUTPUT_REFERENCE`): the program exports each side's ids
(``pools.<pool>.ids.<role>``, docs/architecture.md "Stack outputs"), and before collecting the
driver replaces each reference with the value at that path of the stack's outputs. A reference
that cannot be resolved costs only its series: one sentence naming the stack, the pool, the
metric and the output, in the cycle's degraded lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.config import OUTPUT_REFERENCE, MetricSpec, MirrorcastConfig

__all__ = ["ResolvedMetrics", "has_output_references", "resolve_output_references"]


@dataclass(frozen=True)
class ResolvedMetrics:
    """The config with every resolvable reference replaced, and why the others were not.

    :param config: the stack config, each metric's dimension references replaced by their
        values (itself when it held none).
    :param unresolved: ``(pool, metric) -> sentence`` for each series whose references could
        not all be resolved; it is not collected this cycle.
    """

    config: MirrorcastConfig
    unresolved: dict[tuple[str, str], str] = field(default_factory=dict)


def has_output_references(config: MirrorcastConfig) -> bool:
    """Whether any pool metric's dimensions refer to a stack output (so outputs must be read)."""
    return any(
        OUTPUT_REFERENCE.search(value)
        for pool in config.pools.values()
        for spec in pool.metrics.values()
        for value in spec.dimensions.values()
    )


def resolve_output_references(
    config: MirrorcastConfig,
    *,
    outputs: Mapping[str, Any] | None,
    stack: str,
    why_none: str = "the stack has no outputs yet (has it been deployed with `pulumi up`?)",
) -> ResolvedMetrics:
    """Replace ``${outputs.<path>}`` in every metric's dimensions by the stack output there.

    ``$pool`` in a path is the pool's name first, so one definition serves several pools.

    :param config: the stack config as loaded.
    :param outputs: the stack's outputs (``{"pools": {...}}``), or ``None`` when they cannot
        be read.
    :param stack: the stack's name, for the sentences.
    :param why_none: the reason given when ``outputs`` is ``None``.
    """
    unresolved: dict[tuple[str, str], str] = {}
    pools: dict[str, Any] = {}
    for pool_name, pool in config.pools.items():
        metrics: dict[str, MetricSpec] = {}
        for metric, spec in pool.metrics.items():
            dimensions: dict[str, str] = {}
            for key, value in spec.dimensions.items():
                text, problem = _resolve(value, pool=pool_name, outputs=outputs, why_none=why_none)
                if problem is not None:
                    unresolved.setdefault(
                        (pool_name, metric),
                        f"stack {stack}, pool {pool_name}, metric {metric}: dimension {key} "
                        f"refers to stack output {problem}",
                    )
                dimensions[key] = text
            if dimensions != spec.dimensions:
                spec = spec.model_copy(update={"dimensions": dimensions})
            metrics[metric] = spec
        changed = any(metrics[m] is not pool.metrics[m] for m in metrics)
        pools[pool_name] = pool.model_copy(update={"metrics": metrics}) if changed else pool
    if all(pools[name] is config.pools[name] for name in pools):
        return ResolvedMetrics(config=config, unresolved=unresolved)
    return ResolvedMetrics(config=config.model_copy(update={"pools": pools}), unresolved=unresolved)


def _resolve(
    value: str, *, pool: str, outputs: Mapping[str, Any] | None, why_none: str
) -> tuple[str, str | None]:
    """``value`` with its references replaced, and the first problem (``None``: all resolved)."""
    problems: list[str] = []

    def replace(match: Any) -> str:
        path = match.group(1).replace("$pool", pool)
        if outputs is None:
            problems.append(f"{path}, but {why_none}")
            return str(match.group(0))
        found, missing_at = _walk(outputs, path)
        if missing_at is not None:
            problems.append(f"{path}, which the stack's outputs do not have ({missing_at})")
            return str(match.group(0))
        if not isinstance(found, str | int | float) or isinstance(found, bool):
            problems.append(f"{path}, which is not a single value in the stack's outputs")
            return str(match.group(0))
        return str(found)

    text = OUTPUT_REFERENCE.sub(replace, value)
    return text, (problems[0] if problems else None)


def _walk(outputs: Mapping[str, Any], path: str) -> tuple[Any, str | None]:
    """The value at dotted ``path``, or where the walk stopped and what was there instead."""
    node: Any = outputs
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            here = ".".join(walked) or "the top level"
            keys = sorted(node) if isinstance(node, Mapping) else []
            has = f"has {', '.join(map(str, keys))}" if keys else "has no keys"
            return None, f"no {part!r} under {here}, which {has}"
        node = node[part]
        walked.append(part)
    return node, None
