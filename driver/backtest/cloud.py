"""A simulated cloud for one strategy: a primary group and a mirror with ready-time queues.

It plays what Pulumi and the cloud would do with a config change, minute by minute: new
primary instances serve only after the primary's ready time, an activated mirror after its own
ready time, and a weight change after the DNS TTL. Every instance that runs (booting or
serving) costs; a paused warm-pool mirror keeps its instances stopped, which the scorer may
charge at a fraction.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from driver.observers import BalancerObservation, SideObservation
from infra.config import PoolSpec

__all__ = ["CloudRecord", "CloudTiming", "SimulatedCloud", "SimulatedObserver"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CloudTiming:
    """How long the simulated cloud takes to carry out a change.

    :param primary_ready: from a primary scale-up to the new instances serving (default 5 min).
    :param mirror_ready: from activating a paused mirror to it serving; ``None`` (default) takes
        the pool's own: 2 minutes from a warm pool of stopped instances, the primary's time when
        it is scaled to zero, or its configured ``mirror.ready_time``.
    :param dns_ttl: from a weight change to traffic following it (default 60 s).
    :param actuation_delay: from the driver's decision to its config change reaching the cloud
        (the cycle itself and ``pulumi up``; default 2 min). The cloud's own autoscaler acts
        without it; the stack changes a plan makes wait for it.
    """

    primary_ready: timedelta = timedelta(minutes=5)
    mirror_ready: timedelta | None = None
    dns_ttl: timedelta = timedelta(seconds=60)
    actuation_delay: timedelta = timedelta(minutes=2)


def _minutes(value: timedelta) -> int:
    """Whole minutes, rounded up: the simulation's resolution is one minute."""
    return max(0, math.ceil(value.total_seconds() / 60))


@dataclass(frozen=True)
class CloudRecord:
    """What a strategy's cloud did, one entry per trace minute.

    :param primary_ready: primary instances serving.
    :param primary_running: primary instances running (serving or booting), which cost.
    :param mirror_ready: mirror instances serving.
    :param mirror_running: mirror instances running (serving or booting).
    :param mirror_paused: mirror instances kept stopped in a warm pool.
    :param mirror_share: the traffic share (0-1) the balancer actually sends to the mirror.
    :param scaling_actions: capacity changes made (primary size, mirror state or size).
    :param mirror_activations: times the mirror went from paused to active.
    """

    primary_ready: npt.NDArray[np.float64]
    primary_running: npt.NDArray[np.float64]
    mirror_ready: npt.NDArray[np.float64]
    mirror_running: npt.NDArray[np.float64]
    mirror_paused: npt.NDArray[np.float64]
    mirror_share: npt.NDArray[np.float64]
    scaling_actions: int = 0
    mirror_activations: int = 0

    @classmethod
    def primary_only(
        cls,
        *,
        ready: npt.NDArray[np.float64],
        running: npt.NDArray[np.float64],
        scaling_actions: int,
    ) -> CloudRecord:
        """A record for a strategy that never uses the mirror."""
        zeros = np.zeros_like(ready, dtype=np.float64)
        return cls(
            primary_ready=ready.astype(np.float64),
            primary_running=running.astype(np.float64),
            mirror_ready=zeros,
            mirror_running=zeros.copy(),
            mirror_paused=zeros.copy(),
            mirror_share=zeros.copy(),
            scaling_actions=scaling_actions,
        )


class _Group:
    """Instances of one group: serving ones and a queue of booting ones."""

    def __init__(self, ready: int) -> None:
        self.ready = ready
        self.booting: deque[tuple[int, int]] = deque()  # (ready at minute, count), in order

    @property
    def size(self) -> int:
        return self.ready + sum(n for _, n in self.booting)

    def resize(self, target: int, *, at: int, ready_minutes: int) -> None:
        current = self.size
        if target > current:
            self.booting.append((at + ready_minutes, target - current))
            return
        surplus = current - target
        # Booting instances go first: they serve nobody yet.
        while surplus and self.booting:
            when, count = self.booting.pop()
            take = min(count, surplus)
            surplus -= take
            if count > take:
                self.booting.append((when, count - take))
        self.ready -= surplus

    def restart(self, *, at: int, ready_minutes: int) -> None:
        """Every instance starts over: none serves until ``at + ready_minutes``."""
        total = self.size
        self.ready = 0
        self.booting = deque([(at + ready_minutes, total)] if total else [])

    def tick(self, minute: int) -> None:
        while self.booting and self.booting[0][0] <= minute:
            self.ready += self.booting.popleft()[1]


class SimulatedCloud:
    """One strategy's primary group, mirror and balancer, advanced minute by minute.

    Changes take effect from the minute they are made (``at``): instances start booting at once
    (and cost from then on) and serve from ``at + ready time``.

    :param minutes: the trace's length in minutes.
    :param initial: primary instances serving at the start.
    :param timing: the cloud's delays (see :class:`CloudTiming`).
    :param mirror_ready: the mirror's ready time for this pool (already resolved).
    :param warm_pool: a paused mirror keeps its instances stopped (``True``) or has none.
    :param mirror_size: instances the mirror holds at the start.
    :param outage: ``(first minute, end minute)`` during which the primary's region serves
        nothing (its instances keep running and costing: nobody turned them off); when it ends
        every primary instance starts cold and serves one primary ready time later. The mirror
        runs elsewhere and is unaffected.
    """

    def __init__(
        self,
        *,
        minutes: int,
        initial: int,
        timing: CloudTiming,
        mirror_ready: timedelta | None = None,
        warm_pool: bool = True,
        mirror_size: int = 0,
        outage: tuple[int, int] | None = None,
    ) -> None:
        self.outage = outage
        self._primary_ready_minutes = _minutes(timing.primary_ready)
        resolved = mirror_ready if mirror_ready is not None else timing.mirror_ready
        self._mirror_ready_minutes = _minutes(
            resolved if resolved is not None else timing.primary_ready
        )
        self._ttl_minutes = _minutes(timing.dns_ttl)
        self._warm_pool = warm_pool
        self.warm_pool = warm_pool
        self.primary = _Group(initial)
        self.mirror = _Group(0)
        self.mirror_active = False
        self.mirror_size = mirror_size
        self._share = 0.0
        self._pending_share: deque[tuple[int, float]] = deque()
        self._clock = 0
        self._minutes_total = minutes
        self.scaling_actions = 0
        self.mirror_activations = 0
        self._arrays = {
            name: np.zeros(minutes, dtype=np.float64)
            for name in (
                "primary_ready",
                "primary_running",
                "mirror_ready",
                "mirror_running",
                "mirror_paused",
                "mirror_share",
            )
        }

    # ---------------------------------------------------------------- reading

    @property
    def clock(self) -> int:
        """The next minute to be recorded."""
        return self._clock

    @property
    def primary_desired(self) -> int:
        return self.primary.size

    @property
    def mirror_share(self) -> float:
        """The share of traffic (0-1) the balancer sends to the mirror now."""
        return self._share

    def primary_down(self, minute: int) -> bool:
        """Whether the primary's region is out at ``minute`` (what its health checks see)."""
        return self.outage is not None and self.outage[0] <= minute < self.outage[1]

    # ---------------------------------------------------------------- changing

    def set_primary(self, desired: int, *, at: int) -> None:
        """Resize the primary group to ``desired`` instances at minute ``at``."""
        desired = max(0, int(desired))
        if desired == self.primary.size:
            return
        self.primary.resize(desired, at=at, ready_minutes=self._primary_ready_minutes)
        self.scaling_actions += 1

    def set_mirror(self, *, active: bool, size: int, at: int) -> None:
        """Activate, pause or resize the mirror at minute ``at``.

        :param active: whether the mirror runs (and may serve).
        :param size: instances it holds (running when active, stopped in a warm pool when paused).
        """
        size = max(0, int(size))
        # Resizing a paused warm pool changes no serving capacity, so it is not a scaling action.
        changed = active != self.mirror_active or (active and size != self.mirror_size)
        if active and not self.mirror_active:
            self.mirror_activations += 1
            self.mirror.resize(size, at=at, ready_minutes=self._mirror_ready_minutes)
        elif active:
            self.mirror.resize(size, at=at, ready_minutes=self._mirror_ready_minutes)
        elif self.mirror_active:
            self.mirror.resize(0, at=at, ready_minutes=0)
        self.mirror_active = active
        self.mirror_size = size
        if changed:
            self.scaling_actions += 1

    def set_weights(self, mirror_percent: float, *, at: int) -> None:
        """Send ``mirror_percent`` of traffic to the mirror, effective after the DNS TTL."""
        share = min(1.0, max(0.0, float(mirror_percent) / 100.0))
        last = self._pending_share[-1][1] if self._pending_share else self._share
        if share == last:
            return
        self._pending_share.append((at + self._ttl_minutes, share))

    def advance(self, until: int) -> None:
        """Record every minute before ``until``."""
        until = min(until, self._minutes_total)
        arrays = self._arrays
        for minute in range(self._clock, until):
            if self.outage is not None and minute == self.outage[1]:
                # The region is back: every primary instance boots again from cold.
                self.primary.restart(at=minute, ready_minutes=self._primary_ready_minutes)
            self.primary.tick(minute)
            self.mirror.tick(minute)
            while self._pending_share and self._pending_share[0][0] <= minute:
                self._share = self._pending_share.popleft()[1]
            arrays["primary_ready"][minute] = 0 if self.primary_down(minute) else self.primary.ready
            arrays["primary_running"][minute] = self.primary.size
            if self.mirror_active:
                arrays["mirror_ready"][minute] = self.mirror.ready
                arrays["mirror_running"][minute] = self.mirror.size
            elif self._warm_pool:
                arrays["mirror_paused"][minute] = self.mirror_size
            arrays["mirror_share"][minute] = self._share
        self._clock = max(self._clock, until)
        # The state *at* the clock's minute (what a cycle at that minute observes) includes the
        # instances that become ready at that minute.
        self.primary.tick(self._clock)
        self.mirror.tick(self._clock)

    def record(self) -> CloudRecord:
        """Everything recorded so far (minutes not yet advanced to stay zero)."""
        return CloudRecord(
            **{name: array.copy() for name, array in self._arrays.items()},
            scaling_actions=self.scaling_actions,
            mirror_activations=self.mirror_activations,
        )


class SimulatedObserver:
    """The simulated cloud read through the observer interface (:class:`driver.observers.CloudObserver`).

    The backtest hands it to :class:`driver.observers.StackObserver` for every cloud name, so
    a backtest cycle takes the driver's path: the same health for the ramp gate (healthy
    targets are the instances that finished booting), the same capacity feedback. The
    simulation has no images, instance types or security rules, so those stay ``None`` (not
    observed, not compared) rather than being filled in from the config.

    :param cloud: the strategy's simulated cloud.
    """

    name = "simulated"

    def __init__(self, cloud: SimulatedCloud) -> None:
        self.cloud = cloud

    def observe_side(self, *, pool: str, spec: PoolSpec, role: str) -> SideObservation:
        cloud = self.cloud
        if role == "primary":
            group, active = cloud.primary, True
            region, where = spec.primary.region, spec.primary.cloud.value
        else:
            group, active = cloud.mirror, cloud.mirror_active
            region, where = spec.mirror_region, spec.mirror_cloud.value
        booting = sum(n for _, n in group.booting) if active else 0
        serving = group.ready if active else 0
        # The balancer's health checks of the last minute before the cycle (what the policy may
        # see): a primary whose region is out runs its instances, but none of them passes.
        healthy = serving
        if role == "primary" and cloud.primary_down(cloud.clock - 1):
            healthy = 0
        warm = cloud.mirror_size if role == "mirror" and not active and cloud.warm_pool else 0
        states = {"serving": serving, "booting": booting, "warm": warm}
        return SideObservation(
            role="primary" if role == "primary" else "mirror",
            cloud=where,
            region=region,
            group=f"simulated-{pool}-{role}",
            desired=group.size if active else 0,
            states={state: n for state, n in states.items() if n},
            serving=serving,
            starting=booting,
            warm=warm,
            targets={"healthy": healthy, "unhealthy": serving - healthy, "initial": booting},
            healthy_targets=healthy,
        )

    def observe_balancer(self, *, pool: str, spec: PoolSpec) -> BalancerObservation | None:
        # The simulation splits traffic in shares, not in a product's weights: nothing to report
        # in the interface's units.
        return None
