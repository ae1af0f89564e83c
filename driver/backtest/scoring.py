"""The capacity model and the score: under-provisioned minutes and instance-hours.

An instance serves at most ``instance_capacity * slo_utilisation`` units of demand within its
SLO. The balancer splits demand between primary and mirror by the share in effect, so a minute
is under-provisioned when either side gets more than its serving instances handle (traffic sent
to a mirror that is not serving yet is lost, which is why the planner must not send it).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driver.backtest.cloud import CloudRecord
from driver.backtest.errors import BacktestError

__all__ = ["CapacityModel", "StrategyScore", "score_record"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CapacityModel:
    """What one instance serves.

    :param instance_capacity: demand units one instance serves at 100% utilisation.
    :param slo_utilisation: the utilisation (0-1) up to which the SLO holds (default 0.8).
    """

    instance_capacity: float
    slo_utilisation: float = 0.8

    def __post_init__(self) -> None:
        if not (self.instance_capacity > 0 and math.isfinite(self.instance_capacity)):
            raise BacktestError(
                f"instance capacity must be a positive number, got {self.instance_capacity!r}"
            )
        if not 0 < self.slo_utilisation <= 1:
            raise BacktestError(f"SLO utilisation must be in (0, 1], got {self.slo_utilisation!r}")

    @property
    def per_instance(self) -> float:
        """Demand one instance serves within the SLO."""
        return self.instance_capacity * self.slo_utilisation

    def instances_for(self, demand: float, *, utilisation: float | None = None) -> int:
        """Instances needed to serve ``demand`` at ``utilisation`` (default: the SLO's)."""
        target = self.slo_utilisation if utilisation is None else utilisation
        if not math.isfinite(demand) or demand <= 0:
            return 0
        # The small tolerance keeps 8.0 / 0.8 from becoming 10.000000000000002 -> 11.
        return math.ceil(demand / (self.instance_capacity * target) - 1e-9)

    def servable(self, record: CloudRecord) -> npt.NDArray[np.float64]:
        """Per minute, the most demand the serving instances handle under the share in effect."""
        share = record.mirror_share
        primary = record.primary_ready * self.per_instance
        mirror = record.mirror_ready * self.per_instance
        with np.errstate(divide="ignore", invalid="ignore"):
            by_primary = np.where(share < 1.0, primary / (1.0 - share), np.inf)
            by_mirror = np.where(share > 0.0, mirror / share, np.inf)
        return np.asarray(np.minimum(by_primary, by_mirror), dtype=np.float64)

    def underprovisioned(
        self, demand: npt.NDArray[np.float64], record: CloudRecord
    ) -> npt.NDArray[np.bool_]:
        """Per minute, whether demand exceeded what was served (gaps count as false)."""
        servable = self.servable(record)
        with np.errstate(invalid="ignore"):
            over = demand > servable * (1 + 1e-9)
        return np.asarray(over & ~np.isnan(demand), dtype=np.bool_)


@dataclass(frozen=True)
class StrategyScore:
    """One strategy's result over the scored minutes.

    :param underprovisioned_minutes: scored minutes with demand above served capacity.
    :param instance_hours: running instance-hours (primary and mirror, booting included).
    :param mirror_instance_hours: the part of ``instance_hours`` run by the mirror.
    :param paused_instance_hours: instance-hours of stopped warm-pool mirror instances.
    :param cost_instance_hours: ``instance_hours`` plus the paused fraction of the paused ones.
    :param scaling_actions: capacity changes made.
    :param mirror_activations: paused-to-active transitions of the mirror.
    """

    underprovisioned_minutes: int
    instance_hours: float
    mirror_instance_hours: float
    paused_instance_hours: float
    cost_instance_hours: float
    scaling_actions: int
    mirror_activations: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "underprovisioned_minutes": self.underprovisioned_minutes,
            "instance_hours": round(self.instance_hours, 3),
            "mirror_instance_hours": round(self.mirror_instance_hours, 3),
            "paused_instance_hours": round(self.paused_instance_hours, 3),
            "cost_instance_hours": round(self.cost_instance_hours, 3),
            "scaling_actions": self.scaling_actions,
            "mirror_activations": self.mirror_activations,
        }


def score_record(
    record: CloudRecord,
    *,
    demand: npt.NDArray[np.float64],
    scored: npt.NDArray[np.bool_],
    model: CapacityModel,
    paused_cost_fraction: float = 0.0,
) -> StrategyScore:
    """Score a strategy's cloud record over the scored minutes.

    :param record: what the strategy's cloud did, per minute.
    :param demand: demand per minute (NaN in gaps).
    :param scored: per minute, whether it counts (after the history part, not in a gap).
    :param model: the capacity model.
    :param paused_cost_fraction: share (0-1) of an instance's cost a stopped warm-pool instance
        costs (default 0: storage only, not counted).
    """
    if not 0 <= paused_cost_fraction <= 1:
        raise BacktestError(f"paused cost fraction must be in [0, 1], got {paused_cost_fraction!r}")
    under = model.underprovisioned(demand, record) & scored
    running = (record.primary_running + record.mirror_running)[scored].sum() / 60.0
    paused = record.mirror_paused[scored].sum() / 60.0
    return StrategyScore(
        underprovisioned_minutes=int(under.sum()),
        instance_hours=float(running),
        mirror_instance_hours=float(record.mirror_running[scored].sum() / 60.0),
        paused_instance_hours=float(paused),
        cost_instance_hours=float(running + paused_cost_fraction * paused),
        scaling_actions=record.scaling_actions,
        mirror_activations=record.mirror_activations,
    )
