"""AWS through boto3: Auto Scaling groups, their warm pools, ELBv2 target health, Route 53.

A pool side is the Auto Scaling group infra tags ``mirrorcast-pool=<pool>`` and
``mirrorcast-role=<role>`` (plus the stack's own ``tags``, so two stacks with the same pool
name in one account are told apart by a tag of their own; several matches fail loudly).
From the group:

- instances by lifecycle state (``describe_auto_scaling_groups``) and the warm pool's
  (``describe_warm_pool``: ``Warmed:Stopped``, ``Warmed:Hibernated``, ...);
- the health of its instances in every target group attached to it (``describe_target_health``);
- the launch template version it launches (``describe_launch_template_versions``): image,
  instance type, security groups, whose inbound rules come from ``describe_security_groups``.

For a ``route53`` balancer the weighted records of ``balancer.dns`` give the live weights and,
where a record has a health check, its status (``get_health_check_status``).

Credentials and endpoints come from boto3's standard chain (environment, profile, instance
role; ``AWS_ENDPOINT_URL`` for a local endpoint such as moto).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

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
)
from infra.config import BalancerKind, PoolSpec

__all__ = ["AwsObserver"]

logger = logging.getLogger(__name__)

_RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
    }
)

# Lifecycle states of the Auto Scaling API (botocore's autoscaling service model, shape
# LifecycleState): which count as serving, as on their way, and as warm for the mirror.
_SERVING = frozenset({"InService"})
_STARTING_PREFIXES = ("Pending", "Warmed:Pending")
_WARM = frozenset({"Warmed:Stopped", "Warmed:Hibernated", "Warmed:Running"})


class AwsObserver:
    """Reads pool sides on AWS.

    :param tags: the stack's ``tags``; every one must be on the group too.
    :param timeout: per-request connect and read timeout.
    :param session: a boto3 session; default the standard chain.
    """

    name = "aws"

    def __init__(
        self,
        *,
        tags: dict[str, str] | None = None,
        timeout: timedelta = timedelta(seconds=10),
        session: Any | None = None,
    ) -> None:
        self.tags = dict(tags or {})
        seconds = timeout.total_seconds()
        self._config = Config(
            connect_timeout=seconds,
            read_timeout=seconds,
            # The stack observer retries the whole side with tenacity; botocore's own retries stay
            # minimal so an unreachable endpoint is reported in seconds.
            retries={"max_attempts": 1, "mode": "standard"},
        )
        self._session = session
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        """A boto3 client for ``service`` in ``region``.

        Clients are cached for the process (building one loads the service model, which takes
        seconds on a busy host), per endpoint and access key so a changed environment gets a
        new one.
        """
        key = (service, region)
        if key not in self._clients:
            if self._session is not None:
                self._clients[key] = self._session.client(
                    service, region_name=region, config=self._config
                )
            else:
                self._clients[key] = _shared_client(service, region, self._config)
        return self._clients[key]

    # ------------------------------------------------------------------ one side

    def observe_side(self, *, pool: str, spec: PoolSpec, role: Role) -> SideObservation:
        region = spec.primary.region if role == "primary" else spec.mirror_region
        where = f"aws:{region} {pool}/{role}"
        with _translated(where):
            group = self._group(pool, role, region, where=where)
            name = group["AutoScalingGroupName"]
            states = Counter(str(i.get("LifecycleState", "?")) for i in group.get("Instances", []))
            states.update(self._warm_states(name, region))
            targets = self._targets(group, region)
            image, machine_type, group_ids = self._launch_config(group, region, where=where)
            rules = self._rules(group_ids, region) if group_ids is not None else None
        tags = {t.get("Key"): t.get("Value") for t in group.get("Tags", [])}
        return SideObservation(
            role=role,
            cloud="aws",
            region=region,
            group=name,
            desired=_int(group.get("DesiredCapacity")),
            min_size=_int(group.get("MinSize")),
            max_size=_int(group.get("MaxSize")),
            states=dict(sorted(states.items())),
            serving=sum(n for s, n in states.items() if s in _SERVING),
            starting=sum(n for s, n in states.items() if s.startswith(_STARTING_PREFIXES)),
            warm=sum(n for s, n in states.items() if s in _WARM),
            targets=dict(sorted(targets.items())) if targets is not None else None,
            healthy_targets=targets.get("healthy", 0) if targets is not None else None,
            image=image,
            machine_type=machine_type,
            app_version=tags.get(APP_VERSION_TAG),
            security_rules=rules,
        )

    def _group(self, pool: str, role: Role, region: str, *, where: str) -> dict[str, Any]:
        wanted = {POOL_TAG: pool, ROLE_TAG: role, **self.tags}
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in wanted.items()]
        paginator = self.client("autoscaling", region).get_paginator("describe_auto_scaling_groups")
        groups = [
            group
            for page in paginator.paginate(Filters=filters)
            for group in page.get("AutoScalingGroups", [])
        ]
        shown = ", ".join(f"{k}={v}" for k, v in wanted.items())
        if not groups:
            raise ObserveError(
                f"no Auto Scaling group is tagged {shown} (has the stack been deployed?)",
                where=where,
            )
        if len(groups) > 1:
            names = ", ".join(sorted(g["AutoScalingGroupName"] for g in groups))
            raise ObserveError(
                f"{len(groups)} Auto Scaling groups are tagged {shown} ({names}); give each stack "
                "a tag of its own in the stack's `tags` (for example stack: <name>)",
                where=where,
            )
        return groups[0]

    def _warm_states(self, name: str, region: str) -> Counter[str]:
        client = self.client("autoscaling", region)
        states: Counter[str] = Counter()
        token: str | None = None
        while True:
            # describe_warm_pool has no boto3 paginator; it pages with NextToken.
            args: dict[str, Any] = {"AutoScalingGroupName": name}
            if token:
                args["NextToken"] = token
            page = client.describe_warm_pool(**args)
            if page.get("WarmPoolConfiguration") is None and not page.get("Instances"):
                return states
            states.update(str(i.get("LifecycleState", "?")) for i in page.get("Instances", []))
            token = page.get("NextToken")
            if not token:
                return states

    def _targets(self, group: dict[str, Any], region: str) -> Counter[str] | None:
        arns = group.get("TargetGroupARNs") or []
        if not arns:
            return None
        ids = {i["InstanceId"] for i in group.get("Instances", []) if i.get("InstanceId")}
        client = self.client("elbv2", region)
        states: Counter[str] = Counter()
        for arn in arns:
            for entry in client.describe_target_health(TargetGroupArn=arn).get(
                "TargetHealthDescriptions", []
            ):
                target = entry.get("Target", {}).get("Id")
                # Only this group's instances: a target group may hold other targets too.
                if ids and target not in ids:
                    continue
                states[str(entry.get("TargetHealth", {}).get("State", "unknown"))] += 1
        return states

    def _launch_config(
        self, group: dict[str, Any], region: str, *, where: str
    ) -> tuple[str | None, str | None, list[str] | None]:
        template = group.get("LaunchTemplate") or (
            (group.get("MixedInstancesPolicy") or {})
            .get("LaunchTemplate", {})
            .get("LaunchTemplateSpecification")
        )
        if not template:
            return None, None, None
        args: dict[str, Any] = {"Versions": [str(template.get("Version") or "$Default")]}
        if template.get("LaunchTemplateId"):
            args["LaunchTemplateId"] = template["LaunchTemplateId"]
        else:
            args["LaunchTemplateName"] = template["LaunchTemplateName"]
        versions = (
            self.client("ec2", region)
            .describe_launch_template_versions(**args)
            .get("LaunchTemplateVersions", [])
        )
        if not versions:
            raise ObserveError(
                f"launch template {template} has no version {args['Versions'][0]}", where=where
            )
        data = versions[0].get("LaunchTemplateData", {})
        group_ids = list(data.get("SecurityGroupIds") or [])
        for interface in data.get("NetworkInterfaces") or []:
            group_ids.extend(interface.get("Groups") or [])
        return data.get("ImageId"), data.get("InstanceType"), group_ids

    def _rules(self, group_ids: list[str], region: str) -> tuple[str, ...]:
        if not group_ids:
            return ()
        rules: set[str] = set()
        answer = self.client("ec2", region).describe_security_groups(GroupIds=group_ids)
        for group in answer.get("SecurityGroups", []):
            for permission in group.get("IpPermissions", []):
                protocol = str(permission.get("IpProtocol", "-1"))
                low = permission.get("FromPort", -1)
                high = permission.get("ToPort", -1)
                for cidr in permission.get("IpRanges", []):
                    rules.add(f"{protocol} {low}-{high} {cidr.get('CidrIp')}")
                for cidr in permission.get("Ipv6Ranges", []):
                    rules.add(f"{protocol} {low}-{high} {cidr.get('CidrIpv6')}")
        return tuple(sorted(rules))

    # ------------------------------------------------------------------ balancer

    def observe_balancer(self, *, pool: str, spec: PoolSpec) -> BalancerObservation | None:
        """Route 53's weighted records for the pool (other AWS kinds: ``None``).

        An ALB's split sits in its listener; its per-side health is the target health read with
        each side, so only DNS weighting needs a read of its own.
        """
        if spec.balancer.kind is not BalancerKind.route53 or spec.balancer.dns is None:
            return None
        dns = spec.balancer.dns
        where = f"aws:route53 {pool}/balancer"
        name = dns.name if dns.name.endswith(".") else f"{dns.name}."
        weights: dict[str, int] = {}
        healthy: dict[str, bool | None] = {}
        with _translated(where):
            # Route 53 is global; its API lives in us-east-1.
            client = self.client("route53", "us-east-1")
            answer = client.list_resource_record_sets(
                HostedZoneId=dns.zone, StartRecordName=name, StartRecordType="A"
            )
            for record in answer.get("ResourceRecordSets", []):
                if record.get("Name") != name or record.get("SetIdentifier") not in (
                    "primary",
                    "mirror",
                ):
                    continue
                role = str(record["SetIdentifier"])
                weights[role] = int(record.get("Weight", 0))
                check = record.get("HealthCheckId")
                if check:
                    status = client.get_health_check_status(HealthCheckId=check)
                    reports = [
                        str(o.get("StatusReport", {}).get("Status", ""))
                        for o in status.get("HealthCheckObservations", [])
                    ]
                    # A checker's report starts "Success" or "Failure" (Route 53 API reference,
                    # GetHealthCheckStatus); the check is healthy when most checkers agree.
                    good = sum(r.startswith("Success") for r in reports)
                    healthy[role] = bool(reports) and good * 2 > len(reports)
                else:
                    healthy[role] = None
        if not weights:
            raise ObserveError(
                f"no weighted records primary/mirror named {name} in hosted zone {dns.zone}",
                where=where,
            )
        return BalancerObservation(weights=weights, healthy=healthy)


_SHARED: dict[tuple[str, ...], Any] = {}
_SHARED_LOCK = threading.Lock()


def _shared_client(service: str, region: str, config: Config) -> Any:
    key = (
        service,
        region,
        str(config.connect_timeout),
        str(config.read_timeout),
        os.environ.get("AWS_ENDPOINT_URL", ""),
        os.environ.get("AWS_PROFILE", ""),
        os.environ.get("AWS_ACCESS_KEY_ID", ""),
    )
    with _SHARED_LOCK:
        if key not in _SHARED:
            session = boto3.session.Session()
            # Credentials first, by botocore's own chain (the very call create_client makes:
            # environment, profiles and their SSO or process entries, container and instance
            # roles), which the client then reuses. Without any, no request could be signed and
            # the first call would raise NoCredentialsError anyway; building the client first
            # loads the service model and endpoint rules (about 0.1 s of CPU, most of a one-shot
            # cycle's observation here), and caching a client without credentials kept a
            # long-running driver blind after credentials appeared (a profile or instance role
            # that came up after the driver started). Nothing is cached: the next cycle asks again.
            if session.get_credentials() is None:
                raise NoCredentialsError()
            _SHARED[key] = session.client(service, region_name=region, config=config)
        return _SHARED[key]


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


class _translated(TranslatedErrors):
    """Turn botocore's exceptions into :class:`ObserveError` / :class:`ObserveUnavailable`."""

    def translate(self, exc: BaseException, *, where: str) -> None:
        if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
            raise ObserveUnavailable("no answer in time", where=where) from exc
        if isinstance(exc, EndpointConnectionError):
            endpoint = exc.kwargs.get("endpoint_url", "the endpoint")
            raise ObserveUnavailable(f"cannot connect to {endpoint}", where=where) from exc
        if isinstance(exc, NoCredentialsError):
            raise ObserveError(
                "no AWS credentials found (environment, profile or instance role)",
                where=where,
                cloud_wide=True,
            ) from exc
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            text = f"{exc.operation_name} {code}: {error.get('Message', '')}".strip()
            if code in _RETRYABLE_CODES:
                raise ObserveUnavailable(text, where=where, cloud_wide=False) from exc
            raise ObserveError(text, where=where) from exc
        if isinstance(exc, BotoCoreError):
            raise ObserveError(f"boto3 failed: {exc}", where=where) from exc
        return None
