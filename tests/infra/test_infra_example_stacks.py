"""The real program, run under Pulumi's mocks for each example stack in ``stacks/``."""

from __future__ import annotations

import math

from pulumi_harness import DB_SECRET, ProgramRun, run_program, stack_config

from infra.config import config_from_mapping

ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
RECORD = "aws:route53/record:Record"
MIG = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
FIREWALL = "gcp:compute/firewall:Firewall"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
NSG = "azure-native:network:NetworkSecurityGroup"
STANDBY = "azure-native:standbypool:StandbyVirtualMachinePool"
TM_PROFILE = "azure-native:trafficmanager:Profile"


def _expected_mirror_size(stack: str, pool: str) -> int:
    spec = config_from_mapping(stack_config(stack)).pools[pool]
    return math.ceil(spec.mirror.percent * spec.primary.capacity.desired / 100)


# --------------------------------------------------------------------------- components


def test_every_pool_is_one_pool_component_with_children_named_after_it(
    example_runs: dict[str, ProgramRun],
) -> None:
    for stack, pool in (
        ("demo", "web"),
        ("gcp-web", "storefront"),
        ("azure-api", "api"),
        ("multicloud", "checkout"),
    ):
        run = example_runs[stack]
        assert [r.name for r in run.of_type("mirrorcast:pool:Pool")] == [pool]
        assert all(r.name.startswith(pool) for r in run.resources), stack


def test_each_cloud_declares_its_own_component_types(example_runs: dict[str, ProgramRun]) -> None:
    assert {
        "mirrorcast:aws:PrimaryGroup",
        "mirrorcast:aws:MirrorGroup",
        "mirrorcast:aws:NlbFront",
        "mirrorcast:dns:Route53Weighted",
        ASG,
        LAUNCH_TEMPLATE,
        SECURITY_GROUP,
        RECORD,
    } <= example_runs["demo"].types()
    assert {
        "mirrorcast:gcp:PrimaryGroup",
        "mirrorcast:gcp:MirrorGroup",
        "mirrorcast:gcp:UrlMapBalancer",
        "mirrorcast:gcp:SharedFirewall",
        MIG,
        TEMPLATE,
        FIREWALL,
        "gcp:compute/uRLMap:URLMap",
        "gcp:compute/backendService:BackendService",
    } <= example_runs["gcp-web"].types()
    assert {
        "mirrorcast:azure:PrimaryScaleSet",
        "mirrorcast:azure:MirrorScaleSet",
        "mirrorcast:dns:TrafficManagerWeighted",
        "mirrorcast:azure:SqlGeoReplica",
        VMSS,
        NSG,
        STANDBY,
        TM_PROFILE,
    } <= example_runs["azure-api"].types()
    for stack in ("demo", "gcp-web", "azure-api", "multicloud"):
        assert not any(
            t.startswith("mirrorcast:") and t.count(":") != 2 for t in example_runs[stack].types()
        )


def test_single_cloud_stacks_declare_nothing_in_other_clouds(
    example_runs: dict[str, ProgramRun],
) -> None:
    for stack, cloud in (("demo", "aws"), ("gcp-web", "gcp"), ("azure-api", "azure-native")):
        providers = {t.split(":")[0] for t in example_runs[stack].types()} - {
            "mirrorcast",
            "pulumi",
        }
        assert providers == {cloud}, stack


# --------------------------------------------------------------------------- paused mirrors


def test_demo_mirror_is_paused_with_stopped_instances_in_the_warm_pool(
    example_runs: dict[str, ProgramRun],
) -> None:
    asg = example_runs["demo"].one(ASG, "web-mirror").inputs
    size = _expected_mirror_size("demo", "web")
    assert size == 2
    assert asg["desiredCapacity"] == 0
    assert asg["minSize"] == 0
    assert asg["warmPool"]["poolState"] == "Stopped"
    assert asg["warmPool"]["minSize"] == size
    assert asg["warmPool"]["maxGroupPreparedCapacity"] == size


def test_gcp_web_mirror_is_paused_with_suspended_standby_instances(
    example_runs: dict[str, ProgramRun],
) -> None:
    mig = example_runs["gcp-web"].one(MIG, "storefront-mirror").inputs
    size = _expected_mirror_size("gcp-web", "storefront")
    assert size == 3  # ceil(40% of 6)
    assert mig["targetSize"] == 0
    assert mig["targetSuspendedSize"] == size
    assert "targetStoppedSize" not in mig
    assert mig["standbyPolicy"]["mode"] == "MANUAL"


def test_azure_api_mirror_is_paused_with_deallocated_standby_vms(
    example_runs: dict[str, ProgramRun],
) -> None:
    run = example_runs["azure-api"]
    vmss = run.one(VMSS, "api-mirror").inputs
    standby = run.one(STANDBY, "api-mirror").inputs
    size = _expected_mirror_size("azure-api", "api")
    assert size == 2  # ceil(30% of 4)
    assert vmss["sku"]["capacity"] == 0
    assert standby["virtualMachineState"] == "Deallocated"
    assert standby["elasticityProfile"]["maxReadyCapacity"] == size
    assert standby["attachedVirtualMachineScaleSetId"] == "api-mirror-vmss-id"


def test_multicloud_mirror_scaled_to_zero_keeps_no_standby_pool(
    example_runs: dict[str, ProgramRun],
) -> None:
    mig = example_runs["multicloud"].one(MIG, "checkout-mirror").inputs
    assert mig["targetSize"] == 0
    assert "standbyPolicy" not in mig
    assert "targetStoppedSize" not in mig and "targetSuspendedSize" not in mig


# --------------------------------------------------------------------------- synchronisation


def test_both_sides_run_the_image_configured_for_their_location(
    example_runs: dict[str, ProgramRun],
) -> None:
    demo = example_runs["demo"]
    assert demo.one(LAUNCH_TEMPLATE, "web-primary").inputs["imageId"] == "ami-0a1b2c3d4e5f60718"
    assert demo.one(LAUNCH_TEMPLATE, "web-mirror").inputs["imageId"] == "ami-0f9e8d7c6b5a40312"
    gcp_web = example_runs["gcp-web"]
    images = {r.inputs["disks"][0]["sourceImage"] for r in gcp_web.of_type(TEMPLATE)}
    assert images == {"projects/acme-images/global/images/storefront-5-2-1"}
    azure_api = example_runs["azure-api"]
    ids = {
        r.inputs["virtualMachineProfile"]["storageProfile"]["imageReference"]["id"]
        for r in azure_api.of_type(VMSS)
    }
    assert len(ids) == 1 and ids.pop().endswith("/images/api/versions/3.8.0")
    multicloud = example_runs["multicloud"]
    assert (
        multicloud.one(LAUNCH_TEMPLATE, "checkout-primary").inputs["imageId"]
        == "ami-0c0ffee0c0ffee001"
    )
    mirror_template = multicloud.one(TEMPLATE, "checkout-mirror").inputs
    assert (
        mirror_template["disks"][0]["sourceImage"]
        == "projects/acme-images/global/images/checkout-7-0-3"
    )
    assert mirror_template["machineType"] == "c3-standard-4"


def test_both_sides_carry_the_same_app_version_tag(example_runs: dict[str, ProgramRun]) -> None:
    versions = {
        r.inputs["tags"]["mirrorcast-app-version"]
        for r in example_runs["demo"].of_type(LAUNCH_TEMPLATE)
    }
    assert versions == {"2.14.0"}


def test_both_aws_sides_get_identical_security_group_rules(
    example_runs: dict[str, ProgramRun],
) -> None:
    groups = example_runs["demo"].of_type(SECURITY_GROUP)
    ingress = {g.name: g.inputs["ingress"] for g in groups}
    assert ingress["web-primary-sg"] == ingress["web-mirror-sg"]
    assert {
        (r["fromPort"], r["toPort"], tuple(r["cidrBlocks"])) for r in ingress["web-primary-sg"]
    } == {
        (443, 443, ("0.0.0.0/0",)),
        (8080, 8080, ("10.0.0.0/8",)),
    }


def test_both_azure_sides_get_identical_nsg_rules(example_runs: dict[str, ProgramRun]) -> None:
    rules = {n.name: n.inputs["securityRules"] for n in example_runs["azure-api"].of_type(NSG)}
    assert rules["api-primary-nsg"] == rules["api-mirror-nsg"]
    (https,) = rules["api-primary-nsg"]
    assert https["destinationPortRange"] == "443"
    assert https["access"] == "Allow" and https["direction"] == "Inbound"


def test_gcp_firewall_rules_target_both_sides(example_runs: dict[str, ProgramRun]) -> None:
    (firewall,) = example_runs["gcp-web"].of_type(FIREWALL)
    assert sorted(firewall.inputs["targetTags"]) == [
        "mirrorcast-storefront-mirror",
        "mirrorcast-storefront-primary",
    ]
    tags = {tuple(t.inputs["tags"]) for t in example_runs["gcp-web"].of_type(TEMPLATE)}
    assert tags == {("mirrorcast-storefront-mirror",), ("mirrorcast-storefront-primary",)}
    assert firewall.inputs["sourceRanges"] == ["130.211.0.0/22", "35.191.0.0/16"]


def test_cross_cloud_security_rules_apply_in_both_clouds(
    example_runs: dict[str, ProgramRun],
) -> None:
    run = example_runs["multicloud"]
    (group,) = run.of_type(SECURITY_GROUP)
    (firewall,) = run.of_type(FIREWALL)
    assert [(r["fromPort"], r["cidrBlocks"]) for r in group.inputs["ingress"]] == [
        (443, ["0.0.0.0/0"])
    ]
    assert firewall.inputs["allows"] == [{"protocol": "tcp", "ports": ["443"]}]
    assert firewall.inputs["sourceRanges"] == ["0.0.0.0/0"]
    assert firewall.inputs["targetTags"] == ["mirrorcast-checkout-mirror"]


# --------------------------------------------------------------------------- balancers


def test_demo_route53_records_weight_primary_fully_and_mirror_zero(
    example_runs: dict[str, ProgramRun],
) -> None:
    run = example_runs["demo"]
    records = {r.inputs["setIdentifier"]: r.inputs for r in run.of_type(RECORD)}
    assert records["primary"]["weightedRoutingPolicies"] == [{"weight": 255}]
    assert records["mirror"]["weightedRoutingPolicies"] == [{"weight": 0}]
    for record in records.values():
        assert record["name"] == "www.example.com"
        assert record["zoneId"] == "Z0123456789ABCDEFGHIJ"
        assert record["type"] == "A"
        assert record["aliases"][0]["name"].endswith(".elb.mock.amazonaws.com")


def test_traffic_manager_disables_the_zero_share_endpoint_instead_of_weight_zero(
    example_runs: dict[str, ProgramRun],
) -> None:
    profile = example_runs["azure-api"].one(TM_PROFILE).inputs
    assert profile["trafficRoutingMethod"] == "Weighted"
    assert profile["dnsConfig"]["relativeName"] == "api-acme"
    endpoints = {e["name"]: e for e in profile["endpoints"]}
    assert endpoints["primary"]["weight"] == 1000
    assert endpoints["primary"]["endpointStatus"] == "Enabled"
    assert endpoints["mirror"]["weight"] == 1
    assert endpoints["mirror"]["endpointStatus"] == "Disabled"
    assert all(e["weight"] >= 1 for e in endpoints.values())
    assert endpoints["mirror"]["targetResourceId"] == "api-mirror-front-ip-id"


def test_gcp_url_map_weights_backend_services_as_configured(
    example_runs: dict[str, ProgramRun],
) -> None:
    url_map = example_runs["gcp-web"].one("gcp:compute/uRLMap:URLMap").inputs
    weighted = url_map["defaultRouteAction"]["weightedBackendServices"]
    assert [(w["backendService"], w["weight"]) for w in weighted] == [
        ("storefront-balancer-primary-id", 1000),
        ("storefront-balancer-mirror-id", 0),
    ]


def test_cross_cloud_stack_weights_at_dns_level_with_an_ip_answer_for_gcp(
    example_runs: dict[str, ProgramRun],
) -> None:
    run = example_runs["multicloud"]
    assert "mirrorcast:dns:Route53Weighted" in run.types()
    (balancer,) = run.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert balancer.inputs["loadBalancerType"] == "network"  # a front, not an in-cloud split
    (listener,) = run.of_type("aws:lb/listener:Listener")
    assert listener.inputs["protocol"] == "TCP"
    records = {r.inputs["setIdentifier"]: r.inputs for r in run.of_type(RECORD)}
    assert records["mirror"]["records"] == ["203.0.113.20"]
    assert records["mirror"]["type"] == records["primary"]["type"] == "A"
    assert "aliases" in records["primary"]


# --------------------------------------------------------------------------- autoscalers


def test_autoscaled_primaries_ignore_desired_capacity_drift(
    example_runs: dict[str, ProgramRun],
) -> None:
    assert example_runs["demo"].one(ASG, "web-primary").ignore_changes == ["desiredCapacity"]
    assert example_runs["demo"].one(ASG, "web-mirror").ignore_changes == []
    assert example_runs["gcp-web"].one(MIG, "storefront-primary").ignore_changes == ["targetSize"]
    assert example_runs["azure-api"].one(VMSS, "api-primary").ignore_changes == ["sku.capacity"]


def test_autoscalers_take_the_configured_floor_and_ceiling(
    example_runs: dict[str, ProgramRun],
) -> None:
    autoscaler = example_runs["gcp-web"].one("gcp:compute/regionAutoscaler:RegionAutoscaler").inputs
    assert autoscaler["autoscalingPolicy"]["minReplicas"] == 3
    assert autoscaler["autoscalingPolicy"]["maxReplicas"] == 30
    setting = example_runs["azure-api"].one("azure-native:monitor:AutoscaleSetting").inputs
    assert setting["profiles"][0]["capacity"] == {"minimum": "2", "maximum": "16", "default": "4"}
    policy = example_runs["demo"].one("aws:autoscaling/policy:Policy").inputs
    assert policy["policyType"] == "TargetTrackingScaling"
    asg = example_runs["demo"].one(ASG, "web-primary").inputs
    assert (asg["minSize"], asg["maxSize"], asg["desiredCapacity"]) == (2, 20, 4)


def test_autoscalers_track_the_configured_target_utilisation(
    example_runs: dict[str, ProgramRun],
) -> None:
    # demo leaves autoscaler_target at its default (60); gcp-web and azure-api set 70.
    policy = example_runs["demo"].one("aws:autoscaling/policy:Policy").inputs
    assert policy["targetTrackingConfiguration"]["targetValue"] == 60
    autoscaler = example_runs["gcp-web"].one("gcp:compute/regionAutoscaler:RegionAutoscaler").inputs
    assert autoscaler["autoscalingPolicy"]["cpuUtilization"]["target"] == 0.7
    setting = example_runs["azure-api"].one("azure-native:monitor:AutoscaleSetting").inputs
    rules = setting["profiles"][0]["rules"]
    # Azure has no target tracking: out above the target, in well below it.
    assert [
        (
            r["scaleAction"]["direction"],
            r["metricTrigger"]["operator"],
            r["metricTrigger"]["threshold"],
        )
        for r in rules
    ] == [("Increase", "GreaterThan", 70), ("Decrease", "LessThan", 49)]


# --------------------------------------------------------------------------- regions


def test_cross_region_aws_mirror_uses_a_provider_for_its_region(
    example_runs: dict[str, ProgramRun],
) -> None:
    run = example_runs["demo"]
    (provider,) = run.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-west-2"
    assert "web-aws-us-west-2" in run.one(ASG, "web-mirror").provider
    assert run.one(ASG, "web-primary").provider == ""


# --------------------------------------------------------------------------- tags


def test_every_taggable_resource_carries_the_stack_tags(
    example_runs: dict[str, ProgramRun],
) -> None:
    for stack, key, value in (
        ("demo", "cost-center", "web-platform"),
        ("azure-api", "cost-center", "api"),
    ):
        tagged = [
            r
            for r in example_runs[stack].resources
            if "tags" in r.inputs and isinstance(r.inputs["tags"], dict)
        ]
        assert tagged, stack
        assert all(r.inputs["tags"][key] == value for r in tagged), stack
    labelled = [r for r in example_runs["gcp-web"].resources if "labels" in r.inputs]
    assert labelled
    for resource in labelled:
        labels = resource.inputs["labels"]
        assert labels["cost-center"] == "storefront"
        assert labels["mirrorcast-app-version"] == "5_2_1"
        assert all(k == k.lower() and v == v.lower() for k, v in labels.items())


# --------------------------------------------------------------------------- stack outputs


def test_pools_output_has_the_shape_the_driver_reads(example_runs: dict[str, ProgramRun]) -> None:
    web = example_runs["demo"].pools["web"]
    assert set(web) == {
        "primary_capacity",
        "mirror_capacity",
        "mirror_running",
        "mirror_state",
        "weights",
        "product_weights",
        "endpoints",
        "placement",
        "ids",
    }
    assert web["primary_capacity"] == {"min": 2, "max": 20, "desired": 4}
    assert web["mirror_capacity"] == 2
    assert web["mirror_running"] == 0
    assert web["mirror_state"] == "paused"
    assert web["weights"] == {"primary": 100, "mirror": 0}
    assert web["product_weights"] == {
        "primary": {"weight": 255, "enabled": True},
        "mirror": {"weight": 0, "enabled": True},
    }
    assert web["placement"] == "cross-region"
    assert web["endpoints"]["balancer"] == "www.example.com"
    assert web["endpoints"]["primary"] == "web-primary-front-nlb.elb.mock.amazonaws.com"
    assert web["endpoints"]["mirror"] == "web-mirror-front-nlb.elb.mock.amazonaws.com"
    api = example_runs["azure-api"].pools["api"]
    assert api["product_weights"]["mirror"] == {"weight": 1, "enabled": False}
    assert api["placement"] == "cross-region"
    assert example_runs["gcp-web"].pools["storefront"]["placement"] == "same-region"
    assert example_runs["multicloud"].pools["checkout"]["placement"] == "cross-cloud"
    assert example_runs["multicloud"].pools["checkout"]["endpoints"]["mirror"] == "203.0.113.20"


# --------------------------------------------------------------------------- databases


def test_azure_sql_geo_secondary_replicates_the_primary_database(
    example_runs: dict[str, ProgramRun],
) -> None:
    run = example_runs["azure-api"]
    servers = {s.name: s.inputs for s in run.of_type("azure-native:sql:Server")}
    assert servers["api-db-primary-server"]["location"] == "westeurope"
    assert servers["api-db-mirror-server"]["location"] == "northeurope"
    secondary = run.one("azure-native:sql:Database", "mirror").inputs
    assert secondary["createMode"] == "Secondary"
    assert secondary["sourceDatabaseId"] == "api-db-primary-db-id"
    assert secondary["resourceGroupName"] == "api-dr"


def test_database_without_replica_declares_only_the_primary(
    example_runs: dict[str, ProgramRun],
) -> None:
    (instance,) = example_runs["gcp-web"].of_type("gcp:sql/databaseInstance:DatabaseInstance")
    assert instance.inputs["databaseVersion"] == "POSTGRES_15"
    assert "masterInstanceName" not in instance.inputs


def test_pulumi_runs_the_program_directory_as_main(example_runs: dict[str, ProgramRun]) -> None:
    run = run_program(
        stack_config("gcp-web"), stack="gcp-web", secrets=DB_SECRET, as_pulumi_does=True
    )
    declared = sorted((r.type, r.name) for r in run.resources)
    assert declared == sorted((r.type, r.name) for r in example_runs["gcp-web"].resources)
