"""Bad stack config stops the program before it declares anything, naming the key path."""

from __future__ import annotations

import copy
from typing import Any

from pulumi_harness import DB_SECRET, run_failing, stack_config, yaml_config


def _demo_with(change: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(stack_config("demo"))
    pool = config["mirrorcast:pools"]["web"]
    for path, value in change.items():
        *parents, last = path.split(".")
        node = pool
        for key in parents:
            node = node[key]
        node[last] = value
    return config


def test_out_of_range_mirror_percent_fails_with_its_key_path_and_declares_nothing() -> None:
    error, declared = run_failing(_demo_with({"mirror.percent": 140}), secrets=DB_SECRET)
    assert "pools.web.mirror.percent: must be between 0 and 100, got 140" in str(error)
    assert declared == []


def test_every_problem_is_reported_at_once() -> None:
    error, declared = run_failing(
        _demo_with({"mirror.percent": -5, "primary.capacity.desired": 99}), secrets=DB_SECRET
    )
    message = str(error)
    assert "pools.web.mirror.percent" in message
    assert "pools.web.primary.capacity" in message
    assert declared == []


def test_unknown_mirrorcast_key_is_reported_not_ignored() -> None:
    config = stack_config("demo")
    config["mirrorcast:forcast"] = {"horizon": "1h"}
    error, declared = run_failing(config, secrets=DB_SECRET)
    assert "forcast" in str(error)
    assert declared == []


def test_missing_pools_key_fails_before_any_resource() -> None:
    config = {"mirrorcast:tags": {"a": "b"}}
    error, declared = run_failing(config)
    assert "pools: is required" in str(error)
    assert declared == []


def test_paused_mirror_with_traffic_is_refused() -> None:
    error, declared = run_failing(
        _demo_with({"balancer.weights": {"primary": 80, "mirror": 20}}), secrets=DB_SECRET
    )
    assert "pools.web: balancer.weights.mirror is 20 but the mirror is paused" in str(error)
    assert declared == []


def test_https_alb_without_a_certificate_is_refused_before_declaring() -> None:
    config = yaml_config(
        """
config:
  mirrorcast:pools:
    shop:
      primary:
        cloud: aws
        region: us-east-1
        machine_type: m6i.large
        app: {version: 1.0.0, images: {aws: ami-0123456789abcdef0}}
        capacity: {min: 1, max: 4, desired: 2}
        network: {vpc_id: vpc-1, subnet_ids: [subnet-a, subnet-b]}
      mirror: {percent: 50}
      balancer: {kind: alb, port: 443}
"""
    )
    error, declared = run_failing(config)
    assert "pools.shop.balancer.certificate: a alb listener on port 443" in str(error)
    assert declared == []


def test_database_without_a_password_secret_says_how_to_set_one() -> None:
    error, declared = run_failing(stack_config("azure-api"))
    assert "pools.api.sync.database" in str(error)
    assert "pulumi config set --secret mirrorcast-secrets:databasePassword" in str(error)
    assert declared == []


def test_azure_side_needs_a_gallery_image_id() -> None:
    config = stack_config("azure-api")
    config["mirrorcast:pools"]["api"]["primary"]["app"]["images"] = {
        "azure": "Canonical:ubuntu-24_04-lts:server:latest"
    }
    error, declared = run_failing(config, secrets=DB_SECRET)
    assert "pools.api.primary.app.images: the primary side runs on Azure" in str(error)
    assert declared == []


def test_traffic_manager_name_must_be_a_trafficmanager_host() -> None:
    config = stack_config("azure-api")
    config["mirrorcast:pools"]["api"]["balancer"]["dns"]["name"] = "api.example.com"
    error, declared = run_failing(config, secrets=DB_SECRET)
    assert "pools.api.balancer.dns.name: Traffic Manager serves" in str(error)
    assert declared == []


def test_cloud_dns_cannot_weight_an_aws_side() -> None:
    config = stack_config("multicloud")
    config["mirrorcast:pools"]["checkout"]["balancer"]["kind"] = "gcp_cloud_dns"
    error, declared = run_failing(config)
    assert "pools.checkout.balancer.kind: gcp_cloud_dns" in str(error)
    assert declared == []


def test_error_message_carries_no_traceback() -> None:
    error, _ = run_failing(_demo_with({"mirror.percent": 140}), secrets=DB_SECRET)
    assert "Traceback" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
