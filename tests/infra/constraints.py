"""The clouds' documented limits, checked against what the program hands the Pulumi engine.

Pulumi's mocks accept any input, so a green run under mocks says nothing about whether the
cloud would accept the resource. Every rule here is a limit the cloud (or the provider SDK, in
its docstrings) documents; each names its source in a comment. :func:`violations` checks one
captured program run (``pulumi_harness.ProgramRun``) against all of them, given the config the
program ran on, and returns one sentence per broken rule, naming the resource.

Only the rules are written here; what a resource looks like is what the real program declared.

Physical names. Where the program gives no explicit name the provider auto-names the resource
from its logical name plus a random suffix (https://www.pulumi.com/docs/iac/concepts/resources/names/#autonaming):
bridged providers (pulumi-aws, pulumi-gcp) append ``-`` and 7 random characters, azure-native
appends 8 random characters. The length rules below apply to that physical name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_harness import ProgramRun, Registered

from infra.config import Cloud, MirrorcastConfig

__all__ = ["NAME_RULES", "NameRule", "physical_names", "violations"]

BRIDGED_SUFFIX = "-a1b2c3d"  # "-" + 7 random characters (pulumi-aws, pulumi-gcp)
AZURE_NATIVE_SUFFIX = "a1b2c3d4"  # 8 random characters (azure-native)


@dataclass(frozen=True)
class NameRule:
    """A documented rule for one name-like input of a resource type.

    :param field: the engine-level input holding the name (``name``, ``loadBalancerName``).
    :param max_length: the longest accepted value.
    :param pattern: a regular expression the whole value must match.
    :param auto_named: the provider auto-names the field when the program leaves it out.
    :param rule: the rule in words, for the violation message.
    """

    field: str
    max_length: int
    pattern: str
    auto_named: bool
    rule: str


# AWS load balancer and target group names:
# SDK docstrings pulumi_aws/lb/load_balancer.py and pulumi_aws/lb/target_group.py (`name`):
# "can have a maximum of 32 characters, must contain only alphanumeric characters or hyphens, and
# must not begin or end with a hyphen".
_ELB_NAME = NameRule(
    "name", 32, r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", True, "32 alphanumerics/hyphens"
)
# RDS identifiers (DB cluster, DB instance, global cluster), CreateDBCluster / CreateDBInstance /
# CreateGlobalCluster API references
# (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html):
# 1-63 letters, digits or hyphens, first a letter, no two consecutive hyphens, no trailing
# hyphen; stored lowercase, and the Terraform schema behind pulumi-aws accepts only lowercase.
_RDS_IDENTIFIER = r"[a-z](?!.*--)[a-z0-9-]*(?<!-)"
# DB cluster snapshot identifier (CreateDBClusterSnapshot, DBClusterSnapshotIdentifier):
# 1-255 letters, digits or hyphens, first a letter, no "--", no trailing hyphen.
_RDS_SNAPSHOT = r"[A-Za-z](?!.*--)[A-Za-z0-9-]*(?<!-)"

NAME_RULES: dict[str, tuple[NameRule, ...]] = {
    "aws:lb/loadBalancer:LoadBalancer": (_ELB_NAME,),
    "aws:lb/targetGroup:TargetGroup": (_ELB_NAME,),
    "aws:rds/cluster:Cluster": (
        NameRule("clusterIdentifier", 63, _RDS_IDENTIFIER, True, "RDS identifier (lowercase)"),
        NameRule("finalSnapshotIdentifier", 255, _RDS_SNAPSHOT, False, "RDS snapshot identifier"),
    ),
    "aws:rds/clusterInstance:ClusterInstance": (
        NameRule("identifier", 63, _RDS_IDENTIFIER, True, "RDS identifier (lowercase)"),
    ),
    "aws:rds/globalCluster:GlobalCluster": (
        NameRule(
            "globalClusterIdentifier", 63, _RDS_IDENTIFIER, False, "RDS identifier (lowercase)"
        ),
    ),
    # CreateDBSubnetGroup: "no more than 255 letters, numbers, periods, underscores, spaces, or
    # hyphens"; stored lowercase (the Terraform schema validates ^[ .0-9a-z-_]+$).
    "aws:rds/subnetGroup:SubnetGroup": (
        NameRule("name", 255, r"[ .0-9a-z_-]+", True, "lowercase DB subnet group name"),
    ),
    # CreateLaunchTemplate LaunchTemplateName: 3-128 characters, [a-zA-Z0-9().\-/_]+.
    "aws:ec2/launchTemplate:LaunchTemplate": (
        NameRule("name", 128, r"[a-zA-Z0-9().\-/_]{3,}", True, "launch template name"),
    ),
    # CreateAutoScalingGroup AutoScalingGroupName: 1-255 characters.
    "aws:autoscaling/group:Group": (NameRule("name", 255, r".+", True, "1-255 characters"),),
    # Azure resource name rules
    # (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftnetwork):
    # load balancers, public IPs and NSGs take 1-80 alphanumerics, underscores, periods and
    # hyphens, starting alphanumeric and ending alphanumeric or underscore.
    "azure-native:network:LoadBalancer": (
        NameRule(
            "loadBalancerName",
            80,
            r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?",
            True,
            "Azure network name",
        ),
    ),
    "azure-native:network:PublicIPAddress": (
        NameRule(
            "publicIpAddressName",
            80,
            r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?",
            True,
            "Azure network name",
        ),
    ),
    "azure-native:network:NetworkSecurityGroup": (
        NameRule(
            "networkSecurityGroupName",
            80,
            r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?",
            True,
            "Azure network name",
        ),
    ),
    # Microsoft.Compute virtualMachineScaleSets (same page, #microsoftcompute): 1-64 for Linux;
    # no spaces or ~!@#$%^&*()=+_[]{}\|;:.'",<>/? and no trailing period or hyphen.
    "azure-native:compute:VirtualMachineScaleSet": (
        NameRule("vmScaleSetName", 64, r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", True, "VMSS"),
    ),
    # Microsoft.Sql servers (same page, #microsoftsql): 1-63 lowercase letters, numbers and
    # hyphens; can't start or end with a hyphen. Globally unique.
    "azure-native:sql:Server": (
        NameRule("serverName", 63, r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", True, "lowercase SQL"),
    ),
    # Microsoft.Cdn profiles/afdEndpoints (same page, #microsoftcdn): 1-46 alphanumerics and
    # hyphens, starting and ending alphanumeric. Globally unique.
    "azure-native:cdn:AFDEndpoint": (
        NameRule(
            "endpointName", 46, r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", True, "AFD endpoint"
        ),
    ),
}
"""Per resource type, the documented rules for its name-like inputs."""

# GCP resource names (https://cloud.google.com/compute/docs/naming-resources#resource-name-format):
# 1-63 characters matching [a-z]([-a-z0-9]*[a-z0-9])?. Every gcp:compute resource is auto-named.
_RFC1035 = r"[a-z](?:[-a-z0-9]*[a-z0-9])?"
# GCP labels (https://cloud.google.com/compute/docs/labeling-resources#requirements): keys
# 1-63 characters starting with a lowercase letter; keys and values only lowercase letters,
# digits, underscores and dashes; values at most 63.
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")

# Weight ranges, each product's own documentation:
# - Route 53 weighted records: 0-255 (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resource-record-sets-values-weighted.html#rrsets-values-weighted-weight)
# - ALB weighted target groups: 0-999 (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#forward-actions)
# - GCP URL map weightedBackendServices: 0-1000 (https://cloud.google.com/load-balancing/docs/https/traffic-management#weight-based_traffic_splitting)
# - Cloud DNS WRR weights: non-negative (https://cloud.google.com/dns/docs/zones/manage-routing-policies)
# - Traffic Manager weights: 1-1000 (https://learn.microsoft.com/azure/traffic-manager/traffic-manager-routing-methods#weighted)
# - Front Door origin weights: 1-1000 (https://learn.microsoft.com/azure/frontdoor/routing-methods#weighted)
WEIGHTS_DOCUMENTED: dict[str, tuple[int, int]] = {
    "route53": (0, 255),
    "alb": (0, 999),
    "gcp_url_map": (0, 1000),
    "gcp_cloud_dns": (0, 1_000_000),
    "azure_traffic_manager": (1, 1000),
    "azure_front_door": (1, 1000),
}

# Azure built-in role definition ids
# (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles), which the
# Standby Pool resource provider needs on the scale set's resource group
# (https://learn.microsoft.com/azure/virtual-machine-scale-sets/standby-pools-create#prerequisites):
STANDBY_POOL_ROLES = {
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
    "4d97b98b-1d4f-4787-a291-c67834d212e7": "Network Contributor",
    "f1a07417-d97a-45cb-824c-7a7467783830": "Managed Identity Operator",
}


# --------------------------------------------------------------------------- helpers


def _get(node: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _physical(resource: Registered, rule: NameRule) -> str | None:
    explicit = resource.inputs.get(rule.field)
    if explicit is not None:
        return str(explicit)
    if not rule.auto_named:
        return None
    suffix = AZURE_NATIVE_SUFFIX if resource.type.startswith("azure-native:") else BRIDGED_SUFFIX
    return resource.name + suffix


def physical_names(run: ProgramRun) -> dict[tuple[str, str], str]:
    """``(type, field) -> name`` for every explicit (not auto-generated) physical name."""
    names: dict[tuple[str, str], str] = {}
    for resource in run.resources:
        for rule in NAME_RULES.get(resource.type, ()):
            if rule.field in resource.inputs:
                names[(resource.type, f"{resource.name}.{rule.field}")] = str(
                    resource.inputs[rule.field]
                )
    return names


def _check_names(run: ProgramRun) -> Iterator[str]:
    for resource in run.resources:
        rules = list(NAME_RULES.get(resource.type, ()))
        if resource.type.startswith("gcp:compute/"):
            rules.append(NameRule("name", 63, _RFC1035, True, "GCP RFC 1035 name"))
        if resource.type == "gcp:sql/databaseInstance:DatabaseInstance":
            # Cloud SQL instance IDs (https://cloud.google.com/sql/docs/postgres/create-instance):
            # lowercase letters, numbers and hyphens, starting with a letter; project-ID:instance-ID
            # at most 98 characters (the project is not in the program, so 98 - 30 - 1).
            rules.append(NameRule("name", 67, _RFC1035, True, "Cloud SQL instance ID"))
        for rule in rules:
            name = _physical(resource, rule)
            if name is None:
                continue
            if len(name) > rule.max_length:
                yield (
                    f"{resource.type} {resource.name}: {rule.field} {name!r} has {len(name)} "
                    f"characters, over the {rule.max_length} allowed ({rule.rule})"
                )
            elif not re.fullmatch(rule.pattern, name):
                yield (
                    f"{resource.type} {resource.name}: {rule.field} {name!r} breaks the "
                    f"{rule.rule} rule /{rule.pattern}/"
                )
    yield from _check_gcp_extras(run)
    yield from _check_azure_extras(run)


def _check_gcp_extras(run: ProgramRun) -> Iterator[str]:
    for resource in run.resources:
        if not resource.type.startswith("gcp:"):
            continue
        inputs = resource.inputs
        # SDK docstring (pulumi_gcp/compute/region_instance_group_manager.py, base_instance_name):
        # a valid RFC1035 name; instances are named by appending "-" and 4 random characters,
        # so the base holds at most 63 - 5 = 58.
        base = inputs.get("baseInstanceName")
        if base is not None and (len(base) > 58 or not re.fullmatch(_RFC1035, base)):
            yield f"{resource.type} {resource.name}: baseInstanceName {base!r} is not an RFC 1035 name of at most 58"
        # Network tags (https://cloud.google.com/vpc/docs/add-remove-network-tags): 1-63
        # lowercase letters, digits and hyphens, RFC 1035.
        if resource.type == "gcp:compute/instanceTemplate:InstanceTemplate":
            for tag in inputs.get("tags") or []:
                if len(tag) > 63 or not re.fullmatch(_RFC1035, tag):
                    yield f"{resource.type} {resource.name}: network tag {tag!r} is not RFC 1035 (1-63)"
        for where in ("labels", "settings.userLabels"):
            labels = _get(inputs, where) or {}
            for key, value in labels.items():
                if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(str(value)):
                    yield f"{resource.type} {resource.name}: label {key}={value!r} breaks GCP's label rules"


def _check_azure_extras(run: ProgramRun) -> Iterator[str]:
    for resource in run.resources:
        inputs = resource.inputs
        if resource.type == "azure-native:network:PublicIPAddress":
            # DNS name label (https://learn.microsoft.com/azure/virtual-network/ip-services/public-ip-addresses#dns-name-label):
            # 3-63 characters, ^[a-z][a-z0-9-]{1,61}[a-z0-9]$.
            label = _get(inputs, "dnsSettings.domainNameLabel")
            if label is not None and not re.fullmatch(r"[a-z][a-z0-9-]{1,61}[a-z0-9]", label):
                yield f"{resource.type} {resource.name}: domainNameLabel {label!r} breaks ^[a-z][a-z0-9-]{{1,61}}[a-z0-9]$"
        if resource.type == "azure-native:compute:VirtualMachineScaleSet":
            # SDK docstring (pulumi_azure_native/compute/_inputs.py, computer_name_prefix):
            # "Computer name prefixes must be 1 to 15 characters long."
            prefix = _get(inputs, "virtualMachineProfile.osProfile.computerNamePrefix")
            if prefix is not None and not 1 <= len(prefix) <= 15:
                yield f"{resource.type} {resource.name}: computerNamePrefix {prefix!r} is not 1-15 characters"


# --------------------------------------------------------------------------- regions


def _provider_regions(run: ProgramRun) -> dict[str, str]:
    """Provider reference (``urn::id``) -> the region it is configured for."""
    regions: dict[str, str] = {}
    for resource in run.resources:
        if resource.type == "pulumi:providers:aws" and resource.inputs.get("region"):
            # The monitor hands children "<urn>::<id>"; the mocks' id is "<name>-id".
            regions[f"{resource.name}-id"] = str(resource.inputs["region"])
    return regions


def aws_region_of(run: ProgramRun, resource: Registered, default_region: str | None) -> str | None:
    """Where pulumi-aws manages ``resource``: its ``region`` input, its provider's, or the default.

    pulumi-aws v7 docstrings (`region`): "Region where this resource will be managed. Defaults to
    the Region set in the provider configuration."
    """
    if resource.inputs.get("region"):
        return str(resource.inputs["region"])
    if resource.provider:
        provider_id = resource.provider.rsplit("::", 1)[-1]
        return _provider_regions(run).get(provider_id, default_region)
    return default_region


def _check_regions(
    run: ProgramRun, config: MirrorcastConfig, default_region: str | None
) -> Iterator[str]:
    # A subnet lives in one Availability Zone and a VPC in one Region
    # (https://docs.aws.amazon.com/vpc/latest/userguide/configure-subnets.html): a resource
    # built from a subnet or VPC must be managed in that subnet's region.
    home: dict[str, str] = {}
    for pool in config.pools.values():
        for cloud, region, network in (
            (pool.primary.cloud, pool.primary.region, pool.primary.network),
            (pool.mirror_cloud, pool.mirror_region, pool.mirror_network),
        ):
            if cloud is Cloud.aws:
                for subnet in network.subnet_ids:
                    home[subnet] = region
                if network.vpc_id:
                    home[network.vpc_id] = region
    for resource in run.resources:
        if not resource.custom or not resource.type.startswith("aws:"):
            continue
        if resource.type.startswith("aws:route53/"):
            continue  # Route 53 is global
        region = aws_region_of(run, resource, default_region)
        for field in ("subnetIds", "subnets", "vpcZoneIdentifiers", "vpcId"):
            value = resource.inputs.get(field)
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, str) and ref in home and home[ref] != region:
                    yield (
                        f"{resource.type} {resource.name}: {field} {ref} is in {home[ref]}, but "
                        f"the resource is managed in {region}"
                    )
    # An Aurora global database's secondary cluster must be in another Region than its primary
    # (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-getting-started.html).
    clusters = [
        r for r in run.of_type("aws:rds/cluster:Cluster") if r.inputs.get("globalClusterIdentifier")
    ]
    by_global: dict[str, list[tuple[str, str | None]]] = {}
    for cluster in clusters:
        by_global.setdefault(str(cluster.inputs["globalClusterIdentifier"]), []).append(
            (cluster.name, aws_region_of(run, cluster, default_region))
        )
    for members in by_global.values():
        regions = [region for _, region in members]
        if len(set(regions)) != len(regions):
            yield f"Aurora global database clusters {[n for n, _ in members]} share a region: {regions}"


# --------------------------------------------------------------------------- traffic


def _by_id(run: ProgramRun) -> dict[str, Registered]:
    # The harness's mocks give every resource the id "<name>-id".
    return {f"{r.name}-id": r for r in run.resources if r.custom}


def _check_health_checks(run: ProgramRun) -> Iterator[str]:
    # ALB target group health checks default to HTTP on the traffic port
    # (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html):
    # an HTTPS target answers a plain-HTTP probe with a TLS error, so every target is unhealthy.
    for group in run.of_type("aws:lb/targetGroup:TargetGroup"):
        protocol = group.inputs.get("protocol", "HTTP")
        probe = _get(group.inputs, "healthCheck.protocol") or (
            "HTTP" if protocol in ("HTTP", "HTTPS") else protocol
        )
        if protocol == "HTTPS" and probe != "HTTPS":
            yield f"{group.type} {group.name}: HTTPS targets probed with {probe}"
    # GCP backend services: the health check's protocol should match the backend's
    # (https://cloud.google.com/load-balancing/docs/health-check-concepts#category_and_protocol).
    ids = _by_id(run)
    for service in run.resources:
        if service.type not in (
            "gcp:compute/backendService:BackendService",
            "gcp:compute/regionBackendService:RegionBackendService",
        ):
            continue
        protocol = service.inputs.get("protocol", "HTTP")
        checks = service.inputs.get("healthChecks")
        for ref in checks if isinstance(checks, list) else [checks]:
            check = ids.get(str(ref))
            if check is None:
                continue
            kinds = {k for k in check.inputs if k.endswith("HealthCheck")}
            wanted = {
                "HTTPS": "httpsHealthCheck",
                "HTTP": "httpHealthCheck",
                "HTTP2": "http2HealthCheck",
            }.get(protocol)
            if wanted is not None and wanted not in kinds:
                yield f"{service.type} {service.name}: {protocol} backends probed by {sorted(kinds)}"


def _covers(ports: str, port: int) -> bool:
    if ports in ("*", ""):
        return True
    low, _, high = ports.partition("-")
    return int(low) <= port <= int(high or low)


def _check_traffic_ports(run: ProgramRun, config: MirrorcastConfig) -> Iterator[str]:
    # Security groups, NSGs (beyond the VNet) and GCP firewalls deny inbound traffic unless a
    # rule allows it (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html,
    # https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#default-security-rules,
    # https://cloud.google.com/firewall/docs/firewalls#default_firewall_rules): the port the
    # balancer forwards to must be open on the instances of both sides.
    for name, pool in config.pools.items():
        port = pool.balancer.port
        for role, cloud in (("primary", pool.primary.cloud), ("mirror", pool.mirror_cloud)):
            opened: list[str] = []
            if cloud is Cloud.aws:
                group = _named(run, "aws:ec2/securityGroup:SecurityGroup", f"{name}-{role}-sg")
                for rule in (group.inputs.get("ingress") or []) if group else []:
                    if rule.get("protocol") in ("tcp", "-1"):
                        opened.append(f"{int(rule['fromPort'])}-{int(rule['toPort'])}")
            elif cloud is Cloud.azure:
                nsg = _named(run, "azure-native:network:NetworkSecurityGroup", f"{name}-{role}-nsg")
                for rule in (nsg.inputs.get("securityRules") or []) if nsg else []:
                    if rule.get("access") == "Allow" and rule.get("protocol") in ("Tcp", "*"):
                        opened.append(str(rule.get("destinationPortRange")))
            else:
                tag = f"mirrorcast-{name.lower()}-{role}"
                for firewall in run.of_type("gcp:compute/firewall:Firewall"):
                    if tag in (firewall.inputs.get("targetTags") or []):
                        for allow in firewall.inputs.get("allows") or []:
                            if allow.get("protocol") in ("tcp", "all"):
                                opened.extend(allow.get("ports") or ["*"])
            if not any(_covers(ports, port) for ports in opened):
                yield (
                    f"pools.{name}: the balancer sends traffic to port {port}, but no "
                    f"security rule opens it on the {role} side (open: {opened or 'nothing'})"
                )


def _named(run: ProgramRun, typ: str, name: str) -> Registered | None:
    found = [r for r in run.of_type(typ) if r.name == name]
    return found[0] if found else None


def _weights(run: ProgramRun) -> Iterator[tuple[Registered, str, list[Any]]]:
    for resource in run.resources:
        inputs = resource.inputs
        if resource.type == "aws:route53/record:Record":
            weights = [p.get("weight") for p in inputs.get("weightedRoutingPolicies") or []]
            yield resource, "route53", weights
        elif resource.type == "aws:lb/listener:Listener":
            for action in inputs.get("defaultActions") or []:
                groups = _get(action, "forward.targetGroups") or []
                if groups:
                    yield resource, "alb", [g.get("weight") for g in groups]
        elif resource.type == "gcp:compute/uRLMap:URLMap":
            services = _get(inputs, "defaultRouteAction.weightedBackendServices") or []
            yield resource, "gcp_url_map", [s.get("weight") for s in services]
        elif resource.type == "gcp:dns/recordSet:RecordSet":
            wrrs = _get(inputs, "routingPolicy.wrrs") or []
            yield resource, "gcp_cloud_dns", [w.get("weight") for w in wrrs]
        elif resource.type == "azure-native:trafficmanager:Profile":
            yield (
                resource,
                "azure_traffic_manager",
                [e.get("weight") for e in inputs.get("endpoints") or []],
            )
        elif resource.type == "azure-native:cdn:AFDOrigin":
            yield resource, "azure_front_door", [inputs.get("weight")]


def _check_weights(run: ProgramRun) -> Iterator[str]:
    for resource, product, weights in _weights(run):
        low, high = WEIGHTS_DOCUMENTED[product]
        for weight in weights:
            if not isinstance(weight, int | float) or not low <= weight <= high:
                yield f"{resource.type} {resource.name}: weight {weight!r} outside {product}'s {low}-{high}"


# --------------------------------------------------------------------------- companions


def _check_companions(run: ProgramRun) -> Iterator[str]:
    # Hibernation prerequisites (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/hibernating-prerequisites.html):
    # the root volume must be an encrypted EBS volume large enough for RAM; a warm pool can only
    # hibernate instances whose launch template enables hibernation.
    for template in run.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        if _get(template.inputs, "hibernationOptions.configured"):
            mappings = template.inputs.get("blockDeviceMappings") or []
            if not any(_get(m, "ebs.encrypted") in (True, "true") for m in mappings):
                yield f"{template.type} {template.name}: hibernation needs an encrypted EBS root volume (blockDeviceMappings)"
    # Standby pools need the Standby Pool resource provider to hold three roles
    # (STANDBY_POOL_ROLES' source).
    pools = run.of_type("azure-native:standbypool:StandbyVirtualMachinePool")
    if pools:
        granted = {
            str(r.inputs.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
            for r in run.of_type("azure-native:authorization:RoleAssignment")
        }
        for role, label in STANDBY_POOL_ROLES.items():
            if role not in granted:
                for pool in pools:
                    yield f"{pool.type} {pool.name}: the Standby Pool provider lacks the {label} role assignment"
    # A scale set from a generalized gallery image needs an osProfile (computer name prefix and
    # an administrator) (https://learn.microsoft.com/azure/virtual-machines/shared-image-galleries#generalized-and-specialized-images).
    for vmss in run.of_type("azure-native:compute:VirtualMachineScaleSet"):
        profile = _get(vmss.inputs, "virtualMachineProfile.osProfile")
        if profile is None:
            yield f"{vmss.type} {vmss.name}: no osProfile (valid only for specialized images)"
        elif not _get(profile, "linuxConfiguration.ssh.publicKeys"):
            yield f"{vmss.type} {vmss.name}: osProfile without an SSH public key"


# --------------------------------------------------------------------------- entry point

Check = Callable[[ProgramRun, MirrorcastConfig, str | None], Iterable[str]]

CHECKS: dict[str, Check] = {
    "names": lambda run, config, region: _check_names(run),
    "regions": _check_regions,
    "health checks": lambda run, config, region: _check_health_checks(run),
    "traffic ports": lambda run, config, region: _check_traffic_ports(run, config),
    "weights": lambda run, config, region: _check_weights(run),
    "companions": lambda run, config, region: _check_companions(run),
}


def violations(
    run: ProgramRun, config: MirrorcastConfig, *, default_aws_region: str | None
) -> list[str]:
    """Every documented limit the captured run breaks, one sentence each.

    :param run: the program run captured under mocks.
    :param config: the validated config the program ran on.
    :param default_aws_region: the stack's ``aws:region`` (the default provider's region).
    """
    found: list[str] = []
    for check in CHECKS.values():
        found.extend(check(run, config, default_aws_region))
    return found
