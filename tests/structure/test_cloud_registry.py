"""One registry per cloud: the Pulumi program declares each pool's pieces through the backend
``infra.clouds.CLOUDS`` registers for their cloud, and the driver observes each side through the
observer ``driver.observers.OBSERVERS`` registers, so adding a cloud is its modules plus their
registrations (docs/architecture.md, "A cloud").

The toy cloud here is registered in place of GCP for the length of a test, without editing any
module: what it declares shows up in the capture harness, and the stack observer calls its
observer. A cloud with no backend is refused with a sentence naming it and the registered ones,
never declared as another cloud (the old ``else`` branch declared it as GCP).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import pulumi
import pytest

from driver.observers import (
    OBSERVERS,
    BalancerObservation,
    ObserverRegistry,
    SideObservation,
    StackObserver,
)
from infra._common import GroupPlan, Role
from infra.clouds import (
    CLOUDS,
    CloudRegistry,
    PoolContext,
    Side,
    StackSecrets,
    declarability_problems,
)
from infra.config import (
    BalancerKind,
    Cloud,
    MirrorcastConfig,
    MirrorcastError,
    PoolSpec,
    UnknownCloudError,
    load_stack_file,
)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "infra"))
from pulumi_harness import DB_SECRET, run_failing, run_program, stack_config  # noqa: E402

STACK = "gcp-web"  # both sides and the balancer on GCP, with a database
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class ToyPiece(pulumi.ComponentResource):
    """Stands for whatever a cloud declares: one component per piece."""

    def __init__(self, kind: str, name: str, *, opts: pulumi.ResourceOptions) -> None:
        super().__init__(f"mirrorcast:toy:{kind}", name, None, opts)
        self.register_outputs({})


class ToyBackend:
    """A cloud backend written the way docs/architecture.md tells: one class, one registration."""

    balancer_kinds = frozenset({BalancerKind.gcp_url_map, BalancerKind.gcp_cloud_dns})
    dns_front: ClassVar[Literal["ip", "hostname"]] = "hostname"
    made: list[PoolContext] = []
    refuse: str | None = None  # a pre-flight problem to report, for the refusal test

    @classmethod
    def problems(
        cls, *, name: str, pool: PoolSpec, config: MirrorcastConfig, secrets: StackSecrets
    ) -> list[str]:
        return [f"pools.{name}.primary.cloud: {cls.refuse}"] if cls.refuse else []

    def __init__(self, *, pool: PoolContext) -> None:
        self._pool = pool
        ToyBackend.made.append(pool)

    def _declare(self, kind: str, suffix: str) -> ToyPiece:
        return ToyPiece(
            kind,
            f"{self._pool.name}-{suffix}",
            opts=pulumi.ResourceOptions(parent=self._pool.parent),
        )

    def side(self, *, plan: GroupPlan) -> Side:
        group = self._declare("Group", plan.role)
        endpoint = pulumi.Output.from_input(f"{plan.role}.{plan.region}.toy.example")
        return Side(plan.role, plan.cloud, group, endpoint)

    def shared(self, *, sides: Sequence[Side]) -> None:
        self._declare("Shared", "+".join(side.role for side in sides))

    def balancer(self, *, kind: BalancerKind, sides: Mapping[Role, Side]) -> pulumi.Output[str]:
        self._declare("Balancer", f"balancer-{kind.value}")
        return pulumi.Output.from_input("balancer.toy.example")

    def database(self, *, sides: Mapping[Role, Side]) -> None:
        self._declare("Database", "db")


class NoBalancerBackend(ToyBackend):
    balancer_kinds = frozenset()


class RefusingBackend(ToyBackend):
    refuse = "the toy cloud has no region toy-0"


class TestTheProgramDeclaresThroughTheRegistry:
    def test_a_registered_toy_backend_declares_every_piece_of_its_pools(self) -> None:
        ToyBackend.made.clear()
        with CLOUDS.replaced(Cloud.gcp, ToyBackend):
            run = run_program(stack_config(STACK), stack=STACK, secrets=DB_SECRET)
        toy = sorted((r.type, r.name) for r in run.resources if r.type.startswith("mirrorcast:toy"))
        pool = next(iter(run.pools))
        assert toy == [
            ("mirrorcast:toy:Balancer", f"{pool}-balancer-gcp_url_map"),
            ("mirrorcast:toy:Database", f"{pool}-db"),
            ("mirrorcast:toy:Group", f"{pool}-mirror"),
            ("mirrorcast:toy:Group", f"{pool}-primary"),
            ("mirrorcast:toy:Shared", f"{pool}-primary+mirror"),
        ]
        # Nothing of GCP's own: the pool named no cloud module, only the registry.
        assert [r.type for r in run.resources if "gcp" in r.type] == []
        # One backend per pool and cloud, with the pool's config and the stack's tags.
        assert [context.name for context in ToyBackend.made] == [pool]
        assert ToyBackend.made[0].tags["mirrorcast-app-version"]
        assert run.pools[pool]["endpoints"] == {
            "primary": f"primary.{ToyBackend.made[0].spec.primary.region}.toy.example",
            "mirror": f"mirror.{ToyBackend.made[0].spec.mirror_region}.toy.example",
            "balancer": "balancer.toy.example",
        }

    def test_the_registration_is_restored_after_the_block(self) -> None:
        before = CLOUDS.backend(Cloud.gcp)
        with CLOUDS.replaced(Cloud.gcp, ToyBackend):
            assert CLOUDS.backend(Cloud.gcp) is ToyBackend
        assert CLOUDS.backend(Cloud.gcp) is before
        assert before.__name__ == "GcpBackend"


class TestACloudWithoutABackendIsRefused:
    def test_the_program_names_the_key_the_cloud_and_the_registered_ones_before_declaring(
        self,
    ) -> None:
        with CLOUDS.replaced(Cloud.gcp, None):
            error, declared = run_failing(stack_config(STACK), secrets=DB_SECRET)
        message = str(error)
        assert (
            ".primary.cloud: no cloud backend is registered for cloud 'gcp' "
            "(registered: aws, azure)"
        ) in message
        assert ".mirror.location.cloud: no cloud backend" in message
        assert "docs/architecture.md, 'A cloud'" in message
        assert [r.type for r in declared if r.type.startswith("mirrorcast:")] == []

    def test_a_balancer_kind_its_clouds_backend_does_not_declare_is_refused(self) -> None:
        with CLOUDS.replaced(Cloud.gcp, NoBalancerBackend):
            error, _ = run_failing(stack_config(STACK), secrets=DB_SECRET)
        assert (
            ".balancer.kind: balancer kind 'gcp_url_map' belongs to cloud 'gcp', whose backend "
            "(NoBalancerBackend) does not declare it"
        ) in str(error)

    def test_a_backends_own_pre_flight_problem_stops_the_program_before_declaring(self) -> None:
        with CLOUDS.replaced(Cloud.gcp, RefusingBackend):
            error, declared = run_failing(stack_config(STACK), secrets=DB_SECRET)
        assert ".primary.cloud: the toy cloud has no region toy-0" in str(error)
        assert [r.type for r in declared if r.type.startswith("mirrorcast:")] == []

    def test_a_lookup_of_a_cloud_nothing_registered_fails_loudly(self) -> None:
        registry = CloudRegistry()
        registry.register(Cloud.aws, ToyBackend)
        with pytest.raises(UnknownCloudError, match=r"cloud 'gcp' \(registered: aws\)"):
            registry.backend(Cloud.gcp)
        toy_cloud = "toycloud"  # a name the config does not even know
        with pytest.raises(UnknownCloudError, match=r"cloud 'toycloud' \(registered: aws\)"):
            registry.backend(toy_cloud)  # type: ignore[arg-type]

    def test_a_second_backend_for_one_cloud_is_an_error_not_a_silent_swap(self) -> None:
        registry = CloudRegistry()
        registry.register(Cloud.aws, ToyBackend)
        registry.register(Cloud.aws, ToyBackend)  # the same registration again is harmless
        with pytest.raises(MirrorcastError, match=r"cloud 'aws' already has a backend"):
            registry.register(Cloud.aws, NoBalancerBackend)

    @pytest.mark.parametrize(
        "module", ["infra/pool.py", "infra/__main__.py", "infra/_common.py", "infra/clouds.py"]
    )
    def test_the_modules_every_cloud_goes_through_name_no_cloud(self, module: str) -> None:
        # A Cloud.<member> there is a hand-written chain a new cloud would have to join.
        tree = ast.parse((ROOT / module).read_text())
        named = [
            f"line {node.lineno}: Cloud.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Cloud"
            and node.attr in {cloud.name for cloud in Cloud}
        ]
        assert named == []

    def test_the_shipped_clouds_are_registered(self) -> None:
        assert CLOUDS.registered() == ["aws", "azure", "gcp"]
        assert OBSERVERS.registered() == ["aws", "azure", "gcp"]


class IpFrontBackend(ToyBackend):
    """A cloud whose fronts have static addresses, like GCP's and Azure's."""

    dns_front = "ip"


def _cloud_dns_over(stack: str) -> MirrorcastConfig:
    """``stack`` with its balancer swapped for Cloud DNS (same zone, name and weights)."""
    dumped = load_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml").model_dump(mode="json")
    for pool in dumped["pools"].values():
        pool["balancer"]["kind"] = "gcp_cloud_dns"
    return MirrorcastConfig.model_validate(dumped)


class TestCloudDnsAsksEachSidesCloudHowItsFrontIsReached:
    """Cloud DNS answers with A records (IP addresses) only; whether a side can be one is its
    cloud backend's ``dns_front``, not a cloud named in infra/gcp.py."""

    def test_a_side_fronted_by_a_hostname_is_refused_naming_the_side_and_its_key(self) -> None:
        config = _cloud_dns_over("multicloud")  # an AWS primary (NLB hostname), a GCP mirror
        problems = declarability_problems(config)
        assert problems == [
            "pools.checkout.balancer.kind: gcp_cloud_dns answers with IP addresses (weighted A "
            "records), but the primary side (pools.checkout.primary.cloud: aws) is reached "
            "through a load balancer hostname, which an A record cannot hold; use a balancer "
            "that takes hostnames (route53 or azure_traffic_manager) for this pool"
        ]

    def test_the_same_pool_is_declarable_when_that_cloud_fronts_by_ip(self) -> None:
        # Fails on the old check, which refused any pool with an AWS side whatever AWS's
        # backend said about its fronts.
        config = _cloud_dns_over("multicloud")
        with CLOUDS.replaced(Cloud.aws, IpFrontBackend):
            assert declarability_problems(config) == []

    def test_every_shipped_backend_says_how_its_fronts_are_reached(self) -> None:
        fronts = {name: CLOUDS.backend(Cloud(name)).dns_front for name in CLOUDS.registered()}
        # AWS's NlbFront publishes the NLB's DNS name; Azure's LoadBalancerFront and GCP's
        # PassthroughFront a static public IP (infra/dns.py DnsEndpoint.kind of each).
        assert fronts == {"aws": "hostname", "azure": "ip", "gcp": "ip"}


# ----------------------------------------------------------------------------- observation


class ToyObserver:
    name = "toy"

    def __init__(self) -> None:
        self.read: list[str] = []

    def observe_side(self, *, pool: str, spec: PoolSpec, role: Role) -> SideObservation:
        self.read.append(f"{pool}/{role}")
        return SideObservation(
            role=role, cloud="toy", region="toy-1", group=f"{pool}-{role}", desired=7
        )

    def observe_balancer(self, *, pool: str, spec: PoolSpec) -> BalancerObservation | None:
        self.read.append(f"{pool}/balancer")
        return None


def _gcp_config() -> Any:
    return load_stack_file(ROOT / "stacks" / f"Pulumi.{STACK}.yaml")


class TestTheStackObserverObservesThroughTheRegistry:
    def test_a_registered_toy_observer_reads_every_side_on_its_cloud(self) -> None:
        config = _gcp_config()
        toy = ToyObserver()
        built_with: list[Any] = []

        def factory(given: Any) -> ToyObserver:
            built_with.append(given)
            return toy

        with OBSERVERS.replaced(Cloud.gcp, factory):
            seen = StackObserver(attempts=1).observe(config, now=NOW, enabled=True)
        pool = next(iter(config.pools))
        assert toy.read == [f"{pool}/primary", f"{pool}/mirror", f"{pool}/balancer"]
        assert built_with == [config]  # built once per cycle's observer, from the stack config
        assert seen.observed_desired() == {pool: 7}
        assert seen.degraded == []

    def test_a_cloud_without_an_observer_is_one_degraded_line_naming_it(self) -> None:
        config = _gcp_config()
        seen = StackObserver(registry=ObserverRegistry(), attempts=1).observe(
            config, now=NOW, enabled=True
        )
        pool = next(iter(config.pools))
        assert len(seen.degraded) == 1
        line = seen.degraded[0]
        assert line.startswith("gcp: not observed: no observer is registered for cloud 'gcp'")
        assert "(registered: none)" in line
        assert f"{pool}/primary, {pool}/mirror, {pool}/balancer not read" in line
        assert seen.health()[pool].observed is False
