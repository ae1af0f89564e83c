"""GCP through google-cloud-compute: regional managed instance groups and backend service health.

A pool side is the regional managed instance group whose ``baseInstanceName`` infra derives from
the pool and role (infra/gcp.py: ``gcp_name(f"{pool}-{role}", max_length=40)``). From it:

- target size and the standby sizes (``target_stopped_size`` / ``target_suspended_size``);
- each instance's status (``list_managed_instances``: ``RUNNING``, ``STOPPED``, ``SUSPENDED``,
  ``PROVISIONING``, ``STAGING``, ...);
- the instance template it launches: machine type, source image, app version label;
- health behind the balancer: every backend service (global for a URL map, regional for a
  passthrough front) with the group as a backend, ``get_health`` (``HEALTHY``/``UNHEALTHY``).

Firewall rules are not read (``security_rules`` stays ``None``: not compared).
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
    :param clients: ``{"migs", "templates", "backends", "region_backends"}`` clients to use
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
            if len(found) != 1:
                names = ", ".join(sorted(m.name for m in found)) or "none"
                raise ObserveError(
                    f"expected one managed instance group with baseInstanceName {base} in "
                    f"{self.project}/{region}, found {len(found)} ({names})",
                    where=where,
                )
            mig = found[0]
            states: Counter[str] = Counter(
                str(i.instance_status or i.current_action or "UNKNOWN")
                for i in migs.list_managed_instances(
                    project=self.project,
                    region=region,
                    instance_group_manager=mig.name,
                    timeout=self.timeout,
                )
            )
            image, machine_type, version = self._template(mig.instance_template, where)
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
        )

    def _template(self, url: str, where: str) -> tuple[str | None, str | None, str | None]:
        if not url:
            return None, None, None
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
        return image, machine, dict(props.labels).get(_APP_VERSION_LABEL)

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
