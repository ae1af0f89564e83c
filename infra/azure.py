"""Azure components: scale sets for primary and mirror, load-balancer fronts, Front Door,
and Azure SQL geo-secondaries.

A paused mirror is a Flexible-orchestration scale set at capacity 0; with the ``warm_pool``
strategy a standby pool keeps the mirror's VMs Deallocated (disks kept, no compute billed) so
activation only starts them. Only submodules of ``pulumi_azure_native`` are imported: the whole
package is very large.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import pulumi
from pulumi_azure_native import authorization, cdn, compute, monitor, network, sql, standbypool

from infra._common import (
    AZURE_AFD_ENDPOINT,
    AZURE_SQL_SERVER,
    GroupPlan,
    Role,
    azure_nsg_rules,
    child_name,
    gcp_name,
    password_problem,
    physical_name,
    pool_weights,
    resource_tags,
    type_token,
)
from infra.clouds import (
    CLOUDS,
    DATABASE_PASSWORD_KEY,
    SECRETS_NAMESPACE,
    SSH_PUBLIC_KEY_KEY,
    PoolContext,
    Side,
    StackSecrets,
    dns_endpoints,
    dns_section,
)
from infra.config import (
    BalancerKind,
    Cloud,
    DatabaseSpec,
    MirrorcastConfig,
    PoolSpec,
    ProductWeight,
    SecurityRule,
)
from infra.dns import DnsEndpoint, TrafficManagerWeighted

__all__ = [
    "STANDBY_POOL_ROLES",
    "AzureBackend",
    "FrontDoorBalancer",
    "LoadBalancerFront",
    "MirrorScaleSet",
    "OsProfile",
    "PrimaryScaleSet",
    "ScaleSet",
    "SqlGeoReplica",
    "front_door_origin_state",
]

logger = logging.getLogger(__name__)

_STANDBY_STATE = {"deallocated": "Deallocated"}

STANDBY_POOL_ROLES = {
    "Virtual Machine Contributor": "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
    "Network Contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",
    "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
}
"""Built-in roles the Standby Pool resource provider needs on the scale set's resource group
(https://learn.microsoft.com/azure/virtual-machine-scale-sets/standby-pools-create#prerequisites;
ids from https://learn.microsoft.com/azure/role-based-access-control/built-in-roles)."""


def _scope() -> str:
    return f"{pulumi.get_project()}/{pulumi.get_stack()}"


@dataclass(frozen=True)
class OsProfile:
    """The OS profile a scale set from a generalized image needs (``None`` for specialized).

    :param admin_username: the Linux administrator.
    :param ssh_public_key: the administrator's public key (a Pulumi secret).
    """

    admin_username: str
    ssh_public_key: pulumi.Input[str]


def computer_name_prefix(pool: str, role: Role) -> str:
    """A computer name prefix of at most 15 characters (the API's limit), per side."""
    base = re.sub(r"[^a-z0-9-]+", "", pool.lower())[:12].rstrip("-") or "mc"
    return f"{base}-{role[0]}"


class LoadBalancerFront(pulumi.ComponentResource):
    """A Standard public IP and load balancer for one side (TCP passthrough on the pool's port).

    The scale set joins its backend pool, Front Door uses the IP's DNS name as an origin, and
    Traffic Manager, Route 53 or Cloud DNS point at the IP. It is declared before the scale set
    because the scale set's network profile names the backend pool.

    :param name: the component's logical name.
    :param resource_group: the side's resource group.
    :param location: the side's Azure location.
    :param port: the TCP port forwarded and probed.
    :param tags: tags for every child.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        resource_group: str,
        location: str,
        port: int,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("azure", "LoadBalancerFront"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags)
        self.public_ip = network.PublicIPAddress(
            child_name(name, "ip"),
            resource_group_name=resource_group,
            location=location,
            sku=network.PublicIPAddressSkuArgs(name="Standard"),
            public_ip_allocation_method="Static",
            dns_settings=network.PublicIPAddressDnsSettingsArgs(
                domain_name_label=gcp_name(f"{name}-{pulumi.get_stack()}", max_length=60)
            ),
            tags=tags,
            opts=child,
        )
        # Rules reference the balancer's own frontend, pool and probe by id, and those ids are
        # only known from the balancer's name, so it is named explicitly.
        # Named with the stack: two stacks sharing a resource group must not collide.
        lb_name = gcp_name(f"{name}-{pulumi.get_stack()}-lb", max_length=80)
        subscription = authorization.get_client_config_output().subscription_id
        lb_id = pulumi.Output.concat(
            "/subscriptions/",
            subscription,
            f"/resourceGroups/{resource_group}/providers/Microsoft.Network/loadBalancers/{lb_name}",
        )
        self.load_balancer = network.LoadBalancer(
            child_name(name, "lb"),
            load_balancer_name=lb_name,
            resource_group_name=resource_group,
            location=location,
            sku=network.LoadBalancerSkuArgs(name="Standard"),
            frontend_ip_configurations=[
                network.FrontendIPConfigurationArgs(
                    name="front",
                    public_ip_address=network.PublicIPAddressArgs(id=self.public_ip.id),
                )
            ],
            backend_address_pools=[network.BackendAddressPoolArgs(name="pool")],
            probes=[network.ProbeArgs(name="tcp", protocol="Tcp", port=port)],
            load_balancing_rules=[
                network.LoadBalancingRuleArgs(
                    name="app",
                    protocol="Tcp",
                    frontend_port=port,
                    backend_port=port,
                    frontend_ip_configuration=network.SubResourceArgs(
                        id=lb_id.apply(lambda i: f"{i}/frontendIPConfigurations/front")
                    ),
                    backend_address_pool=network.SubResourceArgs(
                        id=lb_id.apply(lambda i: f"{i}/backendAddressPools/pool")
                    ),
                    probe=network.SubResourceArgs(id=lb_id.apply(lambda i: f"{i}/probes/tcp")),
                )
            ],
            tags=tags,
            opts=child,
        )
        self.backend_pool_id: pulumi.Output[str] = lb_id.apply(
            lambda i: f"{i}/backendAddressPools/pool"
        )
        fqdn = self.public_ip.dns_settings.apply(lambda d: (d.fqdn if d else None) or "")
        self.fqdn: pulumi.Output[str] = fqdn
        self.dns_endpoint = DnsEndpoint(
            cloud=Cloud.azure,
            kind="ip",
            address=self.public_ip.ip_address.apply(lambda ip: ip or ""),
            azure_resource_id=self.public_ip.id,
        )
        self.register_outputs({"fqdn": fqdn})


def _image_reference(image: str) -> compute.ImageReferenceArgs:
    # Gallery image versions are resource ids; the model validated that one exists per location.
    return compute.ImageReferenceArgs(id=image)


class ScaleSet(pulumi.ComponentResource):
    """An NSG and a Flexible-orchestration VM scale set for one side of a pool.

    :param type_name: ``PrimaryScaleSet`` or ``MirrorScaleSet``.
    :param name: the component's logical name.
    :param plan: sizes, image, VM size, network and standby state.
    :param rules: ``sync.security_rules``, identical on both sides.
    :param backend_pool_id: the front's backend pool the VMs join.
    :param os_profile: admin user and SSH key for generalized images; ``None`` for specialized.
    :param standby_principal_id: the Standby Pool resource provider's principal, granted the
        roles a standby pool needs (required when the plan keeps a standby pool).
    :param tags: tags for every child.
    :param opts: resource options.
    """

    def __init__(
        self,
        type_name: str,
        name: str,
        *,
        plan: GroupPlan,
        rules: Sequence[SecurityRule],
        backend_pool_id: pulumi.Input[str],
        os_profile: OsProfile | None,
        standby_principal_id: str | None,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("azure", type_name), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags)
        resource_group = plan.network.resource_group
        assert resource_group is not None and plan.network.subnet_id is not None, "validated"
        self.nsg = network.NetworkSecurityGroup(
            child_name(name, "nsg"),
            resource_group_name=resource_group,
            location=plan.region,
            security_rules=[
                network.SecurityRuleArgs(
                    name=rule.name,
                    priority=rule.priority,
                    direction="Inbound",
                    access="Allow",
                    protocol=rule.protocol,
                    source_address_prefixes=list(rule.source_address_prefixes),
                    source_port_range="*",
                    destination_address_prefix="*",
                    destination_port_range=rule.destination_port_range,
                    description=rule.description,
                )
                for rule in azure_nsg_rules(rules)
            ],
            tags=tags,
            opts=child,
        )
        # Azure's autoscaler sets sku.capacity between updates; mirrorcast raises the autoscale
        # profile's minimum instead of reverting capacity.
        ignore = ["sku.capacity"] if plan.autoscaled else []
        self.scale_set = compute.VirtualMachineScaleSet(
            child_name(name, "vmss"),
            resource_group_name=resource_group,
            location=plan.region,
            # Standby pools attach only to Flexible orchestration.
            orchestration_mode="Flexible",
            platform_fault_domain_count=1,
            single_placement_group=False,
            sku=compute.SkuArgs(name=plan.machine_type, tier="Standard", capacity=plan.desired),
            virtual_machine_profile=compute.VirtualMachineScaleSetVMProfileArgs(
                # A generalized image boots only with an OS profile; a specialized one keeps its
                # own users and must not get one.
                os_profile=(
                    compute.VirtualMachineScaleSetOSProfileArgs(
                        computer_name_prefix=computer_name_prefix(plan.pool, plan.role),
                        admin_username=os_profile.admin_username,
                        linux_configuration=compute.LinuxConfigurationArgs(
                            disable_password_authentication=True,
                            ssh=compute.SshConfigurationArgs(
                                public_keys=[
                                    compute.SshPublicKeyArgs(
                                        path=f"/home/{os_profile.admin_username}/.ssh/authorized_keys",
                                        key_data=os_profile.ssh_public_key,
                                    )
                                ]
                            ),
                        ),
                    )
                    if os_profile is not None
                    else None
                ),
                storage_profile=compute.VirtualMachineScaleSetStorageProfileArgs(
                    image_reference=_image_reference(plan.image)
                ),
                network_profile=compute.VirtualMachineScaleSetNetworkProfileArgs(
                    network_api_version="2020-11-01",
                    network_interface_configurations=[
                        compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                            name="nic",
                            primary=True,
                            network_security_group=compute.SubResourceArgs(id=self.nsg.id),
                            ip_configurations=[
                                compute.VirtualMachineScaleSetIPConfigurationArgs(
                                    name="ip",
                                    primary=True,
                                    subnet=compute.ApiEntityReferenceArgs(
                                        id=plan.network.subnet_id
                                    ),
                                    load_balancer_backend_address_pools=[
                                        compute.SubResourceArgs(id=backend_pool_id)
                                    ],
                                )
                            ],
                        )
                    ],
                ),
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
        )
        self.standby_pool: standbypool.StandbyVirtualMachinePool | None = None
        # A 0% mirror has nothing to keep warm (and a standby pool needs a capacity of 1+).
        if plan.keep_warm_pool and plan.warm_state is not None and plan.size > 0:
            assert standby_principal_id is not None, "checked before declaring (declarability)"
            subscription = authorization.get_client_config_output().subscription_id
            group_scope = pulumi.Output.concat(
                "/subscriptions/", subscription, f"/resourceGroups/{resource_group}"
            )
            grants = [
                authorization.RoleAssignment(
                    child_name(name, f"standby-{'-'.join(role.lower().split())}"),
                    scope=group_scope,
                    principal_id=standby_principal_id,
                    principal_type="ServicePrincipal",
                    role_definition_id=pulumi.Output.concat(
                        "/subscriptions/",
                        subscription,
                        f"/providers/Microsoft.Authorization/roleDefinitions/{definition}",
                    ),
                    opts=child,
                )
                for role, definition in STANDBY_POOL_ROLES.items()
            ]
            self.standby_pool = standbypool.StandbyVirtualMachinePool(
                child_name(name, "standby"),
                resource_group_name=resource_group,
                location=plan.region,
                attached_virtual_machine_scale_set_id=self.scale_set.id,
                virtual_machine_state=_STANDBY_STATE[plan.warm_state],
                elasticity_profile=standbypool.StandbyVirtualMachinePoolElasticityProfileArgs(
                    max_ready_capacity=plan.size, min_ready_capacity=plan.warm_size
                ),
                tags=tags,
                # The provider must hold its roles before it can create VMs for the pool.
                opts=pulumi.ResourceOptions(parent=self, depends_on=grants),
            )
        self.autoscale: monitor.AutoscaleSetting | None = None
        if plan.autoscaled:
            self.autoscale = monitor.AutoscaleSetting(
                child_name(name, "autoscale"),
                resource_group_name=resource_group,
                location=plan.region,
                enabled=True,
                target_resource_uri=self.scale_set.id,
                profiles=[
                    monitor.AutoscaleProfileArgs(
                        name="mirrorcast",
                        capacity=monitor.ScaleCapacityArgs(
                            minimum=str(plan.min_size),
                            maximum=str(plan.max_size),
                            default=str(plan.desired),
                        ),
                        rules=_target_rules(self.scale_set.id, plan.autoscaler_target),
                    )
                ],
                tags=tags,
                opts=child,
            )
        self.endpoint: pulumi.Output[str] = self.scale_set.name
        self.register_outputs({"scale_set": self.scale_set.name})


class PrimaryScaleSet(ScaleSet):
    """The primary's scale set (``mirrorcast:azure:PrimaryScaleSet``)."""

    def __init__(
        self,
        name: str,
        *,
        plan: GroupPlan,
        rules: Sequence[SecurityRule],
        backend_pool_id: pulumi.Input[str],
        os_profile: OsProfile | None,
        standby_principal_id: str | None,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            "PrimaryScaleSet",
            name,
            plan=plan,
            rules=rules,
            backend_pool_id=backend_pool_id,
            os_profile=os_profile,
            standby_principal_id=standby_principal_id,
            tags=tags,
            opts=opts,
        )


class MirrorScaleSet(ScaleSet):
    """The mirror's scale set (``mirrorcast:azure:MirrorScaleSet``)."""

    def __init__(
        self,
        name: str,
        *,
        plan: GroupPlan,
        rules: Sequence[SecurityRule],
        backend_pool_id: pulumi.Input[str],
        os_profile: OsProfile | None,
        standby_principal_id: str | None,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            "MirrorScaleSet",
            name,
            plan=plan,
            rules=rules,
            backend_pool_id=backend_pool_id,
            os_profile=os_profile,
            standby_principal_id=standby_principal_id,
            tags=tags,
            opts=opts,
        )


def front_door_origin_state(weight: ProductWeight) -> str:
    """Front Door origins take weight 1-1000; a 0 share is the lowest weight, ``Disabled``."""
    return "Enabled" if weight.enabled else "Disabled"


class FrontDoorBalancer(pulumi.ComponentResource):
    """Azure Front Door (Standard): one origin group with a weighted origin per side.

    :param name: the component's logical name.
    :param resource_group: the resource group holding the profile.
    :param fronts: each side's load-balancer front (its DNS name is the origin host).
    :param weights: each side's Front Door weight and enabled flag.
    :param port: the origin port.
    :param health_check_path: the path Front Door probes.
    :param tags: tags for the profile and endpoint.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        resource_group: str,
        fronts: Mapping[Role, LoadBalancerFront],
        weights: Mapping[Role, ProductWeight],
        port: int,
        health_check_path: str,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("azure", "FrontDoorBalancer"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags)
        https = port == 443
        self.profile = cdn.Profile(
            child_name(name, "profile"),
            resource_group_name=resource_group,
            location="global",
            sku=cdn.SkuArgs(name="Standard_AzureFrontDoor"),
            tags=tags,
            opts=child,
        )
        endpoint_name = child_name(name, "endpoint")
        self.afd_endpoint = cdn.AFDEndpoint(
            endpoint_name,
            # Front Door endpoint names hold 46 characters (a long pool name would not fit).
            endpoint_name=physical_name(endpoint_name, AZURE_AFD_ENDPOINT, scope=_scope()),
            resource_group_name=resource_group,
            profile_name=self.profile.name,
            location="global",
            enabled_state="Enabled",
            tags=tags,
            opts=child,
        )
        self.origin_group = cdn.AFDOriginGroup(
            child_name(name, "origins"),
            resource_group_name=resource_group,
            profile_name=self.profile.name,
            health_probe_settings=cdn.HealthProbeParametersArgs(
                probe_path=health_check_path,
                probe_protocol=cdn.ProbeProtocol.HTTPS if https else cdn.ProbeProtocol.HTTP,
                probe_request_type=cdn.HealthProbeRequestType.GET,
                probe_interval_in_seconds=30,
            ),
            load_balancing_settings=cdn.LoadBalancingSettingsParametersArgs(
                sample_size=4, successful_samples_required=3, additional_latency_in_milliseconds=50
            ),
            opts=child,
        )
        self.origins: dict[Role, cdn.AFDOrigin] = {}
        for role, front in fronts.items():
            weight = weights[role]
            self.origins[role] = cdn.AFDOrigin(
                child_name(name, role),
                resource_group_name=resource_group,
                profile_name=self.profile.name,
                origin_group_name=self.origin_group.name,
                host_name=front.fqdn,
                origin_host_header=front.fqdn,
                http_port=80 if https else port,
                https_port=443,
                priority=1,
                weight=weight.weight,
                enabled_state=front_door_origin_state(weight),
                opts=child,
            )
        cdn.Route(
            child_name(name, "route"),
            resource_group_name=resource_group,
            profile_name=self.profile.name,
            endpoint_name=self.afd_endpoint.name,
            origin_group=cdn.ResourceReferenceArgs(id=self.origin_group.id),
            supported_protocols=["Http", "Https"],
            patterns_to_match=["/*"],
            forwarding_protocol="HttpsOnly" if https else "HttpOnly",
            link_to_default_domain="Enabled",
            https_redirect="Disabled",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.origins.values())),
        )
        self.endpoint: pulumi.Output[str] = self.afd_endpoint.host_name
        self.register_outputs({"endpoint": self.endpoint})


class SqlGeoReplica(pulumi.ComponentResource):
    """An Azure SQL server per side, the primary database, and a geo-secondary by the mirror.

    :param name: the component's logical name.
    :param spec: version, SKU (``instance_class``) and whether to replicate.
    :param primary: the primary's resource group and location.
    :param mirror: the mirror's resource group and location.
    :param password: the SQL administrator password (a Pulumi secret).
    :param tags: tags for every child.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        spec: DatabaseSpec,
        primary: tuple[str, str],
        mirror: tuple[str, str],
        password: pulumi.Input[str],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("azure", "SqlGeoReplica"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags)
        servers: dict[Role, sql.Server] = {}
        sides: dict[Role, tuple[str, str]] = {"primary": primary}
        if spec.replica:
            sides["mirror"] = mirror
        for role, (resource_group, location) in sides.items():
            server_logical = child_name(name, f"{role}-server")
            servers[role] = sql.Server(
                server_logical,
                # SQL server names are lowercase only; an uppercase pool name needs one made.
                server_name=physical_name(server_logical, AZURE_SQL_SERVER, scope=_scope()),
                resource_group_name=resource_group,
                location=location,
                # Azure SQL logical servers have one version; engine_version does not apply.
                version="12.0",
                administrator_login="mirrorcast",
                administrator_login_password=password,
                minimal_tls_version="1.2",
                tags=tags,
                opts=child,
            )
        self.primary_database = sql.Database(
            child_name(name, "primary-db"),
            resource_group_name=primary[0],
            location=primary[1],
            server_name=servers["primary"].name,
            sku=sql.SkuArgs(name=spec.instance_class),
            tags=tags,
            opts=child,
        )
        self.secondary_database: sql.Database | None = None
        if spec.replica:
            self.secondary_database = sql.Database(
                child_name(name, "mirror-db"),
                resource_group_name=mirror[0],
                location=mirror[1],
                server_name=servers["mirror"].name,
                create_mode="Secondary",
                secondary_type="Geo",
                source_database_id=self.primary_database.id,
                sku=sql.SkuArgs(name=spec.instance_class),
                tags=tags,
                opts=child,
            )
        self.register_outputs({"primary_database": self.primary_database.name})


def _target_rules(scale_set_id: pulumi.Input[str], target: float) -> list[monitor.ScaleRuleArgs]:
    """Azure autoscale has no target tracking: hold CPU near ``target`` with a rule pair.

    Scale out by one instance when the 5-minute average CPU is above the target; scale in by
    one when it is well below it (70% of the target), so the pair does not oscillate around
    the target the way equal thresholds would.
    """

    def rule(
        direction: monitor.ScaleDirection,
        operator: monitor.ComparisonOperationType,
        threshold: float,
        cooldown: str,
    ) -> monitor.ScaleRuleArgs:
        return monitor.ScaleRuleArgs(
            metric_trigger=monitor.MetricTriggerArgs(
                metric_name="Percentage CPU",
                metric_resource_uri=scale_set_id,
                operator=operator,
                statistic=monitor.MetricStatisticType.AVERAGE,
                threshold=threshold,
                time_aggregation=monitor.TimeAggregationType.AVERAGE,
                time_grain="PT1M",
                time_window="PT5M",
            ),
            scale_action=monitor.ScaleActionArgs(
                cooldown=cooldown,
                direction=direction,
                type=monitor.ScaleType.CHANGE_COUNT,
                value="1",
            ),
        )

    return [
        rule(
            monitor.ScaleDirection.INCREASE,
            monitor.ComparisonOperationType.GREATER_THAN,
            target,
            "PT5M",
        ),
        rule(
            monitor.ScaleDirection.DECREASE,
            monitor.ComparisonOperationType.LESS_THAN,
            round(target * 0.7, 1),
            "PT15M",
        ),
    ]


# --------------------------------------------------------------------------- backend


class AzureBackend:
    """Declares one pool's Azure pieces (``infra.clouds.CloudBackend``).

    Every Azure side stands behind its own load balancer front: Front Door takes it as an
    origin and Traffic Manager as an endpoint.
    """

    balancer_kinds = frozenset({BalancerKind.azure_front_door, BalancerKind.azure_traffic_manager})
    # The load balancer front has a static public IP (LoadBalancerFront.dns_endpoint).
    dns_front: ClassVar[Literal["ip", "hostname"]] = "ip"

    @classmethod
    def problems(
        cls, *, name: str, pool: PoolSpec, config: MirrorcastConfig, secrets: StackSecrets
    ) -> list[str]:
        problems: list[str] = []
        sides = [
            (role, cloud, region)
            for role, cloud, region in (
                ("primary", pool.primary.cloud, pool.primary.region),
                ("mirror", pool.mirror_cloud, pool.mirror_region),
            )
            if cloud is Cloud.azure
        ]
        for role, cloud, region in sides:
            image = pool.primary.app.image_for(cloud, region) or ""
            if not image.startswith("/subscriptions/"):
                problems.append(
                    f"pools.{name}.primary.app.images: the {role} side runs on Azure, which "
                    "takes a gallery image version resource id (/subscriptions/...), got "
                    f"{image!r}"
                )
        balancer = pool.balancer
        if balancer.kind is BalancerKind.azure_traffic_manager:
            at = f"pools.{name}.balancer"
            assert balancer.dns is not None, "validated by the model"
            if not sides:
                problems.append(
                    f"{at}.kind: a Traffic Manager profile lives in an Azure resource group, "
                    "but neither side of this pool runs on Azure; use route53 or gcp_cloud_dns"
                )
            if not balancer.dns.name.endswith(".trafficmanager.net"):
                problems.append(
                    f"{at}.dns.name: Traffic Manager serves <profile>.trafficmanager.net; set "
                    f"the name to such a host (got {balancer.dns.name!r}) and CNAME your own "
                    "domain to it"
                )
        if (
            pool.sync.database is not None
            and pool.primary.cloud is Cloud.azure
            and not secrets.database_password
        ):
            problems.extend(
                password_problem(
                    name,
                    cloud=Cloud.azure,
                    secret=f"{SECRETS_NAMESPACE}:{DATABASE_PASSWORD_KEY}",
                )
            )
        if not sides:
            return problems
        if config.azure.image_kind == "generalized" and not secrets.ssh_public_key:
            problems.append(
                f"pools.{name}: the Azure scale sets boot a generalized image, which needs an "
                "admin SSH key: set it with `pulumi config set --secret "
                f'{SECRETS_NAMESPACE}:{SSH_PUBLIC_KEY_KEY} "$(cat ~/.ssh/id_ed25519.pub)"` '
                "(or set azure.image_kind: specialized)"
            )
        warm = pool.mirror.paused.strategy == "warm_pool" and pool.mirror_size > 0
        if pool.mirror_cloud is Cloud.azure and warm and not config.azure.standby_pool_principal_id:
            problems.append(
                f"pools.{name}.mirror.paused: an Azure standby pool needs the Standby Pool "
                "resource provider to hold roles on the resource group; set "
                "azure.standby_pool_principal_id to its object id (az ad sp list --display-name "
                "'Standby Pool Resource Provider' --query [0].id -o tsv) and register the "
                "provider once (az provider register --namespace Microsoft.StandbyPool)"
            )
        return problems

    def __init__(self, *, pool: PoolContext) -> None:
        self._pool = pool

    def _os_profile(self) -> OsProfile | None:
        settings = self._pool.azure
        if settings.image_kind == "specialized":
            return None
        assert self._pool.ssh_public_key is not None, "checked before declaring (declarability)"
        return OsProfile(
            admin_username=settings.admin_username, ssh_public_key=self._pool.ssh_public_key
        )

    def side(self, *, plan: GroupPlan) -> Side:
        pool = self._pool
        side_name = child_name(pool.name, plan.role)
        assert plan.network.resource_group is not None, "validated by the model"
        tags = resource_tags(pool.tags, pool=pool.name, role=plan.role)
        opts = pulumi.ResourceOptions(parent=pool.parent)
        front = LoadBalancerFront(
            child_name(side_name, "front"),
            resource_group=plan.network.resource_group,
            location=plan.region,
            port=pool.spec.balancer.port,
            tags=tags,
            opts=opts,
        )
        scale_set_type = PrimaryScaleSet if plan.role == "primary" else MirrorScaleSet
        scale_set = scale_set_type(
            side_name,
            plan=plan,
            rules=pool.spec.sync.security_rules,
            backend_pool_id=front.backend_pool_id,
            os_profile=self._os_profile(),
            standby_principal_id=pool.azure.standby_pool_principal_id,
            tags=tags,
            opts=opts,
        )
        return Side(
            plan.role,
            plan.cloud,
            scale_set,
            front.fqdn,
            front.dns_endpoint,
            front=front,
            # Azure Monitor reads a scale set's metrics by its resource id, auto-named.
            ids={"scale_set": scale_set.scale_set.id},
        )

    def shared(self, *, sides: Sequence[Side]) -> None:
        """Azure sides share nothing: each scale set has its own network security group."""

    def balancer(self, *, kind: BalancerKind, sides: Mapping[Role, Side]) -> pulumi.Output[str]:
        pool = self._pool
        spec = pool.spec
        name = child_name(pool.name, "balancer")
        opts = pulumi.ResourceOptions(parent=pool.parent)
        tags = resource_tags(pool.tags, pool=pool.name, role="balancer")
        if kind is BalancerKind.azure_front_door:
            primary, mirror = sides["primary"].front, sides["mirror"].front
            assert isinstance(primary, LoadBalancerFront) and isinstance(mirror, LoadBalancerFront)
            resource_group = spec.primary.network.resource_group
            assert resource_group is not None, "validated by the model"
            return FrontDoorBalancer(
                name,
                resource_group=resource_group,
                fronts={"primary": primary, "mirror": mirror},
                weights=pool_weights(spec),
                port=spec.balancer.port,
                health_check_path=spec.balancer.health_check_path,
                tags=tags,
                opts=opts,
            ).endpoint
        assert kind is BalancerKind.azure_traffic_manager, f"{kind} is not an Azure balancer"
        # The profile lives in the first Azure side's resource group (a cross-cloud side has none).
        resource_group = next(
            (
                network.resource_group
                for network in (spec.primary.network, spec.mirror_network)
                if network.resource_group
            ),
            None,
        )
        assert resource_group is not None, "checked before declaring (declarability)"
        return TrafficManagerWeighted(
            name,
            dns=dns_section(spec),
            resource_group=resource_group,
            endpoints=dns_endpoints(sides),
            weights=pool_weights(spec),
            port=spec.balancer.port,
            tags=tags,
            opts=opts,
        ).endpoint

    def database(self, *, sides: Mapping[Role, Side]) -> None:
        pool = self._pool
        spec = pool.spec
        assert spec.sync.database is not None
        assert pool.database_password is not None, "checked before declaring"
        primary_rg = spec.primary.network.resource_group
        # A cross-cloud mirror has no resource group; only a replica needs the mirror's.
        mirror_rg = spec.mirror_network.resource_group or primary_rg
        assert primary_rg is not None and mirror_rg is not None, "validated by the model"
        SqlGeoReplica(
            child_name(pool.name, "db"),
            spec=spec.sync.database,
            primary=(primary_rg, spec.primary.region),
            mirror=(mirror_rg, spec.mirror_region),
            password=pool.database_password,
            tags=resource_tags(pool.tags, pool=pool.name, role="database"),
            opts=pulumi.ResourceOptions(parent=pool.parent),
        )


CLOUDS.register(Cloud.azure, AzureBackend)
