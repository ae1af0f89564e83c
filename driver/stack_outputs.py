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


def _source_resource(config: MirrorcastConfig) -> str | None:
    """The Azure Monitor source's ``resource_id`` when it refers to a stack output."""
    resource = getattr(config.metrics, "resource_id", None)
    return resource if isinstance(resource, str) and OUTPUT_REFERENCE.search(resource) else None


def has_output_references(config: MirrorcastConfig) -> bool:
    """Whether any pool metric refers to a stack output (so outputs must be read)."""
    return _source_resource(config) is not None or any(
        OUTPUT_REFERENCE.search(value)
        for pool in config.pools.values()
        for spec in pool.metrics.values()
        for value in [*spec.dimensions.values(), spec.resource or ""]
    )


def resolve_output_references(
    config: MirrorcastConfig,
    *,
    outputs: Mapping[str, Any] | None,
    stack: str,
    why_none: str = "the stack has no outputs yet (has it been deployed with `pulumi up`?)",
) -> ResolvedMetrics:
    """Replace ``${outputs.<path>}`` in every metric's dimensions and resource by the stack
    output there (an Azure Monitor source's ``resource_id`` too, as each metric's resource).

    ``$pool`` in a path is the pool's name first, so one definition serves several pools.

    :param config: the stack config as loaded.
    :param outputs: the stack's outputs (``{"pools": {...}}``), or ``None`` when they cannot
        be read.
    :param stack: the stack's name, for the sentences.
    :param why_none: the reason given when ``outputs`` is ``None``.
    """
    unresolved: dict[tuple[str, str], str] = {}
    pools: dict[str, Any] = {}
    # A source-wide resource id that names an output differs per pool: each metric reads the
    # value resolved for its own pool as its ``resource``.
    shared_resource = _source_resource(config)
    for pool_name, pool in config.pools.items():
        metrics: dict[str, MetricSpec] = {}
        for metric, spec in pool.metrics.items():
            texts = {f"dimension {key}": value for key, value in spec.dimensions.items()}
            resource = spec.resource or shared_resource
            if resource is not None:
                texts["resource" if spec.resource else "metrics.resource_id"] = resource
            resolved: dict[str, str] = {}
            for what, value in texts.items():
                text, problem = _resolve(value, pool=pool_name, outputs=outputs, why_none=why_none)
                if problem is not None:
                    unresolved.setdefault(
                        (pool_name, metric),
                        f"stack {stack}, pool {pool_name}, metric {metric}: {what} refers to "
                        f"stack output {problem}",
                    )
                resolved[what] = text
            update: dict[str, Any] = {}
            dimensions = {key: resolved[f"dimension {key}"] for key in spec.dimensions}
            if dimensions != spec.dimensions:
                update["dimensions"] = dimensions
            if resource is not None:
                new_resource = resolved.get("resource", resolved.get("metrics.resource_id"))
                if new_resource != spec.resource:
                    update["resource"] = new_resource
            if update:
                spec = spec.model_copy(update=update)
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
