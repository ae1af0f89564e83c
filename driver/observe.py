"""The driver's Prometheus metrics and the ``/metrics`` endpoint.

Each :class:`DriverMetrics` has its own registry, so tests (and two drivers in one process)
do not collide on prometheus_client's global one.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from forecasting import Forecast
from infra.config import MirrorcastConfig
from policies import Plan

if TYPE_CHECKING:
    from driver.observers import Drift, StackObservation

__all__ = ["DriverMetrics", "forecast_abs_error", "parse_listen"]

logger = logging.getLogger(__name__)


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` -> ``("127.0.0.1", 9464)``; ``ValueError`` naming the setting."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(
            f"driver.metrics_listen must be host:port, such as 127.0.0.1:9464, got {listen!r}"
        )
    return host.strip("[]") or "127.0.0.1", int(port)


def forecast_abs_error(previous: Forecast, actual: pd.Series, *, now: datetime) -> float | None:
    """Mean absolute error of ``previous``'s point forecast against what was then observed.

    Compares the forecast points up to ``now`` with the nearest observation (within one forecast
    step); ``None`` when none can be compared yet.
    """
    if len(actual) == 0:
        return None
    due = list(itertools.takewhile(lambda at: at <= now, previous.times))
    if not due:
        return None
    observed = _around(actual, due, step=previous.step)
    if observed is None:
        return None
    stamps, seen_values = observed
    aware = {at.tzinfo is not None for at in due}
    if len(aware) > 1 or aware != {stamps.tz is not None}:
        # Times with and without a zone are not comparable: no observation is near.
        return None
    # Nanoseconds since the epoch (UTC for zoned times, the wall clock for naive ones), as
    # pandas compares them; one search for every due point (it was one per point).
    at_ns = np.fromiter((pd.Timestamp(at).value for at in due), dtype=np.int64, count=len(due))
    seen_ns = stamps.as_unit("ns").asi8
    nearest = _nearest(seen_ns, at_ns)
    close = np.abs(seen_ns[nearest] - at_ns) <= pd.Timedelta(previous.step).value
    if not close.any():
        return None
    values = np.asarray(previous.mean[: len(due)], dtype=float)[close]
    errors = np.abs(seen_values[nearest][close] - values)
    result = float(np.mean(errors))
    return result if math.isfinite(result) else None


def _nearest(seen: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target, the position of the nearest of ``seen`` (strictly increasing, not
    empty); an exact tie takes the later, as ``Index.get_indexer(method="nearest")`` does on an
    increasing index (about 8x cheaper than that call, which wraps the targets in an index and
    searches twice through pandas' machinery)."""
    after = np.searchsorted(seen, targets, side="left")  # first at or after the target
    before = after - 1  # the last before it
    last = len(seen) - 1
    has_before = before >= 0
    has_after = after <= last
    to_before = targets - seen[np.maximum(before, 0)]
    to_after = seen[np.minimum(after, last)] - targets
    take_before = has_before & (~has_after | (to_before < to_after))
    return np.where(take_before, before, np.minimum(after, last))


def _around(
    actual: pd.Series, due: list[datetime], *, step: timedelta
) -> tuple[pd.DatetimeIndex, np.ndarray] | None:
    """The present observations that can be nearest to a due point: in time order, one per
    time (the last), within ``step`` of the due points' span; their times and values, or
    ``None`` when there are none.

    A source's series is in time order with one point per time; then two binary searches cut
    the few points around the forecast out of two weeks of history (sorting, de-duplicating and
    dropping gaps over all of it cost about 10 ms per series per cycle). Any observation within
    one step of a due point lies in that cut, so the nearest within one step is the same.
    """
    index = actual.index
    if (
        isinstance(index, pd.DatetimeIndex)
        and len(index) > 1
        and bool((np.diff(index.asi8) > 0).all())
    ):
        reach = pd.Timedelta(step)
        lo = int(index.searchsorted(pd.Timestamp(due[0]) - reach, side="left"))
        hi = int(index.searchsorted(pd.Timestamp(due[-1]) + reach, side="right"))
        # Arrays, not a Series slice and its dropna (pandas' overhead was most of the cost).
        values = actual.to_numpy(dtype=float, na_value=np.nan)[lo:hi]
        present = ~np.isnan(values)
        if not present.any():
            return None
        return index[lo:hi][present], values[present]
    observed = actual.sort_index()
    observed = observed[~observed.index.duplicated(keep="last")].dropna()
    if len(observed) == 0:
        return None
    return pd.DatetimeIndex(observed.index), observed.to_numpy(dtype=float)


class DriverMetrics:
    """The driver's metrics.

    :param registry: where to register; default a fresh registry.
    """

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.cycle_duration = Histogram(
            "mirrorcast_cycle_duration_seconds",
            "Wall-clock duration of one driver cycle.",
            ["stack"],
            registry=r,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
        )
        self.cycles = Counter(
            "mirrorcast_cycles", "Cycles run, by outcome.", ["stack", "outcome"], registry=r
        )
        self.forecast_error = Gauge(
            "mirrorcast_forecast_abs_error",
            "Mean absolute error of the previous forecast against observations, in the metric's unit.",
            ["stack", "pool", "metric"],
            registry=r,
        )
        self.rules_fired = Counter(
            "mirrorcast_rules_fired", "Rule firings.", ["stack", "pool", "rule"], registry=r
        )
        self.active_mirrors = Gauge(
            "mirrorcast_active_mirrors", "Pools whose mirror is active.", ["stack"], registry=r
        )
        self.weights = Gauge(
            "mirrorcast_weight_percent",
            "Traffic share per side, percent.",
            ["stack", "pool", "side"],
            registry=r,
        )
        self.update_failures = Counter(
            "mirrorcast_update_failures",
            "Updates (pulumi up, gitops push) that failed or did not match the plan.",
            ["stack"],
            registry=r,
        )
        self.degraded = Gauge(
            "mirrorcast_degraded_series",
            "Series that fell back (no data, unusable, stale forecast) in the last cycle.",
            ["stack"],
            registry=r,
        )
        # Observed beside intended (driver.observers): what the clouds report each cycle.
        self.pool_observed = Gauge(
            "mirrorcast_pool_observed",
            "1 when every side of the pool was read from its cloud this cycle, 0 when not observed.",
            ["stack", "pool"],
            registry=r,
        )
        self.observed_instances = Gauge(
            "mirrorcast_observed_instances",
            "Instances per lifecycle state as the cloud reports them (InService, Warmed:Stopped, ...).",
            ["stack", "pool", "side", "state"],
            registry=r,
        )
        self.observed_healthy = Gauge(
            "mirrorcast_observed_healthy_targets",
            "Balancer targets the cloud reports healthy, per side.",
            ["stack", "pool", "side"],
            registry=r,
        )
        self.capacity = Gauge(
            "mirrorcast_desired_capacity",
            "Desired instances per side: as the config intends (source=intended) and as the "
            "cloud holds them (source=observed).",
            ["stack", "pool", "side", "source"],
            registry=r,
        )
        self.drift = Gauge(
            "mirrorcast_drift",
            "1 for each difference between the live mirror, the live primary and the config.",
            ["stack", "pool", "what", "between"],
            registry=r,
        )

    def serve(self, listen: str) -> Any:
        """Start the ``/metrics`` HTTP server on ``listen`` (host:port); returns the server."""
        from driver.metrics_http import serve_metrics

        host, port = parse_listen(listen)
        # Not prometheus_client.start_http_server: idle connections there each hold a thread
        # and a file descriptor for ever (see driver.metrics_http).
        server = serve_metrics(self.registry, host=host, port=port)
        logger.info("serving /metrics on http://%s:%d/metrics", host, server.server_port)
        return server

    def observe_cycle(
        self,
        *,
        stack: str,
        plan: Plan,
        config: MirrorcastConfig,
        duration_s: float,
        ok: bool,
        degraded: int,
        update_failed: bool,
        errors: Mapping[tuple[str, str], float],
        applied: bool = True,
    ) -> None:
        """Record one finished cycle.

        :param applied: the plan's config is now what is deployed (an applied update); when
            not (plan mode, a proposal, a failure), the weights and active mirrors shown are the
            config's as it stands, not what was only planned.
        """
        self.cycle_duration.labels(stack).observe(duration_s)
        self.cycles.labels(stack, "ok" if ok else "error").inc()
        for rule in plan.rules:
            if rule.fired:
                self.rules_fired.labels(stack, rule.pool, rule.rule).inc()
        target = plan.stack_config if applied else config
        self.active_mirrors.labels(stack).set(
            sum(1 for p in target.pools.values() if p.mirror.state.value == "active")
        )
        for name, pool in target.pools.items():
            self.weights.labels(stack, name, "primary").set(pool.balancer.weights.primary)
            self.weights.labels(stack, name, "mirror").set(pool.balancer.weights.mirror)
        if update_failed:
            self.update_failures.labels(stack).inc()
        self.degraded.labels(stack).set(degraded)
        for (pool_name, metric), value in errors.items():
            self.forecast_error.labels(stack, pool_name, metric).set(value)

    def observe_state(
        self,
        *,
        stack: str,
        config: MirrorcastConfig,
        observation: StackObservation,
        drift: Sequence[Drift],
    ) -> None:
        """Record what the clouds reported this cycle, beside what the config intends."""
        for name, pool in config.pools.items():
            self.capacity.labels(stack, name, "primary", "intended").set(
                pool.primary.capacity.desired
            )
            self.capacity.labels(stack, name, "mirror", "intended").set(pool.mirror_running)
            seen = observation.pools.get(name)
            sides = [seen.primary, seen.mirror] if seen is not None else [None, None]
            self.pool_observed.labels(stack, name).set(int(all(s is not None for s in sides)))
            for side in sides:
                if side is None:
                    continue
                for state, count in side.states.items():
                    self.observed_instances.labels(stack, name, side.role, state).set(count)
                if side.healthy_targets is not None:
                    self.observed_healthy.labels(stack, name, side.role).set(side.healthy_targets)
                if side.desired is not None:
                    self.capacity.labels(stack, name, side.role, "observed").set(side.desired)
        # Drift that was repaired must disappear from the gauge, not stay at its last value.
        self.drift.clear()
        for item in drift:
            self.drift.labels(stack, item.pool, item.what, item.between).set(1)

    def observe_failure(self, *, stack: str, duration_s: float) -> None:
        """Record a cycle that raised."""
        self.cycle_duration.labels(stack).observe(duration_s)
        self.cycles.labels(stack, "error").inc()
