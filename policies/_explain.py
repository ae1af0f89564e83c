"""The plan's explanation: plain text a person reads in a pull request or ``mirrorcast history``.

Layout (one block per pool, then the config diff)::

    Plan at 2026-11-28 12:00 UTC
    pool web:
      rules:
        - predicted-cpu [won, weight 10]: predicted(cpu, p90) > 80% within 30m: ...
        - cpu-now [not_fired, weight 5]: current(cpu) > 90% for 5m: now 62, ...
      decisions:
        - activate_mirror (predicted-cpu): mirror paused -> active at 50%
      guardrails:
        - cooldown: ...
    changes:
      pools.web.mirror.state: 'paused' -> 'active'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from policies._guardrails import Clip
from policies._plan import ConfigChange, Decision, RuleOutcome

__all__ = ["PoolReport", "explain"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolReport:
    """What happened to one pool this cycle, for the explanation.

    :param pool: the pool's name.
    :param outcomes: every rule's outcome.
    :param weights: rule -> weight, shown next to the outcome.
    :param decisions: what the plan does to the pool.
    :param clips: guardrails that limited something.
    :param notes: anything else a person should know (feedback, state of a rollback).
    """

    pool: str
    outcomes: Sequence[RuleOutcome]
    weights: dict[str, float]
    decisions: Sequence[Decision]
    clips: Sequence[Clip]
    notes: Sequence[str] = ()


def explain(now: datetime, reports: Sequence[PoolReport], changes: Sequence[ConfigChange]) -> str:
    """Render the explanation text.

    :param now: decision time.
    :param reports: one per pool, in pool order.
    :param changes: the config diff.
    """
    lines = [f"Plan at {now:%Y-%m-%d %H:%M} UTC"]
    for report in reports:
        lines.append(f"pool {report.pool}:")
        lines.append("  rules:")
        if not report.outcomes:
            lines.append("    (no rules)")
        for outcome in report.outcomes:
            weight = report.weights.get(outcome.rule)
            tag = f"{outcome.status}" + (f", weight {weight:g}" if weight is not None else "")
            lines.append(f"    - {outcome.rule} [{tag}]: {outcome.detail}")
        lines.append("  decisions:")
        if not report.decisions:
            lines.append("    (none: nothing to change)")
        for decision in report.decisions:
            by = f" ({decision.rule})" if decision.rule else ""
            clipped = (
                f" [clipped by {', '.join(decision.clipped_by)}]" if decision.clipped_by else ""
            )
            lines.append(f"    - {decision.action}{by}: {decision.detail}{clipped}")
        if report.clips:
            lines.append("  guardrails:")
            for clip in report.clips:
                lines.append(f"    - {clip.guardrail}: {clip.detail}")
        if report.notes:
            lines.append("  notes:")
            for note in report.notes:
                lines.append(f"    - {note}")
    lines.append("changes:")
    if not changes:
        lines.append("  (none)")
    for change in changes:
        lines.append(f"  {change}")
    return "\n".join(lines)
