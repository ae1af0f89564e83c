"""The ``Pool`` component: primary, mirror, balancer and synchronised pieces of one pool.

It chooses each side's cloud implementation from the config, puts a layer-4 front before a side
when DNS (or Front Door) has to reach it, applies the same security rules on both sides, and
summarises what it declared in the shape the driver reads back (docs/architecture.md,
"Stack outputs").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws

from infra import aws, azure, dns, gcp
from infra._common import (
    GroupPlan,
    Role,
    child_name,
    gcp_labels,
    group_plans,
    pool_weights,
    resource_tags,
    type_token,
)
from infra.config import AzureSettings, BalancerKind, Cloud, MirrorcastError, PoolSpec

__all__ = ["Pool", "pool_summary"]

logger = logging.getLogger(__name__)


@dataclass
class _Side:
    """What the balancer needs from one declared side."""

    role: Role
    cloud: Cloud
    group: pulumi.ComponentResource
    endpoint: pulumi.Output[str]
    dns_endpoint: dns.DnsEndpoint | None
    azure_front: azure.LoadBalancerFront | None
    provider: pulumi_aws.Provider | None


def pool_summary(name: str, spec: PoolSpec) -> dict[str, Any]:
    """The known part of a pool's stack output (everything except the endpoints).

    :param name: the pool's name.
    :param spec: the pool's config.
    """
    capacity = spec.primary.capacity
    return {
        "primary_capacity": {
            "min": capacity.min,
            "max": capacity.max,
            "desired": capacity.desired,
        },
        "mirror_capacity": spec.mirror_size,
        "mirror_running": spec.mirror_running,
        "mirror_state": spec.mirror.state.value,
        "weights": {
            "primary": spec.balancer.weights.primary,
            "mirror": spec.balancer.weights.mirror,
        },
        "product_weights": {
            role: {"weight": weight.weight, "enabled": weight.enabled}
            for role, weight in pool_weights(spec).items()
        },
        "placement": spec.mirror_placement,
    }


class Pool(pulumi.ComponentResource):
    """One resource pool (``mirrorcast:pool:Pool``).

    :param name: the pool's name; every child's name starts with it.
    :param spec: the pool's config.
    :param tags: the stack's ``tags``, applied to every taggable resource (as labels on GCP).
    :param database_password: administrator password for Aurora or Azure SQL, when declared.
    :param default_aws_region: the stack's ``aws:region``; AWS sides elsewhere get a provider.
    :param azure: the stack's ``azure`` settings (image kind, admin user, standby principal).
    :param ssh_public_key: the Azure admin's SSH public key, for generalized images.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        spec: PoolSpec,
        tags: Mapping[str, str],
        database_password: pulumi.Input[str] | None = None,
        default_aws_region: str | None = None,
        azure: AzureSettings | None = None,
        ssh_public_key: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("pool", "Pool"), name, None, opts)
        self._azure = azure or AzureSettings()
        self._ssh_public_key = ssh_public_key
        self._name = name
        self._spec = spec
        # Both sides carry the app version they run, so drift between them shows in the console.
        self._tags = {**tags, "mirrorcast-app-version": spec.primary.app.version}
        self._default_aws_region = default_aws_region
        self._database_password = database_password
        self._aws_providers: dict[str, pulumi_aws.Provider] = {}
        primary_plan, mirror_plan = group_plans(name, spec)
        self.sides: dict[Role, _Side] = {
            plan.role: self._side(plan) for plan in (primary_plan, mirror_plan)
        }
        gcp_groups = [
            side.group for side in self.sides.values() if isinstance(side.group, gcp.InstanceGroup)
        ]
        if gcp_groups and spec.sync.security_rules:
            gcp.SharedFirewall(
                child_name(name, "firewall"),
                rules=spec.sync.security_rules,
                groups=gcp_groups,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.balancer_endpoint = self._balancer()
        self._database()
        summary = pool_summary(name, spec)
        summary["endpoints"] = {
            "primary": self.sides["primary"].endpoint,
            "mirror": self.sides["mirror"].endpoint,
            "balancer": self.balancer_endpoint,
        }
        self.summary: pulumi.Output[dict[str, Any]] = pulumi.Output.from_input(summary)
        self.register_outputs({"summary": self.summary})

    # ----------------------------------------------------------------- sides

    def _aws_provider(self, region: str) -> pulumi_aws.Provider | None:
        if region == self._default_aws_region:
            return None
        if region not in self._aws_providers:
            self._aws_providers[region] = pulumi_aws.Provider(
                child_name(self._name, f"aws-{region}"),
                region=region,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return self._aws_providers[region]

    def _side(self, plan: GroupPlan) -> _Side:
        side_name = child_name(self._name, plan.role)
        port = self._spec.balancer.port
        rules = self._spec.sync.security_rules
        dns_level = self._spec.balancer.kind.dns_level
        if plan.cloud is Cloud.aws:
            provider = self._aws_provider(plan.region)
            opts = pulumi.ResourceOptions(
                parent=self, providers=[provider] if provider is not None else None
            )
            tags = resource_tags(self._tags, pool=self._name, role=plan.role)
            group_type = aws.PrimaryGroup if plan.role == "primary" else aws.MirrorGroup
            group = group_type(side_name, plan=plan, rules=rules, tags=tags, opts=opts)
            if not dns_level:
                return _Side(plan.role, plan.cloud, group, group.endpoint, None, None, provider)
            nlb = aws.NlbFront(
                child_name(side_name, "front"), group=group, port=port, tags=tags, opts=opts
            )
            return _Side(
                plan.role,
                plan.cloud,
                group,
                nlb.load_balancer.dns_name,
                nlb.dns_endpoint,
                None,
                provider,
            )
        if plan.cloud is Cloud.azure:
            assert plan.network.resource_group is not None, "validated by the model"
            tags = resource_tags(self._tags, pool=self._name, role=plan.role)
            opts = pulumi.ResourceOptions(parent=self)
            front = azure.LoadBalancerFront(
                child_name(side_name, "front"),
                resource_group=plan.network.resource_group,
                location=plan.region,
                port=port,
                tags=tags,
                opts=opts,
            )
            scale_set_type = (
                azure.PrimaryScaleSet if plan.role == "primary" else azure.MirrorScaleSet
            )
            scale_set = scale_set_type(
                side_name,
                plan=plan,
                rules=rules,
                backend_pool_id=front.backend_pool_id,
                os_profile=self._os_profile(),
                standby_principal_id=self._azure.standby_pool_principal_id,
                tags=tags,
                opts=opts,
            )
            return _Side(
                plan.role, plan.cloud, scale_set, front.fqdn, front.dns_endpoint, front, None
            )
        if plan.cloud is not Cloud.gcp:
            # No implicit last branch: a cloud added to the config without its branch here
            # would otherwise be declared as GCP.
            raise _undeclared(self._name, f"the {plan.role}", plan.cloud)
        labels = gcp_labels(self._tags, pool=self._name, role=plan.role)
        opts = pulumi.ResourceOptions(parent=self)
        mig_type = gcp.PrimaryGroup if plan.role == "primary" else gcp.MirrorGroup
        mig = mig_type(side_name, plan=plan, labels=labels, opts=opts)
        if not dns_level:
            return _Side(plan.role, plan.cloud, mig, mig.endpoint, None, None, None)
        passthrough = gcp.PassthroughFront(
            child_name(side_name, "front"), group=mig, port=port, labels=labels, opts=opts
        )
        return _Side(
            plan.role,
            plan.cloud,
            mig,
            passthrough.address.address,
            passthrough.dns_endpoint,
            None,
            None,
        )

    def _os_profile(self) -> azure.OsProfile | None:
        if self._azure.image_kind == "specialized":
            return None
        assert self._ssh_public_key is not None, "checked before declaring (declarability)"
        return azure.OsProfile(
            admin_username=self._azure.admin_username, ssh_public_key=self._ssh_public_key
        )

    # ----------------------------------------------------------------- balancer

    def _balancer(self) -> pulumi.Output[str]:
        spec = self._spec
        balancer = spec.balancer
        kind = balancer.kind
        weights = pool_weights(spec)
        name = child_name(self._name, "balancer")
        opts = pulumi.ResourceOptions(parent=self)
        primary, mirror = self.sides["primary"], self.sides["mirror"]
        if kind is BalancerKind.alb:
            assert isinstance(primary.group, aws.AutoScalingGroup)
            assert isinstance(mirror.group, aws.AutoScalingGroup)
            provider = primary.provider
            alb = aws.AlbBalancer(
                name,
                groups={"primary": primary.group, "mirror": mirror.group},
                weights=weights,
                network=spec.primary.network,
                region=spec.primary.region,
                port=balancer.port,
                health_check_path=balancer.health_check_path,
                certificate=balancer.certificate,
                tags=resource_tags(self._tags, pool=self._name, role="balancer"),
                opts=pulumi.ResourceOptions(
                    parent=self, providers=[provider] if provider is not None else None
                ),
            )
            return alb.endpoint
        if kind is BalancerKind.gcp_url_map:
            assert isinstance(primary.group, gcp.InstanceGroup)
            assert isinstance(mirror.group, gcp.InstanceGroup)
            url_map = gcp.UrlMapBalancer(
                name,
                groups={"primary": primary.group, "mirror": mirror.group},
                weights=weights,
                port=balancer.port,
                health_check_path=balancer.health_check_path,
                certificate=balancer.certificate,
                labels=gcp_labels(self._tags, pool=self._name, role="balancer"),
                opts=opts,
            )
            return url_map.endpoint
        if kind is BalancerKind.azure_front_door:
            assert primary.azure_front is not None and mirror.azure_front is not None
            resource_group = spec.primary.network.resource_group
            assert resource_group is not None, "validated by the model"
            front_door = azure.FrontDoorBalancer(
                name,
                resource_group=resource_group,
                fronts={"primary": primary.azure_front, "mirror": mirror.azure_front},
                weights=weights,
                port=balancer.port,
                health_check_path=balancer.health_check_path,
                tags=resource_tags(self._tags, pool=self._name, role="balancer"),
                opts=opts,
            )
            return front_door.endpoint
        assert balancer.dns is not None, "validated: DNS-level kinds need a dns section"
        endpoints: dict[Role, dns.DnsEndpoint] = {}
        for role, side in self.sides.items():
            assert side.dns_endpoint is not None, "DNS-level pools put a front before each side"
            endpoints[role] = side.dns_endpoint
        if kind is BalancerKind.route53:
            route53 = dns.Route53Weighted(
                name, dns=balancer.dns, endpoints=endpoints, weights=weights, opts=opts
            )
            return route53.endpoint
        if kind is BalancerKind.azure_traffic_manager:
            resource_group = next(
                (
                    network.resource_group
                    for network in (spec.primary.network, spec.mirror_network)
                    if network.resource_group
                ),
                None,
            )
            assert resource_group is not None, "checked before declaring (declarability)"
            traffic_manager = dns.TrafficManagerWeighted(
                name,
                dns=balancer.dns,
                resource_group=resource_group,
                endpoints=endpoints,
                weights=weights,
                port=balancer.port,
                tags=resource_tags(self._tags, pool=self._name, role="balancer"),
                opts=opts,
            )
            return traffic_manager.endpoint
        cloud_dns = dns.CloudDnsWeighted(
            name, dns=balancer.dns, endpoints=endpoints, weights=weights, opts=opts
        )
        return cloud_dns.endpoint

    # ----------------------------------------------------------------- database

    def _database(self) -> None:
        spec = self._spec
        database = spec.sync.database
        if database is None:
            return
        name = child_name(self._name, "db")
        opts = pulumi.ResourceOptions(parent=self)
        cloud = spec.primary.cloud
        if cloud is Cloud.aws:
            assert self._database_password is not None, "checked before declaring"
            provider = self.sides["primary"].provider
            aws.AuroraGlobalDatabase(
                name,
                spec=database,
                primary_network=spec.primary.network,
                mirror_network=spec.mirror_network,
                primary_region=spec.primary.region,
                mirror_region=spec.mirror_region,
                password=self._database_password,
                mirror_provider=self.sides["mirror"].provider,
                tags=resource_tags(self._tags, pool=self._name, role="database"),
                opts=pulumi.ResourceOptions(
                    parent=self, providers=[provider] if provider is not None else None
                ),
            )
        elif cloud is Cloud.azure:
            assert self._database_password is not None, "checked before declaring"
            primary_rg = spec.primary.network.resource_group
            # A cross-cloud mirror has no resource group; only a replica needs the mirror's.
            mirror_rg = spec.mirror_network.resource_group or primary_rg
            assert primary_rg is not None and mirror_rg is not None, "validated by the model"
            azure.SqlGeoReplica(
                name,
                spec=database,
                primary=(primary_rg, spec.primary.region),
                mirror=(mirror_rg, spec.mirror_region),
                password=self._database_password,
                tags=resource_tags(self._tags, pool=self._name, role="database"),
                opts=opts,
            )
        elif cloud is Cloud.gcp:
            gcp.CloudSqlReplica(
                name,
                spec=database,
                primary_region=spec.primary.region,
                mirror_region=spec.mirror_region,
                labels=gcp_labels(self._tags, pool=self._name, role="database"),
                opts=opts,
            )
        else:
            raise _undeclared(self._name, "the database", cloud)


def _undeclared(pool: str, what: str, cloud: Any) -> MirrorcastError:
    name = getattr(cloud, "value", cloud)
    return MirrorcastError(
        f"pool {pool}: {what} is on cloud {name!r}, which infra/pool.py does not declare; "
        "add its branch (docs/architecture.md, 'A cloud')"
    )
