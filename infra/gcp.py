"""GCP components: regional managed instance groups, firewalls, URL map and passthrough fronts,
and Cloud SQL cross-region replicas.

A paused mirror is a managed instance group at target size 0; with the ``warm_pool`` strategy its
standby policy keeps the mirror's instances stopped or suspended (``target_stopped_size`` /
``target_suspended_size``), disks allocated, so activation resumes them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import pulumi
import pulumi_gcp as gcp

from infra._common import (
    GroupPlan,
    Role,
    certificate_problem,
    child_name,
    gcp_firewall_rules,
    gcp_labels,
    gcp_name,
    network_tag,
    pool_weights,
    type_token,
)
from infra.clouds import CLOUDS, PoolContext, Side, StackSecrets, dns_endpoints, dns_section
from infra.config import (
    BalancerKind,
    Cloud,
    DatabaseSpec,
    MirrorcastConfig,
    PoolSpec,
    ProductWeight,
    SecurityRule,
    UnknownCloudError,
)
from infra.dns import CloudDnsWeighted, DnsEndpoint

__all__ = [
    "CloudSqlReplica",
    "GcpBackend",
    "InstanceGroup",
    "MirrorGroup",
    "PassthroughFront",
    "PrimaryGroup",
    "SharedFirewall",
    "UrlMapBalancer",
    "cloud_sql_version",
]

logger = logging.getLogger(__name__)

NAMED_PORT = "app"


# --------------------------------------------------------------------------- deploy-time ids
# Each side exports the names Cloud Monitoring keys its metrics on, as ``pools.<pool>.ids.<role>``
# (docs/architecture.md, "Stack outputs"), so a metric's filter can name an auto-named resource
# as ``${outputs.pools.$pool.ids.<role>.<key>}``. The label each name fills is in Cloud
# Monitoring's monitored-resource list (https://cloud.google.com/monitoring/api/resources) and
# its filter syntax (https://cloud.google.com/monitoring/api/v3/filters); each value is the
# pulumi_gcp output whose docstring says it is that name (pulumi_gcp/compute/*.py).


def _group_ids(manager: gcp.compute.RegionInstanceGroupManager) -> dict[str, pulumi.Output[str]]:
    """A side's managed instance group, as Cloud Monitoring names it.

    - ``instance_group``: ``RegionInstanceGroupManager.name`` ("The name of the instance group
      manager"; the group it creates bears the same name). It is the value of
      ``metadata.system_labels.instance_group`` on the group's ``gce_instance`` metrics
      (``compute.googleapis.com/instance/cpu/utilization``), ``resource.labels.instance_group_name``
      on the ``instance_group`` resource, ``resource.labels.instance_group_manager_name`` on the
      ``autoscaler`` resource, ``resource.labels.backend_name`` on ``https_lb_rule`` and
      ``resource.labels.backend_group_name`` on the passthrough balancer's
      ``loadbalancing.googleapis.com/ExternalNetworkLoadBalancerRule``.
    - ``region``: ``RegionInstanceGroupManager.region`` ("The region where the managed instance
      group resides"): ``resource.labels.location`` of ``instance_group`` and ``autoscaler``,
      ``resource.labels.backend_scope`` of ``https_lb_rule`` for a regional group.
    """
    return {"instance_group": manager.name, "region": manager.region}


def _https_lb_ids(
    *,
    backend_service: gcp.compute.BackendService,
    url_map: gcp.compute.URLMap,
    forwarding_rule: gcp.compute.GlobalForwardingRule,
) -> dict[str, pulumi.Output[str]]:
    """A side's share of the global URL map, as the ``https_lb_rule`` resource labels it
    (``loadbalancing.googleapis.com/https/request_count`` and the other https metrics).

    - ``backend_service``: ``BackendService.name`` is ``resource.labels.backend_target_name``
      (the side's own backend service, so its requests are told from the other side's);
    - ``url_map``: ``URLMap.name`` is ``resource.labels.url_map_name``;
    - ``forwarding_rule``: ``GlobalForwardingRule.name`` is ``resource.labels.forwarding_rule_name``.
    """
    return {
        "backend_service": backend_service.name,
        "url_map": url_map.name,
        "forwarding_rule": forwarding_rule.name,
    }


def _passthrough_ids(
    *,
    backend_service: gcp.compute.RegionBackendService,
    forwarding_rule: gcp.compute.ForwardingRule,
) -> dict[str, pulumi.Output[str]]:
    """A side's passthrough front (DNS-level balancers), as
    ``loadbalancing.googleapis.com/ExternalNetworkLoadBalancerRule`` labels it
    (``loadbalancing.googleapis.com/l3/external/ingress_packets_count`` and the other l3 metrics).

    - ``backend_service``: ``RegionBackendService.name`` is ``resource.labels.backend_service_name``;
    - ``forwarding_rule``: ``ForwardingRule.name`` is ``resource.labels.forwarding_rule_name``.
    """
    return {"backend_service": backend_service.name, "forwarding_rule": forwarding_rule.name}


class InstanceGroup(pulumi.ComponentResource):
    """An instance template and a regional managed instance group for one side of a pool.

    :param type_name: ``PrimaryGroup`` or ``MirrorGroup``.
    :param name: the component's logical name.
    :param plan: sizes, image, machine type, network and standby state.
    :param labels: GCP labels (already sanitised).
    :param opts: resource options.
    """

    def __init__(
        self,
        type_name: str,
        name: str,
        *,
        plan: GroupPlan,
        labels: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("gcp", type_name), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base = gcp_name(name)
        self.tag = network_tag(plan.pool, plan.role)
        self.network = plan.network.network
        self.region = plan.region
        self.template = gcp.compute.InstanceTemplate(
            child_name(base, "tpl"),
            machine_type=plan.machine_type,
            region=plan.region,
            disks=[
                gcp.compute.InstanceTemplateDiskArgs(
                    source_image=plan.image, boot=True, auto_delete=True, labels=dict(labels)
                )
            ],
            network_interfaces=[
                gcp.compute.InstanceTemplateNetworkInterfaceArgs(
                    network=plan.network.network, subnetwork=plan.network.subnetwork
                )
            ],
            tags=[self.tag],
            labels=dict(labels),
            # Templates are immutable: a new image or machine type replaces the template, and
            # Pulumi creates the new one before deleting the old, so the group is never without one.
            opts=child,
        )
        warm = plan.keep_warm_pool and plan.warm_state is not None
        suspended = plan.warm_state == "suspended"
        # The regional autoscaler owns target_size on an autoscaled primary; mirrorcast raises
        # its min_replicas instead of reverting the size it chose.
        ignore = ["targetSize"] if plan.autoscaled else []
        self.manager = gcp.compute.RegionInstanceGroupManager(
            child_name(base, "mig"),
            base_instance_name=gcp_name(f"{plan.pool}-{plan.role}", max_length=40),
            region=plan.region,
            versions=[
                gcp.compute.RegionInstanceGroupManagerVersionArgs(
                    instance_template=self.template.self_link_unique, name=plan.role
                )
            ],
            target_size=plan.desired,
            named_ports=[
                gcp.compute.RegionInstanceGroupManagerNamedPortArgs(name=NAMED_PORT, port=plan.port)
            ],
            standby_policy=(
                gcp.compute.RegionInstanceGroupManagerStandbyPolicyArgs(mode="MANUAL")
                if warm
                else None
            ),
            target_stopped_size=plan.warm_size if warm and not suspended else None,
            target_suspended_size=plan.warm_size if warm and suspended else None,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
        )
        self.autoscaler: gcp.compute.RegionAutoscaler | None = None
        if plan.autoscaled:
            self.autoscaler = gcp.compute.RegionAutoscaler(
                child_name(base, "autoscaler"),
                region=plan.region,
                target=self.manager.id,
                autoscaling_policy=gcp.compute.RegionAutoscalerAutoscalingPolicyArgs(
                    min_replicas=plan.min_size,
                    max_replicas=plan.max_size,
                    cpu_utilization=gcp.compute.RegionAutoscalerAutoscalingPolicyCpuUtilizationArgs(
                        target=plan.autoscaler_target / 100
                    ),
                ),
                opts=child,
            )
        self.instance_group: pulumi.Output[str] = self.manager.instance_group
        self.endpoint: pulumi.Output[str] = self.manager.instance_group
        # A regional manager's instance group bears the manager's own name (auto-named at
        # deploy time: the logical name and a suffix), which is how Cloud Monitoring names it.
        self.ids: dict[str, pulumi.Output[str]] = _group_ids(self.manager)
        self.register_outputs({"instance_group": self.manager.instance_group})


class PrimaryGroup(InstanceGroup):
    """The primary's managed instance group (``mirrorcast:gcp:PrimaryGroup``)."""

    def __init__(
        self,
        name: str,
        *,
        plan: GroupPlan,
        labels: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("PrimaryGroup", name, plan=plan, labels=labels, opts=opts)


class MirrorGroup(InstanceGroup):
    """The mirror's managed instance group (``mirrorcast:gcp:MirrorGroup``)."""

    def __init__(
        self,
        name: str,
        *,
        plan: GroupPlan,
        labels: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("MirrorGroup", name, plan=plan, labels=labels, opts=opts)


class SharedFirewall(pulumi.ComponentResource):
    """``sync.security_rules`` as GCP firewall rules targeting every GCP side's network tag.

    GCP firewalls belong to a network, so sides on different networks each get their own copy
    of every rule; sides sharing a network share one rule targeting both tags.

    :param name: the component's logical name.
    :param rules: the pool's security rules.
    :param groups: the GCP groups to protect.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        rules: Sequence[SecurityRule],
        groups: Sequence[InstanceGroup],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("gcp", "SharedFirewall"), name, None, opts)
        by_network: dict[str, list[str]] = {}
        for group in groups:
            assert group.network is not None, "validated: a GCP network names its network"
            by_network.setdefault(group.network, []).append(group.tag)
        self.firewalls: list[gcp.compute.Firewall] = []
        base = gcp_name(name, max_length=40)
        for index, (network, tags) in enumerate(sorted(by_network.items())):
            suffix = "" if len(by_network) == 1 else f"-n{index}"
            for rule in gcp_firewall_rules(rules):
                self.firewalls.append(
                    gcp.compute.Firewall(
                        # Rule names run to 41 characters: keep the whole name GCP-valid.
                        gcp_name(child_name(base, f"{rule.name}{suffix}")),
                        network=network,
                        direction="INGRESS",
                        description=rule.description,
                        allows=[
                            gcp.compute.FirewallAllowArgs(
                                protocol=rule.protocol, ports=list(rule.ports) or None
                            )
                        ],
                        source_ranges=list(rule.source_ranges),
                        target_tags=sorted(tags),
                        opts=pulumi.ResourceOptions(parent=self),
                    )
                )
        self.register_outputs({})


class UrlMapBalancer(pulumi.ComponentResource):
    """A global external Application Load Balancer whose URL map weights two backend services.

    ``default_route_action.weighted_backend_services`` takes weights 0-1000 and needs the
    ``EXTERNAL_MANAGED`` load-balancing scheme.

    :param name: the component's logical name.
    :param groups: the primary's and the mirror's groups.
    :param weights: each side's weight.
    :param port: the port served and forwarded to.
    :param health_check_path: HTTP path probed on the instances.
    :param certificate: SSL certificate self-link, required on port 443.
    :param labels: labels for the forwarding rule and address.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        groups: Mapping[Role, InstanceGroup],
        weights: Mapping[Role, ProductWeight],
        port: int,
        health_check_path: str,
        certificate: str | None,
        labels: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("gcp", "UrlMapBalancer"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base = gcp_name(name, max_length=40)
        https = port == 443
        # The probe speaks the backends' protocol: an HTTPS backend answers a plain-HTTP probe
        # on its TLS port with an error, so every instance would be unhealthy.
        health = gcp.compute.HealthCheck(
            child_name(base, "hc"),
            https_health_check=(
                gcp.compute.HealthCheckHttpsHealthCheckArgs(
                    port=port, request_path=health_check_path
                )
                if https
                else None
            ),
            http_health_check=(
                None
                if https
                else gcp.compute.HealthCheckHttpHealthCheckArgs(
                    port=port, request_path=health_check_path
                )
            ),
            opts=child,
        )
        self.backend_services: dict[Role, gcp.compute.BackendService] = {}
        for role, group in groups.items():
            self.backend_services[role] = gcp.compute.BackendService(
                child_name(base, role),
                protocol="HTTPS" if https else "HTTP",
                port_name=NAMED_PORT,
                load_balancing_scheme="EXTERNAL_MANAGED",
                health_checks=health.id,
                backends=[
                    gcp.compute.BackendServiceBackendArgs(
                        group=group.instance_group, balancing_mode="UTILIZATION"
                    )
                ],
                opts=child,
            )
        self.url_map = gcp.compute.URLMap(
            child_name(base, "urlmap"),
            default_route_action=gcp.compute.URLMapDefaultRouteActionArgs(
                weighted_backend_services=[
                    gcp.compute.URLMapDefaultRouteActionWeightedBackendServiceArgs(
                        backend_service=service.id, weight=weights[role].weight
                    )
                    for role, service in self.backend_services.items()
                ]
            ),
            opts=child,
        )
        proxy: gcp.compute.TargetHttpProxy | gcp.compute.TargetHttpsProxy
        if https:
            proxy = gcp.compute.TargetHttpsProxy(
                child_name(base, "proxy"),
                url_map=self.url_map.id,
                ssl_certificates=[certificate] if certificate else None,
                opts=child,
            )
        else:
            proxy = gcp.compute.TargetHttpProxy(
                child_name(base, "proxy"), url_map=self.url_map.id, opts=child
            )
        self.address = gcp.compute.GlobalAddress(
            child_name(base, "ip"), labels=dict(labels), opts=child
        )
        self.forwarding_rule = gcp.compute.GlobalForwardingRule(
            child_name(base, "fr"),
            target=proxy.id,
            ip_address=self.address.address,
            port_range=str(port),
            load_balancing_scheme="EXTERNAL_MANAGED",
            labels=dict(labels),
            opts=child,
        )
        self.endpoint: pulumi.Output[str] = self.address.address
        self.register_outputs({"endpoint": self.endpoint})

    def side_ids(self, role: Role) -> dict[str, pulumi.Output[str]]:
        """The names the https_lb_rule metrics carry for ``role``'s share of this balancer."""
        return _https_lb_ids(
            backend_service=self.backend_services[role],
            url_map=self.url_map,
            forwarding_rule=self.forwarding_rule,
        )


class PassthroughFront(pulumi.ComponentResource):
    """A regional external passthrough network load balancer in front of one group, for DNS.

    :param name: the component's logical name.
    :param group: the group behind it.
    :param port: the TCP port forwarded and health-checked.
    :param labels: labels for the address and forwarding rule.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        group: InstanceGroup,
        port: int,
        labels: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("gcp", "PassthroughFront"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base = gcp_name(name, max_length=40)
        health = gcp.compute.RegionHealthCheck(
            child_name(base, "hc"),
            region=group.region,
            tcp_health_check=gcp.compute.RegionHealthCheckTcpHealthCheckArgs(port=port),
            opts=child,
        )
        self.backend_service = gcp.compute.RegionBackendService(
            child_name(base, "bs"),
            region=group.region,
            protocol="TCP",
            load_balancing_scheme="EXTERNAL",
            health_checks=health.id,
            backends=[
                gcp.compute.RegionBackendServiceBackendArgs(
                    group=group.instance_group, balancing_mode="CONNECTION"
                )
            ],
            opts=child,
        )
        self.address = gcp.compute.Address(
            child_name(base, "ip"), region=group.region, labels=dict(labels), opts=child
        )
        self.forwarding_rule = gcp.compute.ForwardingRule(
            child_name(base, "fr"),
            region=group.region,
            ip_protocol="TCP",
            ports=[str(port)],
            ip_address=self.address.address,
            backend_service=self.backend_service.id,
            load_balancing_scheme="EXTERNAL",
            labels=dict(labels),
            opts=child,
        )
        self.dns_endpoint = DnsEndpoint(cloud=Cloud.gcp, kind="ip", address=self.address.address)
        self.ids: dict[str, pulumi.Output[str]] = _passthrough_ids(
            backend_service=self.backend_service, forwarding_rule=self.forwarding_rule
        )
        self.register_outputs({"endpoint": self.address.address})


def cloud_sql_version(spec: DatabaseSpec) -> str:
    """Cloud SQL's ``database_version`` for an engine and version: ``POSTGRES_15``, ``MYSQL_8_0``."""
    if spec.engine == "sqlserver":
        raise ValueError("sync.database.engine sqlserver is declared on Azure only")
    return f"{spec.engine.upper()}_{spec.engine_version.replace('.', '_')}"


class CloudSqlReplica(pulumi.ComponentResource):
    """A Cloud SQL primary instance and, with ``replica``, a read replica in the mirror's region.

    :param name: the component's logical name.
    :param spec: engine, version, tier and whether to replicate.
    :param primary_region: the primary instance's region.
    :param mirror_region: the replica's region.
    :param labels: user labels for both instances.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        spec: DatabaseSpec,
        primary_region: str,
        mirror_region: str,
        labels: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("gcp", "CloudSqlReplica"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base = gcp_name(name, max_length=40)
        version = cloud_sql_version(spec)
        self.primary = gcp.sql.DatabaseInstance(
            child_name(base, "primary"),
            database_version=version,
            region=primary_region,
            settings=gcp.sql.DatabaseInstanceSettingsArgs(
                tier=spec.instance_class,
                user_labels=dict(labels),
                # Replicas need point-in-time recovery (Postgres) or binary logs (MySQL).
                backup_configuration=gcp.sql.DatabaseInstanceSettingsBackupConfigurationArgs(
                    enabled=True,
                    point_in_time_recovery_enabled=spec.engine == "postgres",
                    binary_log_enabled=spec.engine == "mysql",
                ),
            ),
            opts=child,
        )
        self.replica: gcp.sql.DatabaseInstance | None = None
        if spec.replica:
            self.replica = gcp.sql.DatabaseInstance(
                child_name(base, "replica"),
                database_version=version,
                region=mirror_region,
                master_instance_name=self.primary.name,
                settings=gcp.sql.DatabaseInstanceSettingsArgs(
                    tier=spec.instance_class, user_labels=dict(labels)
                ),
                opts=child,
            )
        self.register_outputs({"primary": self.primary.connection_name})


# --------------------------------------------------------------------------- backend


def _cloud_dns_problems(name: str, pool: PoolSpec) -> list[str]:
    """A side whose cloud fronts it by hostname cannot be a Cloud DNS answer.

    Cloud DNS's weighted round robin answers with the rrdatas of an ``A`` record set, which are
    IPv4 addresses (https://cloud.google.com/dns/docs/zones/manage-routing-policies), and a
    record set cannot alias another name. Each side's cloud says how its front is reached
    (``dns_front`` of its backend), so no cloud is named here.
    """
    problems: list[str] = []
    for role, cloud, path in (
        ("primary", pool.primary.cloud, f"pools.{name}.primary.cloud"),
        ("mirror", pool.mirror_cloud, f"pools.{name}.mirror.location.cloud"),
    ):
        try:
            front = CLOUDS.backend(cloud).dns_front
        except UnknownCloudError:
            continue  # declarability_problems reports the missing backend itself
        if front == "hostname":
            problems.append(
                f"pools.{name}.balancer.kind: gcp_cloud_dns answers with IP addresses (weighted "
                f"A records), but the {role} side ({path}: {cloud.value}) is reached through a "
                "load balancer hostname, which an A record cannot hold; use a balancer that "
                "takes hostnames (route53 or azure_traffic_manager) for this pool"
            )
    return problems


class GcpBackend:
    """Declares one pool's GCP pieces (``infra.clouds.CloudBackend``).

    A pool's GCP sides share one firewall, which targets each side's network tag.
    """

    balancer_kinds = frozenset({BalancerKind.gcp_url_map, BalancerKind.gcp_cloud_dns})
    # The passthrough front has a static regional address (PassthroughFront.dns_endpoint).
    dns_front: ClassVar[Literal["ip", "hostname"]] = "ip"

    @classmethod
    def problems(
        cls, *, name: str, pool: PoolSpec, config: MirrorcastConfig, secrets: StackSecrets
    ) -> list[str]:
        kind = pool.balancer.kind
        if kind is BalancerKind.gcp_url_map:
            return certificate_problem(name, pool)
        if kind is BalancerKind.gcp_cloud_dns:
            return _cloud_dns_problems(name, pool)
        return []

    def __init__(self, *, pool: PoolContext) -> None:
        self._pool = pool

    def side(self, *, plan: GroupPlan) -> Side:
        pool = self._pool
        side_name = child_name(pool.name, plan.role)
        labels = gcp_labels(pool.tags, pool=pool.name, role=plan.role)
        opts = pulumi.ResourceOptions(parent=pool.parent)
        mig_type = PrimaryGroup if plan.role == "primary" else MirrorGroup
        mig = mig_type(side_name, plan=plan, labels=labels, opts=opts)
        if not pool.spec.balancer.kind.dns_level:
            return Side(plan.role, plan.cloud, mig, mig.endpoint, ids=dict(mig.ids))
        passthrough = PassthroughFront(
            child_name(side_name, "front"),
            group=mig,
            port=pool.spec.balancer.port,
            labels=labels,
            opts=opts,
        )
        return Side(
            plan.role,
            plan.cloud,
            mig,
            passthrough.address.address,
            passthrough.dns_endpoint,
            ids={**mig.ids, **passthrough.ids},
        )

    def shared(self, *, sides: Sequence[Side]) -> None:
        rules = self._pool.spec.sync.security_rules
        groups = [side.group for side in sides if isinstance(side.group, InstanceGroup)]
        if not (groups and rules):
            return
        SharedFirewall(
            child_name(self._pool.name, "firewall"),
            rules=rules,
            groups=groups,
            opts=pulumi.ResourceOptions(parent=self._pool.parent),
        )

    def balancer(self, *, kind: BalancerKind, sides: Mapping[Role, Side]) -> pulumi.Output[str]:
        pool = self._pool
        spec = pool.spec
        name = child_name(pool.name, "balancer")
        opts = pulumi.ResourceOptions(parent=pool.parent)
        if kind is BalancerKind.gcp_url_map:
            primary, mirror = sides["primary"].group, sides["mirror"].group
            assert isinstance(primary, InstanceGroup) and isinstance(mirror, InstanceGroup)
            url_map = UrlMapBalancer(
                name,
                groups={"primary": primary, "mirror": mirror},
                weights=pool_weights(spec),
                port=spec.balancer.port,
                health_check_path=spec.balancer.health_check_path,
                certificate=spec.balancer.certificate,
                labels=gcp_labels(pool.tags, pool=pool.name, role="balancer"),
                opts=opts,
            )
            for role, side in sides.items():
                side.ids.update(url_map.side_ids(role))
            return url_map.endpoint
        assert kind is BalancerKind.gcp_cloud_dns, f"{kind} is not a GCP balancer"
        return CloudDnsWeighted(
            name,
            dns=dns_section(spec),
            endpoints=dns_endpoints(sides),
            weights=pool_weights(spec),
            opts=opts,
        ).endpoint

    def database(self, *, sides: Mapping[Role, Side]) -> None:
        pool = self._pool
        spec = pool.spec
        assert spec.sync.database is not None
        CloudSqlReplica(
            child_name(pool.name, "db"),
            spec=spec.sync.database,
            primary_region=spec.primary.region,
            mirror_region=spec.mirror_region,
            labels=gcp_labels(pool.tags, pool=pool.name, role="database"),
            opts=pulumi.ResourceOptions(parent=pool.parent),
        )


CLOUDS.register(Cloud.gcp, GcpBackend)
