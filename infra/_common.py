"""Decisions shared by every cloud: names, tags, security-rule translation and group sizing.

Everything here is pure (no Pulumi resources are declared), so the sizing and translation rules
can be tested, and reused by the driver, without a Pulumi runtime. The cloud modules turn these
plans into resources.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from infra.config import (
    Cloud,
    MirrorState,
    NetworkSpec,
    PoolSpec,
    ProductWeight,
    SecurityRule,
    product_weight,
)

__all__ = [
    "AWS_LB_NAME",
    "AZURE_AFD_ENDPOINT",
    "AZURE_SQL_SERVER",
    "RDS_IDENTIFIER",
    "RDS_SUBNET_GROUP",
    "AwsIngressRule",
    "AzureNsgRule",
    "GcpFirewallRule",
    "GroupPlan",
    "NameLimit",
    "Role",
    "aws_ingress",
    "azure_nsg_rules",
    "certificate_problem",
    "child_name",
    "gcp_firewall_rules",
    "gcp_labels",
    "gcp_name",
    "group_plans",
    "network_tag",
    "password_problem",
    "physical_name",
    "pool_problems",
    "pool_weights",
    "resource_tags",
    "type_token",
]

logger = logging.getLogger(__name__)

Role = Literal["primary", "mirror"]

TYPE_NAMESPACE = "mirrorcast"


def type_token(module: str, type_name: str) -> str:
    """The component type token ``mirrorcast:<module>:<Type>``.

    :param module: the module that defines the component, e.g. ``aws``.
    :param type_name: the component's type name, e.g. ``MirrorGroup``.
    """
    return f"{TYPE_NAMESPACE}:{module}:{type_name}"


def child_name(component: str, suffix: str) -> str:
    """A child's logical name derived from its component's name (``web-mirror`` + ``asg``)."""
    return f"{component}-{suffix}"


_GCP_NAME_BAD = re.compile(r"[^a-z0-9-]+")


def gcp_name(name: str, *, max_length: int = 55) -> str:
    """A logical name GCP accepts once Pulumi appends its random suffix.

    GCP resource names must match ``[a-z]([-a-z0-9]*[a-z0-9])?`` and hold at most 63 characters;
    Pulumi's auto-naming adds 8, hence the default ``max_length`` of 55.
    """
    cleaned = _GCP_NAME_BAD.sub("-", name.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"mc-{cleaned}"
    return cleaned[:max_length].rstrip("-")


@dataclass(frozen=True)
class NameLimit:
    """A cloud's rule for one kind of physical name, and what auto-naming appends to it.

    :param max_length: the longest name the cloud accepts.
    :param suffix: characters the provider's auto-naming appends to the logical name
        (pulumi-aws and pulumi-gcp: ``-`` and 7 random characters; azure-native: 8).
    :param lowercase: the cloud accepts lowercase letters only.
    :param allowed: the characters the cloud accepts besides letters and digits.
    :param single_hyphens: no two consecutive hyphens (RDS identifiers).
    """

    max_length: int
    suffix: int
    lowercase: bool = False
    allowed: str = "-"
    single_hyphens: bool = False

    def accepts(self, name: str) -> bool:
        """Whether ``name`` (a full physical name) is valid under this rule."""
        if not name or len(name) > self.max_length or not name[0].isalnum():
            return False
        if name.endswith("-") or (self.single_hyphens and "--" in name):
            return False
        if self.lowercase and name != name.lower():
            return False
        return all((c.isascii() and c.isalnum()) or c in self.allowed for c in name)


# Each limit's source is in docs/infra.md ("Names"); the test table tests/infra/constraints.py
# checks the physical names against the clouds' rules independently of these.
AWS_LB_NAME = NameLimit(max_length=32, suffix=8)
"""Load balancers and target groups: 32 alphanumerics or hyphens (pulumi_aws.lb docstrings)."""
RDS_IDENTIFIER = NameLimit(max_length=63, suffix=8, lowercase=True, single_hyphens=True)
"""RDS cluster, instance and global cluster identifiers: 1-63, lowercase, no ``--``."""
RDS_SUBNET_GROUP = NameLimit(max_length=255, suffix=8, lowercase=True, allowed="-_. ")
"""DB subnet groups: up to 255 lowercase letters, digits, ``-``, ``_``, ``.``, spaces."""
AZURE_SQL_SERVER = NameLimit(max_length=63, suffix=8, lowercase=True)
"""Azure SQL logical servers: 1-63 lowercase letters, digits and hyphens."""
AZURE_AFD_ENDPOINT = NameLimit(max_length=46, suffix=8)
"""Front Door endpoints: 1-46 alphanumerics and hyphens."""


def physical_name(
    logical: str, limit: NameLimit, *, scope: str = "", salt: str = "", always: bool = False
) -> str | None:
    """``None`` when the provider's auto-name of ``logical`` fits ``limit``, else an explicit name.

    Auto-naming (logical name plus a random suffix) is kept wherever it is valid: it lets Pulumi
    create a replacement before deleting the old resource, and changing it would replace the
    resources of stacks already deployed. Where the auto-name would break the cloud's rule (a
    long pool name, an uppercase one) the name is the logical name made valid and shortened,
    plus 6 hex characters of a hash of ``scope`` (project and stack), the logical name and
    ``salt`` (the inputs whose change replaces the resource, so a replacement gets a new name).

    :param logical: the resource's logical name.
    :param limit: the cloud's rule for this kind of name.
    :param scope: what makes the name unique where it must be (project/stack).
    :param salt: the replace-triggering inputs, as text.
    :param always: return an explicit name even when auto-naming would do (for names the
        provider does not auto-name, such as a global cluster's identifier).
    """
    if not always and limit.accepts(logical + "-a1b2c3d4"[: limit.suffix]):
        return None
    digest = hashlib.sha256(f"{scope}/{logical}/{salt}".encode()).hexdigest()[:6]
    base = logical.lower() if limit.lowercase else logical
    base = re.sub(f"[^A-Za-z0-9{re.escape(limit.allowed)}]+", "-", base)
    if limit.single_hyphens:
        base = re.sub(r"-{2,}", "-", base)
    base = base[: limit.max_length - len(digest) - 1].strip("-")
    if not base or not base[0].isalpha():
        base = f"mc-{base}"[: limit.max_length - len(digest) - 1].rstrip("-")
    return f"{base}-{digest}"


def network_tag(pool: str, role: Role) -> str:
    """The GCP network tag on a side's instances; firewall rules target it."""
    return gcp_name(f"mirrorcast-{pool}-{role}", max_length=63)


# --------------------------------------------------------------------------- tags


def resource_tags(tags: Mapping[str, str], *, pool: str, role: str) -> dict[str, str]:
    """Tags for AWS and Azure resources: the stack's ``tags`` plus the pool and role mirrorcast manages.

    :param tags: ``config.tags`` from the stack.
    :param pool: the pool name.
    :param role: ``primary``, ``mirror`` or ``balancer``/``database`` for shared pieces.
    """
    return {**tags, "mirrorcast-pool": pool, "mirrorcast-role": role}


_LABEL_BAD = re.compile(r"[^a-z0-9_-]+")


def _label(text: str) -> str:
    return _LABEL_BAD.sub("_", text.lower())[:63]


def gcp_labels(tags: Mapping[str, str], *, pool: str, role: str) -> dict[str, str]:
    """GCP labels from tags: lowercase letters, digits, ``_`` and ``-``; keys start with a letter.

    Labels are stricter than tags, so ``Cost-Center: Web.Platform`` becomes
    ``cost-center: web_platform``. Keys that sanitise to the same label keep the last value.
    """
    labels: dict[str, str] = {}
    for key, value in resource_tags(tags, pool=pool, role=role).items():
        label_key = _label(key)
        if not label_key or not label_key[0].isalpha():
            label_key = f"k{label_key}"[:63]
        labels[label_key] = _label(value)
    return labels


# --------------------------------------------------------------------------- security rules


@dataclass(frozen=True)
class AwsIngressRule:
    """One security-group ingress rule."""

    protocol: str
    from_port: int
    to_port: int
    cidr_blocks: tuple[str, ...]
    description: str


def aws_ingress(rules: Sequence[SecurityRule]) -> list[AwsIngressRule]:
    """Security-group ingress rules for ``sync.security_rules`` (ICMP takes every type: -1)."""
    out = []
    for rule in rules:
        low, high = rule.port_range() if rule.protocol != "icmp" else (-1, -1)
        out.append(
            AwsIngressRule(
                protocol=rule.protocol,
                from_port=low,
                to_port=high,
                cidr_blocks=tuple(rule.sources),
                description=rule.description or rule.name,
            )
        )
    return out


@dataclass(frozen=True)
class AzureNsgRule:
    """One inbound network-security-group rule."""

    name: str
    priority: int
    protocol: str
    destination_port_range: str
    source_address_prefixes: tuple[str, ...]
    description: str


AZURE_FIRST_PRIORITY = 100
"""NSG priorities run 100-4096; rules keep their configured order, 10 apart for manual inserts."""


def azure_nsg_rules(rules: Sequence[SecurityRule]) -> list[AzureNsgRule]:
    """NSG inbound Allow rules for ``sync.security_rules``, in configured order."""
    return [
        AzureNsgRule(
            name=rule.name,
            priority=AZURE_FIRST_PRIORITY + 10 * index,
            protocol=rule.protocol.capitalize(),
            destination_port_range="*" if rule.protocol == "icmp" else rule.ports,
            source_address_prefixes=tuple(rule.sources),
            description=rule.description or rule.name,
        )
        for index, rule in enumerate(rules)
    ]


@dataclass(frozen=True)
class GcpFirewallRule:
    """One ingress firewall rule (GCP firewalls are per network and select instances by tag)."""

    name: str
    protocol: str
    ports: tuple[str, ...]
    source_ranges: tuple[str, ...]
    description: str


def gcp_firewall_rules(rules: Sequence[SecurityRule]) -> list[GcpFirewallRule]:
    """Firewall rules for ``sync.security_rules``; ICMP has no ports."""
    return [
        GcpFirewallRule(
            name=rule.name,
            protocol=rule.protocol,
            ports=() if rule.protocol == "icmp" else (rule.ports,),
            source_ranges=tuple(rule.sources),
            description=rule.description or rule.name,
        )
        for rule in rules
    ]


# --------------------------------------------------------------------------- sizing


@dataclass(frozen=True)
class GroupPlan:
    """What one side (primary or mirror) of a pool should look like in its cloud.

    :param role: ``primary`` or ``mirror``.
    :param min_size: the group's floor.
    :param max_size: the group's ceiling (at least 1: clouds reject a maximum of 0).
    :param desired: instances running now.
    :param size: instances the side holds: the primary's desired count, the mirror's
        ``ceil(percent x primary desired)`` whether running (active) or warm (paused).
    :param warm_size: instances kept stopped/hibernated/deallocated/suspended (0: no warm pool).
    :param warm_state: the warm instances' state, ``None`` without a warm pool.
    :param autoscaled: a native autoscaler owns the desired count; declare it and ignore drift.
    :param autoscaler_target: the native autoscaler's target utilisation in percent.
    :param keep_warm_pool: declare the warm/standby pool (``warm_pool`` strategy) even when
        ``warm_size`` is 0 because the mirror is active, so pausing returns instances to it.
    """

    pool: str
    role: Role
    cloud: Cloud
    region: str
    machine_type: str
    image: str
    network: NetworkSpec
    min_size: int
    max_size: int
    desired: int
    size: int
    warm_size: int
    warm_state: str | None
    autoscaled: bool
    autoscaler_target: float
    keep_warm_pool: bool
    port: int
    health_check_path: str


def group_plans(name: str, pool: PoolSpec) -> tuple[GroupPlan, GroupPlan]:
    """The primary's and the mirror's plans.

    The mirror holds ``ceil(percent x primary desired)`` instances (``pool.mirror_size``): all
    running when active; when paused, none running and, with the ``warm_pool`` strategy, all of
    them warm in the paused state the config names.
    """
    capacity = pool.primary.capacity
    primary = GroupPlan(
        pool=name,
        role="primary",
        cloud=pool.primary.cloud,
        region=pool.primary.region,
        machine_type=pool.primary.machine_type,
        image=pool.primary.app.image_for(pool.primary.cloud, pool.primary.region) or "",
        network=pool.primary.network,
        min_size=capacity.min,
        max_size=capacity.max,
        desired=capacity.desired,
        size=capacity.desired,
        warm_size=0,
        warm_state=None,
        autoscaled=pool.primary.native_autoscaling,
        autoscaler_target=pool.primary.autoscaler_target,
        keep_warm_pool=False,
        port=pool.balancer.port,
        health_check_path=pool.balancer.health_check_path,
    )
    size = pool.mirror_size
    active = pool.mirror.state is MirrorState.active
    warm = pool.mirror.paused.strategy == "warm_pool"
    mirror_max = max(size, 1)
    mirror = GroupPlan(
        pool=name,
        role="mirror",
        cloud=pool.mirror_cloud,
        region=pool.mirror_region,
        machine_type=pool.mirror_machine_type,
        image=pool.mirror_image,
        network=pool.mirror_network,
        min_size=size if active else 0,
        max_size=mirror_max,
        desired=size if active else 0,
        size=size,
        warm_size=size if (warm and not active) else 0,
        warm_state=pool.mirror.paused.state_for(pool.mirror_cloud) if warm else None,
        autoscaled=False,
        autoscaler_target=pool.primary.autoscaler_target,
        keep_warm_pool=warm,
        port=pool.balancer.port,
        health_check_path=pool.balancer.health_check_path,
    )
    return primary, mirror


def pool_weights(pool: PoolSpec) -> dict[Role, ProductWeight]:
    """Each side's weight in the balancer product's own range (0 shares disabled where needed)."""
    kind = pool.balancer.kind
    return {
        "primary": product_weight(kind, pool.balancer.weights.primary),
        "mirror": product_weight(kind, pool.balancer.weights.mirror),
    }


# --------------------------------------------------------------------------- pre-flight


def pool_problems(name: str, pool: PoolSpec) -> list[str]:
    """Reasons no cloud can declare ``pool`` as configured, each naming the key path.

    The model accepts some combinations no cloud can build. Checking them before any resource
    is declared keeps a bad stack from half-applying; what one cloud cannot build is its
    backend's ``problems`` (``infra.clouds.declarability_problems`` asks both).
    """
    port = pool.balancer.port
    opened = [
        rule
        for rule in pool.sync.security_rules
        if rule.protocol == "tcp" and rule.port_range()[0] <= port <= rule.port_range()[1]
    ]
    if opened:
        return []
    # Security groups, NSGs and GCP firewalls drop inbound traffic no rule allows, so every
    # instance would fail its health check.
    return [
        f"pools.{name}.sync.security_rules: the balancer sends traffic to port {port} "
        "(balancer.port), but no tcp rule opens it on the instances; add a rule for "
        f"port {port} or change balancer.port"
    ]


def certificate_problem(name: str, pool: PoolSpec) -> list[str]:
    """An HTTPS listener (``alb``, ``gcp_url_map`` on port 443) without its certificate."""
    balancer = pool.balancer
    if balancer.port != 443 or balancer.certificate:
        return []
    return [
        f"pools.{name}.balancer.certificate: a {balancer.kind.value} listener on port 443 "
        "terminates TLS and needs a certificate (ACM ARN for alb, SSL certificate self-link "
        "for gcp_url_map)"
    ]


def password_problem(name: str, *, cloud: Cloud, secret: str) -> list[str]:
    """A database on ``cloud`` that takes an administrator password the stack does not set.

    :param secret: the secret's full key, ``mirrorcast-secrets:databasePassword``.
    """
    return [
        f"pools.{name}.sync.database: the {cloud.value} database needs an administrator "
        f"password; set it with `pulumi config set --secret {secret} <password>`"
    ]
