"""What the driver keeps in the stack config so that losing its journal loses no rollback.

The journal is the driver's memory, but it is a file (or a database) next to the driver, and it
can be deleted, replaced or lost with a volume. The stack config is the source of truth that
outlives it, so every plan that changes the stack also writes ``mirrorcast:driver_record``
(:class:`infra.config.DriverRecord`), in the same ``config set-all`` or the same commit:

- ``journal`` and ``journal_location``: the marker of the journal that drives the stack. A
  driver whose journal is a different one refuses to act (two journals would each grant a
  lease), unless its journal is new and sits where the marker says (the old one was lost and
  recreated there) or a person passes ``--adopt``;
- ``activations.<pool>``: the activation in effect, with the original config to restore, the
  rollback deadline set at activation and the trigger's metric and threshold; marked
  ``active: false`` by the plan after its rollback (or, when the rollback's last step changed
  no key, known finished because every key is back at the original).

A journal that has never seen the stack rebuilds the planner's essential memory from it
(:func:`rebuild_memory`): each recorded activation, or, for a mirror found active or weighted
with no record, an activation whose original is the mirror paused with no traffic and the
primary as it stands. The planner then rolls back as usual when the demand does not come.

Writes happen only with a plan's own changes, never on their own (a gitops stack would get a
pull request per cycle otherwise).
"""

from __future__ import annotations

import logging
import socket
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from driver.executor import DriverError
from driver.journal import Journal
from infra.config import ActivationRecord, MirrorcastConfig, MirrorState
from policies import ConfigChange, Plan, PlannerMemory, PoolMemory

__all__ = [
    "ORIGINAL_FIELDS",
    "StackRecordError",
    "journal_location",
    "rebuild_memory",
    "record_changes",
    "with_record_changes",
]

logger = logging.getLogger(__name__)

ORIGINAL_FIELDS: dict[str, str] = {
    "mirror.state": "mirror_state",
    "mirror.percent": "mirror_percent",
    "balancer.weights.primary": "weight_primary",
    "balancer.weights.mirror": "weight_mirror",
    "primary.capacity.min": "capacity_min",
    "primary.capacity.desired": "capacity_desired",
    "primary.autoscaler_target": "autoscaler_target",
}
"""The planner memory's original-config paths and the record's field names for them."""

_PREFIX = "driver_record"
_TIME = TypeAdapter(datetime)


class StackRecordError(DriverError):
    """The stack's config names another journal: this driver refuses to act on it."""


def journal_location(journal: Journal) -> str:
    """Where ``journal`` is, as the marker records it: host and file for SQLite, else the URL.

    A SQLite file is local to its host (two containers with a volume each at the same path are
    two journals); a database URL (without its password) names one database wherever it is read.
    """
    if journal.engine.dialect.name == "sqlite":
        return f"{socket.gethostname()}:{journal.where}"
    return journal.where


def _time(value: datetime | None) -> str | None:
    # The same text the config model dumps, so a recovery compares equal values as equal.
    return None if value is None else str(_TIME.dump_python(value, mode="json"))


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _wanted(memory: PoolMemory, config_original: dict[str, Any]) -> dict[str, Any]:
    """The record of ``memory``'s activation as flat ``{field path: value}`` below the pool."""
    original = {**config_original, **(memory.original or {})}
    trigger = memory.trigger or {}
    threshold = trigger.get("threshold")
    values: dict[str, Any] = {
        "id": memory.activation_id,
        "active": True,
        "activated_at": _time(memory.activated_at),
        "rollback_deadline": _time(memory.rollback_deadline),
        "trigger_metric": trigger.get("metric"),
        "trigger_threshold": None if threshold is None else float(threshold),
    }
    for path, name in ORIGINAL_FIELDS.items():
        value = original[path]
        values[f"original.{name}"] = _number(getattr(value, "value", value))
    return values


def _config_keys(config: MirrorcastConfig, pool: str) -> dict[str, Any]:
    spec = config.pools[pool]
    return {
        "mirror.state": spec.mirror.state.value,
        "mirror.percent": spec.mirror.percent,
        "balancer.weights.primary": spec.balancer.weights.primary,
        "balancer.weights.mirror": spec.balancer.weights.mirror,
        "primary.capacity.min": spec.primary.capacity.min,
        "primary.capacity.desired": spec.primary.capacity.desired,
        "primary.autoscaler_target": spec.primary.autoscaler_target,
    }


def _flat(record: ActivationRecord | None) -> dict[str, Any]:
    if record is None:
        return {}
    data = record.model_dump(mode="json")
    out = {k: v for k, v in data.items() if k != "original"}
    out.update({f"original.{k}": _number(v) for k, v in data["original"].items()})
    return out


def record_changes(plan: Plan, *, journal_id: str, location: str) -> list[ConfigChange]:
    """The ``driver_record`` changes to write with ``plan`` (none when it changes nothing).

    :param plan: the planner's plan; its memory says which activations are in effect.
    :param journal_id: this driver's journal (the marker).
    :param location: where that journal is (:func:`journal_location`).
    """
    if not plan.changes:
        return []
    config = plan.stack_config
    record = config.driver_record
    changes: list[ConfigChange] = []
    if record.journal != journal_id:
        changes.append(ConfigChange(path=f"{_PREFIX}.journal", old=record.journal, new=journal_id))
    if record.journal_location != location:
        changes.append(
            ConfigChange(
                path=f"{_PREFIX}.journal_location", old=record.journal_location, new=location
            )
        )
    for pool in sorted(set(plan.memory.pools) | set(record.activations)):
        if pool not in config.pools:
            continue
        memory = plan.memory.pools.get(pool, PoolMemory())
        have = record.activations.get(pool)
        base = f"{_PREFIX}.activations.{pool}"
        if memory.activation_id is not None:
            if have is not None and have.id == memory.activation_id and have.active:
                continue
            # Keys as they were before this plan's changes, for an original not remembered.
            before = _config_keys(config, pool)
            for change in plan.changes:
                key = change.path.removeprefix(f"pools.{pool}.")
                if key != change.path and key in before:
                    before[key] = change.old
            old = _flat(have)
            for field, value in _wanted(memory, before).items():
                if old.get(field) != value:
                    changes.append(
                        ConfigChange(path=f"{base}.{field}", old=old.get(field), new=value)
                    )
        elif have is not None and have.active:
            changes.append(ConfigChange(path=f"{base}.active", old=True, new=False))
    return changes


def with_record_changes(plan: Plan, changes: list[ConfigChange]) -> Plan:
    """``plan`` with the record changes added to its changes and its intended config."""
    if not changes:
        return plan
    data = plan.stack_config.model_dump(mode="json")
    for change in changes:
        node = data
        *parents, last = change.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = change.new
    stack_config = MirrorcastConfig.model_validate(data)
    return plan.model_copy(
        update={"changes": [*plan.changes, *changes], "stack_config": stack_config}
    )


def _restored(config: MirrorcastConfig, pool: str, record: ActivationRecord) -> bool:
    """Whether the pool's driver keys are all back at the record's original."""
    keys = _config_keys(config, pool)
    original = record.original
    return all(
        (getattr(original, field).value if field == "mirror_state" else getattr(original, field))
        == keys[path]
        for path, field in ORIGINAL_FIELDS.items()
    )


def rebuild_memory(config: MirrorcastConfig, *, now: datetime) -> tuple[PlannerMemory, list[str]]:
    """The planner's essential memory rebuilt from the stack config, and one line per pool.

    A recorded activation comes back with its id, time, original config, deadline and trigger.
    A mirror active (or weighted) with no record still gets an activation, so that it is rolled
    back when no demand comes: its original is the mirror paused with no traffic and the primary
    as it stands (the primary's own original is not known), its deadline ``now`` plus the grace.
    """
    memory = PlannerMemory()
    lines: list[str] = []
    for name, spec in sorted(config.pools.items()):
        record = config.driver_record.activations.get(name)
        if record is not None and record.active and _restored(config, name, record):
            # The rollback's last step changed no key (the capacity was already the original),
            # so no plan carried the record's ``active: false``: nothing is left to roll back.
            record = None
        if record is not None and record.active:
            original = record.original
            pool = PoolMemory(
                activation_id=record.id,
                activated_at=record.activated_at,
                original={
                    path: getattr(original, field).value
                    if isinstance(getattr(original, field), MirrorState)
                    else _number(getattr(original, field))
                    for path, field in ORIGINAL_FIELDS.items()
                },
                rollback_deadline=record.rollback_deadline,
                trigger=(
                    {
                        "kind": "rebuilt",
                        "metric": record.trigger_metric,
                        "threshold": record.trigger_threshold,
                    }
                    if record.trigger_metric is not None
                    else None
                ),
                last_up_at=record.activated_at,
                activations=[record.activated_at],
            )
            memory.pools[name] = pool
            lines.append(
                f"{name}: activation {record.id} (original capacity min "
                f"{original.capacity_min}, desired {original.capacity_desired}; rolls back at "
                f"{record.rollback_deadline or 'the grace window'} unless demand arrives)"
            )
            continue
        weighted = spec.balancer.weights.mirror > 0
        if spec.mirror.state is MirrorState.active or weighted:
            keys = _config_keys(config, name)
            keys["mirror.state"] = MirrorState.paused.value
            keys["balancer.weights.primary"], keys["balancer.weights.mirror"] = 100, 0
            memory.pools[name] = PoolMemory(
                activation_id=f"{name}-rebuilt-{now:%Y%m%dT%H%M%SZ}",
                activated_at=now,
                original={k: _number(v) for k, v in keys.items()},
                rollback_deadline=now + spec.guardrails.rollback_grace,
                last_up_at=now,
            )
            lines.append(
                f"{name}: mirror {spec.mirror.state.value} at {spec.balancer.weights.mirror}% with "
                "no record of its activation; treated as an activation now (rolled back after "
                "the grace window unless demand arrives; the primary's capacity stays)"
            )
    return memory, lines
