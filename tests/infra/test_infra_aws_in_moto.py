"""What the program declares for AWS, created in moto's server from the captured inputs.

moto implements AWS's API validation (name lengths, subnets per region, warm pools, weighted
forwards), so a resource AWS would refuse fails here with AWS's own error, not a mock's "ok".
"""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
import requests
from aws_apply import create_in_moto
from botocore.exceptions import ClientError
from config_strategies import SECRETS, stack_configs
from hypothesis import HealthCheck, Phase, given, settings
from pulumi_harness import DB_SECRET, ProgramRun, run_program, stack_config

from infra.clouds import declarability_problems
from infra.config import ConfigError, config_from_mapping

pytestmark = pytest.mark.server  # moto's server on a loopback port


def _client(endpoint: str, service: str, region: str) -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _create(
    config: dict[str, Any], run: ProgramRun, endpoint: str, **kwargs: Any
) -> list[tuple[str, str]]:
    return create_in_moto(
        run,
        config_from_mapping(config),
        endpoint=endpoint,
        default_region=config.get("aws:region"),
        **kwargs,
    )


def _alb_demo() -> dict[str, Any]:
    config = copy.deepcopy(stack_config("demo"))
    pool = config["mirrorcast:pools"]["web"]
    pool["mirror"]["location"] = {}
    del pool["mirror"]["network"]
    pool["mirror"]["paused"] = {"strategy": "warm_pool", "instance_state": "hibernated"}
    pool["balancer"] = {
        "kind": "alb",
        "port": 443,
        "weights": {"primary": 100, "mirror": 0},
        "certificate": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
    }
    return config


# --------------------------------------------------------------------------- the stacks build


def test_the_demo_stack_builds_in_moto_with_its_warm_pool_and_weighted_records(
    moto_account: str, example_runs: dict[str, ProgramRun]
) -> None:
    created = _create(stack_config("demo"), example_runs["demo"], moto_account)

    assert ("aws:route53/record:Record", "web-balancer-mirror") in created
    mirror = _client(moto_account, "autoscaling", "us-west-2")
    (group,) = mirror.describe_auto_scaling_groups()["AutoScalingGroups"]
    assert group["AutoScalingGroupName"].startswith("web-mirror-asg-")
    assert (group["MinSize"], group["DesiredCapacity"]) == (0, 0)
    warm = mirror.describe_warm_pool(AutoScalingGroupName=group["AutoScalingGroupName"])
    assert warm["WarmPoolConfiguration"]["PoolState"] == "Stopped"
    assert warm["WarmPoolConfiguration"]["MinSize"] == 2
    route53 = _client(moto_account, "route53", "us-east-1")
    (zone,) = route53.list_hosted_zones()["HostedZones"]
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    weights = {r["SetIdentifier"]: r["Weight"] for r in records if "SetIdentifier" in r}
    assert weights == {"primary": 255, "mirror": 0}


def test_the_multicloud_stacks_aws_side_builds_in_moto(
    moto_account: str, example_runs: dict[str, ProgramRun]
) -> None:
    created = _create(stack_config("multicloud"), example_runs["multicloud"], moto_account)
    assert ("aws:lb/targetGroup:TargetGroup", "checkout-primary-front-tg") in created
    elbv2 = _client(moto_account, "elbv2", "eu-west-1")
    (group,) = elbv2.describe_target_groups()["TargetGroups"]
    assert len(group["TargetGroupName"]) <= 32 and group["Protocol"] == "TCP"


def test_an_https_alb_forwards_by_weight_to_https_health_checked_groups(moto_account: str) -> None:
    config = _alb_demo()
    run = run_program(config, secrets=DB_SECRET)
    _create(config, run, moto_account)

    elbv2 = _client(moto_account, "elbv2", "us-east-1")
    groups = elbv2.describe_target_groups()["TargetGroups"]
    assert {(g["Protocol"], g["HealthCheckProtocol"]) for g in groups} == {("HTTPS", "HTTPS")}
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    forward = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    assert sorted(g["Weight"] for g in forward) == [0, 999]
    ec2 = _client(moto_account, "ec2", "us-east-1")
    templates = ec2.describe_launch_templates()["LaunchTemplates"]
    mirror = next(t for t in templates if t["LaunchTemplateName"].startswith("web-mirror-lt"))
    data = ec2.describe_launch_template_versions(LaunchTemplateId=mirror["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    assert data["HibernationOptions"] == {"Configured": True}
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True


# --------------------------------------------------------------------------- AWS refuses


def test_moto_refuses_the_33_character_auto_name_the_old_program_gave_a_target_group(
    moto_account: str, example_runs: dict[str, ProgramRun]
) -> None:
    # Without the explicit name the provider would auto-name checkout-primary-front-tg-xxxxxxx.
    run = example_runs["multicloud"]
    resources = copy.deepcopy(run.resources)
    for resource in resources:
        if resource.type == "aws:lb/targetGroup:TargetGroup":
            resource.inputs.pop("name")
    with pytest.raises(ClientError, match="32"):
        _create(stack_config("multicloud"), run, moto_account, resources=resources)


def test_moto_refuses_a_load_balancer_built_in_the_wrong_region_from_the_mirrors_subnets(
    moto_account: str, example_runs: dict[str, ProgramRun]
) -> None:
    # What defect 2 did to the Aurora mirror: a resource inheriting the primary's region.
    run = example_runs["demo"]
    resources = copy.deepcopy(run.resources)
    for resource in resources:
        if resource.name == "web-mirror-front-nlb":
            resource.inputs["region"] = "us-east-1"
    with pytest.raises(ClientError):
        _create(stack_config("demo"), run, moto_account, resources=resources)


# --------------------------------------------------------------------------- generated configs


@settings(
    max_examples=12,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=stack_configs())
def test_every_accepted_configs_aws_side_builds_in_moto(
    moto_server: str, config: dict[str, Any]
) -> None:
    try:
        model = config_from_mapping(config)
    except ConfigError:
        return
    if declarability_problems(model) or "aws" not in {
        model.pools[name].primary.cloud.value for name in model.pools
    } | {model.pools[name].mirror_cloud.value for name in model.pools}:
        return
    # A reset of a long-lived server can take over 10 s when the machine is loaded (seen at
    # load 35 on 2 cores); it is loopback, so a generous deadline costs nothing when quiet.
    requests.post(f"{moto_server}/moto-api/reset", timeout=60)
    run = run_program(config, secrets=SECRETS)
    assert _create(config, run, moto_server)
