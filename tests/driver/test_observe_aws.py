"""The AWS observer against moto's server on loopback: groups, warm pools, target health, Route 53.

The test world is the demo stack's ``web`` pool built with boto3 the way infra declares it
(infra/aws.py): an Auto Scaling group per side tagged ``mirrorcast-pool``/``mirrorcast-role``,
a launch template with the side's image and instance type and a security group with
``sync.security_rules``, a target group attached to each group, and Route 53 weighted records.

Target health: moto has no call to set a target's health. It derives it from the instance's
EC2 state (moto/elbv2/models.py ``health_for``: a stopped instance is ``unused`` with reason
``Target.InvalidState``, a running one ``healthy``), so the tests change health the honest way,
by stopping and starting instances.

Warm-pool instances: moto 5.2 answers ``describe_warm_pool`` with the pool's configuration but
never lists instances in it (moto/autoscaling/responses.py ``describe_warm_pool``), so the
lifecycle states of warm instances are read from an answer checked against botocore's own
service model by ``botocore.stub.Stubber`` (it rejects any field or value the API does not have).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import pytest
from botocore.stub import Stubber

from driver.observers import StackObserver, mirror_health
from driver.observers._aws import AwsObserver
from driver.observers._base import APP_VERSION_TAG, POOL_TAG, ROLE_TAG
from infra.config import MirrorcastConfig, load_stack
from policies import PrimaryHealth

pytest.importorskip("moto.server")

from aws_world import build_world

# The module itself (driver.observers' attribute ``_aws`` is the factory function of that name).
_aws = importlib.import_module("driver.observers._aws")

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


@pytest.fixture()
def demo() -> MirrorcastConfig:
    return load_stack("demo", ROOT)


def observe(config: MirrorcastConfig) -> Any:
    return StackObserver(attempts=1).observe(config, now=NOW)


class TestReadingAPool:
    def test_lifecycle_states_capacity_and_live_configuration_come_from_the_cloud(
        self, aws: str, demo: MirrorcastConfig
    ) -> None:
        world = build_world(demo, mirror_desired=0)
        seen = observe(world.config).pools["web"]
        assert seen.problems == ()
        primary, mirror = seen.primary, seen.mirror
        assert primary is not None and mirror is not None
        assert primary.group == "web-primary-asg-a"
        assert (primary.desired, primary.min_size, primary.max_size) == (4, 2, 20)
        assert primary.states == {"InService": 4}
        assert primary.serving == 4
        assert primary.targets == {"healthy": 4} and primary.healthy_targets == 4
        assert primary.image == "ami-0a1b2c3d4e5f60718"
        assert mirror.image == "ami-0f9e8d7c6b5a40312"
        assert primary.machine_type == "t3.medium"
        assert primary.app_version == "2.14.0"
        assert primary.security_rules == ("tcp 443-443 0.0.0.0/0", "tcp 8080-8080 10.0.0.0/8")
        # The paused mirror: no instance in service, so nothing can be healthy.
        assert mirror.desired == 0 and mirror.serving == 0
        assert mirror_health(seen).ready is False

    def test_an_unchanged_deployment_shows_no_drift(self, aws: str, demo: MirrorcastConfig) -> None:
        world = build_world(demo, mirror_desired=0)
        assert observe(world.config).drift(world.config) == []

    def test_warm_pool_instances_are_counted_by_their_lifecycle_state(
        self, demo: MirrorcastConfig
    ) -> None:
        client = boto3.client(
            "autoscaling",
            region_name="us-west-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        observer = AwsObserver()
        observer._clients[("autoscaling", "us-west-2")] = client
        with Stubber(client) as stub:
            # Validated against botocore's autoscaling model (shape Instances, enum LifecycleState).
            stub.add_response(
                "describe_warm_pool",
                {
                    "WarmPoolConfiguration": {"MinSize": 2, "PoolState": "Stopped"},
                    "Instances": [
                        _warm("i-1", "Warmed:Stopped"),
                        _warm("i-2", "Warmed:Pending"),
                    ],
                    "NextToken": "page-2",
                },
                {"AutoScalingGroupName": "web-mirror-asg-a"},
            )
            stub.add_response(
                "describe_warm_pool",
                {"Instances": [_warm("i-3", "Warmed:Hibernated")]},
                {"AutoScalingGroupName": "web-mirror-asg-a", "NextToken": "page-2"},
            )
            states = observer._warm_states("web-mirror-asg-a", "us-west-2")
        assert states == {"Warmed:Stopped": 1, "Warmed:Pending": 1, "Warmed:Hibernated": 1}


def _warm(instance: str, state: str) -> dict[str, Any]:
    return {
        "InstanceId": instance,
        "AvailabilityZone": "us-west-2a",
        "LifecycleState": state,
        "HealthStatus": "Healthy",
        "ProtectedFromScaleIn": False,
    }


class TestMirrorHealth:
    def test_health_is_the_balancers_view_and_follows_the_instances(
        self, aws: str, demo: MirrorcastConfig
    ) -> None:
        world = build_world(demo, mirror_desired=2)
        first, second = world.instances("mirror")
        health = mirror_health(observe(world.config).pools["web"])
        assert (health.running, health.healthy, health.ready) == (2, 2, True)

        world.client("ec2", "mirror").stop_instances(InstanceIds=[first])
        health = mirror_health(observe(world.config).pools["web"])
        assert (health.healthy, health.ready) == (1, False)
        assert "1 unused" in health.detail

        world.client("ec2", "mirror").start_instances(InstanceIds=[first])
        assert mirror_health(observe(world.config).pools["web"]).healthy == 2
        assert second

    def test_a_primary_whose_targets_all_fail_is_read_as_failing(
        self, aws: str, demo: MirrorcastConfig
    ) -> None:
        # What lets a failover shift traffic before the mirror is healthy (the planner's
        # primary_failing): the primary's own target health, read like the mirror's.
        world = build_world(demo, mirror_desired=2)
        seen = observe(world.config)
        fleet = demo.pools["web"].primary.capacity.desired
        assert seen.primary_health()["web"] == PrimaryHealth(fleet=fleet, healthy=fleet)
        world.client("ec2", "primary").stop_instances(InstanceIds=world.instances("primary"))
        failing = observe(world.config).primary_health()["web"]
        assert (failing.fleet, failing.healthy, failing.healthy_percent) == (fleet, 0, 0.0)


class TestDrift:
    def test_a_mirror_launching_an_older_image_is_drift_against_the_config(
        self, aws: str, demo: MirrorcastConfig
    ) -> None:
        world = build_world(demo, mirror_desired=0)
        ec2 = world.client("ec2", "mirror")
        current = ec2.describe_launch_template_versions(
            LaunchTemplateId=world.templates["mirror"], Versions=["$Latest"]
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        # A new version published outside Pulumi with last release's image (moto does not merge
        # SourceVersion's data, so the version carries all of it).
        ec2.create_launch_template_version(
            LaunchTemplateId=world.templates["mirror"],
            LaunchTemplateData={**current, "ImageId": "ami-00000000000old"},
        )
        found = observe(world.config).drift(world.config)
        assert [(d.what, d.between) for d in found] == [("image", "mirror vs config")]
        assert "ami-00000000000old" in str(found[0])

    def test_a_security_rule_added_by_hand_is_drift(self, aws: str, demo: MirrorcastConfig) -> None:
        world = build_world(demo, mirror_desired=0)
        ec2 = world.client("ec2", "primary")
        group_id = ec2.describe_launch_template_versions(
            LaunchTemplateId=world.templates["primary"], Versions=["$Latest"]
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]["SecurityGroupIds"][0]
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
        )
        found = {(d.what, d.between) for d in observe(world.config).drift(world.config)}
        assert found == {
            ("security_rules", "primary vs config"),
            ("security_rules", "mirror vs primary"),
        }


class TestRoute53:
    def test_weights_and_health_check_status_are_read_from_the_weighted_records(
        self, aws: str, demo: MirrorcastConfig
    ) -> None:
        world = build_world(demo, mirror_desired=0)
        balancer = observe(world.config).pools["web"].balancer
        assert balancer is not None
        assert dict(balancer.weights) == {"primary": 255, "mirror": 0}
        # moto's checkers always report "Success: HTTP Status Code: 200" (route53/responses.py).
        assert dict(balancer.healthy) == {"primary": None, "mirror": True}


class TestWhenTheCloudCannotBeRead:
    def test_an_unreachable_endpoint_is_one_degraded_line_and_nothing_invented(
        self, monkeypatch: pytest.MonkeyPatch, demo: MirrorcastConfig, black_hole_url: str
    ) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_ENDPOINT_URL", black_hole_url)
        config = MirrorcastConfig.model_validate(
            {**demo.model_dump(mode="json"), "driver": {"observe_timeout": "1s"}}
        )
        seen = StackObserver(attempts=2).observe(config, now=NOW)
        pool = seen.pools["web"]
        assert pool.primary is None and pool.mirror is None and pool.balancer is None
        # One line for the cloud (not one per side), naming what was not read.
        assert seen.degraded == [
            "aws: not observed: no answer in time (web/primary, web/mirror, web/balancer not read)"
        ]
        health = seen.health()["web"]
        assert (health.observed, health.healthy, health.ready) == (False, 0, False)
        assert seen.observed_desired() == {}
        assert seen.drift(config) == []

    def test_without_credentials_no_client_is_built_and_the_cloud_is_one_degraded_line(
        self, monkeypatch: pytest.MonkeyPatch, demo: MirrorcastConfig
    ) -> None:
        # tests/conftest.py empties every link of botocore's chain (environment, profile files,
        # instance metadata). Building a client loads the service model: about 0.1 s of CPU of
        # a one-shot cycle that could never sign a request.
        monkeypatch.setattr(_aws, "_SHARED", {})
        models: list[str] = []
        load = botocore.loaders.Loader.load_service_model

        def counted(loader: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
            models.append(service_name)
            return load(loader, service_name, *args, **kwargs)

        monkeypatch.setattr(botocore.loaders.Loader, "load_service_model", counted)

        seen = observe(demo)

        assert seen.degraded == [
            "aws: not observed: no AWS credentials found (environment, profile or instance role) "
            "(web/primary, web/mirror, web/balancer not read)"
        ]
        assert models == [] and _aws._SHARED == {}

    def test_credentials_that_appear_after_a_cycle_without_them_are_used_by_the_next(
        self, aws: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo: MirrorcastConfig
    ) -> None:
        # A long-running driver started before its profile (or instance role) was there: the
        # client built without credentials was kept for the process and never signed a request.
        world = build_world(demo, mirror_desired=0)
        monkeypatch.setattr(_aws, "_SHARED", {})
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        credentials = tmp_path / "credentials"
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))

        before = observe(world.config)
        credentials.write_text(
            "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        )
        after = observe(world.config)

        assert before.pools["web"].primary is None
        assert "no AWS credentials found" in before.degraded[0]
        assert after.degraded == []
        primary = after.pools["web"].primary
        assert primary is not None and primary.group == world.groups["primary"]

    def test_two_stacks_sharing_the_pool_tags_fail_loudly(
        self, aws: str, demo: MirrorcastConfig
    ) -> None:
        world = build_world(demo, mirror_desired=0, tag="a")
        build_world(demo, mirror_desired=0, tag="b")
        problems = observe(world.config).pools["web"].problems
        assert any(
            "2 Auto Scaling groups are tagged" in p and "a tag of its own" in p for p in problems
        )


def test_the_tags_observers_look_for_are_the_ones_infra_declares() -> None:
    from infra._common import resource_tags

    assert set(resource_tags({}, pool="web", role="mirror")) == {POOL_TAG, ROLE_TAG}
    source = (ROOT / "infra" / "pool.py").read_text(encoding="utf-8")
    assert f'"{APP_VERSION_TAG}"' in source


@pytest.fixture()
def black_hole_url() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
