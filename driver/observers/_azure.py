"""Azure through the management SDKs: scale sets, their instance view, standby pools, Traffic Manager.

A pool side is the Virtual Machine Scale Set in the side's ``network.resource_group`` tagged
``mirrorcast-pool``/``mirrorcast-role`` (infra/azure.py). From it:

- desired size and instance type (``sku``), image (``storage_profile.image_reference``), app
  version (tag);
- each instance's power state and health from the instance view
  (``virtual_machine_scale_set_vms.list(expand="instanceView")``: ``PowerState/running``,
  ``HealthState/healthy`` from the load balancer probe or the application health extension);
- the standby pool attached to the scale set and its runtime view
  (``standby_virtual_machine_pool_runtime_views.get(..., "latest")``: instances by state).

For an ``azure_traffic_manager`` balancer the profile's endpoints give each side's weight and
``endpoint_monitor_status``. For ``azure_front_door`` the profile infra tags
``mirrorcast-pool``/``mirrorcast-role=balancer`` in the primary's resource group (azure-mgmt-cdn)
gives each side's origin weight (``Disabled`` is weight 0), and Front Door's health, which it
reports only as an Azure Monitor metric, comes from ``OriginHealthPercentage`` per ``Origin``
(azure-monitor-query ``MetricsQueryClient``, last 15 minutes at 5-minute grain): a side is healthy
when its latest average is above 50% (most probes succeed), unknown when the metric has no point.

Inbound security rules come from the network security group on the scale set's network
interface configuration (``network_security_groups.get``; infra/azure.py puts one there): each
Inbound rule as ``protocol from-to source`` in the words :func:`driver.observers._base.rule_texts`
uses (a Deny rule is prefixed ``deny``, so it shows as drift too). A scale set with no NSG on its
interfaces reports ``None`` (not compared) rather than a guess.

Credentials come from ``azure-identity``'s ``DefaultAzureCredential`` (environment, workload or
managed identity, Azure CLI); the subscription from ``AZURE_SUBSCRIPTION_ID``.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from datetime import timedelta
from typing import Any

from driver.observers._base import (
    APP_VERSION_TAG,
    POOL_TAG,
    ROLE_TAG,
    BalancerObservation,
    ObserveError,
    ObserveUnavailable,
    Role,
    SideObservation,
    TranslatedErrors,
    only_one,
)
from infra.config import BalancerKind, PoolSpec

__all__ = ["AzureObserver"]

logger = logging.getLogger(__name__)

# Traffic Manager's endpointMonitorStatus values (azure-mgmt-trafficmanager EndpointMonitorStatus).
_TM_HEALTHY = frozenset({"Online"})
_TM_UNKNOWN = frozenset({"CheckingEndpoint", "Inactive", "Disabled", "Stopped", "Unmonitored"})


class AzureObserver:
    """Reads pool sides on Azure.

    :param timeout: per-request timeout.
    :param compute: a ``ComputeManagementClient``; default built from the standard chain.
    :param standby: a ``StandbyPoolMgmtClient``; default built likewise.
    :param traffic: a ``TrafficManagerManagementClient``; default built likewise.
    :param network: a ``NetworkManagementClient`` (NSG rules); default built likewise.
    :param cdn: a ``CdnManagementClient`` (Front Door profile and origins); default built likewise.
    :param metrics: an azure-monitor-query ``MetricsQueryClient``; default built likewise.
    """

    name = "azure"

    def __init__(
        self,
        *,
        timeout: timedelta = timedelta(seconds=10),
        compute: Any | None = None,
        standby: Any | None = None,
        traffic: Any | None = None,
        network: Any | None = None,
        cdn: Any | None = None,
        metrics: Any | None = None,
    ) -> None:
        self.timeout = timeout.total_seconds()
        self._compute = compute
        self._standby = standby
        self._traffic = traffic
        self._network = network
        self._cdn = cdn
        self._metrics = metrics

    def _clients(self, where: str) -> tuple[Any, Any]:
        if self._compute is None or self._standby is None:
            credential, subscription = _credential(where)
            from azure.mgmt.compute import ComputeManagementClient
            from azure.mgmt.standbypool import StandbyPoolMgmtClient

            # azure-core's transport takes the timeouts as per-client keyword settings.
            self._compute = self._compute or ComputeManagementClient(
                credential,
                subscription,
                connection_timeout=self.timeout,
                read_timeout=self.timeout,
            )
            self._standby = self._standby or StandbyPoolMgmtClient(
                credential,
                subscription,
                connection_timeout=self.timeout,
                read_timeout=self.timeout,
            )
        return self._compute, self._standby

    def observe_side(self, *, pool: str, spec: PoolSpec, role: Role) -> SideObservation:
        region = spec.primary.region if role == "primary" else spec.mirror_region
        network = spec.primary.network if role == "primary" else spec.mirror_network
        group = network.resource_group
        where = f"azure:{region} {pool}/{role}"
        if not group:
            raise ObserveError("the side's network has no resource_group", where=where)
        with _translated(where):
            compute, standby = self._clients(where)
            sets = [
                s
                for s in compute.virtual_machine_scale_sets.list(group)
                if (s.tags or {}).get(POOL_TAG) == pool and (s.tags or {}).get(ROLE_TAG) == role
            ]
            vmss = only_one(
                sets,
                what=f"scale set tagged {POOL_TAG}={pool}, {ROLE_TAG}={role} in {group}",
                where=where,
            )
            states: Counter[str] = Counter()
            serving = starting = healthy = probed = 0
            for vm in compute.virtual_machine_scale_set_vms.list(
                group, vmss.name, expand="instanceView"
            ):
                view = vm.instance_view
                codes = [s.code or "" for s in (view.statuses if view else None) or []]
                power = next(
                    (c for c in codes if c.startswith("PowerState/")), "PowerState/unknown"
                )
                states[power] += 1
                if power == "PowerState/running":
                    serving += 1
                elif power == "PowerState/starting":
                    starting += 1
                health = view.vm_health if view is not None else None
                if health is not None and health.status is not None:
                    probed += 1
                    healthy += int(health.status.code == "HealthState/healthy")
            warm = 0
            for standby_pool in standby.standby_virtual_machine_pools.list_by_resource_group(group):
                attached = (
                    (standby_pool.properties.attached_virtual_machine_scale_set_id or "")
                    if (standby_pool.properties)
                    else ""
                )
                if attached.lower() != (vmss.id or "").lower():
                    continue
                view = standby.standby_virtual_machine_pool_runtime_views.get(
                    group, standby_pool.name, "latest"
                )
                for summary in (
                    view.properties.instance_count_summary if view.properties else []
                ) or []:
                    for entry in summary.instance_counts_by_state or []:
                        name = _text(entry.state)
                        states[f"Standby:{name}"] += int(entry.count)
                        if name in ("Deallocated", "Hibernated"):
                            warm += int(entry.count)
        profile = vmss.virtual_machine_profile
        reference = (
            profile.storage_profile.image_reference if profile and profile.storage_profile else None
        )
        image = None
        if reference is not None:
            image = (
                reference.id
                or ":".join(
                    str(p)
                    for p in (
                        reference.publisher,
                        reference.offer,
                        reference.sku,
                        reference.version,
                    )
                    if p
                )
                or None
            )
        with _translated(where):
            rules = self._rules(profile, where)
        return SideObservation(
            role=role,
            cloud="azure",
            region=region,
            group=vmss.name,
            desired=int(vmss.sku.capacity) if vmss.sku and vmss.sku.capacity is not None else None,
            states=dict(sorted(states.items())),
            serving=serving,
            starting=starting,
            warm=warm,
            targets={"healthy": healthy, "unhealthy": probed - healthy} if probed else None,
            healthy_targets=healthy if probed else None,
            image=image,
            machine_type=vmss.sku.name if vmss.sku else None,
            app_version=(vmss.tags or {}).get(APP_VERSION_TAG),
            security_rules=rules,
        )

    def _rules(self, profile: Any, where: str) -> tuple[str, ...] | None:
        """Inbound rules of the NSGs on the scale set's interfaces, or ``None`` when it has none."""
        configs = (
            profile.network_profile.network_interface_configurations
            if profile is not None and profile.network_profile is not None
            else None
        ) or []
        ids = sorted(
            {c.network_security_group.id for c in configs if c.network_security_group is not None}
            - {None}
        )
        if not ids:
            return None
        if self._network is None:
            credential, subscription = _credential(where)
            from azure.mgmt.network import NetworkManagementClient

            self._network = NetworkManagementClient(
                credential,
                subscription,
                connection_timeout=self.timeout,
                read_timeout=self.timeout,
            )
        texts: set[str] = set()
        for nsg_id in ids:
            match = _NSG_ID.search(nsg_id)
            if match is None:
                raise ObserveError(f"cannot read the NSG id {nsg_id}", where=where)
            nsg = self._network.network_security_groups.get(match["group"], match["name"])
            for rule in nsg.security_rules or []:
                if _text(rule.direction) != "Inbound":
                    continue
                protocol = _text(rule.protocol).lower()
                protocol = "-1" if protocol in ("*", "") else protocol
                prefix = "" if _text(rule.access) == "Allow" else "deny "
                ports = list(rule.destination_port_ranges or []) or [
                    rule.destination_port_range or "*"
                ]
                sources = list(rule.source_address_prefixes or []) or [
                    rule.source_address_prefix or "*"
                ]
                for port in ports:
                    low, high = _port_range(str(port), protocol)
                    for source in sources:
                        texts.add(f"{prefix}{protocol} {low}-{high} {source}")
        return tuple(sorted(texts))

    def observe_balancer(self, *, pool: str, spec: PoolSpec) -> BalancerObservation | None:
        if spec.balancer.kind is BalancerKind.azure_front_door:
            return self._front_door(pool, spec)
        if (
            spec.balancer.kind is not BalancerKind.azure_traffic_manager
            or spec.balancer.dns is None
        ):
            return None
        where = f"azure:trafficmanager {pool}/balancer"
        group = spec.primary.network.resource_group or spec.mirror_network.resource_group
        if not group:
            raise ObserveError("no resource_group holds the Traffic Manager profile", where=where)
        with _translated(where):
            if self._traffic is None:
                credential, subscription = _credential(where)
                from azure.mgmt.trafficmanager import TrafficManagerManagementClient

                self._traffic = TrafficManagerManagementClient(credential, subscription)
            profile = self._traffic.profiles.get(group, spec.balancer.dns.zone)
        weights: dict[str, int] = {}
        healthy: dict[str, bool | None] = {}
        for endpoint in profile.endpoints or []:
            if endpoint.name not in ("primary", "mirror"):
                continue
            weights[endpoint.name] = int(endpoint.weight or 0)
            status = _text(endpoint.endpoint_monitor_status)
            healthy[endpoint.name] = (
                None if status in _TM_UNKNOWN or not status else status in _TM_HEALTHY
            )
        return BalancerObservation(weights=weights, healthy=healthy)

    def _front_door(self, pool: str, spec: PoolSpec) -> BalancerObservation:
        where = f"azure:frontdoor {pool}/balancer"
        group = spec.primary.network.resource_group
        if not group:
            raise ObserveError("no resource_group holds the Front Door profile", where=where)
        with _translated(where):
            if self._cdn is None or self._metrics is None:
                credential, subscription = _credential(where)
                from azure.mgmt.cdn import CdnManagementClient
                from azure.monitor.query import MetricsQueryClient

                self._cdn = self._cdn or CdnManagementClient(
                    credential,
                    subscription,
                    connection_timeout=self.timeout,
                    read_timeout=self.timeout,
                )
                self._metrics = self._metrics or MetricsQueryClient(
                    credential, connection_timeout=self.timeout, read_timeout=self.timeout
                )
            # Typed as Any: the SDK models' optional fields are filled in by the service.
            cdn: Any = self._cdn
            monitor: Any = self._metrics
            profile = only_one(
                [
                    p
                    for p in cdn.profiles.list_by_resource_group(group)
                    if (p.tags or {}).get(POOL_TAG) == pool
                    and (p.tags or {}).get(ROLE_TAG) == "balancer"
                ],
                what=f"Front Door profile tagged {POOL_TAG}={pool}, {ROLE_TAG}=balancer in {group}",
                where=where,
            )
            # infra/azure.py FrontDoorBalancer names each origin `<pool>-balancer-<role>` (plus
            # Pulumi's random suffix).
            side = re.compile(rf"{re.escape(pool)}-balancer-(primary|mirror)-?[0-9a-z]{{0,8}}")
            hosts: dict[str, str] = {}
            weights: dict[str, int] = {}
            for origin_group in cdn.afd_origin_groups.list_by_profile(group, profile.name):
                for origin in cdn.afd_origins.list_by_origin_group(
                    group, profile.name, origin_group.name
                ):
                    match = side.fullmatch(origin.name or "")
                    if match is None:
                        continue
                    role = match.group(1)
                    enabled = _text(origin.enabled_state) != "Disabled"
                    weights[role] = int(origin.weight or 0) if enabled else 0
                    hosts[role] = (origin.host_name or "").lower()
            if not weights:
                raise ObserveError(
                    f"Front Door profile {profile.name} has no origins {pool}-balancer-primary/mirror",
                    where=where,
                )
            answer = monitor.query_resource(
                profile.id,
                metric_names=["OriginHealthPercentage"],
                timespan=timedelta(minutes=15),
                granularity=timedelta(minutes=5),
                aggregations=["Average"],
                filter="Origin eq '*'",
            )
        latest: dict[str, float] = {}
        for metric in answer.metrics or []:
            for series in metric.timeseries or []:
                dims = {
                    k.lower(): str(v).lower() for k, v in (series.metadata_values or {}).items()
                }
                points = [v.average for v in series.data or [] if v.average is not None]
                if points:
                    latest[dims.get("origin", "")] = float(points[-1])
        healthy: dict[str, bool | None] = {}
        for role, host in hosts.items():
            value = latest.get(host)
            healthy[role] = None if value is None else value > 50.0
        return BalancerObservation(weights=weights, healthy=healthy)


_NSG_ID = re.compile(
    r"/resourceGroups/(?P<group>[^/]+)/providers/Microsoft\.Network/networkSecurityGroups/(?P<name>[^/]+)",
    re.IGNORECASE,
)


def _port_range(port: str, protocol: str) -> tuple[int, int]:
    """An NSG port (``443``, ``8000-8100``, ``*``) as the ``from-to`` pair the config texts use.

    ICMP and all-protocol rules carry no ports (``-1``, as AWS and :func:`rule_texts` say); ``*``
    on TCP or UDP is every port.
    """
    if protocol in ("icmp", "-1") and port == "*":
        return -1, -1
    if port == "*":
        return 0, 65535
    low, _, high = port.partition("-")
    return int(low), int(high or low)


def _text(value: Any) -> str:
    """An SDK enum member or string as its API value (``Online``, not ``EndpointMonitorStatus.ONLINE``)."""
    return str(getattr(value, "value", value) or "")


def _credential(where: str) -> tuple[Any, str]:
    subscription = os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        raise ObserveError(
            "AZURE_SUBSCRIPTION_ID is not set (the subscription to read)",
            where=where,
            cloud_wide=True,
        )
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(), subscription


class _translated(TranslatedErrors):
    """azure-core's exceptions as :class:`ObserveError` / :class:`ObserveUnavailable`."""

    def translate(self, exc: BaseException, *, where: str) -> None:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            raise ObserveUnavailable(f"cannot reach Azure ({exc})", where=where) from exc
        if isinstance(exc, ClientAuthenticationError):
            raise ObserveError(
                f"Azure credentials were refused or not found ({exc.message})",
                where=where,
                cloud_wide=True,
            ) from exc
        if isinstance(exc, HttpResponseError):
            code = exc.status_code or 0
            if code == 429 or code >= 500:
                raise ObserveUnavailable(
                    f"Azure answered {code}: {exc.message}", where=where, cloud_wide=False
                ) from exc
            raise ObserveError(f"Azure answered {code}: {exc.message}", where=where) from exc
        return None
