"""A metric's dimensions name deployed resources through the stack's outputs.

The multicloud example's failover rule reads the primary NLB target group's health from
CloudWatch, whose ``TargetGroup`` and ``LoadBalancer`` dimensions are the final portions of the
two ARNs (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-cloudwatch-metrics.html).
Both resources are auto-named at deploy time, so the stack writes
``${outputs.pools.$pool.ids.primary.target_group}`` and the driver reads the value from the
stack's outputs. Here the program's AWS side is created in moto's server, its ``pools`` output
is read with moto's own ARNs in it, CloudWatch data is put under the dimensions AWS would
publish, and the driver's collection reads it back through the product's CloudWatch source.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_apply import create_in_moto, elb_arn_suffix
from pulumi_harness import ProgramRun, stack_config

from driver.collect import collect_history
from driver.stack_outputs import resolve_output_references
from infra.config import ConfigError, config_from_mapping

pytestmark = pytest.mark.server  # moto's server on a loopback port

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _multicloud(endpoint: str) -> dict[str, Any]:
    config = copy.deepcopy(stack_config("multicloud"))
    config["mirrorcast:metrics"] = {
        "type": "cloudwatch",
        "region": REGION,
        "endpoint_url": endpoint,
        "period": "1m",
    }
    return config


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for moto's server, which the product's CloudWatch source reads from
    the environment like boto3 does (never real ones)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def deployed(
    moto_account: str, example_runs: dict[str, ProgramRun], aws_credentials: None
) -> dict[str, Any]:
    """The multicloud program's ``pools`` output once its AWS side exists in moto."""
    outputs: dict[str, Any] = {}
    create_in_moto(
        example_runs["multicloud"],
        config_from_mapping(stack_config("multicloud")),
        endpoint=moto_account,
        default_region=REGION,
        deployed=outputs,
    )
    return outputs


def _put(endpoint: str, name: str, dimensions: dict[str, str], values: list[float]) -> None:
    _client(endpoint, "cloudwatch").put_metric_data(
        Namespace="AWS/NetworkELB",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Timestamp": NOW - timedelta(minutes=len(values) - i),
                "Value": value,
                "Unit": "Count",
            }
            for i, value in enumerate(values)
        ],
    )


class TestTheProgramExportsWhatCloudWatchNamesTheResources:
    def test_the_primarys_ids_are_the_arn_suffixes_of_its_real_nlb_and_target_group(
        self, moto_account: str, deployed: dict[str, Any]
    ) -> None:
        elbv2 = _client(moto_account, "elbv2")
        (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
        (group,) = elbv2.describe_target_groups()["TargetGroups"]
        ids = deployed["checkout"]["ids"]["primary"]
        assert ids["load_balancer"] == elb_arn_suffix(balancer["LoadBalancerArn"])
        # AWS writes net/<name>/<id> for an NLB; moto writes app/ for every type
        # (moto/elbv2/utils.py make_arn_for_load_balancer), so only the type is not checked.
        lb_id = balancer["LoadBalancerArn"].rsplit("/", 1)[1]
        assert ids["load_balancer"].split("/", 1)[1] == f"{balancer['LoadBalancerName']}/{lb_id}"
        assert balancer["Type"] == "network"
        assert (
            ids["target_group"]
            == f"targetgroup/{group['TargetGroupName']}/"
            + (group["TargetGroupArn"].rsplit("/", 1)[1])
        )
        (asg,) = _client(moto_account, "autoscaling").describe_auto_scaling_groups()[
            "AutoScalingGroups"
        ]
        assert ids["autoscaling_group"] == asg["AutoScalingGroupName"]
        # The GCP mirror is reached without an AWS load balancer: no AWS ids (its own GCP
        # ones are tests/infra/test_gcp_ids_from_outputs.py's).
        assert not {"autoscaling_group", "load_balancer", "target_group"} & set(
            deployed["checkout"]["ids"]["mirror"]
        )


class TestTheDriverCollectsWithTheDeployedNames:
    def test_the_failover_metrics_read_the_target_groups_health_from_cloudwatch(
        self, moto_account: str, deployed: dict[str, Any]
    ) -> None:
        ids = deployed["checkout"]["ids"]["primary"]
        # Put in the source's (sorted) order: moto matches a query's dimensions against the
        # data's by sorting both, with a Dimension.__lt__ that compares a value to a name
        # (moto/cloudwatch/models.py), so other orders miss; AWS treats them as a set.
        dims = {"LoadBalancer": ids["load_balancer"], "TargetGroup": ids["target_group"]}
        _put(moto_account, "HealthyHostCount", dims, [8, 8, 3, 0])
        _put(moto_account, "UnHealthyHostCount", dims, [0, 0, 5, 8])
        # Another target group's data under the same metric names must not be read.
        _put(moto_account, "HealthyHostCount", {**dims, "TargetGroup": "targetgroup/x/1"}, [99])
        config = config_from_mapping(_multicloud(moto_account))
        resolved = resolve_output_references(config, outputs={"pools": deployed}, stack="mc")
        assert resolved.unresolved == {}
        # The plan's config keeps the references: only the collection reads the values.
        stack_dims = config.pools["checkout"].metrics["healthy_hosts"].dimensions
        assert stack_dims["TargetGroup"] == "${outputs.pools.$pool.ids.primary.target_group}"
        collected = collect_history(resolved.config, root=ROOT, now=NOW)
        history = collected.history["checkout"]
        assert history["healthy_hosts"].tolist() == [8, 8, 3, 0]
        assert history["unhealthy_hosts"].tolist() == [0, 0, 5, 8]

    def test_an_output_the_stack_lacks_names_stack_pool_metric_and_output(
        self, moto_account: str, deployed: dict[str, Any]
    ) -> None:
        # A stack deployed by a program that exported no ids (the one before this change).
        older = {"checkout": {k: v for k, v in deployed["checkout"].items() if k != "ids"}}
        config = config_from_mapping(_multicloud(moto_account))
        resolved = resolve_output_references(config, outputs={"pools": older}, stack="mc")
        assert resolved.unresolved[("checkout", "healthy_hosts")] == (
            "stack mc, pool checkout, metric healthy_hosts: dimension TargetGroup refers to "
            "stack output pools.checkout.ids.primary.target_group, which the stack's outputs "
            "do not have (no 'ids' under pools.checkout, which has endpoints, mirror_capacity, "
            "mirror_running, mirror_state, placement, primary_capacity, product_weights, "
            "weights)"
        )
        assert set(resolved.unresolved) == {
            ("checkout", "cpu"),
            ("checkout", "healthy_hosts"),
            ("checkout", "unhealthy_hosts"),
        }
        collected = collect_history(resolved.config, root=ROOT, now=NOW, skip=resolved.unresolved)
        assert "healthy_hosts" not in collected.history["checkout"]
        assert any(
            line.startswith("checkout.healthy_hosts: not collected: stack mc, pool checkout")
            for line in collected.degraded
        )


def test_a_malformed_reference_is_refused_when_the_stack_loads() -> None:
    config = copy.deepcopy(stack_config("multicloud"))
    metrics = config["mirrorcast:pools"]["checkout"]["metrics"]
    metrics["healthy_hosts"]["dimensions"]["TargetGroup"] = "${output.pools.checkout.ids}"
    with pytest.raises(ConfigError, match=r"healthy_hosts.dimensions.*not a stack output ref"):
        config_from_mapping(config)


def test_an_alb_pools_sides_name_the_alb_and_each_sides_own_target_group() -> None:
    # Under mocks: each id is the arn_suffix of the resource it names (the mock value names it).
    from pulumi_harness import DB_SECRET, run_program
    from test_infra_aws_in_moto import _alb_demo

    ids = run_program(_alb_demo(), secrets=DB_SECRET).pools["web"]["ids"]
    suffix = "arnsuffix:mock:aws:lb/"
    for role in ("primary", "mirror"):
        assert ids[role]["load_balancer"] == f"{suffix}loadBalancer:LoadBalancer:web-balancer-alb"
        assert ids[role]["target_group"] == f"{suffix}targetGroup:TargetGroup:web-balancer-{role}"
        assert ids[role]["autoscaling_group"].startswith(f"web-{role}-asg-")


class TestAnAzureStackReadsItsScaleSetFromTheOutputs:
    """The azure-api example's source names the primary's scale set, auto-named at deploy
    time (``api-primary-vmss-<7>``), as ``${outputs.pools.$pool.ids.primary.scale_set}``."""

    def test_the_program_exports_each_scale_sets_resource_id(
        self, example_runs: dict[str, ProgramRun]
    ) -> None:
        ids = example_runs["azure-api"].pools["api"]["ids"]
        # The mocks answer a resource's id as "<logical name>-id" (pulumi_harness.py).
        assert ids == {
            "primary": {"scale_set": "api-primary-vmss-id"},
            "mirror": {"scale_set": "api-mirror-vmss-id"},
        }

    def test_each_metric_is_read_from_the_deployed_scale_set(
        self, example_runs: dict[str, ProgramRun]
    ) -> None:
        from forecasting.sources import AzureMonitorMetricSource

        config = config_from_mapping(stack_config("azure-api"))
        deployed_id = (
            "/subscriptions/0000/resourceGroups/api-prod/providers/"
            "Microsoft.Compute/virtualMachineScaleSets/api-primary-vmss-3f9a2c1"
        )
        outputs = copy.deepcopy(example_runs["azure-api"].pools)
        outputs["api"]["ids"]["primary"]["scale_set"] = deployed_id
        resolved = resolve_output_references(config, outputs={"pools": outputs}, stack="az")
        assert resolved.unresolved == {}
        assert isinstance(resolved.config.metrics, type(config.metrics))
        source = AzureMonitorMetricSource(resolved.config.metrics, client=object())
        for metric in ("cpu", "available"):
            spec = resolved.config.pools["api"].metrics[metric]
            arguments = source.query_for(pool="api", metric=metric, spec=spec)
            assert arguments["resource_uri"] == deployed_id

    def test_without_outputs_every_metric_of_the_pool_says_which_output_it_needs(self) -> None:
        config = config_from_mapping(stack_config("azure-api"))
        resolved = resolve_output_references(config, outputs=None, stack="az")
        assert resolved.unresolved[("api", "available")] == (
            "stack az, pool api, metric available: metrics.resource_id refers to stack output "
            "pools.api.ids.primary.scale_set, but the stack has no outputs yet (has it been "
            "deployed with `pulumi up`?)"
        )
        assert set(resolved.unresolved) == {("api", "cpu"), ("api", "available")}
