"""Create what the program declares for AWS in moto's server, from the captured engine inputs.

The program runs under Pulumi's mocks (``pulumi_harness``); :func:`create_in_moto` then makes
the same API calls the AWS provider would make for each captured resource (security groups,
launch templates, Auto Scaling groups with warm pools, scaling policies, target groups, ALB/NLB
load balancers with their listeners, attachments, Route 53 weighted records), in the region the
resource would be managed in, through boto3 against moto. AWS's own validation, as moto
implements it, then rejects what the real API would (a 33-character target group name, subnets
of another region, a listener weight out of range).

The network (VPCs, subnets), the ACM certificate and the hosted zone are what the stack brings; they are created
from the config first, and the config's ids are mapped to moto's. Mock references in the inputs
("<name>-id", the mocks' ARNs and DNS names) are replaced by what moto returned for the
resource they name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from constraints import aws_region_of
from pulumi_harness import ProgramRun, Registered, auto_name

from infra.config import Cloud, MirrorcastConfig

__all__ = ["create_in_moto"]

_ORDER = (
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:autoscaling/group:Group",
    "aws:autoscaling/policy:Policy",
    "aws:lb/targetGroup:TargetGroup",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/listener:Listener",
    "aws:autoscaling/attachment:Attachment",
    "aws:route53/record:Record",
)


class _Moto:
    """boto3 clients per region, and the map from mock references to moto's answers."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.refs: dict[str, Any] = {}
        self.created: list[tuple[str, str]] = []

    def client(self, service: str, region: str) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.refs.get(value, value)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, Mapping):
            return {k: self.resolve(v) for k, v in value.items()}
        return value


def _network(moto: _Moto, config: MirrorcastConfig) -> None:
    """The VPCs and subnets the config names, created in their regions (two AZs each)."""
    made: set[str] = set()
    for pool in config.pools.values():
        for cloud, region, network in (
            (pool.primary.cloud, pool.primary.region, pool.primary.network),
            (pool.mirror_cloud, pool.mirror_region, pool.mirror_network),
        ):
            if cloud is not Cloud.aws or network.vpc_id in made:
                continue
            assert network.vpc_id is not None
            ec2 = moto.client("ec2", region)
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            moto.refs[network.vpc_id] = vpc
            for index, subnet in enumerate(network.subnet_ids):
                zone = f"{region}{'abc'[index % 3]}"
                created = ec2.create_subnet(
                    VpcId=vpc, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=zone
                )
                moto.refs[subnet] = created["Subnet"]["SubnetId"]
            made.add(network.vpc_id)


def _zones(moto: _Moto, config: MirrorcastConfig) -> None:
    for pool in config.pools.values():
        dns = pool.balancer.dns
        if pool.balancer.kind.value != "route53" or dns is None or dns.zone in moto.refs:
            continue
        domain = ".".join(dns.name.rstrip(".").split(".")[-2:])
        zone = moto.client("route53", "us-east-1").create_hosted_zone(
            Name=domain, CallerReference=dns.zone
        )
        moto.refs[dns.zone] = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]


def _certificates(moto: _Moto, config: MirrorcastConfig) -> None:
    """The ACM certificates the config names (the stack brings them), in the primary's region."""
    for pool in config.pools.values():
        certificate = pool.balancer.certificate
        if pool.balancer.kind.value != "alb" or not certificate or certificate in moto.refs:
            continue
        acm = moto.client("acm", pool.primary.region)
        moto.refs[certificate] = acm.request_certificate(DomainName="app.example.com")[
            "CertificateArn"
        ]


def _tags(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in (tags or {}).items()]


def _int(value: Any) -> int:
    return int(float(value))


def _security_group(moto: _Moto, r: Registered, region: str, i: dict[str, Any]) -> None:
    ec2 = moto.client("ec2", region)
    group = ec2.create_security_group(
        GroupName=auto_name(moto.stack, r.name),
        Description=i["description"],
        VpcId=i["vpcId"],
        TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(i.get("tags"))}],
    )["GroupId"]
    permissions = [
        {
            "IpProtocol": rule["protocol"],
            "FromPort": _int(rule["fromPort"]),
            "ToPort": _int(rule["toPort"]),
            "IpRanges": [
                {"CidrIp": c, "Description": rule.get("description", "")}
                for c in rule["cidrBlocks"]
            ],
        }
        for rule in i.get("ingress") or []
    ]
    if permissions:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=permissions)
    moto.refs[f"{r.name}-id"] = group


def _launch_template(moto: _Moto, r: Registered, region: str, i: dict[str, Any]) -> None:
    data: dict[str, Any] = {
        "ImageId": i["imageId"],
        "InstanceType": i["instanceType"],
        "SecurityGroupIds": i["vpcSecurityGroupIds"],
        "TagSpecifications": [
            {"ResourceType": t["resourceType"], "Tags": _tags(t.get("tags"))}
            for t in i.get("tagSpecifications") or []
        ],
    }
    if "hibernationOptions" in i:
        data["HibernationOptions"] = {"Configured": bool(i["hibernationOptions"]["configured"])}
    if "blockDeviceMappings" in i:
        data["BlockDeviceMappings"] = [
            {
                "DeviceName": m["deviceName"],
                "Ebs": {
                    "Encrypted": m["ebs"]["encrypted"] == "true",
                    "VolumeSize": _int(m["ebs"]["volumeSize"]),
                    "VolumeType": m["ebs"]["volumeType"],
                    "DeleteOnTermination": m["ebs"]["deleteOnTermination"] == "true",
                },
            }
            for m in i["blockDeviceMappings"]
        ]
    template = moto.client("ec2", region).create_launch_template(
        LaunchTemplateName=i.get("name") or auto_name(moto.stack, r.name),
        LaunchTemplateData=data,
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": _tags(i.get("tags"))}],
    )
    moto.refs[f"{r.name}-id"] = template["LaunchTemplate"]["LaunchTemplateId"]


def _group(moto: _Moto, r: Registered, region: str, i: dict[str, Any]) -> None:
    name = i.get("name") or auto_name(moto.stack, r.name)
    autoscaling = moto.client("autoscaling", region)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=_int(i["minSize"]),
        MaxSize=_int(i["maxSize"]),
        DesiredCapacity=_int(i.get("desiredCapacity", i["minSize"])),
        VPCZoneIdentifier=",".join(i["vpcZoneIdentifiers"]),
        LaunchTemplate={
            "LaunchTemplateId": i["launchTemplate"]["id"],
            "Version": i["launchTemplate"]["version"],
        },
        Tags=[
            {
                "Key": t["key"],
                "Value": t["value"],
                "PropagateAtLaunch": bool(t["propagateAtLaunch"]),
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
            }
            for t in i.get("tags") or []
        ],
    )
    warm = i.get("warmPool")
    if warm:
        autoscaling.put_warm_pool(
            AutoScalingGroupName=name,
            PoolState=warm["poolState"],
            MinSize=_int(warm["minSize"]),
            MaxGroupPreparedCapacity=_int(warm["maxGroupPreparedCapacity"]),
            InstanceReusePolicy={
                "ReuseOnScaleIn": bool(warm["instanceReusePolicy"]["reuseOnScaleIn"])
            },
        )
    moto.refs[auto_name(moto.stack, r.name)] = name


def _policy(moto: _Moto, r: Registered, region: str, i: dict[str, Any]) -> None:
    tracking = i["targetTrackingConfiguration"]
    moto.client("autoscaling", region).put_scaling_policy(
        AutoScalingGroupName=i["autoscalingGroupName"],
        PolicyName=auto_name(moto.stack, r.name),
        PolicyType=i["policyType"],
        TargetTrackingConfiguration={
            "TargetValue": float(tracking["targetValue"]),
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": tracking["predefinedMetricSpecification"][
                    "predefinedMetricType"
                ]
            },
        },
    )


def elb_arn_suffix(arn: str) -> str:
    """What the AWS provider computes as a load balancer's or target group's ``arn_suffix``.

    The final portion of the ARN, which CloudWatch's ELB metrics take as their ``LoadBalancer``
    / ``TargetGroup`` dimension (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-cloudwatch-metrics.html):
    after ``loadbalancer/`` for a load balancer (``net/<name>/<id>``), the whole resource part
    for a target group (``targetgroup/<name>/<id>``); the Terraform AWS provider's
    ``lbSuffixFromARN`` and ``lbTargetGroupSuffixFromARN``, which pulumi_aws bridges.
    """
    resource = arn.split(":", 5)[5]
    return resource.removeprefix("loadbalancer/")


def _target_group(moto: _Moto, r: Registered, region: str, i: dict[str, Any]) -> None:
    check = i.get("healthCheck") or {}
    args: dict[str, Any] = {
        "Name": i.get("name") or auto_name(moto.stack, r.name),
        "Protocol": i["protocol"],
        "Port": _int(i["port"]),
        "VpcId": i["vpcId"],
        "Tags": _tags(i.get("tags")),
    }
    if "protocol" in check:
        args["HealthCheckProtocol"] = check["protocol"]
    if "path" in check:
        args["HealthCheckPath"] = check["path"]
    if "port" in check:
        args["HealthCheckPort"] = check["port"]
    group = moto.client("elbv2", region).create_target_group(**args)["TargetGroups"][0]
    moto.refs[f"arn:mock:{r.type}:{r.name}"] = group["TargetGroupArn"]
    moto.refs[f"arnsuffix:mock:{r.type}:{r.name}"] = elb_arn_suffix(group["TargetGroupArn"])


def _load_balancer(moto: _Moto, r: Registered, region: str, i: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "Name": i.get("name") or auto_name(moto.stack, r.name),
        "Subnets": i["subnets"],
        "Type": i["loadBalancerType"],
        "Scheme": "internal" if i.get("internal") else "internet-facing",
        "Tags": _tags(i.get("tags")),
    }
    if i.get("securityGroups"):
        args["SecurityGroups"] = i["securityGroups"]
    balancer = moto.client("elbv2", region).create_load_balancer(**args)["LoadBalancers"][0]
    moto.refs[f"arn:mock:{r.type}:{r.name}"] = balancer["LoadBalancerArn"]
    moto.refs[f"arnsuffix:mock:{r.type}:{r.name}"] = elb_arn_suffix(balancer["LoadBalancerArn"])
    moto.refs[f"{r.name}.elb.mock.amazonaws.com"] = balancer["DNSName"]
    moto.zone_ids[balancer["DNSName"]] = balancer["CanonicalHostedZoneId"]


def _listener(moto: _Moto, r: Registered, region: str, i: dict[str, Any]) -> None:
    actions = []
    for action in i["defaultActions"]:
        if "forward" in action:
            actions.append(
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": g["arn"], "Weight": _int(g["weight"])}
                            for g in action["forward"]["targetGroups"]
                        ]
                    },
                }
            )
        else:
            actions.append({"Type": "forward", "TargetGroupArn": action["targetGroupArn"]})
    args: dict[str, Any] = {
        "LoadBalancerArn": i["loadBalancerArn"],
        "Protocol": i["protocol"],
        "Port": _int(i["port"]),
        "DefaultActions": actions,
    }
    if i.get("certificateArn"):
        args["Certificates"] = [{"CertificateArn": i["certificateArn"]}]
    moto.client("elbv2", region).create_listener(**args)


def _attachment(moto: _Moto, r: Registered, region: str, i: dict[str, Any]) -> None:
    moto.client("autoscaling", region).attach_load_balancer_target_groups(
        AutoScalingGroupName=i["autoscalingGroupName"], TargetGroupARNs=[i["lbTargetGroupArn"]]
    )


def _record(moto: _Moto, r: Registered, region: str, i: dict[str, Any]) -> None:
    record: dict[str, Any] = {
        "Name": i["name"],
        "Type": i["type"],
        "SetIdentifier": i["setIdentifier"],
        "Weight": _int(i["weightedRoutingPolicies"][0]["weight"]),
    }
    if i.get("aliases"):
        alias = i["aliases"][0]
        record["AliasTarget"] = {
            "DNSName": alias["name"],
            "HostedZoneId": moto.zone_ids.get(alias["name"], alias["zoneId"]),
            "EvaluateTargetHealth": bool(alias["evaluateTargetHealth"]),
        }
    else:
        record["TTL"] = _int(i["ttl"])
        record["ResourceRecords"] = [{"Value": value} for value in i["records"]]
    moto.client("route53", "us-east-1").change_resource_record_sets(
        HostedZoneId=i["zoneId"],
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record}]},
    )


_CREATE = {
    "aws:ec2/securityGroup:SecurityGroup": _security_group,
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:autoscaling/group:Group": _group,
    "aws:autoscaling/policy:Policy": _policy,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:lb/listener:Listener": _listener,
    "aws:autoscaling/attachment:Attachment": _attachment,
    "aws:route53/record:Record": _record,
}


def create_in_moto(
    run: ProgramRun,
    config: MirrorcastConfig,
    *,
    endpoint: str,
    default_region: str | None,
    resources: list[Registered] | None = None,
    deployed: dict[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """Create every AWS resource of ``run`` in moto; returns ``(type, name)`` in creation order.

    Raises what boto3 raises when moto refuses a call (``botocore.exceptions.ClientError``).

    :param run: the captured program run.
    :param config: the config it ran on (the network and hosted zones come from it).
    :param endpoint: moto's server URL.
    :param default_region: the stack's ``aws:region``.
    :param resources: the resources to create (default ``run.resources``; a test may pass an
        edited copy).
    :param deployed: filled with the program's ``pools`` output as it reads once deployed in
        moto: each mock value (an ARN, an ``arn_suffix``, a DNS name) replaced by moto's own.
    """
    moto = _Moto(endpoint)
    moto.stack = run.stack  # type: ignore[attr-defined]
    moto.zone_ids = {}  # type: ignore[attr-defined]
    _network(moto, config)
    _zones(moto, config)
    _certificates(moto, config)
    declared = resources if resources is not None else run.resources
    unknown = {
        r.type for r in declared if r.custom and r.type.startswith("aws:") and r.type not in _CREATE
    }
    if unknown - {
        "aws:rds/cluster:Cluster",
        "aws:rds/clusterInstance:ClusterInstance",
        "aws:rds/globalCluster:GlobalCluster",
        "aws:rds/subnetGroup:SubnetGroup",
    }:
        raise NotImplementedError(f"no moto translation for {sorted(unknown)}")
    for typ in _ORDER:
        for resource in (r for r in declared if r.type == typ):
            region = aws_region_of(run, resource, default_region) or "us-east-1"
            inputs = moto.resolve(resource.inputs)
            _CREATE[typ](moto, resource, region, inputs)
            moto.created.append((typ, resource.name))
    if deployed is not None:
        deployed.update(moto.resolve(run.pools))
    return moto.created
