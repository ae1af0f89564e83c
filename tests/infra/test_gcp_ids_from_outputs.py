"""GCP sides export the names Cloud Monitoring keys their metrics on (``pools.<pool>.ids.<role>``).

A managed instance group, its backend services and the balancer's URL map and forwarding rules
are auto-named at deploy time (the logical name and a suffix), so a stack cannot write them by
hand: a metric's filter names them as ``${outputs.pools.$pool.ids.<role>.<key>}``. The program
runs under Pulumi's mocks (``pulumi_harness``), which name a bridged resource as the providers
do; the ids must be exactly the names of the resources the program declared, each side its own.
The GCP source then builds its ``ListTimeSeriesRequest`` (the SDK's own message) from the
resolved config.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import monitoring_v3
from pulumi_harness import ProgramRun, auto_name, stack_config

from driver.stack_outputs import resolve_output_references
from forecasting.sources import GcpMonitoringMetricSource
from infra.config import config_from_mapping

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
START = END - timedelta(hours=6)


def _named(run: ProgramRun, typ: str, logical: str) -> str:
    """The deployed name the mocks gave the one resource of ``typ`` the program declared as
    ``logical`` in the gcp-web stack (the logical name and a suffix, as the provider does)."""
    found = [r for r in run.resources if r.type == typ and r.name == logical]
    assert len(found) == 1, f"{typ} {logical}: {[r.name for r in run.resources if r.type == typ]}"
    return auto_name("gcp-web", logical)


class TestTheUrlMapPoolExportsEachSidesNames:
    """gcp-web: a GCP primary and mirror behind a global URL map (gcp_url_map)."""

    def test_each_side_names_its_own_group_and_backend_service_and_the_shared_map(
        self, example_runs: dict[str, ProgramRun]
    ) -> None:
        run = example_runs["gcp-web"]
        ids = run.pools["storefront"]["ids"]
        mig = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
        for role in ("primary", "mirror"):
            assert ids[role] == {
                "instance_group": _named(run, mig, f"storefront-{role}-mig"),
                "region": "europe-west1",
                "backend_service": _named(
                    run,
                    "gcp:compute/backendService:BackendService",
                    f"storefront-balancer-{role}",
                ),
                "url_map": _named(run, "gcp:compute/uRLMap:URLMap", "storefront-balancer-urlmap"),
                "forwarding_rule": _named(
                    run,
                    "gcp:compute/globalForwardingRule:GlobalForwardingRule",
                    "storefront-balancer-fr",
                ),
            }
        # Each side's requests are told apart by its own backend service.
        assert ids["primary"]["backend_service"] != ids["mirror"]["backend_service"]


def test_a_gcp_side_behind_dns_names_its_passthrough_front(
    example_runs: dict[str, ProgramRun],
) -> None:
    """multicloud: the GCP mirror behind Route 53 has a passthrough network load balancer."""
    run = example_runs["multicloud"]
    mirror = run.pools["checkout"]["ids"]["mirror"]
    mig = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
    [group] = [r for r in run.resources if r.type == mig]
    assert mirror == {
        "instance_group": auto_name("multicloud", group.name),
        "region": group.inputs["region"],
        "backend_service": auto_name("multicloud", "checkout-mirror-front-bs"),
        "forwarding_rule": auto_name("multicloud", "checkout-mirror-front-fr"),
    }
    declared = {(r.type, r.name) for r in run.resources}
    assert (
        "gcp:compute/regionBackendService:RegionBackendService",
        "checkout-mirror-front-bs",
    ) in (declared)
    assert ("gcp:compute/forwardingRule:ForwardingRule", "checkout-mirror-front-fr") in declared


def _gcp_monitored(config: dict[str, Any]) -> dict[str, Any]:
    """gcp-web read from Cloud Monitoring, each metric's filter naming deployed resources."""
    config = copy.deepcopy(config)
    config["mirrorcast:metrics"] = {"type": "gcp_monitoring", "project": "acme-web-prod"}
    backend = {
        "resource.type": "https_lb_rule",
        "resource.labels.url_map_name": "${outputs.pools.$pool.ids.primary.url_map}",
        "resource.labels.backend_target_name": "${outputs.pools.$pool.ids.primary.backend_service}",
    }
    config["mirrorcast:pools"]["storefront"]["metrics"] = {
        "cpu": {
            "query": "compute.googleapis.com/instance/cpu/utilization",
            "dimensions": {
                "resource.type": "gce_instance",
                "metadata.system_labels.instance_group": (
                    "${outputs.pools.$pool.ids.primary.instance_group}"
                ),
            },
        },
        "requests": {
            "unit": "rps",
            "query": "loadbalancing.googleapis.com/https/request_count",
            "statistic": "Rate",
            "dimensions": backend,
        },
        # The slow-now rule's latency: a distribution metric, read as its mean.
        "latency": {
            "kind": "application",
            "unit": "ms",
            "query": "loadbalancing.googleapis.com/https/backend_latencies",
            "dimensions": backend,
        },
    }
    return config


def test_the_gcp_source_filters_on_the_exported_names(
    example_runs: dict[str, ProgramRun],
) -> None:
    ids = example_runs["gcp-web"].pools["storefront"]["ids"]["primary"]
    config = config_from_mapping(_gcp_monitored(stack_config("gcp-web")))
    resolved = resolve_output_references(
        config, outputs={"pools": example_runs["gcp-web"].pools}, stack="gcp-web"
    )
    assert resolved.unresolved == {}
    assert isinstance(resolved.config.metrics, type(config.metrics))
    source = GcpMonitoringMetricSource(resolved.config.metrics, client=object())
    metrics = resolved.config.pools["storefront"].metrics
    cpu = source.request_for(
        pool="storefront", metric="cpu", spec=metrics["cpu"], start=START, end=END
    )
    requests = source.request_for(
        pool="storefront", metric="requests", spec=metrics["requests"], start=START, end=END
    )
    # The SDK's own message, serialised as it goes on the wire and read back.
    for request in (cpu, requests):
        assert isinstance(request, monitoring_v3.ListTimeSeriesRequest)
        wire = monitoring_v3.ListTimeSeriesRequest.serialize(request)
        assert monitoring_v3.ListTimeSeriesRequest.deserialize(wire).filter == request.filter
    assert cpu.filter == (
        'metric.type = "compute.googleapis.com/instance/cpu/utilization" AND '
        f'metadata.system_labels.instance_group = "{ids["instance_group"]}" AND '
        'resource.type = "gce_instance"'
    )
    assert requests.filter == (
        'metric.type = "loadbalancing.googleapis.com/https/request_count" AND '
        f'resource.labels.backend_target_name = "{ids["backend_service"]}" AND '
        f'resource.labels.url_map_name = "{ids["url_map"]}" AND '
        'resource.type = "https_lb_rule"'
    )
    assert requests.aggregation.per_series_aligner == monitoring_v3.Aggregation.Aligner.ALIGN_RATE


def test_a_stack_deployed_before_gcp_ids_were_exported_says_which_output_it_needs(
    example_runs: dict[str, ProgramRun],
) -> None:
    config = config_from_mapping(_gcp_monitored(stack_config("gcp-web")))
    # Deployed by the program before GCP sides exported ids: each side's ids were empty.
    older = copy.deepcopy(example_runs["gcp-web"].pools)
    for pool in older.values():
        pool["ids"] = {"primary": {}, "mirror": {}}
    resolved = resolve_output_references(config, outputs={"pools": older}, stack="gcp-web")
    assert resolved.unresolved[("storefront", "cpu")] == (
        "stack gcp-web, pool storefront, metric cpu: dimension "
        "metadata.system_labels.instance_group refers to stack output "
        "pools.storefront.ids.primary.instance_group, which the stack's outputs do not have "
        "(no 'instance_group' under pools.storefront.ids.primary, which has no keys)"
    )
