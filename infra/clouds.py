"""The cloud backends: what the ``Pool`` component declares on each cloud, looked up by ``Cloud``.

A backend declares one pool's pieces on its cloud: a side (primary or mirror, with the layer-4
front DNS needs), the balancer kinds its cloud hosts, the synchronised database when the
primary runs there, and anything that spans both of a pool's sides on it (GCP's shared
firewall). Before anything is declared, its class says what its cloud cannot build for a pool
(``problems``, gathered by :func:`declarability_problems`). ``infra/pool.py`` and
``infra/__main__.py`` know no cloud by name; they ask the registry::

    from infra.clouds import CLOUDS

    backend = CLOUDS.backend(Cloud.gcp)(pool=context)   # one backend per pool and cloud
    side = backend.side(plan=plan)

Each cloud's module (``infra/aws.py``, ``azure.py``, ``gcp.py``) ends with its one registration,
``CLOUDS.register(Cloud.aws, AwsBackend)``, and :data:`BUILTIN_MODULES` names the modules to
import on the first lookup. Looking up a cloud nothing registered is an error that names the
cloud and the registered ones, never a default (docs/architecture.md, "A cloud").

The registry follows kopf's (``kopf/_core/intents/registries.py``): a plain object holding the
registrations, one default instance the program uses, and the ability for a test to use its own
registrations for a while without editing any module.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pulumi

from infra._common import GroupPlan, Role, pool_problems
from infra.config import (
    AzureSettings,
    BalancerKind,
    Cloud,
    DnsSpec,
    MirrorcastConfig,
    MirrorcastError,
    PoolSpec,
    UnknownCloudError,
)
from infra.dns import DnsEndpoint

__all__ = [
    "BUILTIN_MODULES",
    "CLOUDS",
    "DATABASE_PASSWORD_KEY",
    "SECRETS_NAMESPACE",
    "SSH_PUBLIC_KEY_KEY",
    "CloudBackend",
    "CloudBackendFactory",
    "CloudRegistry",
    "PoolContext",
    "Side",
    "StackSecrets",
    "UnknownCloudError",
    "declarability_problems",
    "dns_endpoints",
    "dns_section",
]

BUILTIN_MODULES: tuple[str, ...] = ("infra.aws", "infra.azure", "infra.gcp")
"""The modules whose import registers the clouds mirrorcast ships (each registers itself)."""

SECRETS_NAMESPACE = "mirrorcast-secrets"
"""Secrets live outside ``mirrorcast:*`` so the reviewable config never holds them."""
DATABASE_PASSWORD_KEY = "databasePassword"
SSH_PUBLIC_KEY_KEY = "azureSshPublicKey"


@dataclass(frozen=True, kw_only=True)
class StackSecrets:
    """Which of the stack's secrets are set (their values never reach the pre-flight checks).

    :param database_password: ``mirrorcast-secrets:databasePassword`` is set.
    :param ssh_public_key: ``mirrorcast-secrets:azureSshPublicKey`` is set.
    """

    database_password: bool = True
    ssh_public_key: bool = True


@dataclass(frozen=True, kw_only=True)
class PoolContext:
    """What every backend of one pool reads: the pool, its tags, and the stack-wide inputs.

    :param name: the pool's name; every child's name starts with it.
    :param spec: the pool's config.
    :param tags: the stack's ``tags`` plus the app version both sides run.
    :param parent: the ``Pool`` component, parent of everything a backend declares.
    :param database_password: administrator password for the database, when declared.
    :param default_aws_region: the stack's ``aws:region``; AWS sides elsewhere get a provider.
    :param azure: the stack's ``azure`` settings (image kind, admin user, standby principal).
    :param ssh_public_key: the Azure admin's SSH public key, for generalized images.
    """

    name: str
    spec: PoolSpec
    tags: Mapping[str, str]
    parent: pulumi.Resource
    database_password: pulumi.Input[str] | None = None
    default_aws_region: str | None = None
    azure: AzureSettings
    ssh_public_key: pulumi.Input[str] | None = None


@dataclass
class Side:
    """One declared side (primary or mirror), as the balancer and the database need it.

    :param role: ``primary`` or ``mirror``.
    :param cloud: the cloud it runs in.
    :param group: the side's group component (ASG, scale set, managed instance group).
    :param endpoint: the address the side answers on (its group's or its front's).
    :param dns_endpoint: how DNS reaches it, when a DNS-level balancer needs a front.
    :param front: the cloud's own front before the side, for its balancer (Azure's load
        balancer, which Front Door takes as an origin); ``None`` when there is none.
    :param provider: the explicit provider the side's resources use (an AWS region other than
        the stack's), which the same cloud's balancer and database reuse.
    :param ids: the deploy-time names of the side's resources that its cloud's metrics are
        keyed on (AWS: ``autoscaling_group``, and ``load_balancer``/``target_group`` as
        CloudWatch names them; Azure: ``scale_set``; GCP: ``instance_group``, ``region`` and
        the ``backend_service``/``url_map``/``forwarding_rule`` Cloud Monitoring labels),
        exported as ``pools.<pool>.ids.<role>`` so a metric's
        dimensions can refer to them (docs/architecture.md, "Stack outputs"); the balancer's
        backend may add to them.
    """

    role: Role
    cloud: Cloud
    group: pulumi.ComponentResource
    endpoint: pulumi.Output[str]
    dns_endpoint: DnsEndpoint | None = None
    front: Any = None
    provider: pulumi.ProviderResource | None = None
    ids: dict[str, pulumi.Output[str]] = field(default_factory=dict)


def dns_section(spec: PoolSpec) -> DnsSpec:
    """The pool's ``balancer.dns``, which every DNS-level balancer kind has (validated)."""
    assert spec.balancer.dns is not None, "validated: DNS-level kinds need a dns section"
    return spec.balancer.dns


def dns_endpoints(sides: Mapping[Role, Side]) -> dict[Role, DnsEndpoint]:
    """How DNS reaches each side, for a DNS-level balancer (every side has a front then)."""
    endpoints: dict[Role, DnsEndpoint] = {}
    for role, side in sides.items():
        assert side.dns_endpoint is not None, "DNS-level pools put a front before each side"
        endpoints[role] = side.dns_endpoint
    return endpoints


class CloudBackend(Protocol):
    """Declares one pool's pieces on one cloud. Made per pool by a :class:`CloudBackendFactory`.

    The ``Pool`` asks the backend of each side's cloud for the side, the backend of the
    balancer kind's cloud (``BalancerKind.cloud``) for the balancer, and the backend of the
    primary's cloud for the database.
    """

    def side(self, *, plan: GroupPlan) -> Side:
        """Declare the primary or the mirror (``plan.role``), with a front if DNS needs one."""
        ...

    def shared(self, *, sides: Sequence[Side]) -> None:
        """Declare what this cloud's sides of the pool share (both sides given, when both are
        on this cloud); most clouds share nothing."""
        ...

    def balancer(self, *, kind: BalancerKind, sides: Mapping[Role, Side]) -> pulumi.Output[str]:
        """Declare the balancer of ``kind`` (one of its factory's ``balancer_kinds``); its
        endpoint."""
        ...

    def database(self, *, sides: Mapping[Role, Side]) -> None:
        """Declare ``sync.database`` for a pool whose primary runs on this cloud."""
        ...


class CloudBackendFactory(Protocol):
    """Makes the backend of one pool (a backend class is one), and says beforehand what its
    cloud cannot declare.

    ``balancer_kinds`` are the balancer kinds the cloud hosts; a kind whose cloud's backend
    does not list it is refused before declaring. ``dns_front`` is what a DNS-level balancer
    points at for a side on this cloud (its front's ``DnsEndpoint.kind``): ``ip`` (a static
    address, which any DNS balancer takes) or ``hostname`` (a load balancer's name, which only
    a balancer that can alias or CNAME takes). Another cloud's balancer asks it instead of
    naming clouds.
    """

    balancer_kinds: frozenset[BalancerKind]
    dns_front: Literal["ip", "hostname"]

    def __call__(self, *, pool: PoolContext) -> CloudBackend: ...

    def problems(
        self, *, name: str, pool: PoolSpec, config: MirrorcastConfig, secrets: StackSecrets
    ) -> list[str]:
        """Why this cloud cannot declare pool ``name`` as configured, each naming the key path
        (asked for every cloud a side or the balancer of the pool runs on)."""
        ...


class CloudRegistry:
    """Cloud -> the factory of its backend. The program uses :data:`CLOUDS`.

    :param builtin: modules imported before the first lookup; importing one registers its cloud.
    """

    def __init__(self, *, builtin: Sequence[str] = ()) -> None:
        self._factories: dict[Cloud, CloudBackendFactory] = {}
        self._builtin = tuple(builtin)
        self._loaded = not self._builtin

    def register(self, cloud: Cloud, factory: CloudBackendFactory) -> None:
        """Register ``cloud``'s backend; a second registration of one cloud is an error."""
        if cloud in self._factories and self._factories[cloud] is not factory:
            raise MirrorcastError(
                f"cloud {cloud.value!r} already has a backend ({_named(self._factories[cloud])}); "
                f"use CloudRegistry.replaced to swap it for a while"
            )
        self._factories[cloud] = factory

    def backend(self, cloud: Cloud) -> CloudBackendFactory:
        """The factory of ``cloud``'s backend.

        :raises UnknownCloudError: nothing registered ``cloud``; the sentence names the
            registered clouds.
        """
        self._load_builtin()
        try:
            return self._factories[cloud]
        except KeyError:
            name = getattr(cloud, "value", cloud)
            raise UnknownCloudError(
                f"no cloud backend is registered for cloud {name!r} (registered: "
                f"{', '.join(self.registered()) or 'none'}); add its module and register it "
                "with infra.clouds.CLOUDS.register (docs/architecture.md, 'A cloud')"
            ) from None

    def for_balancer(self, kind: BalancerKind) -> CloudBackendFactory:
        """The factory of the backend that hosts balancer ``kind``."""
        factory = self.backend(kind.cloud)
        if kind not in factory.balancer_kinds:
            raise UnknownCloudError(
                f"balancer kind {kind.value!r} belongs to cloud {kind.cloud.value!r}, whose "
                f"backend ({_named(factory)}) does not declare it"
            )
        return factory

    def registered(self) -> list[str]:
        """The registered clouds' names, sorted."""
        self._load_builtin()
        return sorted(cloud.value for cloud in self._factories)

    @contextlib.contextmanager
    def replaced(self, cloud: Cloud, factory: CloudBackendFactory | None) -> Iterator[None]:
        """Use ``factory`` for ``cloud`` inside the block (``None``: no backend), then restore
        what was registered."""
        self._load_builtin()
        before = self._factories.get(cloud)
        if factory is None:
            self._factories.pop(cloud, None)
        else:
            self._factories[cloud] = factory
        try:
            yield
        finally:
            if before is None:
                self._factories.pop(cloud, None)
            else:
                self._factories[cloud] = before

    def _load_builtin(self) -> None:
        if self._loaded:
            return
        # The modules call register() while being imported, which does not come back here.
        for module in self._builtin:
            importlib.import_module(module)
        self._loaded = True


def declarability_problems(
    config: MirrorcastConfig,
    *,
    secrets: StackSecrets | None = None,
    clouds: CloudRegistry | None = None,
) -> list[str]:
    """Reasons the program cannot declare ``config``, each naming the key path.

    The model accepts some combinations the clouds cannot build (an HTTPS listener without a
    certificate, say). Checked before any resource is declared, so a bad stack does not
    half-apply: a cloud or balancer kind no backend is registered for, what no cloud can build
    (:func:`infra._common.pool_problems`), and what each cloud the pool uses cannot build (its
    backend's ``problems``).

    :param secrets: which secrets the stack sets (default: all of them).
    :param clouds: the registry (default :data:`CLOUDS`).
    """
    registry = clouds or CLOUDS
    given = secrets or StackSecrets()
    problems: list[str] = []
    for name, pool in config.pools.items():
        at = f"pools.{name}"
        backends: dict[Cloud, CloudBackendFactory] = {}
        for path, cloud in (
            (f"{at}.primary.cloud", pool.primary.cloud),
            (f"{at}.mirror.location.cloud", pool.mirror_cloud),
        ):
            try:
                backends[cloud] = registry.backend(cloud)
            except UnknownCloudError as exc:
                problems.append(f"{path}: {exc}")
        kind = pool.balancer.kind
        try:
            backends[kind.cloud] = registry.for_balancer(kind)
        except UnknownCloudError as exc:
            problems.append(f"{at}.balancer.kind: {exc}")
        problems.extend(pool_problems(name, pool))
        for factory in backends.values():
            problems.extend(factory.problems(name=name, pool=pool, config=config, secrets=given))
    return list(dict.fromkeys(problems))


def _named(factory: object) -> str:
    return getattr(factory, "__qualname__", type(factory).__qualname__)


CLOUDS = CloudRegistry(builtin=BUILTIN_MODULES)
"""The registry the Pulumi program declares through."""
