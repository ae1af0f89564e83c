"""The CrossGuard pack's real policies (pulumi_policy) judging what the program really declares.

The inputs are the engine-level inputs captured from the program run under mocks (the shapes
the engine hands the pack at preview), not hand-written dictionaries; where a test needs a bad
value it edits one value inside a captured resource.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from config_strategies import SECRETS, stack_configs
from hypothesis import HealthCheck, Phase, given, settings
from pulumi_harness import (
    DB_SECRET,
    REPO,
    STACKS,
    ProgramRun,
    Registered,
    run_program,
    stack_config,
)
from ruamel.yaml import YAML

from infra.clouds import declarability_problems
from infra.config import ConfigError, config_from_mapping

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pulumi_policy") is None,
    reason="pulumi-policy is not installed here (the pack installs it into its own virtualenv)",
)

SITE = Path(importlib.util.find_spec("pulumi").origin).parents[1]  # type: ignore[arg-type,union-attr]


def _policies(stack_file: Path) -> dict[str, Any]:
    from policies.crossguard._policies import build_policies

    return {policy.name: policy for policy in build_policies(stack_file)}


def _judge(stack_file: Path, resources: list[Registered]) -> list[tuple[str, str, str]]:
    """Every violation the pack reports: (policy, resource name or 'stack', message)."""
    from pulumi_policy import (
        PolicyCustomTimeouts,
        PolicyResource,
        PolicyResourceOptions,
        ResourceValidationArgs,
        ResourceValidationPolicy,
        StackValidationArgs,
    )

    reported: list[tuple[str, str, str]] = []

    def reporter(policy: str, where: str) -> Callable[..., None]:
        def report(message: str, urn: str | None = None) -> None:
            reported.append((policy, where, message))

        return report

    custom = [r for r in resources if r.custom and not r.type.startswith("pulumi:providers:")]
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    for name, policy in _policies(stack_file).items():
        if isinstance(policy, ResourceValidationPolicy):
            for resource in custom:
                args = ResourceValidationArgs(
                    resource.type,
                    resource.inputs,
                    f"urn::{resource.name}",
                    resource.name,
                    options,
                    None,
                )
                policy.validate(args, reporter(name, resource.name))  # type: ignore[arg-type,call-arg]
        else:
            stack_resources = [
                PolicyResource(
                    r.type, r.inputs, f"urn::{r.name}", r.name, options, None, None, [], {}
                )
                for r in custom
            ]
            policy.validate(StackValidationArgs(stack_resources), reporter(name, "stack"))  # type: ignore[arg-type,call-arg]
    return reported


# --------------------------------------------------------------------------- the shapes are real


def test_every_resource_type_the_pack_names_exists_in_the_installed_provider_sdks() -> None:
    # Defect 9: Traffic Manager was listed as azure-native:network:*, a token no SDK registers.
    from policies.crossguard import CAPACITY_TYPES, COST_TAGGED_TYPES, WEIGHT_TYPES

    packages = {"aws": "pulumi_aws", "gcp": "pulumi_gcp", "azure-native": "pulumi_azure_native"}
    for token in {*WEIGHT_TYPES, *CAPACITY_TYPES, *COST_TAGGED_TYPES}:
        package, module, _type = token.split(":")
        folder = module.split("/")[0]
        sources = (SITE / packages[package] / folder).glob("*.py")
        assert any(f"'{token}'" in path.read_text() for path in sources), (
            f"{token} is not a resource type of the installed {packages[package]}"
        )


@pytest.mark.parametrize("stack", ["demo", "gcp-web", "azure-api", "multicloud"])
def test_every_example_stack_passes_the_pack_on_what_the_program_declares(
    stack: str, example_runs: dict[str, ProgramRun]
) -> None:
    assert _judge(STACKS / f"Pulumi.{stack}.yaml", example_runs[stack].resources) == []


# --------------------------------------------------------------------------- violations


def _edited(
    run: ProgramRun, typ: str, name: str, edit: Callable[[dict[str, Any]], None]
) -> list[Registered]:
    resources = copy.deepcopy(run.resources)
    target = next(r for r in resources if r.type == typ and r.name == name)
    edit(target.inputs)
    return resources


def test_a_route53_weight_beyond_255_is_a_violation(example_runs: dict[str, ProgramRun]) -> None:
    # Defect 9: the pack read weightedRoutingPolicy.weight; the program declares a list.
    def heavy(inputs: dict[str, Any]) -> None:
        inputs["weightedRoutingPolicies"][0]["weight"] = 9999

    resources = _edited(
        example_runs["demo"], "aws:route53/record:Record", "web-balancer-mirror", heavy
    )
    assert (
        "mirrorcast-traffic-weights",
        "web-balancer-mirror",
        "weightedRoutingPolicies[0].weight is 9999; route53 accepts whole weights 0-255",
    ) in _judge(STACKS / "Pulumi.demo.yaml", resources)


def test_route53_records_of_one_name_all_at_zero_are_a_violation(
    example_runs: dict[str, ProgramRun],
) -> None:
    def zero(inputs: dict[str, Any]) -> None:
        inputs["weightedRoutingPolicies"][0]["weight"] = 0

    resources = _edited(
        example_runs["demo"], "aws:route53/record:Record", "web-balancer-primary", zero
    )
    messages = [
        m
        for p, _, m in _judge(STACKS / "Pulumi.demo.yaml", resources)
        if p == "mirrorcast-stack-config"
    ]
    assert messages == [
        "Route 53 weighted records www.example.com (A) all have weight 0: no answer would be served"
    ]


def test_traffic_manager_endpoint_weights_are_checked_inline_in_the_profile(
    example_runs: dict[str, ProgramRun],
) -> None:
    def zero(inputs: dict[str, Any]) -> None:
        inputs["endpoints"][1]["weight"] = 0

    run = example_runs["azure-api"]
    profile = run.one("azure-native:trafficmanager:Profile")
    resources = _edited(run, profile.type, profile.name, zero)
    assert (
        "mirrorcast-traffic-weights",
        profile.name,
        "endpoints[1].weight is 0; azure_traffic_manager accepts whole weights 1-1000",
    ) in _judge(STACKS / "Pulumi.azure-api.yaml", resources)


def test_an_aurora_global_cluster_carries_the_cost_tags(tmp_path: Path) -> None:
    # Defect 9: aws:rds/globalCluster must carry cost tags; the program set none.
    config = stack_config("demo")
    config["aws:region"] = "us-east-1"
    config["mirrorcast:pools"]["web"]["sync"]["database"] = {
        "engine": "postgres",
        "engine_version": "15",
        "instance_class": "db.r6g.large",
    }
    run = run_program(config, stack="demo", secrets=DB_SECRET)
    assert run.of_type("aws:rds/globalCluster:GlobalCluster")
    assert [
        v
        for v in _judge(STACKS / "Pulumi.demo.yaml", run.resources)
        if v[0] == "mirrorcast-cost-tags"
    ] == []


def test_a_region_outside_the_allow_list_is_found_on_the_captured_resources(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.demo.yaml"
    text = (STACKS / "Pulumi.demo.yaml").read_text()
    stack_file.write_text(
        text.replace(
            "  mirrorcast:tags:\n",
            "  mirrorcast:policy:\n    allowed_regions: [us-east-1]\n  mirrorcast:tags:\n",
            1,
        )
    )
    run = run_program(stack_config("demo"), stack="demo", secrets=DB_SECRET)
    regions = {
        (p, m) for p, _, m in _judge(stack_file, run.resources) if p == "mirrorcast-allowed-regions"
    }
    assert regions == {
        (
            "mirrorcast-allowed-regions",
            "region us-west-2 is not in policy.allowed_regions (us-east-1)",
        )
    }


def test_the_pack_declares_its_own_virtualenv_for_pulumi_to_install() -> None:
    # Defect 9: without runtime.options.virtualenv the pack's requirements are never installed.
    from ruamel.yaml import YAML

    document = YAML(typ="safe").load((REPO / "policies/crossguard/PulumiPolicy.yaml").read_text())
    assert document["runtime"]["name"] == "python"
    assert document["runtime"]["options"]["virtualenv"] == "venv"
    requirements = (REPO / "policies/crossguard/requirements.txt").read_text()
    assert "pulumi-policy" in requirements


@settings(
    max_examples=12,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=stack_configs())
def test_every_config_the_program_declares_passes_the_pack(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    try:
        model = config_from_mapping(config)
    except ConfigError:
        return
    if declarability_problems(model):
        return
    stack_file = tmp_path / "Pulumi.generated.yaml"
    with stack_file.open("w") as out:
        YAML().dump({"config": config}, out)
    run = run_program(config, secrets=SECRETS)
    assert _judge(stack_file, run.resources) == []
