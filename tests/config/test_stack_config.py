"""The stack-config contract: the example stacks load, and bad config names the key, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import (
    WEIGHT_RANGES,
    BalancerKind,
    Cloud,
    ConfigError,
    MirrorcastConfig,
    MirrorState,
    config_from_text,
    format_duration,
    load_stack,
    load_stack_file,
    parse_duration,
    product_weight,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "stacks" / "Pulumi.demo.yaml").read_text()


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_text(text, source="Pulumi.test.yaml")
    return str(caught.value)


class TestExampleStacks:
    @pytest.mark.parametrize("stack", ["demo", "gcp-web", "azure-api", "multicloud"])
    def test_every_example_stack_loads(self, stack: str) -> None:
        config = load_stack(stack, ROOT)
        assert isinstance(config, MirrorcastConfig)
        assert config.pools

    def test_examples_cover_all_three_clouds_and_every_placement(self) -> None:
        clouds: set[Cloud] = set()
        placements: set[str] = set()
        for stack in ("demo", "gcp-web", "azure-api", "multicloud"):
            for pool in load_stack(stack, ROOT).pools.values():
                clouds |= {pool.primary.cloud, pool.mirror_cloud}
                placements.add(pool.mirror_placement)
        assert clouds == {Cloud.aws, Cloud.azure, Cloud.gcp}
        assert placements == {"same-region", "cross-region", "cross-cloud"}

    def test_demo_mirror_is_half_the_primary_and_paused(self) -> None:
        pool = load_stack("demo", ROOT).pools["web"]
        assert pool.mirror.state is MirrorState.paused
        assert pool.mirror_size == 2  # 50% of desired 4
        assert pool.mirror_running == 0
        assert pool.balancer.weights.mirror == 0

    def test_mirror_takes_the_primary_app_version_and_its_own_locations_image(self) -> None:
        pool = load_stack("demo", ROOT).pools["web"]
        assert pool.mirror_image == "ami-0f9e8d7c6b5a40312"  # us-west-2's AMI of the same build
        cross = load_stack("multicloud", ROOT).pools["checkout"]
        assert cross.mirror_image.startswith("projects/acme-images/")


class TestPreciseErrors:
    def test_out_of_range_percent_names_the_key_path_line_and_value(self) -> None:
        message = _error(DEMO.replace("percent: 50", "percent: 140"))
        assert "pools.web.mirror.percent: must be between 0 and 100, got 140" in message
        line = next(i for i, text in enumerate(DEMO.splitlines(), 1) if "percent: 50" in text)
        assert message.startswith(f"Pulumi.test.yaml:{line}:")

    def test_an_autoscaler_target_outside_its_range_is_refused(self) -> None:
        text = DEMO.replace(
            "        network:\n", "        autoscaler_target: 99\n        network:\n", 1
        )
        message = _error(text)
        assert "pools.web.primary.autoscaler_target: must be between 10 and 95, got 99" in message

    def test_a_health_watch_not_shorter_than_the_interval_is_refused(self) -> None:
        # The watch reads the clouds between cycles; one as long as the interval is a cycle.
        text = DEMO.replace(
            "  mirrorcast:pools:\n",
            "  mirrorcast:driver:\n    interval: 5m\n    health_watch: 5m\n  mirrorcast:pools:\n",
            1,
        )
        message = _error(text)
        assert (
            "driver.health_watch 5m must be positive and shorter than driver.interval 5m" in message
        )
        fine = text.replace("health_watch: 5m", "health_watch: 1m")
        assert config_from_text(fine, source="t.yaml").driver.health_watch == parse_duration("1m")

    def test_a_metric_resource_the_source_would_ignore_is_refused(self) -> None:
        # Only Azure Monitor reads ``resource``; a file source used to drop it silently.
        text = DEMO.replace(
            "          kind: resource\n",
            "          kind: resource\n          resource: /subscriptions/0000/vmss/web\n",
            1,
        )
        assert text != DEMO
        message = _error(text)
        assert (
            "pools.web.metrics.cpu.resource: only an azure_monitor source reads a metric from a "
            "resource of its own, and this stack's metrics.type is file" in message
        )

    def test_unknown_key_is_rejected_with_a_suggestion(self) -> None:
        message = _error(DEMO.replace("state: paused", "stat: paused"))
        assert "pools.web.mirror.stat: unknown key 'stat' (did you mean 'state'?)" in message

    def test_bad_enum_lists_the_choices(self) -> None:
        message = _error(DEMO.replace("kind: route53", "kind: route54"))
        assert "pools.web.balancer.kind:" in message
        assert "'route53'" in message and "got 'route54'" in message

    def test_capacity_must_be_ordered(self) -> None:
        message = _error(DEMO.replace("desired: 4", "desired: 40"))
        assert (
            "pools.web.primary.capacity: desired (40) must be between min (2) and max (20)"
            in message
        )

    def test_paused_mirror_cannot_take_traffic(self) -> None:
        text = DEMO.replace(
            "primary: 100\n          mirror: 0", "primary: 70\n          mirror: 30"
        )
        assert "a paused mirror must take no traffic" in _error(text)

    def test_weights_must_add_up_to_100(self) -> None:
        text = DEMO.replace("primary: 100\n          mirror: 0", "primary: 90\n          mirror: 0")
        assert (
            "pools.web.balancer.weights: primary + mirror must add up to 100, got 90 + 0"
            in _error(text)
        )

    def test_alb_cannot_span_regions(self) -> None:
        text = DEMO.replace("kind: route53", "kind: alb")
        assert "a cross-region AWS mirror needs route53" in _error(text)

    def test_cross_cloud_mirror_needs_dns_level_weighting(self) -> None:
        text = (
            (ROOT / "stacks" / "Pulumi.multicloud.yaml")
            .read_text()
            .replace("kind: route53", "kind: alb")
        )
        assert (
            "a cross-cloud mirror needs route53, azure_traffic_manager or gcp_cloud_dns"
            in _error(text)
        )

    def test_mirror_location_needs_an_image_of_the_same_build(self) -> None:
        text = DEMO.replace("            aws:us-west-2: ami-0f9e8d7c6b5a40312\n", "")
        assert "no image for the mirror's location aws:us-west-2" in _error(text)

    def test_warm_state_must_exist_on_the_mirrors_cloud(self) -> None:
        text = DEMO.replace("instance_state: stopped", "instance_state: deallocated")
        assert "instance_state 'deallocated' is not available on aws" in _error(text)

    def test_unnamespaced_keys_are_refused(self) -> None:
        message = _error("config:\n  pools: {}\n")
        assert "pools: config keys must be namespaced; write 'mirrorcast:pools'" in message

    def test_invalid_yaml_reports_line_and_column(self) -> None:
        message = _error("config:\n  mirrorcast:pools: [unclosed\n")
        assert message.startswith("Pulumi.test.yaml:") and "invalid YAML" in message

    def test_missing_pools_is_reported(self) -> None:
        assert "pools: is required" in _error("config:\n  aws:region: us-east-1\n")

    def test_bad_duration_says_what_is_accepted(self) -> None:
        message = _error(DEMO.replace("cooldown: 15m", "cooldown: soon"))
        assert (
            "pools.web.guardrails.cooldown: expected a duration such as 90s, 5m, 1h, 1d or 1w, got 'soon'"
            in message
        )

    def test_oversized_stack_file_is_refused_with_the_limit(self, tmp_path: Path) -> None:
        big = tmp_path / "Pulumi.big.yaml"
        big.write_text(DEMO + "#" * 1_100_000)
        with pytest.raises(ConfigError, match="limited to 1000000 bytes"):
            load_stack_file(big)

    def test_missing_stack_lists_the_stacks_that_exist(self) -> None:
        with pytest.raises(ConfigError, match=r"stacks here: .*demo"):
            load_stack("nope", ROOT)


class TestBalancerWeights:
    @pytest.mark.parametrize("kind", list(BalancerKind))
    @pytest.mark.parametrize("share", [0, 1, 30, 50, 99, 100])
    def test_translated_weights_stay_in_the_products_range(
        self, kind: BalancerKind, share: int
    ) -> None:
        low, high = WEIGHT_RANGES[kind]
        weight = product_weight(kind, share)
        assert low <= weight.weight <= high
        assert weight.enabled == (share > 0 or low == 0)

    def test_traffic_manager_disables_a_zero_share_instead_of_weight_zero(self) -> None:
        weight = product_weight(BalancerKind.azure_traffic_manager, 0)
        assert weight.weight == 1 and weight.enabled is False

    def test_route53_full_share_is_its_maximum(self) -> None:
        assert product_weight(BalancerKind.route53, 100).weight == 255


class TestDurations:
    @pytest.mark.parametrize("text", ["90s", "5m", "1h", "2d", "1w"])
    def test_round_trip(self, text: str) -> None:
        assert format_duration(parse_duration(text)) == text

    def test_serialised_config_is_readable_and_reloads(self) -> None:
        config = load_stack("demo", ROOT)
        dumped = config.model_dump(mode="json")
        assert dumped["pools"]["web"]["guardrails"]["cooldown"] == "15m"
        assert MirrorcastConfig.model_validate(dumped) == config


def test_json_schema_is_published_for_editors() -> None:
    schema = MirrorcastConfig.model_json_schema()
    assert "pools" in schema["properties"]
    assert schema["$defs"]["MirrorSpec"]["properties"]["percent"]["description"]


def test_untrusted_utilisation_needs_a_forecast_sized_action() -> None:
    from infra.config import ScalePrimaryAction

    with pytest.raises(ValueError, match="untrusted_utilisation only applies with to_forecast"):
        ScalePrimaryAction(to=3, untrusted_utilisation=60)
    assert (
        ScalePrimaryAction(to_forecast=True, untrusted_utilisation=60).untrusted_utilisation == 60
    )
