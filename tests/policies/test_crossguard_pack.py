"""The CrossGuard pack's checks, called directly with realistic resource properties.

pulumi-policy pins protobuf 5.x and cannot share the main environment (protobuf 6.x), so the
checks are plain functions; the last test drives the real policies when pulumi_policy is
importable and skips with that reason otherwise.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from policy_builders import DEMO_STACK
from ruamel.yaml import YAML

from policies.crossguard import (
    PackSettings,
    check_capacity,
    check_cost_tags,
    check_region,
    check_stack_config,
    check_weights,
    load_settings,
)

SETTINGS, DEMO = load_settings(DEMO_STACK)


def _demo(**web: Any) -> dict[str, Any]:
    config = copy.deepcopy(DEMO)
    pool = config["mirrorcast:pools"]["web"]
    for dotted, value in web.items():
        node = pool
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return config


# --------------------------------------------------------------------------- the stack config


def test_the_demo_stack_passes_every_config_policy() -> None:
    assert check_stack_config(DEMO) == []
    assert SETTINGS.pool_max == {"web": 20}
    assert SETTINGS.required_tags == ("cost-center",)


@pytest.mark.parametrize("percent", [-5, 140, "half"])
def test_mirror_percentage_out_of_bounds_is_rejected(percent: object) -> None:
    violations = check_stack_config(_demo(mirror__percent=percent))
    assert any("pools.web.mirror.percent must be between 0 and 100" in v for v in violations)


def test_weights_all_zero_or_not_summing_to_100_are_rejected() -> None:
    zero = check_stack_config(_demo(balancer__weights={"primary": 0, "mirror": 0}))
    assert any("all zero" in v for v in zero)
    odd = check_stack_config(_demo(balancer__weights={"primary": 80, "mirror": 30}))
    assert any("must add up to 100" in v for v in odd)


def test_traffic_to_a_paused_mirror_is_rejected() -> None:
    violations = check_stack_config(_demo(balancer__weights={"primary": 70, "mirror": 30}))
    assert any("paused but balancer.weights.mirror is 30" in v for v in violations)


def test_capacity_beyond_the_configured_max_is_rejected() -> None:
    violations = check_stack_config(_demo(primary__capacity={"min": 2, "max": 20, "desired": 25}))
    assert violations == ["pools.web.primary.capacity.desired 25 exceeds the configured max 20"]


def test_regions_outside_the_allow_list_are_rejected() -> None:
    config = _demo()
    config["mirrorcast:policy"] = {"allowed_regions": ["us-east-1"]}
    violations = check_stack_config(config)
    assert violations == [
        "pools.web: region us-west-2 is not in policy.allowed_regions (us-east-1)"
    ]


def test_missing_cost_tags_are_rejected() -> None:
    config = _demo()
    config["mirrorcast:tags"] = {"owner": "platform-team"}
    assert check_stack_config(config) == [
        "mirrorcast:tags lacks the cost tag(s) cost-center (policy.required_tags)"
    ]


def test_every_shipped_stack_passes() -> None:
    for path in sorted(DEMO_STACK.parent.glob("Pulumi.*.yaml")):
        _, config = load_settings(path)
        assert check_stack_config(config) == [], path.name


# --------------------------------------------------------------------------- resources


def test_route53_weights_must_fit_0_to_255() -> None:
    record = {
        "zoneId": "Z0123456789ABCDEFGHIJ",
        "name": "www.example.com",
        "type": "CNAME",
        "setIdentifier": "mirror",
        # pulumi-aws's shape: weighted_routing_policies, a list of one policy.
        "weightedRoutingPolicies": [{"weight": 300}],
        "records": ["mirror-lb.us-west-2.elb.amazonaws.com"],
        "ttl": 60,
    }
    assert check_weights("aws:route53/record:Record", record) == [
        "weightedRoutingPolicies[0].weight is 300; route53 accepts whole weights 0-255"
    ]
    record["weightedRoutingPolicies"] = [{"weight": 128}]
    assert check_weights("aws:route53/record:Record", record) == []


def test_alb_forward_weights_must_fit_0_to_999_and_not_all_be_zero() -> None:
    listener = {
        "loadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123:loadbalancer/app/web/1",
        "port": 80,
        "defaultActions": [
            {
                "type": "forward",
                "forward": {
                    "targetGroups": [
                        {"arn": "arn:aws:...:targetgroup/primary/1", "weight": 0},
                        {"arn": "arn:aws:...:targetgroup/mirror/2", "weight": 0},
                    ]
                },
            }
        ],
    }
    assert check_weights("aws:lb/listener:Listener", listener) == [
        "defaultActions[0].forward.targetGroups: every weight is zero, so no backend would take traffic"
    ]
    listener["defaultActions"][0]["forward"]["targetGroups"][0]["weight"] = 1200
    assert check_weights("aws:lb/listener:Listener", listener) == [
        "defaultActions[0].forward.targetGroups[0].weight is 1200; alb accepts whole weights 0-999"
    ]


def test_traffic_manager_and_front_door_reject_weight_zero() -> None:
    endpoint = {
        "profileName": "api-tm",
        "resourceGroupName": "rg-api",
        "endpointType": "AzureEndpoints",
        "weight": 0,
        "endpointStatus": "Disabled",
    }
    assert check_weights("azure-native:trafficmanager:Endpoint", endpoint) == [
        "weight is 0; azure_traffic_manager accepts whole weights 1-1000"
    ]
    origin = {
        "profileName": "fd",
        "originGroupName": "web",
        "hostName": "mirror.example.com",
        "weight": 500,
    }
    assert check_weights("azure-native:cdn:AFDOrigin", origin) == []


def test_gcp_url_map_and_cloud_dns_weights_are_checked_wherever_they_nest() -> None:
    url_map = {
        "defaultService": "projects/p/global/backendServices/primary",
        "pathMatchers": [
            {
                "name": "all",
                "defaultRouteAction": {
                    "weightedBackendServices": [
                        {"backendService": "primary", "weight": 1001},
                        {"backendService": "mirror", "weight": 0},
                    ]
                },
            }
        ],
    }
    assert check_weights("gcp:compute/uRLMap:URLMap", url_map) == [
        "pathMatchers[0].defaultRouteAction.weightedBackendServices[0].weight is 1001; "
        "gcp_url_map accepts whole weights 0-1000"
    ]
    record = {
        "name": "www.example.com.",
        "type": "A",
        "routingPolicy": {"wrrs": [{"weight": 0}, {"weight": 0}]},
    }
    assert check_weights("gcp:dns/recordSet:RecordSet", record) == [
        "routingPolicy.wrrs: every weight is zero, so no backend would take traffic"
    ]


def test_capacity_beyond_the_pools_max_is_rejected() -> None:
    group = {
        "minSize": 2,
        "maxSize": 40,
        "desiredCapacity": 6,
        "tags": [
            {"key": "mirrorcast-pool", "value": "web", "propagateAtLaunch": True},
            {"key": "cost-center", "value": "web-platform", "propagateAtLaunch": True},
        ],
    }
    assert check_capacity("aws:autoscaling/group:Group", group, SETTINGS) == [
        "maxSize is 40, beyond the configured capacity.max 20 (pools.web)"
    ]
    scale_set = {"sku": {"name": "Standard_D2s_v5", "capacity": 25}, "location": "westeurope"}
    assert check_capacity("azure-native:compute:VirtualMachineScaleSet", scale_set, SETTINGS) == [
        "sku.capacity is 25, beyond the configured capacity.max 20 (any pool)"
    ]
    group["maxSize"] = 20
    assert check_capacity("aws:autoscaling/group:Group", group, SETTINGS) == []


def test_resources_outside_the_allowed_regions_are_rejected() -> None:
    settings = PackSettings(allowed_regions=frozenset({"us-east-1", "us-central1", "West Europe"}))
    assert check_region("aws:autoscaling/group:Group", {"region": "us-west-2"}, settings) == [
        "region us-west-2 is not in policy.allowed_regions (West Europe, us-central1, us-east-1)"
    ]
    assert (
        check_region(
            "gcp:compute/instanceGroupManager:InstanceGroupManager",
            {"zone": "us-central1-a"},
            settings,
        )
        == []
    )
    assert (
        check_region(
            "azure-native:compute:VirtualMachineScaleSet", {"location": "westeurope"}, settings
        )
        == []
    )
    assert (
        check_region(
            "azure-native:compute:VirtualMachineScaleSet", {"location": "eastus"}, settings
        )
        != []
    )
    assert (
        check_region("aws:autoscaling/group:Group", {"region": "us-west-2"}, PackSettings()) == []
    )


def test_cost_bearing_resources_need_the_cost_tags() -> None:
    template = {
        "namePrefix": "web-",
        "imageId": "ami-0a1b2c3d4e5f60718",
        "instanceType": "t3.medium",
        "tags": {"owner": "platform-team"},
    }
    assert check_cost_tags("aws:ec2/launchTemplate:LaunchTemplate", template, SETTINGS) == [
        "tags lacks the cost tag(s) cost-center (policy.required_tags)"
    ]
    gcp = {"machineType": "e2-standard-2", "labels": {"cost-center": "storefront"}}
    assert check_cost_tags("gcp:compute/instanceTemplate:InstanceTemplate", gcp, SETTINGS) == []
    asg_tags = {"tags": [{"key": "cost-center", "value": "", "propagateAtLaunch": True}]}
    assert check_cost_tags("aws:autoscaling/group:Group", asg_tags, SETTINGS) != []
    # Free resources (a security group rule) are not held to cost tags.
    assert (
        check_cost_tags("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", {}, SETTINGS)
        == []
    )


# --------------------------------------------------------------------------- the real policies


@pytest.mark.skipif(
    importlib.util.find_spec("pulumi_policy") is None,
    reason="pulumi-policy is not installed in this environment (its protobuf pin clashes; "
    "the pack has its own requirements.txt)",
)
def test_the_pack_policies_report_violations_through_pulumi_policy(tmp_path: Path) -> None:
    from pulumi_policy import ResourceValidationArgs, StackValidationArgs

    from policies.crossguard._policies import build_policies

    stack = tmp_path / "Pulumi.bad.yaml"
    document = YAML(typ="safe").load(DEMO_STACK.read_text())
    document["config"]["mirrorcast:pools"]["web"]["mirror"]["percent"] = 150
    YAML().dump(document, stack)
    policies = {p.name: p for p in build_policies(stack)}
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    policies["mirrorcast-stack-config"].validate(StackValidationArgs([]), report)
    args = ResourceValidationArgs(
        "aws:route53/record:Record",
        {"weightedRoutingPolicies": [{"weight": 999}]},
        "urn",
        "mirror",
        None,
        None,  # type: ignore[arg-type]
    )
    policies["mirrorcast-traffic-weights"].validate(args, report)
    assert reported == [
        "pools.web.mirror.percent must be between 0 and 100, got 150",
        "weightedRoutingPolicies[0].weight is 999; route53 accepts whole weights 0-255",
    ]
