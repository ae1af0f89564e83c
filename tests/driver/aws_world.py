"""The demo stack's ``web`` pool built in moto's server the way infra declares it (infra/aws.py).

An Auto Scaling group per side tagged ``mirrorcast-pool``/``mirrorcast-role`` (plus the stack's
``tags`` and ``mirrorcast-app-version``), a launch template with the side's image and instance
type and a security group with ``sync.security_rules``, a target group attached to each group
(moto registers the group's instances in it), a warm pool on the mirror, and Route 53 weighted
records (infra/dns.py: one per side, set identifier = role) with a health check on the mirror's.

Tests use it as the cloud: they change it the way the cloud or a person would (scale a group,
stop instances, publish a launch template version) and let the driver observe it.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from driver.observers._base import APP_VERSION_TAG, POOL_TAG, ROLE_TAG
from infra.config import MirrorcastConfig

REGIONS = {"primary": "us-east-1", "mirror": "us-west-2"}


@pytest.fixture()
def aws(moto_account: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3's standard chain pointed at an empty moto account (tests/conftest.py): dummy keys
    and AWS_ENDPOINT_URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_account)
    return moto_account


class World:
    """The demo pool built in moto, with handles the tests use to change it."""

    def __init__(self, config: MirrorcastConfig, *, tag: str) -> None:
        self.config = config
        self.tag = tag
        self.groups: dict[str, str] = {}
        self.templates: dict[str, str] = {}
        self.target_groups: dict[str, str] = {}
        self.zone = ""

    def client(self, service: str, role: str) -> Any:
        return _client(service, REGIONS[role])

    def instances(self, role: str) -> list[str]:
        group = self.client("autoscaling", role).describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.groups[role]]
        )["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in group["Instances"]]


_CLIENTS: dict[tuple[str, str, str], Any] = {}


def _client(service: str, region: str) -> Any:
    """One boto3 client per service, region and endpoint (building one takes seconds)."""
    import os

    key = (service, region, os.environ.get("AWS_ENDPOINT_URL", ""))
    if key not in _CLIENTS:
        _CLIENTS[key] = boto3.client(service, region_name=region)
    return _CLIENTS[key]


def build_world(config: MirrorcastConfig, *, mirror_desired: int, tag: str = "a") -> World:
    spec = config.pools["web"]
    world = World(config, tag=tag)
    images = {
        "primary": spec.primary.app.image_for(spec.primary.cloud, spec.primary.region),
        "mirror": spec.mirror_image,
    }
    for role in ("primary", "mirror"):
        ec2 = world.client("ec2", role)
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone=f"{REGIONS[role]}a"
        )["Subnet"]["SubnetId"]
        group_id = ec2.create_security_group(
            GroupName=f"web-{role}-sg-{tag}", Description="sync.security_rules", VpcId=vpc
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": rule.protocol,
                    "FromPort": rule.port_range()[0],
                    "ToPort": rule.port_range()[1],
                    "IpRanges": [{"CidrIp": source} for source in rule.sources],
                }
                for rule in spec.sync.security_rules
            ],
        )
        template = ec2.create_launch_template(
            LaunchTemplateName=f"web-{role}-lt-{tag}",
            LaunchTemplateData={
                "ImageId": images[role],
                "InstanceType": spec.primary.machine_type,
                "SecurityGroupIds": [group_id],
            },
        )["LaunchTemplate"]["LaunchTemplateId"]
        target_group = world.client("elbv2", role).create_target_group(
            Name=f"web-{role}-tg-{tag}", Protocol="TCP", Port=443, VpcId=vpc
        )["TargetGroups"][0]["TargetGroupArn"]
        name = f"web-{role}-asg-{tag}"
        desired = spec.primary.capacity.desired if role == "primary" else mirror_desired
        tags = {
            **config.tags,
            POOL_TAG: "web",
            ROLE_TAG: role,
            APP_VERSION_TAG: spec.primary.app.version,
        }
        world.client("autoscaling", role).create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=spec.primary.capacity.min if role == "primary" else 0,
            MaxSize=spec.primary.capacity.max if role == "primary" else spec.mirror_size,
            DesiredCapacity=desired,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
            VPCZoneIdentifier=subnet,
            TargetGroupARNs=[target_group],
            Tags=[
                {"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": name}
                for k, v in tags.items()
            ],
        )
        if role == "mirror":
            world.client("autoscaling", role).put_warm_pool(
                AutoScalingGroupName=name,
                MinSize=spec.mirror_size - mirror_desired,
                MaxGroupPreparedCapacity=spec.mirror_size,
                PoolState="Stopped",
            )
        world.groups[role] = name
        world.templates[role] = template
        world.target_groups[role] = target_group
    # Route 53 weighted records as infra/dns.py declares them (one per side, set identifier =
    # role); the mirror's record carries a health check here so its status is read too.
    r53 = _client("route53", "us-east-1")
    zone = r53.create_hosted_zone(Name="example.com", CallerReference=f"z-{tag}")
    world.zone = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    check = r53.create_health_check(
        CallerReference=f"c-{tag}",
        HealthCheckConfig={"Type": "TCP", "IPAddress": "192.0.2.10", "Port": 443},
    )["HealthCheck"]["Id"]
    r53.change_resource_record_sets(
        HostedZoneId=world.zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": spec.balancer.dns.name if spec.balancer.dns else "",
                        "Type": "A",
                        "SetIdentifier": role,
                        "Weight": weight,
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.10"}],
                        **({"HealthCheckId": check} if role == "mirror" else {}),
                    },
                }
                for role, weight in (("primary", 255), ("mirror", 0))
            ]
        },
    )
    world.config = _with_zone(config, world.zone)
    return world


def _with_zone(config: MirrorcastConfig, zone: str) -> MirrorcastConfig:
    data = config.model_dump(mode="json")
    data["pools"]["web"]["balancer"]["dns"]["zone"] = zone
    return MirrorcastConfig.model_validate(data)


def set_mirror(world: World, *, desired: int, healthy: bool) -> list[str]:
    """What the cloud did with an activation: the mirror's group at ``desired`` instances,
    their targets healthy or not (a stopped instance is an ``unused`` target in moto)."""
    client = world.client("autoscaling", "mirror")
    client.update_auto_scaling_group(
        AutoScalingGroupName=world.groups["mirror"],
        MaxSize=max(desired, 1),
        DesiredCapacity=desired,
    )
    instances = world.instances("mirror")
    if not healthy and instances:
        world.client("ec2", "mirror").stop_instances(InstanceIds=instances)
    return instances


def set_primary(world: World, *, desired: int) -> None:
    """The primary's group resized (by the cloud's autoscaler, or by hand)."""
    world.client("autoscaling", "primary").set_desired_capacity(
        AutoScalingGroupName=world.groups["primary"], DesiredCapacity=desired
    )
