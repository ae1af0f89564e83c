"""The CrossGuard pack's checks as plain functions (no ``pulumi_policy`` import).

``__main__.py`` wraps each function in a CrossGuard policy; tests call them directly with
realistic resource properties (engine names, camelCase), because constructing a ``PolicyPack``
starts a gRPC server and blocks.

The stack's own ``mirrorcast:*`` config gives the limits: ``policy.allowed_regions``,
``policy.required_tags``, each pool's ``primary.capacity.max``. It is read as plain YAML rather
than through the config model, so a stack file edited by hand past the model's checks is still
judged, and the pack needs only pydantic and ruamel.yaml, not the planner's dependencies.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from infra.config import WEIGHT_RANGES, BalancerKind, product_weight

__all__ = [
    "CAPACITY_TYPES",
    "COST_TAGGED_TYPES",
    "WEIGHT_TYPES",
    "PackSettings",
    "check_capacity",
    "check_cost_tags",
    "check_region",
    "check_stack_config",
    "check_weighted_record_sets",
    "check_weights",
    "load_settings",
    "settings_from_config",
]

logger = logging.getLogger(__name__)

POOL_TAG = "mirrorcast-pool"
"""Tag/label naming the pool a resource belongs to; capacity is then checked against that pool's max."""

WEIGHT_TYPES: dict[str, BalancerKind] = {
    "aws:route53/record:Record": BalancerKind.route53,
    "aws:lb/listener:Listener": BalancerKind.alb,
    "aws:lb/listenerRule:ListenerRule": BalancerKind.alb,
    # The program declares Traffic Manager endpoints inline in the profile; a stack may also
    # declare them as their own resources.
    "azure-native:trafficmanager:Profile": BalancerKind.azure_traffic_manager,
    "azure-native:trafficmanager:Endpoint": BalancerKind.azure_traffic_manager,
    "azure-native:cdn:AFDOrigin": BalancerKind.azure_front_door,
    "gcp:compute/uRLMap:URLMap": BalancerKind.gcp_url_map,
    "gcp:dns/recordSet:RecordSet": BalancerKind.gcp_cloud_dns,
}
"""Resource types that carry traffic weights, and the product whose range applies."""

CAPACITY_TYPES: dict[str, tuple[str, ...]] = {
    "aws:autoscaling/group:Group": ("minSize", "maxSize", "desiredCapacity"),
    "azure-native:compute:VirtualMachineScaleSet": ("sku.capacity",),
    "gcp:compute/instanceGroupManager:InstanceGroupManager": ("targetSize",),
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": ("targetSize",),
    "gcp:compute/autoscaler:Autoscaler": (
        "autoscalingPolicy.minReplicas",
        "autoscalingPolicy.maxReplicas",
    ),
    "gcp:compute/regionAutoscaler:RegionAutoscaler": (
        "autoscalingPolicy.minReplicas",
        "autoscalingPolicy.maxReplicas",
    ),
}
"""Resource types with instance counts, and the properties holding them."""

COST_TAGGED_TYPES: dict[str, str] = {
    "aws:autoscaling/group:Group": "tags",
    "aws:ec2/launchTemplate:LaunchTemplate": "tags",
    "aws:ec2/instance:Instance": "tags",
    "aws:lb/loadBalancer:LoadBalancer": "tags",
    "aws:rds/cluster:Cluster": "tags",
    "aws:rds/globalCluster:GlobalCluster": "tags",
    "azure-native:compute:VirtualMachineScaleSet": "tags",
    "azure-native:cdn:Profile": "tags",
    "azure-native:trafficmanager:Profile": "tags",
    "azure-native:sql:Database": "tags",
    "gcp:compute/instanceTemplate:InstanceTemplate": "labels",
    "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate": "labels",
    "gcp:sql/databaseInstance:DatabaseInstance": "settings.userLabels",
}
"""Resource types that cost money, and where their tags (or GCP labels) live."""


@dataclass(frozen=True)
class PackSettings:
    """Limits the pack enforces, from the stack's ``mirrorcast:*`` config.

    :param allowed_regions: regions resources may be placed in; empty allows any.
    :param required_tags: tags every cost-bearing resource must carry.
    :param pool_max: pool -> ``primary.capacity.max`` (the hard ceiling).
    """

    allowed_regions: frozenset[str] = frozenset()
    required_tags: tuple[str, ...] = ("cost-center",)
    pool_max: Mapping[str, int] = field(default_factory=dict)

    def ceiling(self, pool: str | None) -> int | None:
        """The capacity ceiling for a resource of ``pool`` (unknown pool: the largest max)."""
        if pool is not None and pool in self.pool_max:
            return self.pool_max[pool]
        return max(self.pool_max.values(), default=None)


def _mirrorcast(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(k).split(":", 1)[1]: v for k, v in config.items() if str(k).startswith("mirrorcast:")
    }


def settings_from_config(config: Mapping[str, Any]) -> PackSettings:
    """Settings from a stack file's ``config:`` mapping (keys like ``mirrorcast:pools``)."""
    ours = _mirrorcast(config)
    policy = ours.get("policy") or {}
    pools = ours.get("pools") or {}
    pool_max: dict[str, int] = {}
    for name, pool in pools.items() if isinstance(pools, Mapping) else ():
        maximum = _get(pool, "primary.capacity.max")
        if isinstance(maximum, int) and not isinstance(maximum, bool):
            pool_max[str(name)] = maximum
    return PackSettings(
        allowed_regions=frozenset(str(r) for r in policy.get("allowed_regions") or []),
        required_tags=tuple(str(t) for t in policy.get("required_tags", ["cost-center"])),
        pool_max=pool_max,
    )


def load_settings(stack_file: Path | str) -> tuple[PackSettings, dict[str, Any]]:
    """Read a stack file: the pack's settings and its plain ``config:`` mapping."""
    document = YAML(typ="safe").load(io.StringIO(Path(stack_file).read_text(encoding="utf-8")))
    config = (document or {}).get("config") or {}
    if not isinstance(config, Mapping):
        raise ValueError(f"{stack_file}: 'config' must be a mapping")
    return settings_from_config(config), dict(config)


def _get(node: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# --------------------------------------------------------------------------- the stack's own config


def check_stack_config(config: Mapping[str, Any]) -> list[str]:
    """Violations in a stack's ``mirrorcast:*`` config: mirror percent, weights, capacity, regions, tags.

    :param config: the stack file's ``config:`` mapping.
    """
    ours = _mirrorcast(config)
    violations: list[str] = []
    settings = settings_from_config(config)
    pools = ours.get("pools")
    if not isinstance(pools, Mapping) or not pools:
        return ["mirrorcast:pools is missing or empty; the stack declares no pool"]
    for name, pool in pools.items():
        where = f"pools.{name}"
        percent = _number(_get(pool, "mirror.percent"))
        if percent is None or not 0 <= percent <= 100 or math.isnan(percent):
            violations.append(
                f"{where}.mirror.percent must be between 0 and 100, got {_get(pool, 'mirror.percent')!r}"
            )
        violations.extend(_config_weights(where, pool))
        violations.extend(_config_capacity(where, pool))
        for region in (_get(pool, "primary.region"), _get(pool, "mirror.location.region")):
            if (
                region is not None
                and settings.allowed_regions
                and region not in settings.allowed_regions
            ):
                violations.append(
                    f"{where}: region {region} is not in policy.allowed_regions "
                    f"({', '.join(sorted(settings.allowed_regions))})"
                )
    tags = ours.get("tags") or {}
    missing = [t for t in settings.required_tags if not (isinstance(tags, Mapping) and tags.get(t))]
    if missing:
        violations.append(
            f"mirrorcast:tags lacks the cost tag(s) {', '.join(missing)} (policy.required_tags)"
        )
    return violations


def _config_weights(where: str, pool: Any) -> list[str]:
    kind_name = _get(pool, "balancer.kind")
    try:
        kind = BalancerKind(kind_name)
    except ValueError:
        return [f"{where}.balancer.kind {kind_name!r} is not a known balancer"]
    primary = _number(_get(pool, "balancer.weights.primary"))
    mirror = _number(_get(pool, "balancer.weights.mirror"))
    primary = 100.0 if primary is None and _get(pool, "balancer.weights") is None else primary
    mirror = 0.0 if mirror is None and _get(pool, "balancer.weights") is None else mirror
    if primary is None or mirror is None:
        return [f"{where}.balancer.weights needs numeric primary and mirror shares"]
    violations = []
    for side, share in (("primary", primary), ("mirror", mirror)):
        if not 0 <= share <= 100:
            violations.append(
                f"{where}.balancer.weights.{side} must be a share 0-100, got {share:g}"
            )
    if primary + mirror != 100:
        violations.append(
            f"{where}.balancer.weights must add up to 100, got {primary:g} + {mirror:g}"
        )
    if primary <= 0 and mirror <= 0:
        violations.append(f"{where}.balancer.weights are all zero: no endpoint would take traffic")
    if violations:
        return violations
    low, high = WEIGHT_RANGES[kind]
    for side, share in (("primary", primary), ("mirror", mirror)):
        weight = product_weight(kind, int(share)).weight
        if not low <= weight <= high:  # pragma: no cover - product_weight clamps; kept as a guard
            violations.append(
                f"{where}: {side} weight {weight} is outside {kind.value}'s {low}-{high}"
            )
    state = _get(pool, "mirror.state") or "paused"
    if state == "paused" and mirror > 0:
        violations.append(
            f"{where}: the mirror is paused but balancer.weights.mirror is {mirror:g}"
        )
    return violations


def _config_capacity(where: str, pool: Any) -> list[str]:
    capacity = _get(pool, "primary.capacity") or {}
    maximum = _number(capacity.get("max")) if isinstance(capacity, Mapping) else None
    if maximum is None:
        return [f"{where}.primary.capacity.max is missing"]
    violations = []
    for key in ("min", "desired"):
        value = _number(capacity.get(key))
        if value is not None and value > maximum:
            violations.append(
                f"{where}.primary.capacity.{key} {value:g} exceeds the configured max {maximum:g}"
            )
    return violations


# --------------------------------------------------------------------------- resources


def _weight_lists(kind: BalancerKind, props: Mapping[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    """(where, weights) groups that share traffic within one resource."""
    if kind is BalancerKind.route53:
        # pulumi-aws declares the policy as a list (weighted_routing_policies) of one element.
        for index, policy in enumerate(props.get("weightedRoutingPolicies") or []):
            where = f"weightedRoutingPolicies[{index}].weight"
            yield where, [policy.get("weight") if isinstance(policy, Mapping) else policy]
    elif kind is BalancerKind.alb:
        for key in ("defaultActions", "actions"):
            for index, action in enumerate(props.get(key) or []):
                groups = _get(action, "forward.targetGroups") or []
                if groups:
                    yield f"{key}[{index}].forward.targetGroups", [g.get("weight") for g in groups]
    elif kind is BalancerKind.azure_traffic_manager and "endpoints" in props:
        endpoints = [e for e in props.get("endpoints") or [] if isinstance(e, Mapping)]
        # Disabled endpoints take no traffic whatever their weight (Traffic Manager has no 0).
        yield "endpoints", [e.get("weight") for e in endpoints]
        if endpoints and all(e.get("endpointStatus") == "Disabled" for e in endpoints):
            yield "endpoints (all disabled)", []
    elif kind in (BalancerKind.azure_traffic_manager, BalancerKind.azure_front_door):
        if "weight" in props:
            yield "weight", [props.get("weight")]
    elif kind is BalancerKind.gcp_url_map:
        yield from _url_map_weights(props, "")
    elif kind is BalancerKind.gcp_cloud_dns:
        wrrs = _get(props, "routingPolicy.wrrs") or []
        if wrrs:
            yield "routingPolicy.wrrs", [w.get("weight") for w in wrrs]


def _url_map_weights(node: Any, path: str) -> Iterator[tuple[str, list[Any]]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "weightedBackendServices" and isinstance(value, list):
                yield here, [v.get("weight") if isinstance(v, Mapping) else None for v in value]
            else:
                yield from _url_map_weights(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _url_map_weights(item, f"{path}[{index}]")


def check_weights(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Weights outside the product's range (``infra.config.WEIGHT_RANGES``), or all zero.

    :param resource_type: the Pulumi type token, e.g. ``aws:route53/record:Record``.
    :param props: the resource's input properties (engine names).
    """
    kind = WEIGHT_TYPES.get(resource_type)
    if kind is None:
        return []
    low, high = WEIGHT_RANGES[kind]
    violations = []
    for where, weights in _weight_lists(kind, props):
        if where.endswith("(all disabled)"):
            violations.append(f"{where}: every endpoint is disabled, so no backend takes traffic")
            continue
        numbers = [_number(w) for w in weights]
        for index, (raw, weight) in enumerate(zip(weights, numbers, strict=True)):
            label = where if len(weights) == 1 else f"{where}[{index}].weight"
            if weight is None:
                if raw is not None:
                    violations.append(f"{label} must be a number, got {raw!r}")
                continue
            if not low <= weight <= high or weight != int(weight):
                violations.append(
                    f"{label} is {raw!r}; {kind.value} accepts whole weights {low}-{high}"
                )
        known = [w for w in numbers if w is not None]
        if len(weights) > 1 and known and all(w == 0 for w in known):
            violations.append(f"{where}: every weight is zero, so no backend would take traffic")
    return violations


def check_weighted_record_sets(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Weighted Route 53 records of one name whose weights are all zero (nothing answers).

    Each record is its own resource, so only a whole-stack view sees the set.

    :param resources: ``(type, props)`` of every resource in the stack.
    """
    sets: dict[tuple[Any, Any, Any], list[Any]] = {}
    for resource_type, props in resources:
        if resource_type != "aws:route53/record:Record":
            continue
        policies = props.get("weightedRoutingPolicies") or []
        if not policies:
            continue
        key = (props.get("zoneId"), props.get("name"), props.get("type"))
        sets.setdefault(key, []).extend(p.get("weight") for p in policies if isinstance(p, Mapping))
    return [
        f"Route 53 weighted records {name} ({kind}) all have weight 0: no answer would be served"
        for (_, name, kind), weights in sets.items()
        if len(weights) > 1 and all(_number(w) == 0 for w in weights)
    ]


def _pool_of(props: Mapping[str, Any]) -> str | None:
    tags = props.get("tags") or props.get("labels")
    if isinstance(tags, Mapping):
        value = tags.get(POOL_TAG)
        return str(value) if value is not None else None
    if isinstance(tags, list):  # autoscaling groups: [{key, value, propagateAtLaunch}]
        for tag in tags:
            if isinstance(tag, Mapping) and tag.get("key") == POOL_TAG:
                return str(tag.get("value"))
    return None


def check_capacity(
    resource_type: str, props: Mapping[str, Any], settings: PackSettings
) -> list[str]:
    """Instance counts above the configured ``primary.capacity.max`` (a hard ceiling).

    A resource tagged ``mirrorcast-pool: <pool>`` is held to that pool's max; others to the
    largest max of any pool.
    """
    keys = CAPACITY_TYPES.get(resource_type)
    if keys is None:
        return []
    pool = _pool_of(props)
    ceiling = settings.ceiling(pool)
    if ceiling is None:
        return []
    whose = f"pools.{pool}" if pool in settings.pool_max else "any pool"
    violations = []
    for key in keys:
        value = _number(_get(props, key))
        if value is not None and value > ceiling:
            violations.append(
                f"{key} is {value:g}, beyond the configured capacity.max {ceiling} ({whose})"
            )
    return violations


def _region_of(resource_type: str, props: Mapping[str, Any]) -> str | None:
    if resource_type.startswith("azure-native:"):
        location = props.get("location")
        return str(location).replace(" ", "").lower() if location else None
    region = props.get("region")
    if region:
        return str(region)
    zone = props.get("zone") or props.get("availabilityZone")
    if zone and resource_type.startswith("gcp:"):
        return str(zone).rsplit("-", 1)[0]  # us-central1-a -> us-central1
    if zone and resource_type.startswith("aws:"):
        return str(zone)[:-1]  # us-east-1a -> us-east-1
    return None


def check_region(resource_type: str, props: Mapping[str, Any], settings: PackSettings) -> list[str]:
    """A region or location outside ``policy.allowed_regions`` (empty list: any region)."""
    if not settings.allowed_regions:
        return []
    region = _region_of(resource_type, props)
    allowed = {
        r.replace(" ", "").lower() if resource_type.startswith("azure-native:") else r
        for r in settings.allowed_regions
    }
    if region is None or region in allowed:
        return []
    return [
        f"region {region} is not in policy.allowed_regions ({', '.join(sorted(settings.allowed_regions))})"
    ]


def _tag_keys(value: Any) -> set[str]:
    if isinstance(value, Mapping):
        return {str(k) for k, v in value.items() if v not in (None, "")}
    if isinstance(value, list):
        return {
            str(t.get("key"))
            for t in value
            if isinstance(t, Mapping) and t.get("value") not in (None, "")
        }
    return set()


def check_cost_tags(
    resource_type: str, props: Mapping[str, Any], settings: PackSettings
) -> list[str]:
    """A cost-bearing resource without every tag in ``policy.required_tags``."""
    where = COST_TAGGED_TYPES.get(resource_type)
    if where is None or not settings.required_tags:
        return []
    present = _tag_keys(_get(props, where))
    missing = [t for t in settings.required_tags if t not in present]
    if not missing:
        return []
    return [f"{where} lacks the cost tag(s) {', '.join(missing)} (policy.required_tags)"]
