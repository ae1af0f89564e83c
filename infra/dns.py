"""DNS-level weighting across regions and clouds: Route 53, Traffic Manager and Cloud DNS.

Each side of a pool is reached through a layer-4 front (an AWS NLB, an Azure Standard load
balancer or a GCP passthrough network load balancer), described by a :class:`DnsEndpoint`. The
components here point one weighted DNS answer at each front. TLS terminates on the instances, so
DNS weighting needs no certificate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
from pulumi_azure_native import trafficmanager

from infra._common import Role, child_name, type_token
from infra.config import Cloud, DnsSpec, ProductWeight

__all__ = [
    "CloudDnsWeighted",
    "DnsEndpoint",
    "Route53Weighted",
    "TrafficManagerWeighted",
    "traffic_manager_relative_name",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DnsEndpoint:
    """How DNS reaches one side of a pool.

    :param cloud: the cloud the side runs in.
    :param kind: ``hostname`` (an AWS load balancer name, aliased in Route 53) or ``ip``.
    :param address: the hostname or IPv4 address.
    :param alias_zone_id: the load balancer's canonical hosted zone, for Route 53 alias records.
    :param azure_resource_id: the Azure public IP's resource id, for Traffic Manager Azure endpoints.
    """

    cloud: Cloud
    kind: Literal["hostname", "ip"]
    address: pulumi.Output[str]
    alias_zone_id: pulumi.Output[str] | None = None
    azure_resource_id: pulumi.Output[str] | None = None


class Route53Weighted(pulumi.ComponentResource):
    """Two weighted Route 53 ``A`` records (``set_identifier`` primary / mirror) on one name.

    Route 53 needs every weighted record of a name to share a type, so AWS fronts are alias
    ``A`` records and Azure or GCP fronts plain ``A`` records on their static IPs. Weight 0 is
    valid in Route 53 (range 0-255) and takes a side out of rotation.

    :param name: the component's logical name.
    :param dns: hosted zone id, record name and TTL.
    :param endpoints: each side's front.
    :param weights: each side's Route 53 weight.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        dns: DnsSpec,
        endpoints: Mapping[Role, DnsEndpoint],
        weights: Mapping[Role, ProductWeight],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("dns", "Route53Weighted"), name, None, opts)
        self.records: dict[Role, aws.route53.Record] = {}
        ttl = int(dns.ttl.total_seconds())
        for role, endpoint in endpoints.items():
            policy = [aws.route53.RecordWeightedRoutingPolicyArgs(weight=weights[role].weight)]
            child = pulumi.ResourceOptions(parent=self)
            if endpoint.kind == "hostname":
                assert endpoint.alias_zone_id is not None, "AWS fronts carry their zone"
                record = aws.route53.Record(
                    child_name(name, role),
                    zone_id=dns.zone,
                    name=dns.name,
                    type="A",
                    set_identifier=role,
                    weighted_routing_policies=policy,
                    aliases=[
                        aws.route53.RecordAliasArgs(
                            name=endpoint.address,
                            zone_id=endpoint.alias_zone_id,
                            evaluate_target_health=True,
                        )
                    ],
                    opts=child,
                )
            else:
                record = aws.route53.Record(
                    child_name(name, role),
                    zone_id=dns.zone,
                    name=dns.name,
                    type="A",
                    ttl=ttl,
                    set_identifier=role,
                    weighted_routing_policies=policy,
                    records=[endpoint.address],
                    opts=child,
                )
            self.records[role] = record
        self.endpoint: pulumi.Output[str] = pulumi.Output.from_input(dns.name)
        self.register_outputs({"endpoint": self.endpoint})


def traffic_manager_relative_name(dns: DnsSpec) -> str:
    """The profile's relative DNS name: ``api-acme`` for ``api-acme.trafficmanager.net``."""
    return dns.name.removesuffix(".").removesuffix(".trafficmanager.net")


_TM_AZURE = "Microsoft.Network/trafficManagerProfiles/azureEndpoints"
_TM_EXTERNAL = "Microsoft.Network/trafficManagerProfiles/externalEndpoints"


class TrafficManagerWeighted(pulumi.ComponentResource):
    """A Traffic Manager profile with Weighted routing and one endpoint per side.

    Traffic Manager weights run 1-1000 and cannot be 0, so a side with a 0 share keeps weight 1
    and is ``Disabled``. Azure fronts are Azure endpoints (their public IP); other clouds'
    fronts are external endpoints. Health is probed over TCP on the balancer port.

    :param name: the component's logical name.
    :param dns: ``zone`` is the profile name, ``name`` the ``<relative>.trafficmanager.net`` host.
    :param resource_group: the Azure resource group holding the profile.
    :param endpoints: each side's front.
    :param weights: each side's Traffic Manager weight and enabled flag.
    :param port: the port probed.
    :param tags: tags for the profile.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        dns: DnsSpec,
        resource_group: str,
        endpoints: Mapping[Role, DnsEndpoint],
        weights: Mapping[Role, ProductWeight],
        port: int,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("dns", "TrafficManagerWeighted"), name, None, opts)
        tm_endpoints = []
        for role, endpoint in endpoints.items():
            weight = weights[role]
            status = "Enabled" if weight.enabled else "Disabled"
            if endpoint.cloud is Cloud.azure and endpoint.azure_resource_id is not None:
                tm_endpoints.append(
                    trafficmanager.EndpointArgs(
                        name=role,
                        type=_TM_AZURE,
                        target_resource_id=endpoint.azure_resource_id,
                        weight=weight.weight,
                        endpoint_status=status,
                    )
                )
            else:
                tm_endpoints.append(
                    trafficmanager.EndpointArgs(
                        name=role,
                        type=_TM_EXTERNAL,
                        target=endpoint.address,
                        weight=weight.weight,
                        endpoint_status=status,
                    )
                )
        self.profile = trafficmanager.Profile(
            child_name(name, "profile"),
            profile_name=dns.zone,
            resource_group_name=resource_group,
            location="global",
            profile_status="Enabled",
            traffic_routing_method="Weighted",
            dns_config=trafficmanager.DnsConfigArgs(
                relative_name=traffic_manager_relative_name(dns),
                ttl=int(dns.ttl.total_seconds()),
            ),
            monitor_config=trafficmanager.MonitorConfigArgs(protocol="TCP", port=port),
            endpoints=tm_endpoints,
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.endpoint: pulumi.Output[str] = pulumi.Output.from_input(dns.name)
        self.register_outputs({"endpoint": self.endpoint})


class CloudDnsWeighted(pulumi.ComponentResource):
    """A Cloud DNS ``A`` record set with a weighted-round-robin routing policy.

    Cloud DNS weights run 0-1000; a 0 weight stops answers pointing at that side. Every answer
    must be an IP, so each side needs a front with a static address.

    :param name: the component's logical name.
    :param dns: managed zone name, record name and TTL.
    :param endpoints: each side's front (``ip`` kind).
    :param weights: each side's WRR weight.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        dns: DnsSpec,
        endpoints: Mapping[Role, DnsEndpoint],
        weights: Mapping[Role, ProductWeight],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("dns", "CloudDnsWeighted"), name, None, opts)
        for role, endpoint in endpoints.items():
            if endpoint.kind != "ip":
                raise ValueError(
                    f"Cloud DNS weighting needs an IP for the {role} side, which has a hostname"
                )
        record_name = dns.name if dns.name.endswith(".") else f"{dns.name}."
        self.record_set = gcp.dns.RecordSet(
            child_name(name, "records"),
            managed_zone=dns.zone,
            name=record_name,
            type="A",
            ttl=int(dns.ttl.total_seconds()),
            routing_policy=gcp.dns.RecordSetRoutingPolicyArgs(
                wrrs=[
                    gcp.dns.RecordSetRoutingPolicyWrrArgs(
                        weight=float(weights[role].weight), rrdatas=[endpoint.address]
                    )
                    for role, endpoint in endpoints.items()
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.endpoint: pulumi.Output[str] = pulumi.Output.from_input(dns.name)
        self.register_outputs({"endpoint": self.endpoint})
