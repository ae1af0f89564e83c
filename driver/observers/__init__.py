"""Observation: what the clouds report about each pool, behind one interface per cloud.

The driver reads every pool's sides each cycle with :class:`StackObserver`, which picks the
observer for each side's cloud (:class:`~driver.observers._aws.AwsObserver`, Azure, GCP, or
the backtest's simulated cloud), retries transient failures with tenacity, and turns a side
that cannot be read into one degraded line and "not observed"::

    from driver.observers import StackObserver

    seen = StackObserver().observe(config, now=now)
    seen.health()           # pool -> MirrorHealth for the ramp gate
    seen.observed_desired() # pool -> the primary's desired size as the cloud holds it
    seen.drift(config)      # differences between mirror, primary and config
    seen.degraded           # one line per side or balancer that could not be read

The comparisons are pure (:mod:`driver.observers._compare`); only the per-cloud modules talk to
a cloud.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driver.observers._base import (
    BalancerObservation,
    CloudObserver,
    ObserveError,
    ObserveUnavailable,
    PoolObservation,
    Role,
    SideObservation,
    with_retries,
)
from driver.observers._compare import Drift, drift, mirror_health, observed_primary_desired
from infra.config import Cloud, MirrorcastConfig, PoolSpec
from policies._plan import MirrorHealth

__all__ = [
    "BalancerObservation",
    "CloudObserver",
    "Drift",
    "ObserveError",
    "ObserveUnavailable",
    "PoolObservation",
    "SideObservation",
    "StackObservation",
    "StackObserver",
    "drift",
    "mirror_health",
    "not_observed",
]

logger = logging.getLogger(__name__)

ObserverFactory = Callable[[MirrorcastConfig], CloudObserver]


def _aws(config: MirrorcastConfig) -> CloudObserver:
    from driver.observers._aws import AwsObserver

    return AwsObserver(tags=config.tags, timeout=config.driver.observe_timeout)


def _azure(config: MirrorcastConfig) -> CloudObserver:
    from driver.observers._azure import AzureObserver

    return AzureObserver(timeout=config.driver.observe_timeout)


def _gcp(config: MirrorcastConfig) -> CloudObserver:
    from driver.observers._gcp import GcpObserver

    return GcpObserver(timeout=config.driver.observe_timeout)


DEFAULT_FACTORIES: dict[str, ObserverFactory] = {"aws": _aws, "azure": _azure, "gcp": _gcp}
"""The observer built for each cloud when a :class:`StackObserver` is given none."""


@dataclass(frozen=True)
class StackObservation:
    """One cycle's observation of every pool.

    :param at: when it was read.
    :param pools: pool -> what was read (sides that could not be read are ``None``).
    :param degraded: one sentence per side or balancer that could not be read.
    :param enabled: ``False`` when observation is switched off (``driver.observe: false``).
    """

    at: datetime
    pools: Mapping[str, PoolObservation] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    enabled: bool = True

    def health(self) -> dict[str, MirrorHealth]:
        """Pool -> the mirror's health as observed (not observed: ``observed=False``)."""
        return {name: mirror_health(seen) for name, seen in self.pools.items()}

    def observed_desired(self) -> dict[str, int]:
        """Pool -> the primary's desired size as its cloud holds it (pools not observed left out)."""
        out: dict[str, int] = {}
        for name, seen in self.pools.items():
            desired = observed_primary_desired(seen)
            if desired is not None:
                out[name] = desired
        return out

    def drift(self, config: MirrorcastConfig) -> list[Drift]:
        """Every drift between mirror, primary and ``config``, pool by pool."""
        found: list[Drift] = []
        for name, spec in config.pools.items():
            found.extend(drift(name, spec, self.pools.get(name)))
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "observed_at": self.at.isoformat(),
            "enabled": self.enabled,
            "pools": {name: seen.as_json() for name, seen in self.pools.items()},
            "degraded": list(self.degraded),
        }


def not_observed(config: MirrorcastConfig, *, at: datetime, why: str) -> StackObservation:
    """An observation that read nothing, saying why once (for ``driver.observe: false``)."""
    return StackObservation(
        at=at,
        pools={name: PoolObservation(pool=name, at=at, problems=(why,)) for name in config.pools},
        degraded=[f"cloud state not observed: {why}"],
        enabled=False,
    )


class StackObserver:
    """Reads every pool's primary, mirror and balancer from their clouds.

    :param observers: cloud name -> observer to use; clouds not given are built from
        :data:`DEFAULT_FACTORIES` on first use.
    :param attempts: tries per side for transient failures (default 3).
    """

    def __init__(
        self,
        *,
        observers: Mapping[str, CloudObserver] | None = None,
        attempts: int = 3,
    ) -> None:
        self._given = dict(observers or {})
        self.attempts = attempts

    def _observer(self, cloud: Cloud, config: MirrorcastConfig) -> CloudObserver:
        if cloud.value in self._given:
            return self._given[cloud.value]
        try:
            built = DEFAULT_FACTORIES[cloud.value](config)
        except ImportError as exc:
            raise ObserveError(
                f"observing {cloud.value} needs the cloud SDK extras: pip install "
                f"'mirrorcast[clouds]' ({exc})",
                where=cloud.value,
            ) from exc
        self._given[cloud.value] = built
        return built

    def observe(self, config: MirrorcastConfig, *, now: datetime) -> StackObservation:
        """Read every pool; what cannot be read is a degraded line, never a guess."""
        if not config.driver.observe:
            return not_observed(config, at=now, why="driver.observe is false")
        pools: dict[str, PoolObservation] = {}
        degraded: list[str] = []
        for name, spec in config.pools.items():
            seen = self.observe_pool(name, spec, config=config, now=now)
            pools[name] = seen
            degraded.extend(f"{name}: not observed: {problem}" for problem in seen.problems)
        return StackObservation(at=now, pools=pools, degraded=degraded)

    def observe_pool(
        self, name: str, spec: PoolSpec, *, config: MirrorcastConfig, now: datetime
    ) -> PoolObservation:
        sides: dict[Role, SideObservation | None] = {}
        problems: list[str] = []
        for role, cloud in (("primary", spec.primary.cloud), ("mirror", spec.mirror_cloud)):
            try:
                observer = self._observer(cloud, config)
                sides[role] = with_retries(
                    lambda o=observer, r=role: o.observe_side(pool=name, spec=spec, role=r),  # type: ignore[misc]
                    attempts=self.attempts,
                    what=f"observing {name}/{role} on {cloud.value}",
                )
            except ObserveError as exc:
                sides[role] = None
                problems.append(f"{role}: {exc}")
            except Exception as exc:
                # An observer bug must not cost the cycle its plan; it is reported like an outage.
                logger.warning("observing %s/%s failed", name, role, exc_info=exc)
                sides[role] = None
                problems.append(f"{role}: {type(exc).__name__}: {exc}")
        balancer: BalancerObservation | None = None
        try:
            observer = self._observer(spec.balancer.kind.cloud, config)
            balancer = with_retries(
                lambda: observer.observe_balancer(pool=name, spec=spec),
                attempts=self.attempts,
                what=f"observing {name}'s balancer",
            )
        except ObserveError as exc:
            problems.append(f"balancer: {exc}")
        except Exception as exc:
            logger.warning("observing %s's balancer failed", name, exc_info=exc)
            problems.append(f"balancer: {type(exc).__name__}: {exc}")
        return PoolObservation(
            pool=name,
            at=now,
            primary=sides.get("primary"),
            mirror=sides.get("mirror"),
            balancer=balancer,
            problems=tuple(problems),
        )
