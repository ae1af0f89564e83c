"""The ``Pool`` component: primary, mirror, balancer and synchronised pieces of one pool.

It names no cloud: each side, the balancer and the database are declared by the backend that
``infra.clouds.CLOUDS`` registers for their cloud (``infra/aws.py``, ``azure.py``, ``gcp.py``),
which puts a layer-4 front before a side when DNS (or Front Door) has to reach it and applies the
same security rules on both sides. The pool summarises what was declared in the shape the driver
reads back (docs/architecture.md, "Stack outputs").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pulumi

from infra._common import Role, group_plans, pool_weights, type_token
from infra.clouds import CLOUDS, CloudBackend, CloudRegistry, PoolContext, Side
from infra.config import AzureSettings, Cloud, PoolSpec

__all__ = ["Pool", "pool_summary"]

logger = logging.getLogger(__name__)


def pool_summary(name: str, spec: PoolSpec) -> dict[str, Any]:
    """The known part of a pool's stack output (everything except the endpoints).

    :param name: the pool's name.
    :param spec: the pool's config.
    """
    capacity = spec.primary.capacity
    return {
        "primary_capacity": {
            "min": capacity.min,
            "max": capacity.max,
            "desired": capacity.desired,
        },
        "mirror_capacity": spec.mirror_size,
        "mirror_running": spec.mirror_running,
        "mirror_state": spec.mirror.state.value,
        "weights": {
            "primary": spec.balancer.weights.primary,
            "mirror": spec.balancer.weights.mirror,
        },
        "product_weights": {
            role: {"weight": weight.weight, "enabled": weight.enabled}
            for role, weight in pool_weights(spec).items()
        },
        "placement": spec.mirror_placement,
    }


class Pool(pulumi.ComponentResource):
    """One resource pool (``mirrorcast:pool:Pool``).

    :param name: the pool's name; every child's name starts with it.
    :param spec: the pool's config.
    :param tags: the stack's ``tags``, applied to every taggable resource (as labels on GCP).
    :param database_password: administrator password for Aurora or Azure SQL, when declared.
    :param default_aws_region: the stack's ``aws:region``; AWS sides elsewhere get a provider.
    :param azure: the stack's ``azure`` settings (image kind, admin user, standby principal).
    :param ssh_public_key: the Azure admin's SSH public key, for generalized images.
    :param clouds: the cloud backends to declare through (default :data:`infra.clouds.CLOUDS`).
    :param opts: resource options.
    """

    def __init__(
        self,
        name: str,
        *,
        spec: PoolSpec,
        tags: Mapping[str, str],
        database_password: pulumi.Input[str] | None = None,
        default_aws_region: str | None = None,
        azure: AzureSettings | None = None,
        ssh_public_key: pulumi.Input[str] | None = None,
        clouds: CloudRegistry = CLOUDS,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("pool", "Pool"), name, None, opts)
        self._context = PoolContext(
            name=name,
            spec=spec,
            # Both sides carry the app version they run, so drift between them shows in the
            # console.
            tags={**tags, "mirrorcast-app-version": spec.primary.app.version},
            parent=self,
            database_password=database_password,
            default_aws_region=default_aws_region,
            azure=azure or AzureSettings(),
            ssh_public_key=ssh_public_key,
        )
        self._clouds = clouds
        # One backend per cloud the pool uses, so a backend keeps what its pieces share (AWS:
        # one provider per region).
        self._backends: dict[Cloud, CloudBackend] = {}
        primary_plan, mirror_plan = group_plans(name, spec)
        self.sides: dict[Role, Side] = {
            plan.role: self._backend(plan.cloud).side(plan=plan)
            for plan in (primary_plan, mirror_plan)
        }
        for cloud in dict.fromkeys(side.cloud for side in self.sides.values()):
            self._backend(cloud).shared(
                sides=[side for side in self.sides.values() if side.cloud is cloud]
            )
        kind = spec.balancer.kind
        clouds.for_balancer(kind)
        self.balancer_endpoint = self._backend(kind.cloud).balancer(kind=kind, sides=self.sides)
        if spec.sync.database is not None:
            self._backend(spec.primary.cloud).database(sides=self.sides)
        summary = pool_summary(name, spec)
        summary["endpoints"] = {
            "primary": self.sides["primary"].endpoint,
            "mirror": self.sides["mirror"].endpoint,
            "balancer": self.balancer_endpoint,
        }
        # Names the clouds give at deploy time (auto-named resources), for metric dimensions.
        summary["ids"] = {role: dict(side.ids) for role, side in self.sides.items()}
        self.summary: pulumi.Output[dict[str, Any]] = pulumi.Output.from_input(summary)
        self.register_outputs({"summary": self.summary})

    def _backend(self, cloud: Cloud) -> CloudBackend:
        if cloud not in self._backends:
            self._backends[cloud] = self._clouds.backend(cloud)(pool=self._context)
        return self._backends[cloud]
