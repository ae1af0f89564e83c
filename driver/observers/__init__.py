"""Observation: what the clouds report about each pool, behind one interface per cloud.

The driver reads every pool's sides each cycle with :class:`StackObserver`, which picks the
observer for each side's cloud from :data:`OBSERVERS` (the registry keyed by ``Cloud``:
:class:`~driver.observers._aws.AwsObserver`, Azure, GCP) or from the observers it is given (the
backtest's simulated cloud), retries transient failures with tenacity, and turns a side that
cannot be read into one degraded line and "not observed"::

    from driver.observers import StackObserver

    seen = StackObserver().observe(config, now=now)
    seen.health()           # pool -> MirrorHealth for the ramp gate
    seen.primary_health()   # pool -> PrimaryHealth (a failing primary lets traffic go early)
    seen.observed_desired() # pool -> the primary's desired size as the cloud holds it
    seen.drift(config)      # differences between mirror, primary and config
    seen.degraded           # one line per side or balancer that could not be read

The comparisons are pure (:mod:`driver.observers._compare`); only the per-cloud modules talk to
a cloud.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driver.observers._base import (
    BalancerObservation,
    CloudObserver,
    ObserveError,
    ObserveUnavailable,
    PoolObservation,
    SideObservation,
    with_retries,
)
from driver.observers._compare import (
    Drift,
    drift,
    mirror_health,
    observed_primary_desired,
    observed_text,
    observed_vs_intended,
    primary_health,
)
from infra.config import Cloud, MirrorcastConfig, MirrorcastError, PoolSpec, UnknownCloudError
from policies import MirrorHealth, PrimaryHealth

__all__ = [
    "OBSERVERS",
    "BalancerObservation",
    "CloudObserver",
    "Drift",
    "ObserveError",
    "ObserveUnavailable",
    "ObserverRegistry",
    "PoolObservation",
    "SideObservation",
    "StackObservation",
    "StackObserver",
    "UnknownCloudError",
    "drift",
    "mirror_health",
    "not_observed",
    "observed_text",
    "observed_vs_intended",
    "primary_health",
]

logger = logging.getLogger(__name__)

FAILING_BELOW = 50.0
"""A primary with a smaller percentage of its fleet healthy is failing (a region or zone lost),
not a few instances being replaced: worth a cycle now rather than at the next interval."""

ObserverFactory = Callable[[MirrorcastConfig], CloudObserver]
"""Builds a cloud's observer from the stack's config (its tags, ``driver.observe_timeout``)."""


class ObserverRegistry:
    """Cloud -> the factory of its observer; the driver observes through :data:`OBSERVERS`.

    A factory imports its cloud's SDK when called, not when registered, so the CLI starts
    without boto3 or the Azure and GCP SDKs.
    """

    def __init__(self) -> None:
        self._factories: dict[Cloud, ObserverFactory] = {}

    def register(self, cloud: Cloud, factory: ObserverFactory) -> None:
        """Register ``cloud``'s observer; a second registration of one cloud is an error."""
        if cloud in self._factories and self._factories[cloud] is not factory:
            raise MirrorcastError(
                f"cloud {cloud.value!r} already has an observer; use ObserverRegistry.replaced "
                "to swap it for a while"
            )
        self._factories[cloud] = factory

    def factory(self, cloud: Cloud) -> ObserverFactory:
        """The factory of ``cloud``'s observer.

        :raises UnknownCloudError: nothing registered ``cloud``; the sentence names the
            registered clouds.
        """
        try:
            return self._factories[cloud]
        except KeyError:
            name = getattr(cloud, "value", cloud)
            raise UnknownCloudError(
                f"no observer is registered for cloud {name!r} (registered: "
                f"{', '.join(self.registered()) or 'none'}); register one with "
                "driver.observers.OBSERVERS.register (docs/architecture.md, 'A cloud')"
            ) from None

    def registered(self) -> list[str]:
        """The registered clouds' names, sorted."""
        return sorted(cloud.value for cloud in self._factories)

    @contextlib.contextmanager
    def replaced(self, cloud: Cloud, factory: ObserverFactory) -> Iterator[None]:
        """Use ``factory`` for ``cloud`` inside the block, then restore what was registered."""
        before = self._factories.get(cloud)
        self._factories[cloud] = factory
        try:
            yield
        finally:
            if before is None:
                del self._factories[cloud]
            else:
                self._factories[cloud] = before


def _aws(config: MirrorcastConfig) -> CloudObserver:
    from driver.observers._aws import AwsObserver

    return AwsObserver(tags=config.tags, timeout=config.driver.observe_timeout)


def _azure(config: MirrorcastConfig) -> CloudObserver:
    from driver.observers._azure import AzureObserver

    return AzureObserver(timeout=config.driver.observe_timeout)


def _gcp(config: MirrorcastConfig) -> CloudObserver:
    from driver.observers._gcp import GcpObserver

    return GcpObserver(timeout=config.driver.observe_timeout)


OBSERVERS = ObserverRegistry()
"""The observers :class:`StackObserver` builds for clouds it is not given one for."""
OBSERVERS.register(Cloud.aws, _aws)
OBSERVERS.register(Cloud.azure, _azure)
OBSERVERS.register(Cloud.gcp, _gcp)


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

    def primary_health(self) -> dict[str, PrimaryHealth]:
        """Pool -> the primary's health as its balancer reports it (pools not read left out)."""
        out: dict[str, PrimaryHealth] = {}
        for name, seen in self.pools.items():
            health = primary_health(seen)
            if health is not None:
                out[name] = health
        return out

    def failing_primaries(self) -> frozenset[str]:
        """Pools whose primary's balancer reports fewer than half its fleet healthy.

        What wakes the driver between cycles (``driver.health_watch``); the cycle then decides
        as always, from the rules' own metrics.
        """
        return frozenset(
            name
            for name, health in self.primary_health().items()
            if health.healthy_percent < FAILING_BELOW
        )

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

    def summary(self, config: MirrorcastConfig) -> dict[str, Any]:
        """Observed beside intended, per pool (:func:`observed_vs_intended`), with the time."""
        return {
            "observed_at": self.at.isoformat(),
            "pools": observed_vs_intended(config, self, self.drift(config)),
            "degraded": list(self.degraded),
        }

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
        ``registry`` on first use.
    :param registry: the observer factories (default :data:`OBSERVERS`).
    :param attempts: tries per side for transient failures (default 3).
    """

    def __init__(
        self,
        *,
        observers: Mapping[str, CloudObserver] | None = None,
        registry: ObserverRegistry = OBSERVERS,
        attempts: int = 3,
    ) -> None:
        self._given = dict(observers or {})
        self._registry = registry
        self.attempts = attempts

    def _observer(self, cloud: Cloud, config: MirrorcastConfig) -> CloudObserver:
        if cloud.value in self._given:
            return self._given[cloud.value]
        try:
            factory = self._registry.factory(cloud)
        except UnknownCloudError as exc:
            # Every side on this cloud is unreadable for the same reason: one line for the cloud.
            raise ObserveError(str(exc), where=cloud.value, cloud_wide=True) from exc
        try:
            built = factory(config)
        except ImportError as exc:
            raise ObserveError(
                f"observing {cloud.value} needs the cloud SDK extras: pip install "
                f"'mirrorcast[clouds]' ({exc})",
                where=cloud.value,
            ) from exc
        self._given[cloud.value] = built
        return built

    def observe(
        self, config: MirrorcastConfig, *, now: datetime, enabled: bool | None = None
    ) -> StackObservation:
        """Read every pool; what cannot be read is a degraded line, never a guess.

        A cause that holds for a whole cloud (no credentials, its API unreachable) is one
        degraded line for that cloud, and the cloud is not asked again this cycle, so an outage
        costs one set of timeouts rather than one per pool side.

        :param enabled: observe or not; default the stack's ``driver.observe`` (the backtest
            always reads its simulated cloud).
        """
        if not (config.driver.observe if enabled is None else enabled):
            return not_observed(config, at=now, why="driver.observe is false")
        pools: dict[str, PoolObservation] = {}
        degraded: list[str] = []
        down: dict[str, str] = {}
        missed: dict[str, list[str]] = {}
        for name, spec in config.pools.items():
            seen, own = self._observe_pool(
                name, spec, config=config, now=now, down=down, missed=missed
            )
            pools[name] = seen
            degraded.extend(f"{name}: not observed: {problem}" for problem in own)
        for cloud, reason in down.items():
            degraded.append(
                f"{cloud}: not observed: {reason} ({', '.join(missed.get(cloud, []))} not read)"
            )
        return StackObservation(at=now, pools=pools, degraded=degraded)

    def observe_pool(
        self, name: str, spec: PoolSpec, *, config: MirrorcastConfig, now: datetime
    ) -> PoolObservation:
        """Read one pool's primary, mirror and balancer."""
        return self._observe_pool(name, spec, config=config, now=now, down={}, missed={})[0]

    def _observe_pool(
        self,
        name: str,
        spec: PoolSpec,
        *,
        config: MirrorcastConfig,
        now: datetime,
        down: dict[str, str],
        missed: dict[str, list[str]],
    ) -> tuple[PoolObservation, list[str]]:
        """The pool, and its problems that are its own (not a whole cloud's)."""
        problems: list[str] = []
        own: list[str] = []

        def read(what: str, cloud: Cloud, call: Callable[[CloudObserver], Any]) -> Any:
            if cloud.value in down:
                missed[cloud.value].append(f"{name}/{what}")
                problems.append(f"{what}: {cloud.value}: {down[cloud.value]}")
                return None
            try:
                observer = self._observer(cloud, config)
                return with_retries(
                    lambda: call(observer),
                    attempts=self.attempts,
                    what=f"observing {name}/{what} on {cloud.value}",
                )
            except ObserveError as exc:
                if exc.cloud_wide:
                    down[cloud.value] = exc.detail
                    missed.setdefault(cloud.value, []).append(f"{name}/{what}")
                    problems.append(f"{what}: {exc}")
                else:
                    problems.append(f"{what}: {exc}")
                    own.append(problems[-1])
            except Exception as exc:
                # An observer bug must not cost the cycle its plan; it is reported like an outage.
                logger.warning("observing %s/%s failed", name, what, exc_info=exc)
                problems.append(f"{what}: {type(exc).__name__}: {exc}")
                own.append(problems[-1])
            return None

        primary = read(
            "primary",
            spec.primary.cloud,
            lambda o: o.observe_side(pool=name, spec=spec, role="primary"),
        )
        mirror = read(
            "mirror",
            spec.mirror_cloud,
            lambda o: o.observe_side(pool=name, spec=spec, role="mirror"),
        )
        balancer = read(
            "balancer",
            spec.balancer.kind.cloud,
            lambda o: o.observe_balancer(pool=name, spec=spec),
        )
        seen = PoolObservation(
            pool=name,
            at=now,
            primary=primary,
            mirror=mirror,
            balancer=balancer,
            problems=tuple(problems),
        )
        return seen, own
