"""What every executor shares: the outcome type, the intended-state check, and the plan executor.

An executor takes a journaled plan and makes it real (``apply``), proposes it (``gitops``) or
does nothing (``plan``). The check of stack outputs against the intended config is pure and
lives here so the apply executor, the reconcile step after a crash and the tests use one
definition of "the stack shows what we asked for".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from infra.config import MirrorcastConfig, UserError
from policies import Plan

__all__ = [
    "ApplyOutcome",
    "DriverError",
    "Executor",
    "PlanExecutor",
    "config_value_text",
    "intended_outputs",
    "output_mismatches",
    "value_at",
]

logger = logging.getLogger(__name__)


class DriverError(UserError, RuntimeError):
    """A problem a person must fix (missing CLI, no passphrase, bad remote); one clear sentence."""


@dataclass(frozen=True)
class ApplyOutcome:
    """What an executor did with a plan.

    :param status: ``planned`` (nothing changed), ``applied``, ``proposed`` (gitops), ``failed``
        or ``mismatch`` (the update ran but outputs disagree; retried next cycle).
    :param summary: one line for the journal and the log.
    :param details: extra facts (pull request URL, branch, resource changes).
    :param outputs: the stack's ``pools`` output after the update, when read.
    """

    status: Literal["planned", "applied", "proposed", "failed", "mismatch", "unfinished"]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("planned", "applied", "proposed")


class Executor(Protocol):
    """Makes a plan real, proposes it, or reports it."""

    mode: str

    def check_ready(self) -> None:
        """Raise :class:`DriverError` when this mode cannot work here (checked at start)."""

    def apply(self, plan: Plan, *, plan_id: str, retry_update: bool = False) -> ApplyOutcome:
        """Carry out ``plan``.

        :param plan_id: the journal's id for the plan (branch names, commit messages).
        :param retry_update: the previous update failed or did not match; run it again even
            when the plan changes nothing.
        """
        ...


class PlanExecutor:
    """``plan`` mode: change nothing; the plan is printed by the caller."""

    mode = "plan"

    def check_ready(self) -> None:
        return None

    def apply(self, plan: Plan, *, plan_id: str, retry_update: bool = False) -> ApplyOutcome:
        count = len(plan.changes)
        what = f"{count} change(s) not applied (plan mode)" if count else "no changes"
        return ApplyOutcome(status="planned", summary=what)


def config_value_text(value: Any) -> str:
    """A config value as ``pulumi config set --path`` takes it: strings bare, the rest as JSON."""
    if isinstance(value, str):
        return value
    if hasattr(value, "value") and isinstance(value.value, str):  # StrEnum members
        return str(value.value)
    return json.dumps(value)


def intended_outputs(config: MirrorcastConfig) -> dict[str, dict[str, Any]]:
    """Per pool, the output values the driver-managed keys of ``config`` must produce."""
    out: dict[str, dict[str, Any]] = {}
    for name, pool in config.pools.items():
        out[name] = {
            "mirror_state": pool.mirror.state.value,
            "weights": {
                "primary": pool.balancer.weights.primary,
                "mirror": pool.balancer.weights.mirror,
            },
            "primary_capacity": {
                "min": pool.primary.capacity.min,
                "desired": pool.primary.capacity.desired,
            },
            "mirror_capacity": pool.mirror_size,
        }
    return out


def output_mismatches(
    config: MirrorcastConfig, pools_output: Mapping[str, Any] | None
) -> list[str]:
    """Where the stack's ``pools`` output differs from ``config``; empty when it matches.

    Only the keys the driver manages are compared; each difference is one sentence.
    """
    if pools_output is None:
        return ["the stack has no 'pools' output (has it ever been deployed?)"]
    problems: list[str] = []
    for name, expected in intended_outputs(config).items():
        actual = pools_output.get(name)
        if not isinstance(actual, Mapping):
            problems.append(f"pools.{name}: missing from the stack outputs")
            continue
        for key, want in expected.items():
            have = actual.get(key)
            if isinstance(want, dict):
                have_map = have if isinstance(have, Mapping) else {}
                for sub, sub_want in want.items():
                    if have_map.get(sub) != sub_want:
                        problems.append(
                            f"pools.{name}.{key}.{sub}: outputs show {have_map.get(sub)!r}, intended {sub_want!r}"
                        )
            elif have != want:
                problems.append(f"pools.{name}.{key}: outputs show {have!r}, intended {want!r}")
    return problems


def value_at(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted config path (``pools.web.mirror.state``), or ``KeyError``."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node
