"""What the program hands the engine must pass the clouds' documented rules (tests/infra/constraints.py).

Each test runs the real program under mocks, captures every resource's engine-level inputs and
checks them against the constraint table: the example stacks, configs built for one defect each,
and configs generated with hypothesis from the config model.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from config_strategies import SECRETS, stack_configs
from constraints import aws_region_of, physical_names, violations
from hypothesis import HealthCheck, Phase, given, settings
from pulumi_harness import (
    DB_SECRET,
    EXAMPLE_STACKS,
    ProgramRun,
    run_failing,
    run_program,
    stack_config,
)

from infra.clouds import declarability_problems
from infra.config import ConfigError, config_from_mapping


def _violations(config: dict[str, Any], run: ProgramRun) -> list[str]:
    return violations(run, config_from_mapping(config), default_aws_region=config.get("aws:region"))


# --------------------------------------------------------------------------- example stacks


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_every_example_stack_meets_the_clouds_documented_limits(
    stack: str, example_runs: dict[str, ProgramRun]
) -> None:
    assert _violations(stack_config(stack), example_runs[stack]) == []


# --------------------------------------------------------------------------- one defect each


def _demo(**changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(stack_config("demo"))
    pool = config["mirrorcast:pools"]["web"]
    for dotted, value in changes.items():
        node = pool
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return config


def _renamed(config: dict[str, Any], name: str) -> dict[str, Any]:
    pools = config["mirrorcast:pools"]
    config["mirrorcast:pools"] = {name: next(iter(pools.values()))}
    return config


def test_a_30_character_pool_name_fits_every_load_balancer_and_target_group_name() -> None:
    # Defect 1: `<pool>-balancer-<role>` + 8 auto-name characters broke the 32-character cap.
    config = _renamed(
        _demo(
            mirror__location={},
            mirror__network=None,
            balancer={
                "kind": "alb",
                "weights": {"primary": 100, "mirror": 0},
                "port": 443,
                "certificate": "arn:aws:acm:us-east-1:123456789012:certificate/1",
            },
        ),
        "storefront-checkout-europe-abc",
    )
    del config["mirrorcast:pools"]["storefront-checkout-europe-abc"]["mirror"]["network"]
    run = run_program(config, secrets=DB_SECRET)
    assert _violations(config, run) == []
    names = [r.inputs.get("name") for r in run.of_type("aws:lb/targetGroup:TargetGroup")]
    assert all(name is not None and len(name) <= 32 for name in names), names


def test_the_multicloud_nlb_front_names_fit_32_characters(
    example_runs: dict[str, ProgramRun],
) -> None:
    # Defect 1: checkout-primary-front-tg / -nlb plus the auto-name suffix were 33 and 34.
    run = example_runs["multicloud"]
    for typ in ("aws:lb/targetGroup:TargetGroup", "aws:lb/loadBalancer:LoadBalancer"):
        resource = run.one(typ, "checkout-primary-front")
        assert len(resource.inputs["name"]) <= 32


def test_an_aurora_mirror_in_the_default_region_is_managed_there_not_in_the_primarys() -> None:
    # Defect 2: a mirror in aws:region got provider=None and inherited the primary's provider.
    config = _demo()
    config["aws:region"] = "us-west-2"  # the mirror's region; the primary (us-east-1) is not
    config["mirrorcast:pools"]["web"]["sync"]["database"] = {
        "engine": "postgres",
        "engine_version": "15",
        "instance_class": "db.r6g.large",
        "replica": True,
    }
    run = run_program(config, secrets=DB_SECRET)
    mirror_subnets = run.one("aws:rds/subnetGroup:SubnetGroup", "mirror-subnets")
    mirror_cluster = run.one("aws:rds/cluster:Cluster", "web-db-mirror")
    assert aws_region_of(run, mirror_subnets, "us-west-2") == "us-west-2"
    assert aws_region_of(run, mirror_cluster, "us-west-2") == "us-west-2"
    assert _violations(config, run) == []


def test_https_targets_are_health_checked_over_https_on_aws_and_gcp() -> None:
    # Defect 3: HTTPS target groups / backend services probed with plain HTTP on port 443.
    alb = _demo(
        mirror__location={},
        balancer={
            "kind": "alb",
            "port": 443,
            "weights": {"primary": 100, "mirror": 0},
            "certificate": "arn:aws:acm:us-east-1:123456789012:certificate/1",
        },
    )
    del alb["mirrorcast:pools"]["web"]["mirror"]["network"]
    run = run_program(alb, secrets=DB_SECRET)
    for group in run.of_type("aws:lb/targetGroup:TargetGroup"):
        assert group.inputs["healthCheck"]["protocol"] == "HTTPS"
    gcp = copy.deepcopy(stack_config("gcp-web"))
    storefront = gcp["mirrorcast:pools"]["storefront"]
    storefront["balancer"].update(port=443, certificate="projects/acme/global/sslCertificates/web")
    storefront["sync"]["security_rules"].append({"name": "https", "ports": "443"})
    run = run_program(gcp, secrets=DB_SECRET)
    health = run.one("gcp:compute/healthCheck:HealthCheck")
    assert "httpsHealthCheck" in health.inputs and "httpHealthCheck" not in health.inputs
    assert _violations(gcp, run) == []


def test_a_balancer_port_no_security_rule_opens_is_refused_before_anything_is_declared() -> None:
    # Defect 3: the demo listened on 80 while its rules opened only 443 and 8080.
    error, declared = run_failing(_demo(balancer__port=80), secrets=DB_SECRET)
    assert "pools.web.sync.security_rules: the balancer sends traffic to port 80" in str(error)
    assert declared == []


def test_azure_standby_pools_get_their_role_assignments_and_scale_sets_an_os_profile(
    example_runs: dict[str, ProgramRun],
) -> None:
    # Defect 4: no role assignments for the Standby Pool provider; no os_profile.
    run = example_runs["azure-api"]
    grants = run.of_type("azure-native:authorization:RoleAssignment")
    assert {g.inputs["principalId"] for g in grants} == {"33333333-3333-3333-3333-333333333333"}
    assert len(grants) == 3
    standby = run.one("azure-native:standbypool:StandbyVirtualMachinePool")
    vmss = run.one("azure-native:compute:VirtualMachineScaleSet", "api-mirror")
    profile = vmss.inputs["virtualMachineProfile"]["osProfile"]
    assert profile["adminUsername"] == "mirrorcast"
    assert len(profile["computerNamePrefix"]) <= 15
    key = profile["linuxConfiguration"]["ssh"]["publicKeys"][0]
    assert key["path"] == "/home/mirrorcast/.ssh/authorized_keys"
    assert standby.name == "api-mirror-standby"


def test_an_azure_standby_pool_without_the_providers_principal_is_refused() -> None:
    config = copy.deepcopy(stack_config("azure-api"))
    del config["mirrorcast:azure"]
    error, declared = run_failing(config, secrets=DB_SECRET)
    assert "azure.standby_pool_principal_id" in str(error)
    assert declared == []


def test_a_generalized_azure_image_without_an_ssh_key_is_refused() -> None:
    secrets = {"mirrorcast-secrets:databasePassword": "pw"}
    error, _ = run_failing(stack_config("azure-api"), secrets=secrets)
    assert "mirrorcast-secrets:azureSshPublicKey" in str(error)


def test_a_hibernated_warm_pool_gets_an_encrypted_root_volume() -> None:
    # Defect 5: hibernation needs an encrypted EBS root volume.
    config = _demo(mirror__paused={"strategy": "warm_pool", "instance_state": "hibernated"})
    run = run_program(config, secrets=DB_SECRET)
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate", "web-mirror")
    assert template.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    assert _violations(config, run) == []


def test_two_stacks_of_one_config_never_share_an_explicit_name() -> None:
    # Defect 6: the Azure load balancer name and final_snapshot_identifier ignored the stack.
    for stack_name in ("azure-api", "demo"):
        config = copy.deepcopy(stack_config(stack_name))
        if stack_name == "demo":
            config["mirrorcast:pools"]["web"]["sync"]["database"] = {
                "engine": "postgres",
                "engine_version": "15",
                "instance_class": "db.r6g.large",
            }
        one = physical_names(run_program(config, stack="prod", secrets=DB_SECRET))
        two = physical_names(run_program(config, stack="staging", secrets=DB_SECRET))
        shared = {key for key in one if key in two and one[key] == two[key]}
        assert shared == set(), shared


def test_an_uppercase_pool_name_gives_valid_lowercase_aurora_identifiers() -> None:
    # Defect 6: global_cluster_identifier (and other RDS names) broke on uppercase pool names.
    config = _renamed(_demo(), "WebShop")
    config["mirrorcast:pools"]["WebShop"]["sync"]["database"] = {
        "engine": "postgres",
        "engine_version": "15",
        "instance_class": "db.r6g.large",
    }
    run = run_program(config, secrets=DB_SECRET)
    identifier = run.one("aws:rds/globalCluster:GlobalCluster").inputs["globalClusterIdentifier"]
    assert identifier == identifier.lower()
    assert _violations(config, run) == []


# --------------------------------------------------------------------------- generated configs


@settings(
    # Each example runs the whole program (about a second); shrinking a failure would take
    # minutes, so the failing config is reported as generated.
    max_examples=30,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(config=stack_configs())
def test_every_config_the_model_accepts_is_declared_within_the_clouds_limits(
    config: dict[str, Any],
) -> None:
    try:
        model = config_from_mapping(config)
    except ConfigError:
        return  # not a config: the model refuses it with its own message
    if declarability_problems(model):
        _error, declared = run_failing(config, secrets=SECRETS)
        assert declared == [], "a refused config declares nothing"
        return
    run = run_program(config, secrets=SECRETS)
    assert run.resources, "an accepted config declares its pool"
    assert _violations(config, run) == []


# --------------------------------------------------------------------------- public SDK API


def test_the_program_reads_its_config_through_public_sdk_functions_only() -> None:
    # Defect 11: infra/__main__.py read the SDK's private pulumi.runtime.config.CONFIG.
    import ast
    from pathlib import Path

    for source in Path(__file__).resolve().parents[2].joinpath("infra").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "CONFIG":
                pytest.fail(f"{source}:{node.lineno} reads pulumi's private CONFIG")


def test_a_mistyped_key_is_found_in_the_config_the_language_host_passes() -> None:
    config = {**stack_config("demo"), "mirrorcast:poools": {"x": 1}}
    error, _ = run_failing(config, secrets=DB_SECRET)
    assert "poools" in str(error)
