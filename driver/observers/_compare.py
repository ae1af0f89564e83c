"""Observed against intended, pure: mirror health for the ramp, capacity feedback, drift.

These are the only places the driver turns what a cloud reported into facts the planner and
the reports use, so the driver, ``status`` and the backtest read an observation the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from driver.observers._base import PoolObservation, SideObservation, rule_texts
from infra.config import MirrorcastConfig, PoolSpec
from policies import MirrorHealth, PrimaryHealth

__all__ = [
    "Drift",
    "drift",
    "mirror_health",
    "observed_primary_desired",
    "observed_text",
    "observed_vs_intended",
]


class StackObservationLike(Protocol):
    @property
    def pools(self) -> Mapping[str, PoolObservation]: ...


logger = logging.getLogger(__name__)


def mirror_health(observation: PoolObservation | None) -> MirrorHealth:
    """The mirror's health as the cloud reports it.

    ``running`` counts instances in service or starting, ``healthy`` the targets the balancer
    calls healthy (the only evidence that the mirror can serve). ``ready`` means at least one
    healthy target and every running instance healthy; the planner also checks that there are
    enough healthy targets for the share a ramp step is about to give the mirror.
    """
    mirror = observation.mirror if observation is not None else None
    if mirror is None:
        why = "; ".join(observation.problems) if observation is not None else "not observed"
        return MirrorHealth(observed=False, detail=f"mirror not observed ({why})")
    running = mirror.serving + mirror.starting
    if mirror.healthy_targets is None:
        return MirrorHealth(
            running=running,
            healthy=0,
            ready=False,
            observed=True,
            detail=f"{running} running; no balancer target health was read for {mirror.group}",
        )
    healthy = mirror.healthy_targets
    states = ", ".join(f"{n} {s}" for s, n in (mirror.targets or {}).items()) or "no targets"
    return MirrorHealth(
        running=running,
        healthy=healthy,
        ready=healthy > 0 and healthy >= running,
        observed=True,
        detail=f"{running} running, targets: {states}",
    )


def primary_health(observation: PoolObservation | None) -> PrimaryHealth | None:
    """The primary's health as its balancer reports it, or ``None`` when not read.

    The fleet is what should be serving: the group's desired size less the instances still
    starting (a scale-out's new instances are not failures); the healthy count is the
    balancer's healthy targets, the only evidence that the primary serves. A region that has
    failed shows as a fleet with no healthy target.
    """
    primary = observation.primary if observation is not None else None
    if primary is None or primary.healthy_targets is None:
        return None
    desired = primary.desired if primary.desired is not None else primary.serving + primary.starting
    return PrimaryHealth(fleet=max(0, desired - primary.starting), healthy=primary.healthy_targets)


def observed_primary_desired(observation: PoolObservation | None) -> int | None:
    """The primary group's desired size as its cloud holds it, or ``None`` when not observed."""
    if observation is None or observation.primary is None:
        return None
    return observation.primary.desired


@dataclass(frozen=True)
class Drift:
    """One difference between what runs and what should.

    :param pool: the pool.
    :param what: ``image``, ``machine_type``, ``app_version`` or ``security_rules``.
    :param between: ``mirror vs primary``, ``mirror vs config`` or ``primary vs config``.
    :param detail: the two values, in words.
    """

    pool: str
    what: str
    between: str
    detail: str

    def __str__(self) -> str:
        return f"{self.pool}: drift in {self.what} ({self.between}): {self.detail}"


def drift(pool: str, spec: PoolSpec, observation: PoolObservation | None) -> list[Drift]:
    """Every difference between the sides, and between each side and the stack config.

    Image and machine type are compared with the config per side (a cross-cloud or
    cross-region mirror legitimately runs another image); app version and security rules must
    be the same on both sides and as configured. A field a cloud did not report is not compared.
    """
    if observation is None:
        return []
    found: list[Drift] = []
    primary, mirror = observation.primary, observation.mirror
    version = spec.primary.app.version
    rules = rule_texts(spec.sync.security_rules)
    wanted_image = {
        "primary": spec.primary.app.image_for(spec.primary.cloud, spec.primary.region),
        "mirror": spec.mirror_image,
    }
    wanted_type = {"primary": spec.primary.machine_type, "mirror": spec.mirror_machine_type}
    for side in (mirror, primary):
        if side is None:
            continue
        between = f"{side.role} vs config"
        if side.image is not None and side.image != wanted_image[side.role]:
            found.append(
                Drift(
                    pool,
                    "image",
                    between,
                    f"{side.role} launches {side.image}, config says {wanted_image[side.role]}",
                )
            )
        if side.machine_type is not None and side.machine_type != wanted_type[side.role]:
            found.append(
                Drift(
                    pool,
                    "machine_type",
                    between,
                    f"{side.role} launches {side.machine_type}, config says {wanted_type[side.role]}",
                )
            )
        if side.app_version is not None and side.app_version != version:
            found.append(
                Drift(
                    pool,
                    "app_version",
                    between,
                    f"{side.role} runs {side.app_version}, config says {version}",
                )
            )
        if side.security_rules is not None and not _rules_cover(side, rules):
            found.append(
                Drift(
                    pool,
                    "security_rules",
                    between,
                    f"{side.role} allows {_text(side.security_rules)}, config says {_text(rules)}",
                )
            )
    if primary is not None and mirror is not None:
        if (
            primary.app_version is not None
            and mirror.app_version is not None
            and primary.app_version != mirror.app_version
        ):
            found.append(
                Drift(
                    pool,
                    "app_version",
                    "mirror vs primary",
                    f"mirror runs {mirror.app_version}, primary {primary.app_version}",
                )
            )
        if (
            primary.cloud == mirror.cloud
            and primary.region == mirror.region
            and primary.image is not None
            and mirror.image is not None
            and primary.image != mirror.image
        ):
            found.append(
                Drift(
                    pool,
                    "image",
                    "mirror vs primary",
                    f"mirror launches {mirror.image}, primary {primary.image}",
                )
            )
        if (
            primary.cloud == mirror.cloud
            and primary.security_rules is not None
            and mirror.security_rules is not None
            and set(primary.security_rules) != set(mirror.security_rules)
        ):
            found.append(
                Drift(
                    pool,
                    "security_rules",
                    "mirror vs primary",
                    f"mirror allows {_text(mirror.security_rules)}, primary "
                    f"{_text(primary.security_rules)}",
                )
            )
    return found


def _rules_cover(side: SideObservation, wanted: tuple[str, ...]) -> bool:
    """The side's inbound rules are exactly the configured ones (in its cloud's words)."""
    assert side.security_rules is not None
    return set(side.security_rules) == set(wanted)


def _text(rules: tuple[str, ...]) -> str:
    return "; ".join(rules) if rules else "nothing"


def observed_vs_intended(
    config: MirrorcastConfig, observation: StackObservationLike, drift_found: list[Drift]
) -> dict[str, Any]:
    """Per pool, what the clouds report beside what the config intends, and the differences.

    The one summary ``status``, ``history``, the cycle's ``--json`` and the journal show; a
    pool whose cloud could not be read says ``not observed`` and why, with no numbers made up.
    """
    out: dict[str, Any] = {}
    for name, spec in config.pools.items():
        seen = observation.pools.get(name)
        primary = seen.primary if seen is not None else None
        mirror = seen.mirror if seen is not None else None
        balancer = seen.balancer if seen is not None else None
        health = mirror_health(seen)
        entry: dict[str, Any] = {
            "observed": primary is not None and mirror is not None,
            "primary": {
                "intended_desired": spec.primary.capacity.desired,
                "observed_desired": primary.desired if primary else None,
                "serving": primary.serving if primary else None,
                "healthy_targets": primary.healthy_targets if primary else None,
            },
            "mirror": {
                "intended_state": spec.mirror.state.value,
                "intended_running": spec.mirror_running,
                "running": health.running if mirror else None,
                "warm": mirror.warm if mirror else None,
                "healthy_targets": mirror.healthy_targets if mirror else None,
                "ready": health.ready if mirror else None,
            },
            "weights": {
                "intended": {
                    "primary": spec.balancer.weights.primary,
                    "mirror": spec.balancer.weights.mirror,
                },
                "observed": dict(balancer.weights) if balancer is not None else None,
            },
            "drift": [str(d) for d in drift_found if d.pool == name],
            "problems": list(seen.problems) if seen is not None else ["not observed"],
        }
        differences = []
        if (
            primary is not None
            and primary.desired is not None
            and primary.desired != spec.primary.capacity.desired
        ):
            differences.append(
                f"primary desired {primary.desired} observed, {spec.primary.capacity.desired} intended"
            )
        if mirror is not None and health.running != spec.mirror_running:
            differences.append(
                f"mirror {health.running} running observed, {spec.mirror_running} intended"
            )
        entry["differences"] = differences + entry["drift"]
        out[name] = entry
    return out


def observed_text(entry: Mapping[str, Any]) -> str:
    """One short line for a pool's :func:`observed_vs_intended` entry (status, history)."""
    if not entry.get("observed"):
        problems = entry.get("problems") or ["not observed"]
        return f"not observed ({problems[0]})"
    primary, mirror = entry["primary"], entry["mirror"]
    text = (
        f"primary {primary['observed_desired']} desired ({primary['intended_desired']} intended), "
        f"{primary['healthy_targets'] if primary['healthy_targets'] is not None else '?'} healthy; "
        f"mirror {mirror['running']} running ({mirror['intended_running']} intended), "
        f"{mirror['healthy_targets'] if mirror['healthy_targets'] is not None else '?'} healthy, "
        f"{mirror['warm']} warm"
    )
    if entry.get("drift"):
        text += f"; {len(entry['drift'])} drift"
    return text
