"""What the clouds report about a pool, and the one interface every cloud's observer implements.

An observer only *reads*: the instances of each side by lifecycle state, the balancer's view of
their health, and the live configuration (image, instance type, security rules) they were
launched with. Comparing that with the stack config (health for the ramp, capacity feedback,
drift) is pure and lives in :mod:`driver.observers._compare`.

A cloud that cannot be read gives an :class:`ObserveError`; the stack observer turns it into one
degraded line and "not observed" for that side. Nothing here ever fills in a value it did not
read: a field the cloud did not report stays ``None``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from infra.config import PoolSpec, SecurityRule, UserError

__all__ = [
    "APP_VERSION_TAG",
    "POOL_TAG",
    "ROLE_TAG",
    "BalancerObservation",
    "CloudObserver",
    "ObserveError",
    "ObserveUnavailable",
    "PoolObservation",
    "Role",
    "SideObservation",
    "TranslatedErrors",
    "only_one",
    "rule_texts",
    "with_retries",
]

logger = logging.getLogger(__name__)

Role = Literal["primary", "mirror"]

# The tags infra puts on every resource of a pool side (infra/_common.py ``resource_tags`` and
# infra/pool.py); tests/driver/test_observe_aws.py checks they are still the same keys.
POOL_TAG = "mirrorcast-pool"
ROLE_TAG = "mirrorcast-role"
APP_VERSION_TAG = "mirrorcast-app-version"

T = TypeVar("T")


class ObserveError(UserError):
    """A cloud could not be read for one side of a pool; one sentence a person can act on.

    :param message: what went wrong.
    :param where: which observer and resource (``aws:us-east-1 web/mirror``).
    :param cloud_wide: the cause holds for every resource of this cloud (no credentials, the
        API unreachable): the stack observer stops asking that cloud for this cycle.
    """

    def __init__(self, message: str, *, where: str, cloud_wide: bool = False) -> None:
        self.where = where
        self.detail = message
        self.cloud_wide = cloud_wide
        super().__init__(f"{where}: {message}")


class ObserveUnavailable(ObserveError):
    """The cloud's API could not be reached or did not answer in time. Transient: retried."""

    def __init__(self, message: str, *, where: str, cloud_wide: bool = True) -> None:
        super().__init__(message, where=where, cloud_wide=cloud_wide)


class TranslatedErrors(ABC):
    """A ``with`` block that turns one cloud SDK's exceptions into :class:`ObserveError`.

    Every observer wraps its SDK calls the same way: nothing raised, or an ``ObserveError``
    already, passes through untouched; anything else goes to :meth:`translate`, which raises
    the matching ``ObserveError`` / ``ObserveUnavailable`` or returns to let the exception
    propagate as it is. Shared so the pass-through rule cannot drift between clouds; only
    the per-SDK mapping lives in each observer.

    :param where: which observer and resource, put on every error raised.
    """

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, ObserveError):
            return None
        self.translate(exc, where=self.where)
        return None

    @abstractmethod
    def translate(self, exc: BaseException, *, where: str) -> None:
        """Raise the ``ObserveError`` for ``exc``, or return to leave it unchanged."""


def only_one(found: Sequence[Any], *, what: str, where: str) -> Any:
    """The one group a side's lookup found, or an :class:`ObserveError` naming all of them.

    A side is one scale set or managed instance group; finding none or several means the
    tags or names do not single it out, and reading any one of them would report the wrong
    side. Every observer words this the same way, so they share it.

    :param found: what the lookup returned (each has a ``name``).
    :param what: what was looked for and where (``scale set tagged ... in rg``).
    :param where: which observer and resource, for the error.
    """
    if len(found) != 1:
        names = ", ".join(sorted(item.name for item in found)) or "none"
        raise ObserveError(f"expected one {what}, found {len(found)} ({names})", where=where)
    return found[0]


@dataclass(frozen=True)
class SideObservation:
    """One side (primary or mirror) of a pool, as its cloud reports it.

    :param role: ``primary`` or ``mirror``.
    :param cloud: ``aws``, ``azure`` or ``gcp``.
    :param region: the side's region.
    :param group: the group's name in the cloud (ASG, VMSS, MIG).
    :param desired: the group's desired (target) size as the cloud holds it now.
    :param min_size: the group's floor, when the cloud has one.
    :param max_size: the group's ceiling, when the cloud has one.
    :param states: instances per lifecycle state, in the cloud's own words
        (``InService``, ``Pending``, ``Warmed:Stopped``; ``Succeeded/running``; ``RUNNING``).
    :param serving: instances in service (running and attached).
    :param starting: instances launching or starting, not serving yet.
    :param warm: instances kept stopped, hibernated, deallocated or suspended for the mirror.
    :param targets: the balancer's health state per target, counted (``healthy``,
        ``unhealthy``, ``initial``); ``None`` when no balancer health was read.
    :param healthy_targets: targets the balancer calls healthy; ``None`` when not read.
    :param image: the image the group launches now (AMI, image reference, source image).
    :param machine_type: the instance type it launches now.
    :param app_version: the application version the side is tagged with.
    :param security_rules: inbound rules as ``protocol from-to source`` texts, sorted.
    """

    role: Role
    cloud: str
    region: str
    group: str
    desired: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    states: Mapping[str, int] = field(default_factory=dict)
    serving: int = 0
    starting: int = 0
    warm: int = 0
    targets: Mapping[str, int] | None = None
    healthy_targets: int | None = None
    image: str | None = None
    machine_type: str | None = None
    app_version: str | None = None
    security_rules: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "cloud": self.cloud,
            "region": self.region,
            "desired": self.desired,
            "min": self.min_size,
            "max": self.max_size,
            "states": dict(self.states),
            "serving": self.serving,
            "starting": self.starting,
            "warm": self.warm,
            "targets": dict(self.targets) if self.targets is not None else None,
            "healthy_targets": self.healthy_targets,
            "image": self.image,
            "machine_type": self.machine_type,
            "app_version": self.app_version,
            "security_rules": list(self.security_rules)
            if self.security_rules is not None
            else None,
        }


@dataclass(frozen=True)
class BalancerObservation:
    """The traffic split as the balancer (or DNS) holds it.

    :param weights: each side's weight in the product's own units (Route 53 0-255, ...).
    :param healthy: each side's health as the balancer's own health check reports it
        (``None`` for a side without one).
    """

    weights: Mapping[str, int] = field(default_factory=dict)
    healthy: Mapping[str, bool | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "healthy": dict(self.healthy)}


@dataclass(frozen=True)
class PoolObservation:
    """Everything read about one pool in one cycle.

    :param pool: the pool's name.
    :param at: when it was read.
    :param primary: the primary side, ``None`` when it could not be read.
    :param mirror: the mirror side, ``None`` when it could not be read.
    :param balancer: the balancer's split, ``None`` when not read (or not readable for the kind).
    :param problems: what could not be read, one sentence each (they become degraded lines).
    """

    pool: str
    at: datetime
    primary: SideObservation | None = None
    mirror: SideObservation | None = None
    balancer: BalancerObservation | None = None
    problems: tuple[str, ...] = ()

    def side(self, role: Role) -> SideObservation | None:
        return self.primary if role == "primary" else self.mirror

    def as_json(self) -> dict[str, Any]:
        return {
            "observed_at": self.at.isoformat(),
            "primary": self.primary.as_json() if self.primary else None,
            "mirror": self.mirror.as_json() if self.mirror else None,
            "balancer": self.balancer.as_json() if self.balancer else None,
            "problems": list(self.problems),
        }


class CloudObserver(Protocol):
    """Reads one cloud. One implementation per cloud (``_aws``, ``_azure``, ``_gcp``) and the
    backtest's simulated cloud.

    ``observe_side`` raises :class:`ObserveError` (or :class:`ObserveUnavailable`, which is
    retried) when the side cannot be read; it never returns made-up values.
    """

    name: str

    def observe_side(self, *, pool: str, spec: PoolSpec, role: Role) -> SideObservation: ...

    def observe_balancer(self, *, pool: str, spec: PoolSpec) -> BalancerObservation | None:
        """The balancer's split and health, or ``None`` when this cloud does not host it."""
        ...


def rule_texts(rules: list[SecurityRule]) -> tuple[str, ...]:
    """``sync.security_rules`` as the sorted ``protocol from-to source`` texts observers report.

    ICMP carries no ports (AWS reports -1 for both, infra/_common.py ``aws_ingress``).
    """
    out: set[str] = set()
    for rule in rules:
        low, high = rule.port_range() if rule.protocol != "icmp" else (-1, -1)
        for source in rule.sources:
            out.add(f"{rule.protocol} {low}-{high} {source}")
    return tuple(sorted(out))


def with_retries(call: Callable[[], T], *, attempts: int, what: str) -> T:
    """Run ``call``, retrying :class:`ObserveUnavailable` up to ``attempts`` tries in total.

    Waits 0.2 s, 0.4 s, ... (capped at 2 s) so an unreachable cloud costs a cycle seconds, not
    minutes; the last error is raised unchanged.
    """
    if attempts <= 1:
        # One try is the call itself: building tenacity's retrier for it cost about 1 ms a read
        # (three a pool every cycle; the backtest reads its simulated cloud with one try).
        return call()

    def log_retry(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        error = outcome.exception() if outcome is not None else None
        logger.warning("%s failed (%s); retrying", what, error)

    runner = retry(
        retry=retry_if_exception_type(ObserveUnavailable),
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        reraise=True,
        before_sleep=log_retry,
    )
    return runner(call)()
