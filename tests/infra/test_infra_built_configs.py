"""The program on configs written here: same-region ALB, Front Door, Cloud DNS, active mirrors."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_harness import DB_SECRET, PASSWORD, ProgramRun, run_program, yaml_config

from infra.config import config_from_text

AWS_SAME_REGION = """
config:
  aws:region: us-east-1
  mirrorcast:tags: {{cost-center: shop}}
  mirrorcast:pools:
    shop:
      primary:
        cloud: aws
        region: us-east-1
        machine_type: m6i.large
        native_autoscaling: {autoscaling}
        app: {{version: 1.0.0, images: {{aws: ami-0123456789abcdef0}}}}
        capacity: {{min: 2, max: 10, desired: 5}}
        network: {{vpc_id: vpc-1, subnet_ids: [subnet-a, subnet-b]}}
      mirror:
        percent: 30
        state: {state}
        paused: {{strategy: warm_pool, instance_state: hibernated}}
      balancer:
        kind: alb
        weights: {{primary: {primary}, mirror: {mirror}}}
      sync:
        security_rules:
          - {{name: http, protocol: tcp, ports: "80", sources: [0.0.0.0/0]}}
          - {{name: ping, protocol: icmp, sources: [10.0.0.0/8]}}
"""

AZURE_FRONT_DOOR = """
config:
  mirrorcast:tags: {{Cost-Center: Shop.EU}}
  mirrorcast:azure: {{standby_pool_principal_id: 22222222-2222-2222-2222-222222222222}}
  mirrorcast:pools:
    eu:
      primary:
        cloud: azure
        region: westeurope
        machine_type: Standard_D2s_v5
        app:
          version: 4.1.0
          images: {{azure: /subscriptions/0/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/eu/versions/4.1.0}}
        capacity: {{min: 1, max: 8, desired: 3}}
        network: {{resource_group: eu-prod, subnet_id: /subscriptions/0/resourceGroups/eu-prod/providers/Microsoft.Network/virtualNetworks/v/subnets/s}}
      mirror:
        percent: 100
        state: {state}
      balancer:
        kind: azure_front_door
        weights: {{primary: {primary}, mirror: {mirror}}}
      sync:
        security_rules:
          - {{name: http, protocol: tcp, ports: "80", sources: [AzureFrontDoor.Backend]}}
"""

GCP_CLOUD_DNS = """
config:
  gcp:project: acme
  mirrorcast:tags: {{team: Search}}
  mirrorcast:pools:
    search:
      primary:
        cloud: gcp
        region: us-central1
        machine_type: n2-standard-2
        app: {{version: 9.0.0, images: {{gcp: projects/acme/global/images/search-9-0-0}}}}
        capacity: {{min: 2, max: 12, desired: 7}}
        network: {{network: projects/acme/global/networks/prod, subnetwork: projects/acme/regions/us-central1/subnetworks/a}}
      mirror:
        percent: 50
        location: {{region: us-east1}}
        state: {state}
        paused: {{strategy: warm_pool, instance_state: stopped}}
        network: {{network: projects/acme/global/networks/dr, subnetwork: projects/acme/regions/us-east1/subnetworks/b}}
      balancer:
        kind: gcp_cloud_dns
        dns: {{zone: acme-zone, name: search.acme.example, ttl: 30s}}
        weights: {{primary: {primary}, mirror: {mirror}}}
        port: 443
      sync:
        security_rules:
          - {{name: https, protocol: tcp, ports: "443", sources: [0.0.0.0/0]}}
        database: {{engine: mysql, engine_version: "8.0", instance_class: db-n1-standard-2, replica: true}}
"""


_RUNS: dict[str, ProgramRun] = {}


def _run(template: str, **values: Any) -> ProgramRun:
    """The program run on ``template`` filled with ``values``; runs are shared (read-only)."""
    text = template.format(**values) if values else template
    if text not in _RUNS:
        config_from_text(text)  # the contract accepts it before the program sees it
        _RUNS[text] = run_program(yaml_config(text), secrets=DB_SECRET)
    return _RUNS[text]


# --------------------------------------------------------------------------- AWS, same region


def test_same_region_aws_mirror_splits_traffic_through_alb_weighted_target_groups() -> None:
    run = _run(AWS_SAME_REGION, autoscaling="true", state="paused", primary=100, mirror=0)
    assert "mirrorcast:aws:AlbBalancer" in run.types()
    assert "mirrorcast:dns:Route53Weighted" not in run.types()
    assert not run.of_type("pulumi:providers:aws")
    listener = run.one("aws:lb/listener:Listener").inputs
    forward = listener["defaultActions"][0]["forward"]["targetGroups"]
    assert [(t["arn"], t["weight"]) for t in forward] == [
        ("arn:mock:aws:lb/targetGroup:TargetGroup:shop-balancer-primary", 999),
        ("arn:mock:aws:lb/targetGroup:TargetGroup:shop-balancer-mirror", 0),
    ]
    assert listener["protocol"] == "HTTP"
    attachments = {
        a.inputs["autoscalingGroupName"]
        for a in run.of_type("aws:autoscaling/attachment:Attachment")
    }
    # The mocks auto-name like the provider: the logical name plus a 7-character suffix.
    assert {name.rsplit("-", 1)[0] for name in attachments} == {
        "shop-primary-asg",
        "shop-mirror-asg",
    }


def test_hibernated_warm_pool_enables_hibernation_in_the_launch_template() -> None:
    run = _run(AWS_SAME_REGION, autoscaling="true", state="paused", primary=100, mirror=0)
    mirror = run.one("aws:autoscaling/group:Group", "shop-mirror").inputs
    assert mirror["warmPool"]["poolState"] == "Hibernated"
    assert mirror["warmPool"]["minSize"] == 2  # ceil(30% of 5)
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate", "shop-mirror").inputs
    assert template["hibernationOptions"] == {"configured": True}


def test_active_aws_mirror_runs_its_instances_and_takes_its_weight() -> None:
    run = _run(AWS_SAME_REGION, autoscaling="true", state="active", primary=70, mirror=30)
    mirror = run.one("aws:autoscaling/group:Group", "shop-mirror").inputs
    assert (mirror["desiredCapacity"], mirror["minSize"]) == (2, 2)
    # Active: nothing extra stays warm, but the pool remains for the next pause.
    assert mirror["warmPool"]["minSize"] == 0
    assert mirror["warmPool"]["maxGroupPreparedCapacity"] == 2
    forward = run.one("aws:lb/listener:Listener").inputs["defaultActions"][0]["forward"]
    assert [t["weight"] for t in forward["targetGroups"]] == [699, 300]
    shop = run.pools["shop"]
    assert shop["mirror_state"] == "active"
    assert shop["mirror_running"] == 2
    assert shop["product_weights"]["mirror"] == {"weight": 300, "enabled": True}


def test_primary_without_native_autoscaling_keeps_desired_under_pulumi_control() -> None:
    run = _run(AWS_SAME_REGION, autoscaling="false", state="paused", primary=100, mirror=0)
    assert run.one("aws:autoscaling/group:Group", "shop-primary").ignore_changes == []
    assert not run.of_type("aws:autoscaling/policy:Policy")


def test_icmp_rules_open_every_icmp_type_on_aws() -> None:
    run = _run(AWS_SAME_REGION, autoscaling="true", state="paused", primary=100, mirror=0)
    ingress = run.one("aws:ec2/securityGroup:SecurityGroup", "shop-mirror").inputs["ingress"]
    assert {
        "protocol": "icmp",
        "fromPort": -1,
        "toPort": -1,
        "cidrBlocks": ["10.0.0.0/8"],
        "description": "ping",
    } in ingress


# --------------------------------------------------------------------------- Azure Front Door


def test_front_door_disables_a_zero_share_origin_at_weight_one() -> None:
    run = _run(AZURE_FRONT_DOOR, state="paused", primary=100, mirror=0)
    assert "mirrorcast:azure:FrontDoorBalancer" in run.types()
    origins = {o.name: o.inputs for o in run.of_type("azure-native:cdn:AFDOrigin")}
    assert origins["eu-balancer-primary"]["weight"] == 1000
    assert origins["eu-balancer-primary"]["enabledState"] == "Enabled"
    assert origins["eu-balancer-mirror"]["weight"] == 1
    assert origins["eu-balancer-mirror"]["enabledState"] == "Disabled"
    assert origins["eu-balancer-mirror"]["hostName"].endswith(".mock.azure.com")
    # scale_to_zero is not set: the default warm_pool strategy keeps a deallocated standby pool
    standby = run.one("azure-native:standbypool:StandbyVirtualMachinePool").inputs
    assert standby["virtualMachineState"] == "Deallocated"
    assert standby["elasticityProfile"]["maxReadyCapacity"] == 3


def test_active_azure_mirror_gets_capacity_and_an_enabled_weighted_origin() -> None:
    run = _run(AZURE_FRONT_DOOR, state="active", primary=60, mirror=40)
    vmss = run.one("azure-native:compute:VirtualMachineScaleSet", "eu-mirror").inputs
    assert vmss["sku"]["capacity"] == 3
    origins = {o.name: o.inputs for o in run.of_type("azure-native:cdn:AFDOrigin")}
    assert (
        origins["eu-balancer-mirror"]["weight"],
        origins["eu-balancer-mirror"]["enabledState"],
    ) == (400, "Enabled")
    assert origins["eu-balancer-primary"]["weight"] == 600


def test_azure_tags_keep_their_case_while_gcp_would_lowercase_them() -> None:
    run = _run(AZURE_FRONT_DOOR, state="paused", primary=100, mirror=0)
    vmss = run.one("azure-native:compute:VirtualMachineScaleSet", "eu-primary").inputs
    assert vmss["tags"]["Cost-Center"] == "Shop.EU"


# --------------------------------------------------------------------------- GCP Cloud DNS


def test_gcp_cloud_dns_weights_round_robin_answers_between_regional_fronts() -> None:
    run = _run(GCP_CLOUD_DNS, state="paused", primary=100, mirror=0)
    record = run.one("gcp:dns/recordSet:RecordSet").inputs
    assert record["name"] == "search.acme.example."
    assert record["type"] == "A"
    wrrs = record["routingPolicy"]["wrrs"]
    assert [(w["weight"], w["rrdatas"]) for w in wrrs] == [
        (1000, ["203.0.113.10"]),
        (0, ["203.0.113.20"]),
    ]
    assert len(run.of_type("mirrorcast:gcp:PassthroughFront")) == 2


def test_gcp_stopped_standby_policy_holds_the_mirror_size() -> None:
    run = _run(GCP_CLOUD_DNS, state="paused", primary=100, mirror=0)
    mig = run.one(
        "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager", "search-mirror"
    ).inputs
    assert mig["targetSize"] == 0
    assert mig["targetStoppedSize"] == 4  # ceil(50% of 7)
    assert mig["region"] == "us-east1"


def test_gcp_sides_on_different_networks_each_get_the_rules() -> None:
    run = _run(GCP_CLOUD_DNS, state="paused", primary=100, mirror=0)
    firewalls = {
        f.inputs["network"]: f.inputs["targetTags"]
        for f in run.of_type("gcp:compute/firewall:Firewall")
    }
    assert firewalls == {
        "projects/acme/global/networks/dr": ["mirrorcast-search-mirror"],
        "projects/acme/global/networks/prod": ["mirrorcast-search-primary"],
    }


def test_active_gcp_mirror_runs_its_instances_with_nothing_left_stopped() -> None:
    run = _run(GCP_CLOUD_DNS, state="active", primary=50, mirror=50)
    mig = run.one(
        "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager", "search-mirror"
    ).inputs
    assert mig["targetSize"] == 4
    assert mig["targetStoppedSize"] == 0
    wrrs = run.one("gcp:dns/recordSet:RecordSet").inputs["routingPolicy"]["wrrs"]
    assert [w["weight"] for w in wrrs] == [500, 500]


def test_cloud_sql_replica_follows_the_mirror_region() -> None:
    run = _run(GCP_CLOUD_DNS, state="paused", primary=100, mirror=0)
    instances = {i.name: i.inputs for i in run.of_type("gcp:sql/databaseInstance:DatabaseInstance")}
    assert instances["search-db-primary"]["databaseVersion"] == "MYSQL_8_0"
    assert (
        instances["search-db-primary"]["settings"]["backupConfiguration"]["binaryLogEnabled"]
        is True
    )
    replica = instances["search-db-replica"]
    assert replica["region"] == "us-east1"
    assert replica["masterInstanceName"].startswith("search-db-primary-")


def test_gcp_labels_are_lowercased_from_tags() -> None:
    run = _run(GCP_CLOUD_DNS, state="paused", primary=100, mirror=0)
    template = run.one("gcp:compute/instanceTemplate:InstanceTemplate", "search-primary").inputs
    assert template["labels"]["team"] == "search"
    assert template["labels"]["mirrorcast-app-version"] == "9_0_0"


# --------------------------------------------------------------------------- Aurora


AURORA = """
config:
  aws:region: us-east-1
  mirrorcast:pools:
    orders:
      primary:
        cloud: aws
        region: us-east-1
        machine_type: m6i.large
        app: {images: {aws: ami-0123456789abcdef0}, version: 2.0.0}
        capacity: {min: 2, max: 10, desired: 4}
        network: {vpc_id: vpc-1, subnet_ids: [subnet-a, subnet-b]}
      mirror:
        percent: 50
        location: {region: eu-west-1}
        network: {vpc_id: vpc-2, subnet_ids: [subnet-c, subnet-d]}
      balancer:
        kind: route53
        dns: {zone: ZORDERS, name: orders.example.com}
      sync:
        security_rules: [{name: http, ports: "80"}]
        database: {engine: postgres, engine_version: "15.4", instance_class: db.r6g.large}
"""


def test_aurora_global_database_puts_its_secondary_in_the_mirror_region() -> None:
    run = _run(AURORA)
    (global_cluster,) = run.of_type("aws:rds/globalCluster:GlobalCluster")
    assert global_cluster.inputs["engine"] == "aurora-postgresql"
    clusters = {c.name: c for c in run.of_type("aws:rds/cluster:Cluster")}
    assert clusters["orders-db-primary"].inputs["globalClusterIdentifier"] == "orders-db-global-id"
    assert clusters["orders-db-mirror"].inputs["globalClusterIdentifier"] == "orders-db-global-id"
    assert "orders-aws-eu-west-1" in clusters["orders-db-mirror"].provider
    assert clusters["orders-db-primary"].provider == ""


def test_database_password_reaches_the_engine_only_as_a_secret() -> None:
    run = _run(AURORA)
    primary = run.one("aws:rds/cluster:Cluster", "orders-db-primary").inputs
    password = primary["masterPassword"]
    assert isinstance(password, dict), "a plain string would be stored unencrypted in state"
    assert password["value"] == PASSWORD
    assert "4dabf18193072939515e22adb298388d" in password  # Pulumi's secret signature


@pytest.mark.parametrize(
    "percent, desired, expected", [(1, 1, 1), (33, 10, 4), (100, 7, 7), (0, 9, 0)]
)
def test_mirror_size_is_the_ceiling_of_the_configured_share(
    percent: int, desired: int, expected: int
) -> None:
    text = AWS_SAME_REGION.format(autoscaling="true", state="active", primary=100, mirror=0)
    text = text.replace("percent: 30", f"percent: {percent}").replace(
        "{min: 2, max: 10, desired: 5}", f"{{min: 0, max: 10, desired: {desired}}}"
    )
    run = _run(text)
    mirror = run.one("aws:autoscaling/group:Group", "shop-mirror").inputs
    assert mirror["desiredCapacity"] == expected
    assert run.pools["shop"]["mirror_capacity"] == expected


# --------------------------------------------------------------------------- cross-cloud


AWS_TO_AZURE = """
config:
  aws:region: us-east-1
  mirrorcast:azure: {standby_pool_principal_id: 22222222-2222-2222-2222-222222222222}
  mirrorcast:pools:
    api:
      primary:
        cloud: aws
        region: us-east-1
        machine_type: m6i.large
        app:
          version: 3.0.0
          images:
            aws: ami-0123456789abcdef0
            azure: /subscriptions/0/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/api/versions/3.0.0
        capacity: {min: 2, max: 10, desired: 4}
        network: {vpc_id: vpc-1, subnet_ids: [subnet-a, subnet-b]}
      mirror:
        percent: 50
        location: {cloud: azure, region: eastus}
        machine_type: Standard_D2s_v5
        state: active
        network: {resource_group: api-dr, subnet_id: /subscriptions/0/resourceGroups/api-dr/providers/Microsoft.Network/virtualNetworks/v/subnets/s}
      balancer:
        kind: azure_traffic_manager
        dns: {zone: api-tm, name: api-tm.trafficmanager.net}
        weights: {primary: 75, mirror: 25}
        port: 443
      sync:
        security_rules:
          - {name: https, protocol: tcp, ports: "443", sources: [0.0.0.0/0]}
"""

AZURE_TO_GCP = """
config:
  mirrorcast:pools:
    feed:
      primary:
        cloud: azure
        region: westeurope
        machine_type: Standard_D2s_v5
        app:
          version: 1.2.3
          images:
            azure: /subscriptions/0/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/feed/versions/1.2.3
            gcp: projects/acme/global/images/feed-1-2-3
        capacity: {min: 1, max: 6, desired: 2}
        network: {resource_group: feed, subnet_id: /subscriptions/0/resourceGroups/feed/providers/Microsoft.Network/virtualNetworks/v/subnets/s}
      mirror:
        percent: 100
        location: {cloud: gcp, region: europe-west4}
        machine_type: e2-standard-2
        network: {network: projects/acme/global/networks/dr, subnetwork: projects/acme/regions/europe-west4/subnetworks/a}
      balancer:
        kind: gcp_cloud_dns
        dns: {zone: feed-zone, name: feed.example.com.}
      sync:
        security_rules: [{name: http, ports: "80"}]
"""


def test_traffic_manager_reaches_another_cloud_through_an_external_endpoint() -> None:
    run = _run(AWS_TO_AZURE)
    endpoints = {
        e["name"]: e for e in run.one("azure-native:trafficmanager:Profile").inputs["endpoints"]
    }
    assert endpoints["primary"]["type"].endswith("/externalEndpoints")
    assert endpoints["primary"]["target"] == "api-primary-front-nlb.elb.mock.amazonaws.com"
    assert endpoints["mirror"]["type"].endswith("/azureEndpoints")
    assert (endpoints["primary"]["weight"], endpoints["mirror"]["weight"]) == (750, 250)
    assert {e["endpointStatus"] for e in endpoints.values()} == {"Enabled"}
    vmss = run.one("azure-native:compute:VirtualMachineScaleSet").inputs
    assert (vmss["sku"]["name"], vmss["sku"]["capacity"]) == ("Standard_D2s_v5", 2)
    nsg = run.one("azure-native:network:NetworkSecurityGroup").inputs
    group = run.one("aws:ec2/securityGroup:SecurityGroup", "api-primary").inputs
    assert nsg["securityRules"][0]["destinationPortRange"] == "443"
    assert group["ingress"][0]["fromPort"] == 443


def test_cloud_dns_weights_an_azure_primary_and_a_gcp_mirror_by_their_ips() -> None:
    run = _run(AZURE_TO_GCP)
    record = run.one("gcp:dns/recordSet:RecordSet").inputs
    assert record["name"] == "feed.example.com."
    assert [w["rrdatas"] for w in record["routingPolicy"]["wrrs"]] == [
        ["198.51.100.10"],
        ["203.0.113.20"],
    ]
    assert run.pools["feed"]["placement"] == "cross-cloud"
    assert run.pools["feed"]["mirror_capacity"] == 2


def test_https_alb_terminates_tls_with_the_configured_certificate() -> None:
    text = AWS_SAME_REGION.format(autoscaling="true", state="paused", primary=100, mirror=0)
    text = text.replace(
        "        kind: alb\n",
        "        kind: alb\n        port: 443\n        certificate: arn:aws:acm:us-east-1:1:certificate/abc\n",
    ).replace('ports: "80"', 'ports: "443"')
    run = _run(text)
    listener = run.one("aws:lb/listener:Listener").inputs
    assert (listener["protocol"], listener["port"]) == ("HTTPS", 443)
    assert listener["certificateArn"] == "arn:aws:acm:us-east-1:1:certificate/abc"
