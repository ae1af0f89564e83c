"""The Azure and GCP observers at the client-library boundary.

There is no local Azure or GCP server, so the tests hand each observer clients whose methods
answer with the SDKs' own model classes, built from the REST shapes the services document
(azure-mgmt-compute ``VirtualMachineScaleSet``/``VirtualMachineScaleSetVM``, azure-mgmt-standbypool
``StandbyVirtualMachinePoolRuntimeViewResource``, azure-mgmt-trafficmanager ``Profile``, azure-mgmt-network
``NetworkSecurityGroup``;
google-cloud-compute ``InstanceGroupManager``, ``ManagedInstance``, ``InstanceTemplate``,
``BackendService``, ``BackendServiceGroupHealth``, ``Firewall``). What is tested is the observer's reading of
those objects: states, health, image, instance type, and what it refuses to guess.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from driver.observers import StackObserver, mirror_health
from driver.observers._base import rule_texts
from infra.config import MirrorcastConfig, load_stack

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


class Answers:
    """An SDK operations group: each method returns the given model objects."""

    def __init__(self, **methods: Any) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        for name, answer in methods.items():
            setattr(self, name, self._method(name, answer))

    def _method(self, name: str, answer: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return answer(*args, **kwargs) if callable(answer) else answer

        return call


# --------------------------------------------------------------------------- Azure

azure_compute = pytest.importorskip("azure.mgmt.compute.models")
standby_models = pytest.importorskip("azure.mgmt.standbypool.models")
tm_models = pytest.importorskip("azure.mgmt.trafficmanager.models")
network_models = pytest.importorskip("azure.mgmt.network.models")

VMSS_ID = (
    "/subscriptions/0000/resourceGroups/rg-api/providers/Microsoft.Compute/"
    "virtualMachineScaleSets/api-mirror-vmss"
)


def scale_set(
    role: str,
    *,
    image: str,
    capacity: int,
    version: str,
    sku: str = "Standard_D2s_v5",
    nsg: str | None = None,
) -> Any:
    profile: dict[str, Any] = {"storageProfile": {"imageReference": {"id": image}}}
    if nsg is not None:
        profile["networkProfile"] = {
            "networkInterfaceConfigurations": [
                {
                    "name": "nic",
                    "properties": {"primary": True, "networkSecurityGroup": {"id": nsg}},
                }
            ]
        }
    return azure_compute.VirtualMachineScaleSet(
        {
            "location": "westeurope",
            "name": f"api-{role}-vmss",
            "id": VMSS_ID.replace("mirror", role),
            "tags": {
                "mirrorcast-pool": "api",
                "mirrorcast-role": role,
                "mirrorcast-app-version": version,
            },
            "sku": {"name": sku, "capacity": capacity},
            "properties": {"virtualMachineProfile": profile},
        }
    )


def nsg_id(group: str, role: str) -> str:
    return (
        f"/subscriptions/0000/resourceGroups/{group}/providers/Microsoft.Network/"
        f"networkSecurityGroups/api-{role}-nsg"
    )


def nsg(rules: list[dict[str, Any]]) -> Any:
    """An azure-mgmt-network ``NetworkSecurityGroup`` with the given rule properties."""
    return network_models.NetworkSecurityGroup(
        {
            "location": "westeurope",
            "properties": {
                "securityRules": [
                    {"name": f"r{i}", "properties": {"priority": 100 + 10 * i, **rule}}
                    for i, rule in enumerate(rules)
                ]
            },
        }
    )


HTTPS_IN = {
    "protocol": "Tcp",
    "access": "Allow",
    "direction": "Inbound",
    "sourceAddressPrefixes": ["0.0.0.0/0"],
    "sourcePortRange": "*",
    "destinationAddressPrefix": "*",
    "destinationPortRange": "443",
}


def vm(power: str, health: str | None) -> Any:
    view: dict[str, Any] = {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": power}]}
    if health is not None:
        view["vmHealth"] = {"status": {"code": health}}
    return azure_compute.VirtualMachineScaleSetVM(
        {"location": "westeurope", "properties": {"instanceView": view}}
    )


@pytest.fixture()
def azure_api(monkeypatch: pytest.MonkeyPatch) -> MirrorcastConfig:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "0000")
    return load_stack("azure-api", ROOT)


def azure_observer(
    config: MirrorcastConfig,
    *,
    vms: list[Any],
    mirror_image: str,
    nsgs: dict[str, Any] | None = None,
) -> Any:
    from driver.observers._azure import AzureObserver

    spec = config.pools["api"]
    primary_image = spec.primary.app.image_for(spec.primary.cloud, spec.primary.region)
    sets = {
        spec.primary.network.resource_group: [
            scale_set(
                "primary",
                image=primary_image or "",
                capacity=spec.primary.capacity.desired,
                version=spec.primary.app.version,
                sku=spec.primary.machine_type,
                nsg=nsg_id(spec.primary.network.resource_group or "", "primary") if nsgs else None,
            )
        ],
        spec.mirror_network.resource_group: [
            scale_set(
                "mirror",
                image=mirror_image,
                capacity=len(vms),
                version=spec.primary.app.version,
                sku=spec.mirror_machine_type,
                nsg=nsg_id(spec.mirror_network.resource_group or "", "mirror") if nsgs else None,
            )
        ],
    }
    compute = Answers()
    compute.virtual_machine_scale_sets = Answers(list=lambda group: sets[group])  # type: ignore[attr-defined]
    compute.virtual_machine_scale_set_vms = Answers(  # type: ignore[attr-defined]
        list=lambda group, name, expand: (
            vms if "mirror" in name else [vm("PowerState/running", "HealthState/healthy")]
        )
    )
    pool = standby_models.StandbyVirtualMachinePoolResource(
        {
            "name": "api-mirror-standby",
            "properties": {
                "attachedVirtualMachineScaleSetId": VMSS_ID,
                "virtualMachineState": "Deallocated",
                "elasticityProfile": {"maxReadyCapacity": 4},
            },
        }
    )
    view = standby_models.StandbyVirtualMachinePoolRuntimeViewResource(
        {
            "properties": {
                "instanceCountSummary": [
                    {
                        "instanceCountsByState": [
                            {"state": "Deallocated", "count": 2},
                            {"state": "Running", "count": 0},
                        ]
                    }
                ]
            }
        }
    )
    standby = Answers()
    standby.standby_virtual_machine_pools = Answers(list_by_resource_group=lambda group: [pool])  # type: ignore[attr-defined]
    standby.standby_virtual_machine_pool_runtime_views = Answers(get=view)  # type: ignore[attr-defined]
    profile = tm_models.Profile(
        {
            "properties": {
                "endpoints": [
                    {
                        "name": "primary",
                        "properties": {"weight": 1000, "endpointMonitorStatus": "Online"},
                    },
                    {
                        "name": "mirror",
                        "properties": {"weight": 1, "endpointMonitorStatus": "Degraded"},
                    },
                ]
            }
        }
    )
    traffic = Answers()
    traffic.profiles = Answers(get=profile)  # type: ignore[attr-defined]
    network = Answers()
    network.network_security_groups = Answers(  # type: ignore[attr-defined]
        get=lambda group, name: (nsgs or {})[name.split("-")[1]]
    )
    extra = {"network": network} if nsgs else {}
    return AzureObserver(compute=compute, standby=standby, traffic=traffic, **extra)


class TestAzure:
    def test_instance_view_standby_pool_and_traffic_manager_are_read(
        self, azure_api: MirrorcastConfig
    ) -> None:
        spec = azure_api.pools["api"]
        vms = [
            vm("PowerState/running", "HealthState/healthy"),
            vm("PowerState/running", "HealthState/unhealthy"),
            vm("PowerState/starting", None),
        ]
        observer = azure_observer(azure_api, vms=vms, mirror_image=spec.mirror_image)
        seen = StackObserver(observers={"azure": observer}).observe(azure_api, now=NOW)

        pool = seen.pools["api"]
        assert pool.problems == ()
        mirror = pool.mirror
        assert mirror is not None
        assert mirror.states == {
            "PowerState/running": 2,
            "PowerState/starting": 1,
            "Standby:Deallocated": 2,
            "Standby:Running": 0,
        }
        assert (mirror.serving, mirror.starting, mirror.warm) == (2, 1, 2)
        assert mirror.healthy_targets == 1 and mirror.machine_type == spec.mirror_machine_type
        health = mirror_health(pool)
        assert (health.running, health.healthy, health.ready) == (3, 1, False)
        if pool.balancer is not None:  # a Traffic Manager stack
            assert dict(pool.balancer.weights) == {"primary": 1000, "mirror": 1}
            assert dict(pool.balancer.healthy) == {"primary": True, "mirror": False}
        assert seen.drift(azure_api) == []

    def test_a_mirror_on_another_image_is_drift(self, azure_api: MirrorcastConfig) -> None:
        observer = azure_observer(
            azure_api,
            vms=[vm("PowerState/running", "HealthState/healthy")],
            mirror_image="/img/old",
        )
        seen = StackObserver(observers={"azure": observer}).observe(azure_api, now=NOW)
        assert [(d.what, d.between) for d in seen.drift(azure_api)] == [
            ("image", "mirror vs config")
        ]

    def test_nsg_rules_are_read_and_compared(self, azure_api: MirrorcastConfig) -> None:
        spec = azure_api.pools["api"]
        healthy = [vm("PowerState/running", "HealthState/healthy")]
        outbound = {**HTTPS_IN, "direction": "Outbound", "destinationPortRange": "*"}
        same = {"primary": nsg([HTTPS_IN, outbound]), "mirror": nsg([HTTPS_IN])}
        observer = azure_observer(azure_api, vms=healthy, mirror_image=spec.mirror_image, nsgs=same)
        seen = StackObserver(observers={"azure": observer}).observe(azure_api, now=NOW)
        pool = seen.pools["api"]
        assert pool.problems == ()
        wanted = rule_texts(spec.sync.security_rules)
        assert pool.mirror is not None and pool.mirror.security_rules == wanted
        assert pool.primary is not None and pool.primary.security_rules == wanted
        assert seen.drift(azure_api) == []

    def test_a_rule_added_by_hand_on_the_mirror_nsg_is_drift(
        self, azure_api: MirrorcastConfig
    ) -> None:
        spec = azure_api.pools["api"]
        ssh = {
            **HTTPS_IN,
            "sourceAddressPrefixes": [],
            "sourceAddressPrefix": "*",
            "destinationPortRanges": ["22", "3389-3390"],
            "destinationPortRange": None,
        }
        observer = azure_observer(
            azure_api,
            vms=[vm("PowerState/running", "HealthState/healthy")],
            mirror_image=spec.mirror_image,
            nsgs={"primary": nsg([HTTPS_IN]), "mirror": nsg([HTTPS_IN, ssh])},
        )
        seen = StackObserver(observers={"azure": observer}).observe(azure_api, now=NOW)
        mirror = seen.pools["api"].mirror
        assert mirror is not None and mirror.security_rules == (
            "tcp 22-22 *",
            "tcp 3389-3390 *",
            "tcp 443-443 0.0.0.0/0",
        )
        assert sorted((d.what, d.between) for d in seen.drift(azure_api)) == [
            ("security_rules", "mirror vs config"),
            ("security_rules", "mirror vs primary"),
        ]

    def test_front_door_weights_and_origin_health_metric_are_read(
        self, azure_api: MirrorcastConfig
    ) -> None:
        from azure.mgmt.cdn import models as cdn_models
        from azure.monitor.query import Metric, MetricsQueryResult, MetricValue, TimeSeriesElement

        from driver.observers._azure import AzureObserver
        from infra.config import BalancerKind

        spec = azure_api.pools["api"]
        balancer = spec.balancer.model_copy(
            update={"kind": BalancerKind.azure_front_door, "dns": None}
        )
        spec = spec.model_copy(update={"balancer": balancer})
        group = spec.primary.network.resource_group
        profile_id = (
            f"/subscriptions/0000/resourceGroups/{group}/providers/Microsoft.Cdn/profiles/"
            "api-balancer-profile1a2b3c4d"
        )
        profiles = [
            cdn_models.Profile(
                {
                    "location": "global",
                    "name": name,
                    "id": profile_id.replace("api-balancer-profile1a2b3c4d", name),
                    "tags": {"mirrorcast-pool": pool, "mirrorcast-role": "balancer"},
                    "sku": {"name": "Standard_AzureFrontDoor"},
                }
            )
            for name, pool in (("api-balancer-profile1a2b3c4d", "api"), ("other", "web"))
        ]

        def origin(role: str, host: str, weight: int, state: str) -> Any:
            return cdn_models.AFDOrigin(
                {
                    "name": f"api-balancer-{role}9f8e7d6c",
                    "properties": {"hostName": host, "weight": weight, "enabledState": state},
                }
            )

        origins = [
            origin("primary", "api-primary.westeurope.cloudapp.azure.com", 1000, "Enabled"),
            origin("mirror", "api-mirror.northeurope.cloudapp.azure.com", 1, "Disabled"),
        ]
        cdn = Answers()
        cdn.profiles = Answers(list_by_resource_group=lambda rg: profiles if rg == group else [])  # type: ignore[attr-defined]
        cdn.afd_origin_groups = Answers(  # type: ignore[attr-defined]
            list_by_profile=lambda rg, name: [cdn_models.AFDOriginGroup({"name": "api-origins"})]
        )
        cdn.afd_origins = Answers(list_by_origin_group=lambda rg, name, og: origins)  # type: ignore[attr-defined]

        def series(host: str, *values: float | None) -> Any:
            return TimeSeriesElement(
                metadata_values={"Origin": host},
                data=[
                    MetricValue(timestamp=NOW - timedelta(minutes=5 * (len(values) - i)), average=v)
                    for i, v in enumerate(values)
                ],
            )

        result = MetricsQueryResult(
            timespan="PT15M",
            metrics=[
                Metric(
                    id=f"{profile_id}/providers/Microsoft.Insights/metrics/OriginHealthPercentage",
                    type="Microsoft.Insights/metrics",
                    name="OriginHealthPercentage",
                    unit="Percent",
                    display_description="",
                    timeseries=[
                        series("api-primary.westeurope.cloudapp.azure.com", 20.0, 100.0, None),
                        series("api-mirror.northeurope.cloudapp.azure.com", 100.0, 25.0),
                    ],
                )
            ],
        )
        metrics = Answers(query_resource=result)
        observer = AzureObserver(compute=Answers(), standby=Answers(), cdn=cdn, metrics=metrics)

        seen = observer.observe_balancer(pool="api", spec=spec)
        assert seen is not None
        assert dict(seen.weights) == {"primary": 1000, "mirror": 0}
        assert dict(seen.healthy) == {"primary": True, "mirror": False}
        ((_name, args, kwargs),) = metrics.calls
        assert args[0] == profile_id and kwargs["metric_names"] == ["OriginHealthPercentage"]

        # No point for an origin in the window: its health is unknown, not guessed.
        metrics.calls.clear()
        result.metrics[0].timeseries = [series("api-primary.westeurope.cloudapp.azure.com", None)]
        seen = observer.observe_balancer(pool="api", spec=spec)
        assert seen is not None and dict(seen.healthy) == {"primary": None, "mirror": None}

    def test_no_subscription_is_one_line_for_the_cloud(
        self, azure_api: MirrorcastConfig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")
        seen = StackObserver().observe(azure_api, now=NOW)
        assert len(seen.degraded) == 1 and "AZURE_SUBSCRIPTION_ID is not set" in seen.degraded[0]
        assert seen.health()["api"].observed is False


# --------------------------------------------------------------------------- GCP

compute_v1 = pytest.importorskip("google.cloud.compute_v1")


def gcp_observer(
    config: MirrorcastConfig,
    *,
    pool: str,
    mirror_states: list[str],
    firewalls: list[Any] | None = None,
) -> Any:
    from driver.observers._gcp import GcpObserver, base_instance_name
    from infra._common import network_tag

    spec = config.pools[pool]
    groups = {
        role: f"https://www.googleapis.com/compute/v1/projects/p/regions/{region}/instanceGroups/{pool}-{role}-ig"
        for role, region in (("primary", spec.primary.region), ("mirror", spec.mirror_region))
    }
    images = {
        "primary": spec.primary.app.image_for(spec.primary.cloud, spec.primary.region),
        "mirror": spec.mirror_image,
    }
    managers = [
        compute_v1.InstanceGroupManager(
            name=f"{pool}-{role}-mig-1234567",
            base_instance_name=base_instance_name(pool, role),
            target_size=spec.primary.capacity.desired if role == "primary" else len(mirror_states),
            instance_group=groups[role],
            instance_template=f"https://www.googleapis.com/compute/v1/projects/p/global/instanceTemplates/{role}-tpl",
        )
        for role in ("primary", "mirror")
    ]

    def instances(project: str, region: str, instance_group_manager: str, timeout: float) -> Any:
        states = mirror_states if "mirror" in instance_group_manager else ["RUNNING"] * 2
        return [compute_v1.ManagedInstance(instance_status=s) for s in states]

    networks = {
        "primary": spec.primary.network.network or "",
        "mirror": spec.mirror_network.network or "",
    }

    def template(project: str, instance_template: str, timeout: float) -> Any:
        role = instance_template.split("-", 1)[0]
        machine = spec.primary.machine_type if role == "primary" else spec.mirror_machine_type
        return compute_v1.InstanceTemplate(
            properties=compute_v1.InstanceProperties(
                machine_type=machine,
                labels={"mirrorcast-app-version": spec.primary.app.version},
                tags=compute_v1.Tags(items=[network_tag(pool, role)]),
                network_interfaces=[compute_v1.NetworkInterface(network=networks[role])]
                if firewalls is not None
                else [],
                disks=[
                    compute_v1.AttachedDisk(
                        boot=True,
                        initialize_params=compute_v1.AttachedDiskInitializeParams(
                            source_image=images[role]
                        ),
                    )
                ],
            )
        )

    service = compute_v1.BackendService(
        name=f"{pool}-backend",
        backends=[
            compute_v1.Backend(group=groups["mirror"]),
            compute_v1.Backend(group=groups["primary"]),
        ],
    )

    def health(
        project: str,
        backend_service: str,
        resource_group_reference_resource: Any,
        timeout: float,
        **kw: Any,
    ) -> Any:
        group = resource_group_reference_resource.group
        states = (
            ["HEALTHY"] * sum(s == "RUNNING" for s in mirror_states)
            if "mirror" in group
            else ["HEALTHY", "HEALTHY"]
        )
        return compute_v1.BackendServiceGroupHealth(
            health_status=[compute_v1.HealthStatus(health_state=s) for s in states]
        )

    clients = {
        "migs": Answers(list=managers, list_managed_instances=instances),
        "templates": Answers(get=template),
        "backends": Answers(list=[service], get_health=health),
        "region_backends": Answers(list=[]),
        "firewalls": Answers(list=lambda project, timeout: firewalls or []),
    }
    return GcpObserver(project="p", clients=clients)


class TestGcp:
    def test_managed_instances_template_and_backend_health_are_read(self) -> None:
        config = load_stack("gcp-web", ROOT)
        pool = next(iter(config.pools))
        observer = gcp_observer(
            config, pool=pool, mirror_states=["RUNNING", "STOPPED", "STOPPED", "PROVISIONING"]
        )
        seen = StackObserver(observers={"gcp": observer}).observe(config, now=NOW)

        observed = seen.pools[pool]
        assert observed.problems == ()
        mirror = observed.mirror
        assert mirror is not None
        assert mirror.states == {"PROVISIONING": 1, "RUNNING": 1, "STOPPED": 2}
        assert (mirror.serving, mirror.starting, mirror.warm) == (1, 1, 2)
        assert mirror.targets == {"HEALTHY": 1} and mirror.healthy_targets == 1
        assert observed.primary is not None and observed.primary.healthy_targets == 2
        assert seen.drift(config) == []
        health = mirror_health(observed)
        assert (health.running, health.healthy, health.ready) == (2, 1, False)

    def firewalls(self, config: MirrorcastConfig, pool: str) -> list[Any]:
        """The firewalls infra's SharedFirewall creates: each rule targets both sides' tags."""
        from infra._common import gcp_firewall_rules, network_tag

        spec = config.pools[pool]
        url = "https://www.googleapis.com/compute/v1/" + (spec.primary.network.network or "")
        return [
            compute_v1.Firewall(
                name=f"{pool}-{rule.name}",
                network=url,
                direction="INGRESS",
                allowed=[compute_v1.Allowed(I_p_protocol=rule.protocol, ports=list(rule.ports))],
                source_ranges=list(rule.source_ranges),
                target_tags=sorted(network_tag(pool, r) for r in ("primary", "mirror")),
            )
            for rule in gcp_firewall_rules(spec.sync.security_rules)
        ] + [
            # Another network's rule and a disabled one reach neither side.
            compute_v1.Firewall(
                name="elsewhere",
                network="https://www.googleapis.com/compute/v1/projects/x/global/networks/other",
                direction="INGRESS",
                allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=["22"])],
                source_ranges=["0.0.0.0/0"],
            ),
            compute_v1.Firewall(
                name="off",
                network=url,
                direction="INGRESS",
                disabled=True,
                allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=["22"])],
                source_ranges=["0.0.0.0/0"],
            ),
        ]

    def test_firewall_rules_are_read_and_compared(self) -> None:
        config = load_stack("gcp-web", ROOT)
        pool = next(iter(config.pools))
        observer = gcp_observer(
            config, pool=pool, mirror_states=["RUNNING"], firewalls=self.firewalls(config, pool)
        )
        seen = StackObserver(observers={"gcp": observer}).observe(config, now=NOW)
        observed = seen.pools[pool]
        assert observed.problems == ()
        wanted = rule_texts(config.pools[pool].sync.security_rules)
        assert observed.mirror is not None and observed.mirror.security_rules == wanted
        assert observed.primary is not None and observed.primary.security_rules == wanted
        assert seen.drift(config) == []
        # The firewalls were listed in the network's project (a Shared VPC host), not "p".
        listed = observer._clients["firewalls"].calls
        assert {c[2]["project"] for c in listed} == {"acme-net"}

    def test_a_firewall_rule_opened_on_the_mirror_only_is_drift(self) -> None:
        from infra._common import network_tag

        config = load_stack("gcp-web", ROOT)
        pool = next(iter(config.pools))
        rules = self.firewalls(config, pool)
        rules.append(
            compute_v1.Firewall(
                name="debug-ssh",
                network=rules[0].network,
                direction="INGRESS",
                allowed=[
                    compute_v1.Allowed(I_p_protocol="tcp", ports=["22", "8000-8100"]),
                    compute_v1.Allowed(I_p_protocol="icmp"),
                ],
                source_ranges=["0.0.0.0/0"],
                target_tags=[network_tag(pool, "mirror")],
            )
        )
        observer = gcp_observer(config, pool=pool, mirror_states=["RUNNING"], firewalls=rules)
        seen = StackObserver(observers={"gcp": observer}).observe(config, now=NOW)
        mirror = seen.pools[pool].mirror
        assert mirror is not None and mirror.security_rules is not None
        extra = set(mirror.security_rules) - set(rule_texts(config.pools[pool].sync.security_rules))
        assert extra == {"tcp 22-22 0.0.0.0/0", "tcp 8000-8100 0.0.0.0/0", "icmp -1--1 0.0.0.0/0"}
        assert sorted((d.what, d.between) for d in seen.drift(config)) == [
            ("security_rules", "mirror vs config"),
            ("security_rules", "mirror vs primary"),
        ]

    def test_the_group_name_the_observer_looks_for_is_the_one_infra_gives(self) -> None:
        from driver.observers._gcp import base_instance_name
        from infra._common import gcp_name

        for pool, role in (
            ("web", "mirror"),
            ("9lives", "primary"),
            ("A_very-long-pool-name-indeed", "mirror"),
        ):
            assert base_instance_name(pool, role) == gcp_name(f"{pool}-{role}", max_length=40)
