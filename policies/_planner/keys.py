"""The typed record of the pool keys a plan may change, and its two spellings.

The planner works on a :class:`DriverKeys` record (one attribute per key, typed); the plan's
changes and the planner's memory spell the same keys as config paths below ``pools.<pool>.``
(``mirror.state``, ...), which is what Pulumi's ``set_config(..., path=True)`` and the gitops
YAML editor take. :data:`PATHS` is the one table between the two spellings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.config import Capacity, MirrorState, PoolSpec, Weights

__all__ = ["DRIVER_KEYS", "PATHS", "DriverKeys", "number"]


def number(value: float) -> int | float:
    """``value`` as an int when it is whole (so a percent reads ``50``, not ``50.0``)."""
    return int(value) if float(value).is_integer() else value


@dataclass(slots=True)
class DriverKeys:
    """The keys of one pool the driver may change, as the planner reads and writes them."""

    state: MirrorState
    percent: int | float
    primary_weight: int
    mirror_weight: int
    capacity_min: int
    capacity_desired: int
    autoscaler_target: int | float

    @classmethod
    def of(cls, pool: PoolSpec) -> DriverKeys:
        """The keys as ``pool`` has them."""
        return cls(
            state=pool.mirror.state,
            percent=number(pool.mirror.percent),
            primary_weight=pool.balancer.weights.primary,
            mirror_weight=pool.balancer.weights.mirror,
            capacity_min=pool.primary.capacity.min,
            capacity_desired=pool.primary.capacity.desired,
            autoscaler_target=number(pool.primary.autoscaler_target),
        )

    @classmethod
    def from_paths(cls, values: Mapping[str, Any], *, default: DriverKeys) -> DriverKeys:
        """The keys remembered as ``{path: value}`` (the planner's memory).

        A key missing from ``values`` (remembered before the key existed) is taken from
        ``default``; a path that is not a driver key is an error, not silently dropped.
        """
        unknown = sorted(set(values) - set(PATHS.values()))
        if unknown:
            raise ValueError(
                f"remembered driver keys {', '.join(unknown)} are not driver keys; "
                f"they are {', '.join(PATHS.values())}"
            )
        merged = {**default.as_paths(), **values}
        return cls(
            state=MirrorState(merged["mirror.state"]),
            percent=number(merged["mirror.percent"]),
            primary_weight=int(merged["balancer.weights.primary"]),
            mirror_weight=int(merged["balancer.weights.mirror"]),
            capacity_min=int(merged["primary.capacity.min"]),
            capacity_desired=int(merged["primary.capacity.desired"]),
            autoscaler_target=number(merged["primary.autoscaler_target"]),
        )

    def as_paths(self) -> dict[str, Any]:
        """``{path: value}`` in :data:`DRIVER_KEYS` order (plain JSON values, for memory and diffs)."""
        values = {PATHS[f.name]: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["mirror.state"] = self.state.value
        return values

    def copy(self) -> DriverKeys:
        return dataclasses.replace(self)

    def applied_to(self, spec: PoolSpec) -> PoolSpec:
        """``spec`` with these keys set (the primary's weight is what the mirror leaves)."""
        capacity = Capacity(
            min=int(self.capacity_min),
            max=spec.primary.capacity.max,
            desired=int(self.capacity_desired),
        )
        return spec.model_copy(
            update={
                "mirror": spec.mirror.model_copy(
                    update={"state": MirrorState(self.state), "percent": float(self.percent)}
                ),
                "balancer": spec.balancer.model_copy(
                    update={
                        "weights": Weights(
                            primary=100 - int(self.mirror_weight), mirror=int(self.mirror_weight)
                        )
                    }
                ),
                "primary": spec.primary.model_copy(
                    update={
                        "capacity": capacity,
                        "autoscaler_target": float(self.autoscaler_target),
                    }
                ),
            }
        )


PATHS: dict[str, str] = {
    "state": "mirror.state",
    "percent": "mirror.percent",
    "primary_weight": "balancer.weights.primary",
    "mirror_weight": "balancer.weights.mirror",
    "capacity_min": "primary.capacity.min",
    "capacity_desired": "primary.capacity.desired",
    "autoscaler_target": "primary.autoscaler_target",
}
"""Each :class:`DriverKeys` attribute's config path below ``pools.<pool>.``."""

DRIVER_KEYS: tuple[str, ...] = tuple(PATHS.values())
"""The pool keys a plan may change (below ``pools.<pool>.``), in the order changes are listed."""

assert set(PATHS) == {f.name for f in dataclasses.fields(DriverKeys)}, "one path per key"
