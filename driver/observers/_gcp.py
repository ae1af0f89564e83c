"""GCP through google-cloud-compute: regional managed instance groups and backend service health.

A pool side is the regional managed instance group whose ``baseInstanceName`` infra derives from
the pool and role (infra/gcp.py: ``gcp_name(f"{pool}-{role}", max_length=40)``). From it:

- target size and the standby sizes (``target_stopped_size`` / ``target_suspended_size``);
- each instance's status (``list_managed_instances``: ``RUNNING``, ``STOPPED``, ``SUSPENDED``,
  ``PROVISIONING``, ``STAGING``, ...);
- the instance template it launches: machine type, source image, app version label;
- health behind the balancer: every backend service (global for a URL map, regional for a
  passthrough front) with the group as a backend, ``get_health`` (``HEALTHY``/``UNHEALTHY``).

- inbound security rules: the enabled INGRESS firewall rules of the template's network that
  apply to its instances (target tags among the template's network tags, or no targets at all),
  ``FirewallsClient.list``; each allowed protocol/port/source as ``protocol from-to source`` in the
  words :func:`driver.observers._base.rule_texts` uses (a deny rule prefixed ``deny``).

Credentials and project come from Google's Application Default Credentials.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import timedelta
from typing import Any

from driver.observers._base import (
    BalancerObservation,
    ObserveError,
    ObserveUnavailable,
    Role,
    SideObservation,
    TranslatedErrors,
    only_one,
)
from infra.config import PoolSpec

__all__ = ["GcpObserver", "base_instance_name"]

logger = logging.getLogger(__name__)

_BAD = re.compile(r"[^a-z0-9-]+")
_STARTING = frozenset({"PROVISIONING", "STAGING", "REPAIRING"})
_WARM = frozenset({"STOPPED", "SUSPENDED", "TERMINATED"})
# The label infra writes the app version under (GCP labels are lowercase: infra/_common.py).
_APP_VERSION_LABEL = "mirrorcast-app-version"


def base_instance_name(pool: str, role: str) -> str:
    """The MIG's ``baseInstanceName`` as infra sets it (infra/_common.py ``gcp_name``, 40 chars)."""
    name = _BAD.sub("-", f"{pool}-{role}".lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"mc-{name}"
    return name[:40].rstrip("-")


class GcpObserver:
    """Reads pool sides on GCP.

    :param timeout: per-request timeout.
    :param project: the project; default the Application Default Credentials' project.
    :param clients: ``{"migs", "templates", "backends", "region_backends", "firewalls"}`` clients to use
        instead of building them (tests, custom credentials).
    """

    name = "gcp"

    def __init__(
        self,
        *,
        timeout: timedelta = timedelta(seconds=10),
        project: str | None = None,
        clients: dict[str, Any] | None = None,
    ) -> None:
        self.timeout = timeout.total_seconds()
        self.project = project
        self._clients = dict(clients or {})

    def _client(self, kind: str, where: str) -> Any:
        if kind not in self._clients:
            from google.cloud import compute_v1

            if self.project is None:
                self.project = _default_project(where)
            factory = {
                "migs": compute_v1.RegionInstanceGroupManagersClient,
                "templates": compute_v1.InstanceTemplatesClient,
                "region_templates": compute_v1.RegionInstanceTemplatesClient,
                "backends": compute_v1.BackendServicesClient,
                "region_backends": compute_v1.RegionBackendServicesClient,
                "firewalls": compute_v1.FirewallsClient,
            }[kind]
            self._clients[kind] = factory()
        return self._clients[kind]

    def observe_side(self, *, pool: str, spec: PoolSpec, role: Role) -> SideObservation:
        region = spec.primary.region if role == "primary" else spec.mirror_region
        where = f"gcp:{region} {pool}/{role}"
        with _translated(where):
            migs = self._client("migs", where)
            if self.project is None:
                self.project = _default_project(where)
            base = base_instance_name(pool, role)
            found = [
                m
                for m in migs.list(project=self.project, region=region, timeout=self.timeout)
                if m.base_instance_name == base
            ]
            mig = only_one(
                found,
                what=f"managed instance group with baseInstanceName {base} in "
                f"{self.project}/{region}",
                where=where,
            )
            states: Counter[str] = Counter(
                str(i.instance_status or i.current_action or "UNKNOWN")
                for i in migs.list_managed_instances(
                    project=self.project,
                    region=region,
                    instance_group_manager=mig.name,
                    timeout=self.timeout,
                )
            )
            image, machine_type, version, props = self._template(mig.instance_template, where)
            rules = self._rules(props, where) if props is not None else None
            targets = self._health(mig.instance_group, region, where)
        return SideObservation(
            role=role,
            cloud="gcp",
            region=region,
            group=mig.name,
            desired=int(mig.target_size) if mig.target_size is not None else None,
            states=dict(sorted(states.items())),
            serving=states.get("RUNNING", 0),
            starting=sum(n for s, n in states.items() if s in _STARTING),
            warm=sum(n for s, n in states.items() if s in _WARM),
            targets=dict(sorted(targets.items())) if targets is not None else None,
            healthy_targets=targets.get("HEALTHY", 0) if targets is not None else None,
            image=image,
            machine_type=machine_type,
            app_version=version,
            security_rules=rules,
        )

    def _template(
        self, url: str, where: str
    ) -> tuple[str | None, str | None, str | None, Any | None]:
        if not url:
            return None, None, None, None
        name = url.rstrip("/").rsplit("/", 1)[-1]
        match = re.search(r"/regions/([^/]+)/instanceTemplates/", url)
        if match:
            template = self._client("region_templates", where).get(
                project=self.project,
                region=match.group(1),
                instance_template=name,
                timeout=self.timeout,
            )
        else:
            template = self._client("templates", where).get(
                project=self.project, instance_template=name, timeout=self.timeout
            )
        props = template.properties
        image = None
        for disk in props.disks:
            if disk.boot and disk.initialize_params:
                image = disk.initialize_params.source_image or None
        machine = props.machine_type.rsplit("/", 1)[-1] if props.machine_type else None
        return image, machine, dict(props.labels).get(_APP_VERSION_LABEL), props

    def _rules(self, props: Any, where: str) -> tuple[str, ...] | None:
        """The ingress firewall rules that reach the template's instances, as rule texts."""
        networks = [n.network for n in props.network_interfaces if n.network]
        if not networks:
            return None
        tags = set(props.tags.items) if props.tags else set()
        # Firewalls belong to the network's project (a Shared VPC host may not be this project).
        projects = sorted({_network_project(n) or self.project or "" for n in networks})
        texts: set[str] = set()
        found = [
            rule
            for project in projects
            for rule in self._client("firewalls", where).list(project=project, timeout=self.timeout)
        ]
        for rule in found:
            if rule.disabled or str(rule.direction or "INGRESS") != "INGRESS":
                continue
            if not any(_same(rule.network, n) for n in networks):
                continue
            targeted = bool(rule.target_tags) or bool(rule.target_service_accounts)
            if targeted and not tags & set(rule.target_tags):
                continue
            sources = [
                *rule.source_ranges,
                *(f"tag:{t}" for t in rule.source_tags),
                *(f"sa:{a}" for a in rule.source_service_accounts),
            ]
            for prefix, entries in (("", rule.allowed), ("deny ", rule.denied)):
                for entry in entries:
                    protocol = str(entry.I_p_protocol)
                    for low, high in _port_ranges(list(entry.ports), protocol):
                        for source in sources or ["0.0.0.0/0"]:
                            texts.add(f"{prefix}{protocol} {low}-{high} {source}")
        return tuple(sorted(texts))

    def _health(self, group_url: str, region: str, where: str) -> Counter[str] | None:
        from google.cloud import compute_v1

        states: Counter[str] = Counter()
        found = False
        for kind, scope in (("backends", {}), ("region_backends", {"region": region})):
            client = self._client(kind, where)
            for service in client.list(project=self.project, timeout=self.timeout, **scope):
                if not any(_same(b.group, group_url) for b in service.backends):
                    continue
                found = True
                reference = compute_v1.ResourceGroupReference(group=group_url)
                if kind == "backends":
                    answer = client.get_health(
                        project=self.project,
                        backend_service=service.name,
                        resource_group_reference_resource=reference,
                        timeout=self.timeout,
                    )
                else:
                    answer = client.get_health(
                        project=self.project,
                        region=region,
                        backend_service=service.name,
                        resource_group_reference_resource=reference,
                        timeout=self.timeout,
                    )
                for status in answer.health_status:
                    states[str(status.health_state or "UNKNOWN")] += 1
        return states if found else None

    def observe_balancer(self, *, pool: str, spec: PoolSpec) -> BalancerObservation | None:
        # A URL map's weights sit in its route rules and Cloud DNS's in its routing policy;
        # each side's serving health is read with the side (backend service get_health).
        return None


def _network_project(url: str) -> str | None:
    match = re.search(r"projects/([^/]+)/global/networks/", url)
    return match.group(1) if match else None


def _port_ranges(ports: list[str], protocol: str) -> list[tuple[int, int]]:
    """A firewall entry's ports as ``from-to`` pairs; none means every port (ICMP: none, -1)."""
    if not ports:
        return [(-1, -1)] if protocol not in ("tcp", "udp") else [(0, 65535)]
    out = []
    for port in ports:
        low, _, high = port.partition("-")
        out.append((int(low), int(high or low)))
    return out


def _same(a: str, b: str) -> bool:
    """Two resource URLs name the same resource (one may be relative, one absolute)."""
    return (
        bool(a)
        and bool(b)
        and (a.endswith(b.split("/projects/", 1)[-1]) or b.endswith(a.split("/projects/", 1)[-1]))
    )


def _default_project(where: str) -> str:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        _credentials, project = google.auth.default()
    except DefaultCredentialsError as exc:
        raise ObserveError(
            f"no Google Application Default Credentials ({exc})", where=where, cloud_wide=True
        ) from exc
    if not project:
        raise ObserveError(
            "the Application Default Credentials name no project (set GOOGLE_CLOUD_PROJECT)",
            where=where,
            cloud_wide=True,
        )
    return str(project)


class _translated(TranslatedErrors):
    """google-api-core's exceptions as :class:`ObserveError` / :class:`ObserveUnavailable`."""

    def translate(self, exc: BaseException, *, where: str) -> None:
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import DefaultCredentialsError

        if isinstance(exc, DefaultCredentialsError):
            raise ObserveError(
                f"no Google Application Default Credentials ({exc})", where=where, cloud_wide=True
            ) from exc
        if isinstance(exc, (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError)):
            raise ObserveUnavailable(f"GCP did not answer ({exc})", where=where) from exc
        if isinstance(exc, (gexc.TooManyRequests, gexc.InternalServerError)):
            raise ObserveUnavailable(f"GCP: {exc}", where=where, cloud_wide=False) from exc
        if isinstance(exc, gexc.GoogleAPICallError):
            raise ObserveError(f"GCP: {exc}", where=where) from exc
        return None
