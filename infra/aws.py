"""AWS components: Auto Scaling groups for primary and mirror, ALB and NLB fronts, Aurora global.

A paused mirror is an Auto Scaling group with desired and min 0; with the ``warm_pool`` strategy
its instances sit in the group's warm pool, Stopped or Hibernated, so activation only starts them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import pulumi
import pulumi_aws as aws

from infra._common import (
    AWS_LB_NAME,
    RDS_IDENTIFIER,
    RDS_SUBNET_GROUP,
    GroupPlan,
    NameLimit,
    Role,
    aws_ingress,
    certificate_problem,
    child_name,
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
    NetworkSpec,
    PoolSpec,
    ProductWeight,
    SecurityRule,
)
from infra.dns import DnsEndpoint, Route53Weighted

__all__ = [
    "AlbBalancer",
    "AuroraGlobalDatabase",
    "AutoScalingGroup",
    "AwsBackend",
    "MirrorGroup",
    "NlbFront",
    "PrimaryGroup",
]

logger = logging.getLogger(__name__)

_WARM_POOL_STATE = {"stopped": "Stopped", "hibernated": "Hibernated"}


def _scope() -> str:
    """What makes an explicit physical name unique: two stacks share an account and region."""
    return f"{pulumi.get_project()}/{pulumi.get_stack()}"


def _explicit_name(logical: str, limit: NameLimit, *, salt: str = "") -> str:
    """A valid name unique per stack, for inputs the provider never auto-names."""
    name = physical_name(logical, limit, scope=_scope(), salt=salt, always=True)
    assert name is not None, "always=True returns a name"
    return name


def _auto_or_explicit(logical: str, limit: NameLimit, *, salt: str = "") -> str | None:
    return physical_name(logical, limit, scope=_scope(), salt=salt)


# Hibernation needs an encrypted EBS root volume large enough to hold the instance's RAM
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/hibernating-prerequisites.html). The
# device name is the one AWS's Linux AMIs use for their root volume.
HIBERNATION_ROOT_DEVICE = "/dev/xvda"
HIBERNATION_ROOT_GIB = 64

_AURORA_ENGINE = {
    "postgres": aws.rds.EngineType.AURORA_POSTGRESQL,
    "mysql": aws.rds.EngineType.AURORA_MYSQL,
}


class AutoScalingGroup(pulumi.ComponentResource):
    """A security group, a launch template and an Auto Scaling group for one side of a pool.

    :param type_name: the component type (``PrimaryGroup`` or ``MirrorGroup``).
    :param name: the component's logical name; children are named from it.
    :param plan: sizes, image, machine type, network and warm-pool state.
    :param rules: ``sync.security_rules``, identical on both sides.
    :param tags: tags for every taggable child.
    :param opts: resource options (a regional provider is inherited from here).
    """

    def __init__(
        self,
        type_name: str,
        name: str,
        *,
        plan: GroupPlan,
        rules: Sequence[SecurityRule],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("aws", type_name), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags)
        # Every regional resource names its region: a child inherits its parent's provider, so
        # without it a resource could silently land in another side's region.
        self.region = plan.region
        self.security_group = aws.ec2.SecurityGroup(
            child_name(name, "sg"),
            region=plan.region,
            description=f"mirrorcast {plan.pool} {plan.role}: sync.security_rules",
            vpc_id=plan.network.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol=rule.protocol,
                    from_port=rule.from_port,
                    to_port=rule.to_port,
                    cidr_blocks=list(rule.cidr_blocks),
                    description=rule.description,
                )
                for rule in aws_ingress(rules)
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"]
                )
            ],
            tags=tags,
            opts=child,
        )
        hibernated = plan.warm_state == "hibernated"
        self.launch_template = aws.ec2.LaunchTemplate(
            child_name(name, "lt"),
            region=plan.region,
            image_id=plan.image,
            instance_type=plan.machine_type,
            vpc_security_group_ids=[self.security_group.id],
            # Hibernation must be enabled at launch; a warm pool cannot hibernate otherwise.
            hibernation_options=(
                aws.ec2.LaunchTemplateHibernationOptionsArgs(configured=True)
                if hibernated
                else None
            ),
            # ... and an encrypted EBS root volume (HIBERNATION_ROOT_DEVICE's source).
            block_device_mappings=(
                [
                    aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                        device_name=HIBERNATION_ROOT_DEVICE,
                        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                            encrypted="true",
                            volume_size=HIBERNATION_ROOT_GIB,
                            volume_type="gp3",
                            delete_on_termination="true",
                        ),
                    )
                ]
                if hibernated
                else None
            ),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                for kind in ("instance", "volume")
            ],
            update_default_version=True,
            tags=tags,
            opts=child,
        )
        warm_pool = None
        # A 0% mirror has nothing to keep warm.
        if plan.keep_warm_pool and plan.warm_state is not None and plan.size > 0:
            warm_pool = aws.autoscaling.GroupWarmPoolArgs(
                pool_state=_WARM_POOL_STATE[plan.warm_state],
                min_size=plan.warm_size,
                # Prepared capacity counts in-service plus warm instances: capping it at the mirror
                # size keeps exactly that many instances whether the mirror is paused or active.
                max_group_prepared_capacity=plan.size,
                # Instances scaled in when the mirror pauses go back to the pool, not away.
                instance_reuse_policy=aws.autoscaling.GroupWarmPoolInstanceReusePolicyArgs(
                    reuse_on_scale_in=True
                ),
            )
        ignore = ["desiredCapacity"] if plan.autoscaled else []
        self.group = aws.autoscaling.Group(
            child_name(name, "asg"),
            region=plan.region,
            min_size=plan.min_size,
            max_size=plan.max_size,
            desired_capacity=plan.desired,
            vpc_zone_identifiers=list(plan.network.subnet_ids),
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=self.launch_template.id, version="$Latest"
            ),
            warm_pool=warm_pool,
            tags=[
                aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
                for key, value in tags.items()
            ],
            # The AWS autoscaler changes desired capacity between updates; mirrorcast raises
            # min_size instead, so reverting desired would only fight the autoscaler.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
        )
        self.scaling_policy: aws.autoscaling.Policy | None = None
        if plan.autoscaled:
            self.scaling_policy = aws.autoscaling.Policy(
                child_name(name, "cpu"),
                region=plan.region,
                autoscaling_group_name=self.group.name,
                policy_type="TargetTrackingScaling",
                target_tracking_configuration=aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                    target_value=plan.autoscaler_target,
                    predefined_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type="ASGAverageCPUUtilization"
                    ),
                ),
                opts=child,
            )
        self.network = plan.network
        self.endpoint: pulumi.Output[str] = self.group.name
        self.register_outputs({"group_name": self.group.name})


class PrimaryGroup(AutoScalingGroup):
    """The primary's Auto Scaling group (``mirrorcast:aws:PrimaryGroup``)."""

    def __init__(
        self,
        name: str,
        *,
        plan: GroupPlan,
        rules: Sequence[SecurityRule],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("PrimaryGroup", name, plan=plan, rules=rules, tags=tags, opts=opts)


class MirrorGroup(AutoScalingGroup):
    """The mirror's Auto Scaling group (``mirrorcast:aws:MirrorGroup``)."""

    def __init__(
        self,
        name: str,
        *,
        plan: GroupPlan,
        rules: Sequence[SecurityRule],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("MirrorGroup", name, plan=plan, rules=rules, tags=tags, opts=opts)


class AlbBalancer(pulumi.ComponentResource):
    """An Application Load Balancer splitting traffic between two groups in one region.

    One target group per side; the listener forwards to both with the configured weights
    (ALB weights run 0-999; 0 sends a side nothing).

    :param name: the component's logical name.
    :param groups: the primary's and the mirror's groups.
    :param weights: each side's ALB weight.
    :param network: VPC and subnets (at least two availability zones) for the load balancer.
    :param region: the region of the VPC (and of both groups: an ALB is regional).
    :param port: listener and target port.
    :param health_check_path: HTTP path the target groups probe.
    :param certificate: ACM certificate ARN, required on port 443.
    :param tags: tags for every child.
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        groups: Mapping[Role, AutoScalingGroup],
        weights: Mapping[Role, ProductWeight],
        network: NetworkSpec,
        region: str,
        port: int,
        health_check_path: str,
        certificate: str | None,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("aws", "AlbBalancer"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags)
        https = port == 443
        protocol = "HTTPS" if https else "HTTP"
        self.security_group = aws.ec2.SecurityGroup(
            child_name(name, "sg"),
            region=region,
            description=f"mirrorcast load balancer {name}",
            vpc_id=network.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=port, to_port=port, cidr_blocks=["0.0.0.0/0"]
                )
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"]
                )
            ],
            tags=tags,
            opts=child,
        )
        lb_name = child_name(name, "alb")
        self.load_balancer = aws.lb.LoadBalancer(
            lb_name,
            name=_auto_or_explicit(lb_name, AWS_LB_NAME, salt="application"),
            region=region,
            load_balancer_type="application",
            internal=False,
            subnets=list(network.subnet_ids),
            security_groups=[self.security_group.id],
            tags=tags,
            opts=child,
        )
        self.target_groups: dict[Role, aws.lb.TargetGroup] = {}
        for role, group in groups.items():
            tg_name = child_name(name, role)
            target_group = aws.lb.TargetGroup(
                tg_name,
                # A target group is replaced when its port, protocol or VPC changes; those are
                # in the salt so the replacement gets a new explicit name.
                name=_auto_or_explicit(
                    tg_name, AWS_LB_NAME, salt=f"{port}/{protocol}/{group.network.vpc_id}"
                ),
                region=region,
                port=port,
                protocol=protocol,
                vpc_id=group.network.vpc_id,
                # Probe the way traffic arrives: an HTTPS target answers plain HTTP with a TLS
                # error, and the health check defaults to HTTP on the traffic port.
                health_check=aws.lb.TargetGroupHealthCheckArgs(
                    path=health_check_path, protocol=protocol, port="traffic-port"
                ),
                tags=tags,
                opts=child,
            )
            aws.autoscaling.Attachment(
                child_name(name, f"{role}-attach"),
                region=region,
                autoscaling_group_name=group.group.name,
                lb_target_group_arn=target_group.arn,
                opts=child,
            )
            self.target_groups[role] = target_group
        self.listener = aws.lb.Listener(
            child_name(name, "listener"),
            region=region,
            load_balancer_arn=self.load_balancer.arn,
            port=port,
            protocol=protocol,
            certificate_arn=certificate if https else None,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="forward",
                    forward=aws.lb.ListenerDefaultActionForwardArgs(
                        target_groups=[
                            aws.lb.ListenerDefaultActionForwardTargetGroupArgs(
                                arn=target_group.arn, weight=weights[role].weight
                            )
                            for role, target_group in self.target_groups.items()
                        ]
                    ),
                )
            ],
            tags=tags,
            opts=child,
        )
        self.endpoint: pulumi.Output[str] = self.load_balancer.dns_name
        self.register_outputs({"endpoint": self.endpoint})


class NlbFront(pulumi.ComponentResource):
    """A Network Load Balancer in front of one group, so DNS can weight it (TCP passthrough).

    :param name: the component's logical name.
    :param group: the group behind it.
    :param port: the TCP port forwarded and health-checked.
    :param tags: tags for every child.
    :param opts: resource options (the group's regional provider).
    """

    def __init__(
        self,
        name: str,
        *,
        group: AutoScalingGroup,
        port: int,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("aws", "NlbFront"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags)
        region = group.region
        lb_name = child_name(name, "nlb")
        self.load_balancer = aws.lb.LoadBalancer(
            lb_name,
            name=_auto_or_explicit(lb_name, AWS_LB_NAME, salt="network"),
            region=region,
            load_balancer_type="network",
            internal=False,
            subnets=list(group.network.subnet_ids),
            tags=tags,
            opts=child,
        )
        tg_name = child_name(name, "tg")
        self.target_group = aws.lb.TargetGroup(
            tg_name,
            name=_auto_or_explicit(tg_name, AWS_LB_NAME, salt=f"{port}/TCP/{group.network.vpc_id}"),
            region=region,
            port=port,
            protocol="TCP",
            vpc_id=group.network.vpc_id,
            health_check=aws.lb.TargetGroupHealthCheckArgs(protocol="TCP"),
            tags=tags,
            opts=child,
        )
        aws.autoscaling.Attachment(
            child_name(name, "attach"),
            region=region,
            autoscaling_group_name=group.group.name,
            lb_target_group_arn=self.target_group.arn,
            opts=child,
        )
        aws.lb.Listener(
            child_name(name, "listener"),
            region=region,
            load_balancer_arn=self.load_balancer.arn,
            port=port,
            protocol="TCP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="forward", target_group_arn=self.target_group.arn
                )
            ],
            tags=tags,
            opts=child,
        )
        self.dns_endpoint = DnsEndpoint(
            cloud=Cloud.aws,
            kind="hostname",
            address=self.load_balancer.dns_name,
            alias_zone_id=self.load_balancer.zone_id,
        )
        self.register_outputs({"endpoint": self.load_balancer.dns_name})


class AuroraGlobalDatabase(pulumi.ComponentResource):
    """An Aurora global database: a writer cluster by the primary, a secondary by the mirror.

    :param name: the component's logical name.
    :param spec: engine, version, instance class and whether to replicate.
    :param primary_network: subnets for the writer's subnet group.
    :param mirror_network: subnets for the secondary's subnet group.
    :param primary_region: the writer's region.
    :param mirror_region: the secondary's region.
    :param password: the master password (a Pulumi secret).
    :param mirror_provider: the provider for the mirror's region (``None``: the default one).
    :param tags: tags for every child (the global cluster too: it is billed and policy-checked).
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        spec: DatabaseSpec,
        primary_network: NetworkSpec,
        mirror_network: NetworkSpec,
        primary_region: str,
        mirror_region: str,
        password: pulumi.Input[str],
        mirror_provider: aws.Provider | None,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("aws", "AuroraGlobalDatabase"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Each resource also names its region: with provider=None a child would inherit the
        # parent's (the primary's) provider, and the mirror's subnet group would be built in the
        # primary's region from the mirror's subnets.
        mirror_opts = pulumi.ResourceOptions(parent=self, provider=mirror_provider)
        tags = dict(tags)
        engine = _AURORA_ENGINE[spec.engine]
        self.global_cluster: aws.rds.GlobalCluster | None = None
        if spec.replica:
            self.global_cluster = aws.rds.GlobalCluster(
                child_name(name, "global"),
                region=primary_region,
                # Never auto-named, so unique per stack here; lowercase and without "--" as
                # RDS identifiers must be.
                global_cluster_identifier=_explicit_name(
                    child_name(name, "global"), RDS_IDENTIFIER
                ),
                engine=engine,
                engine_version=spec.engine_version,
                storage_encrypted=True,
                tags=tags,
                opts=child,
            )
        primary_subnets_name = child_name(name, "primary-subnets")
        primary_subnets = aws.rds.SubnetGroup(
            primary_subnets_name,
            name=_auto_or_explicit(primary_subnets_name, RDS_SUBNET_GROUP),
            region=primary_region,
            subnet_ids=list(primary_network.subnet_ids),
            tags=tags,
            opts=child,
        )
        primary_name = child_name(name, "primary")
        self.primary_cluster = aws.rds.Cluster(
            primary_name,
            cluster_identifier=_auto_or_explicit(primary_name, RDS_IDENTIFIER),
            region=primary_region,
            engine=engine,
            engine_version=spec.engine_version,
            global_cluster_identifier=self.global_cluster.id if self.global_cluster else None,
            db_subnet_group_name=primary_subnets.name,
            master_username="mirrorcast",
            master_password=password,
            storage_encrypted=True,
            skip_final_snapshot=False,
            # The subnet group's name carries Pulumi's random suffix (or the stack's hash), and
            # a recreated database gets a new subnet group: the snapshot a deleted database
            # leaves never blocks the next one, and two stacks never share a name.
            final_snapshot_identifier=primary_subnets.name.apply(_final_snapshot_identifier),
            tags=tags,
            opts=child,
        )
        primary_instance_name = child_name(name, "primary-1")
        self.primary_instance = aws.rds.ClusterInstance(
            primary_instance_name,
            identifier=_auto_or_explicit(primary_instance_name, RDS_IDENTIFIER),
            region=primary_region,
            cluster_identifier=self.primary_cluster.id,
            instance_class=spec.instance_class,
            engine=engine,
            engine_version=spec.engine_version,
            tags=tags,
            opts=child,
        )
        self.secondary_cluster: aws.rds.Cluster | None = None
        if self.global_cluster is not None:
            mirror_subnets_name = child_name(name, "mirror-subnets")
            mirror_subnets = aws.rds.SubnetGroup(
                mirror_subnets_name,
                name=_auto_or_explicit(mirror_subnets_name, RDS_SUBNET_GROUP),
                region=mirror_region,
                subnet_ids=list(mirror_network.subnet_ids),
                tags=tags,
                opts=mirror_opts,
            )
            mirror_name = child_name(name, "mirror")
            # A secondary can join only once the writer has an instance.
            self.secondary_cluster = aws.rds.Cluster(
                mirror_name,
                cluster_identifier=_auto_or_explicit(mirror_name, RDS_IDENTIFIER),
                region=mirror_region,
                engine=engine,
                engine_version=spec.engine_version,
                global_cluster_identifier=self.global_cluster.id,
                db_subnet_group_name=mirror_subnets.name,
                storage_encrypted=True,
                skip_final_snapshot=True,
                tags=tags,
                opts=pulumi.ResourceOptions.merge(
                    mirror_opts, pulumi.ResourceOptions(depends_on=[self.primary_instance])
                ),
            )
            mirror_instance_name = child_name(name, "mirror-1")
            aws.rds.ClusterInstance(
                mirror_instance_name,
                identifier=_auto_or_explicit(mirror_instance_name, RDS_IDENTIFIER),
                region=mirror_region,
                cluster_identifier=self.secondary_cluster.id,
                instance_class=spec.instance_class,
                engine=engine,
                engine_version=spec.engine_version,
                tags=tags,
                opts=mirror_opts,
            )
        self.register_outputs({"writer_endpoint": self.primary_cluster.endpoint})


def _final_snapshot_identifier(subnet_group: str) -> str:
    """``<subnet group>-final`` made a valid snapshot identifier (letters, digits, single ``-``)."""
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9]+", "-", subnet_group)).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"mc-{cleaned}"
    return f"{cleaned[:248].rstrip('-')}-final"


# --------------------------------------------------------------------------- backend


def _elb_ids(
    load_balancer: aws.lb.LoadBalancer, target_group: aws.lb.TargetGroup
) -> dict[str, pulumi.Output[str]]:
    """The CloudWatch names of a side's load balancer and target group.

    AWS/NetworkELB and AWS/ApplicationELB metrics take the final portion of each ARN as their
    ``LoadBalancer`` (``net/<name>/<id>``, ``app/<name>/<id>``) and ``TargetGroup``
    (``targetgroup/<name>/<id>``) dimensions
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-cloudwatch-metrics.html);
    pulumi_aws exposes exactly that as ``arn_suffix`` ("ARN suffix for use with CloudWatch
    Metrics", pulumi_aws/lb/load_balancer.py and target_group.py).
    """
    return {"load_balancer": load_balancer.arn_suffix, "target_group": target_group.arn_suffix}


class AwsBackend:
    """Declares one pool's AWS pieces (``infra.clouds.CloudBackend``).

    A side outside the stack's ``aws:region`` gets an explicit provider, one per region and
    pool, shared by the side, the balancer and the database there.
    """

    balancer_kinds = frozenset({BalancerKind.alb, BalancerKind.route53})
    # An NLB has no address of its own to publish: DNS reaches it by name (a Route 53 alias).
    dns_front: ClassVar[Literal["ip", "hostname"]] = "hostname"

    @classmethod
    def problems(
        cls, *, name: str, pool: PoolSpec, config: MirrorcastConfig, secrets: StackSecrets
    ) -> list[str]:
        problems: list[str] = []
        if pool.balancer.kind is BalancerKind.alb:
            problems.extend(certificate_problem(name, pool))
        database = pool.sync.database
        if database is None or pool.primary.cloud is not Cloud.aws:
            return problems
        if not secrets.database_password:
            problems.extend(
                password_problem(
                    name,
                    cloud=Cloud.aws,
                    secret=f"{SECRETS_NAMESPACE}:{DATABASE_PASSWORD_KEY}",
                )
            )
        if database.replica and pool.mirror_region == pool.primary.region:
            problems.append(
                f"pools.{name}.sync.database.replica: an Aurora global database needs its "
                "secondary in another region, but the mirror shares the primary's region; "
                "set replica: false (add readers to the writer cluster instead)"
            )
        return problems

    def __init__(self, *, pool: PoolContext) -> None:
        self._pool = pool
        self._providers: dict[str, aws.Provider] = {}

    def _provider(self, region: str) -> aws.Provider | None:
        if region == self._pool.default_aws_region:
            return None
        if region not in self._providers:
            self._providers[region] = aws.Provider(
                child_name(self._pool.name, f"aws-{region}"),
                region=region,
                opts=pulumi.ResourceOptions(parent=self._pool.parent),
            )
        return self._providers[region]

    @staticmethod
    def _side_provider(side: Side) -> aws.Provider | None:
        """The AWS provider of a side on AWS; ``None`` for the default one or another cloud."""
        provider = side.provider if side.cloud is Cloud.aws else None
        assert provider is None or isinstance(provider, aws.Provider)
        return provider

    def _opts(self, provider: pulumi.ProviderResource | None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self._pool.parent, providers=[provider] if provider is not None else None
        )

    def side(self, *, plan: GroupPlan) -> Side:
        pool = self._pool
        side_name = child_name(pool.name, plan.role)
        provider = self._provider(plan.region)
        opts = self._opts(provider)
        tags = resource_tags(pool.tags, pool=pool.name, role=plan.role)
        group_type = PrimaryGroup if plan.role == "primary" else MirrorGroup
        group = group_type(
            side_name, plan=plan, rules=pool.spec.sync.security_rules, tags=tags, opts=opts
        )
        # CloudWatch keys EC2 metrics on the group's name (dimension AutoScalingGroupName).
        ids = {"autoscaling_group": group.group.name}
        if not pool.spec.balancer.kind.dns_level:
            return Side(plan.role, plan.cloud, group, group.endpoint, provider=provider, ids=ids)
        nlb = NlbFront(
            child_name(side_name, "front"),
            group=group,
            port=pool.spec.balancer.port,
            tags=tags,
            opts=opts,
        )
        return Side(
            plan.role,
            plan.cloud,
            group,
            nlb.load_balancer.dns_name,
            nlb.dns_endpoint,
            provider=provider,
            ids={**ids, **_elb_ids(nlb.load_balancer, nlb.target_group)},
        )

    def shared(self, *, sides: Sequence[Side]) -> None:
        """AWS sides share nothing: each has its own security group."""

    def balancer(self, *, kind: BalancerKind, sides: Mapping[Role, Side]) -> pulumi.Output[str]:
        pool = self._pool
        spec = pool.spec
        name = child_name(pool.name, "balancer")
        weights = pool_weights(spec)
        if kind is BalancerKind.alb:
            primary, mirror = sides["primary"].group, sides["mirror"].group
            assert isinstance(primary, AutoScalingGroup) and isinstance(mirror, AutoScalingGroup)
            alb = AlbBalancer(
                name,
                groups={"primary": primary, "mirror": mirror},
                weights=weights,
                network=spec.primary.network,
                region=spec.primary.region,
                port=spec.balancer.port,
                health_check_path=spec.balancer.health_check_path,
                certificate=spec.balancer.certificate,
                tags=resource_tags(pool.tags, pool=pool.name, role="balancer"),
                opts=self._opts(sides["primary"].provider),
            )
            for role, side in sides.items():
                side.ids.update(_elb_ids(alb.load_balancer, alb.target_groups[role]))
            return alb.endpoint
        assert kind is BalancerKind.route53, f"{kind} is not an AWS balancer"
        return Route53Weighted(
            name,
            dns=dns_section(spec),
            endpoints=dns_endpoints(sides),
            weights=weights,
            opts=pulumi.ResourceOptions(parent=pool.parent),
        ).endpoint

    def database(self, *, sides: Mapping[Role, Side]) -> None:
        pool = self._pool
        spec = pool.spec
        assert spec.sync.database is not None
        assert pool.database_password is not None, "checked before declaring"
        AuroraGlobalDatabase(
            child_name(pool.name, "db"),
            spec=spec.sync.database,
            primary_network=spec.primary.network,
            mirror_network=spec.mirror_network,
            primary_region=spec.primary.region,
            mirror_region=spec.mirror_region,
            password=pool.database_password,
            mirror_provider=self._side_provider(sides["mirror"]),
            tags=resource_tags(pool.tags, pool=pool.name, role="database"),
            opts=self._opts(sides["primary"].provider),
        )


CLOUDS.register(Cloud.aws, AwsBackend)
