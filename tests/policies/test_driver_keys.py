"""The typed record of the keys a plan may change, and its config-path spelling."""

from __future__ import annotations

import pytest
from policy_builders import demo_config

from infra.config import MirrorState
from policies import DRIVER_KEYS, DriverKeys


def _walk(obj: object, path: str) -> object:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


class TestPaths:
    def test_every_driver_key_names_a_field_of_the_pool_config_model(self) -> None:
        # The pydantic model is the contract (docs/architecture.md "Contracts"): every path the
        # planner may change must exist there, or a Pulumi set_config(path=True) would create a
        # key the program never reads.
        pool = demo_config().pools["web"]
        for path in DRIVER_KEYS:
            _walk(pool, path)

    def test_the_record_reads_each_key_from_its_path(self) -> None:
        pool = demo_config().pools["web"]
        paths = DriverKeys.of(pool).as_paths()
        assert list(paths) == list(DRIVER_KEYS)
        for path, value in paths.items():
            assert value == _walk(pool, path)


class TestRoundTrips:
    def test_applying_a_pools_own_keys_changes_nothing(self) -> None:
        pool = demo_config().pools["web"]
        assert DriverKeys.of(pool).applied_to(pool) == pool

    def test_changed_keys_land_on_the_config_and_read_back(self) -> None:
        pool = demo_config().pools["web"]
        keys = DriverKeys.of(pool)
        keys.state, keys.mirror_weight, keys.capacity_min = MirrorState.active, 30, 3
        applied = keys.applied_to(pool)
        assert applied.mirror.state is MirrorState.active
        assert applied.balancer.weights.mirror == 30
        assert applied.balancer.weights.primary == 70  # what the mirror leaves
        assert applied.primary.capacity.min == 3

    def test_memory_form_round_trips_and_missing_keys_come_from_the_config(self) -> None:
        pool = demo_config().pools["web"]
        keys = DriverKeys.of(pool)
        assert DriverKeys.from_paths(keys.as_paths(), default=keys) == keys
        # An original remembered before autoscaler_target was a driver key.
        older = {k: v for k, v in keys.as_paths().items() if k != "primary.autoscaler_target"}
        older["primary.capacity.min"] = 1
        restored = DriverKeys.from_paths(older, default=keys)
        assert restored.capacity_min == 1
        assert restored.autoscaler_target == keys.autoscaler_target

    def test_an_unknown_remembered_key_is_refused_with_the_key_named(self) -> None:
        keys = DriverKeys.of(demo_config().pools["web"])
        with pytest.raises(ValueError, match=r"mirror\.size"):
            DriverKeys.from_paths({"mirror.size": 3}, default=keys)


class TestOneConfigPathWriter:
    def test_a_plans_changes_written_by_path_give_the_plans_config(self) -> None:
        # The planner applies its typed keys; Pulumi's set_config(path=True), the gitops editor
        # and the backtest apply the plan's *paths*. Both ways must land on the same config.
        from policy_builders import T0, forecast, step_plan

        from infra.config import MirrorcastConfig, set_path

        config = demo_config()
        spike = [50, 60, 70, 78, 85, 88, 86, 80, 70, 60, 50, 45]
        result = step_plan(config, now=T0, cpu_forecast=forecast(spike))
        assert result.changes  # the spike activates the mirror and raises the primary
        data = config.model_dump(mode="json", by_alias=True)
        for change in result.changes:
            set_path(data, change.path, change.new)
        assert MirrorcastConfig.model_validate(data) == result.stack_config

    def test_a_missing_section_is_created_only_when_asked(self) -> None:
        from infra.config import ConfigPathError, set_path

        data: dict[str, object] = {"pools": {"web": {}}}
        with pytest.raises(ConfigPathError, match=r"pools\.web\.mirror is not in the config"):
            set_path(data, "pools.web.mirror.state", "active")
        set_path(data, "pools.web.mirror.state", "active", make=dict)
        assert data == {"pools": {"web": {"mirror": {"state": "active"}}}}

    def test_a_path_through_a_value_is_refused_naming_where(self) -> None:
        from infra.config import ConfigPathError, set_path

        with pytest.raises(ConfigPathError, match=r"pools\.web is not a mapping"):
            set_path({"pools": {"web": 3}}, "pools.web.mirror", 1, make=dict)
