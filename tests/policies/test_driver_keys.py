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
