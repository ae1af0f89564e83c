"""How cycles, status and history look: Rich for people, plain JSON for ``--json``."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from driver.journal import PlanRecord, forecast_to_json
from forecasting import Forecast
from infra.config import MirrorcastConfig, format_duration

if TYPE_CHECKING:
    # Only a type here: importing the service would load the cycle and pandas for ``status``.
    from driver.service import CycleReport

__all__ = [
    "config_state_json",
    "cycle_json",
    "history_summary",
    "percent_overflow",
    "render_cycle",
    "render_forecast",
    "render_history",
    "render_status",
]

logger = logging.getLogger(__name__)


def _peak_text(fc: Forecast, q: int, within: Any) -> str:
    try:
        value, when = fc.peak(q, within)
    except ValueError:
        return "-"
    if when is None:
        return "-"
    return f"{value:.1f} at {when:%H:%M}"


def percent_overflow(config: MirrorcastConfig, forecasts: list[Forecast]) -> list[str]:
    """One sentence per percent-metric forecast whose quantiles pass 100 (what that means).

    The values are kept, not capped: capacity is sized on them, and a share above 100% is
    exactly the demand the present capacity cannot serve.
    """
    out = []
    for fc in forecasts:
        pool = config.pools.get(fc.pool)
        spec = pool.metrics.get(fc.metric) if pool is not None else None
        if spec is None or spec.unit != "percent" or not fc.quantiles:
            continue
        top = max(fc.quantiles)
        peak = float(max(fc.quantiles[top])) if len(fc.quantiles[top]) else 0.0
        if peak > 100:
            out.append(
                f"{fc.pool}.{fc.metric}: p{top} reaches {peak:.0f}%; above 100% means demand "
                "beyond the pool's present capacity (kept, not capped, so capacity is sized on it)"
            )
    return out


def cycle_json(report: CycleReport) -> dict[str, Any]:
    """A cycle report as JSON-ready data."""
    data: dict[str, Any] = {
        "stack": report.stack,
        "mode": report.mode,
        "now": report.now.isoformat(),
        "plan_id": report.plan_id,
        "skipped": report.skipped,
        "degraded": report.degraded,
        "notes": report.notes,
        "duration_s": round(report.duration_s, 3),
        "outcome": None
        if report.outcome is None
        else {
            "status": report.outcome.status,
            "summary": report.outcome.summary,
            **report.outcome.details,
        },
        "recovered": None
        if report.recovered is None
        else {"status": report.recovered.status, "summary": report.recovered.summary},
        "observed": report.observed,
    }
    if report.result is not None:
        plan = report.result.plan
        data["forecasts"] = [
            forecast_to_json(fc) for by in report.result.forecasts.values() for fc in by.values()
        ]
        data["rules"] = [r.model_dump(mode="json") for r in plan.rules]
        data["decisions"] = [d.model_dump(mode="json") for d in plan.decisions]
        data["changes"] = [{"path": c.path, "old": c.old, "new": c.new} for c in plan.changes]
        data["explanation"] = plan.explanation
        data["notifications"] = plan.notifications
        data["rollbacks_answered"] = plan.rollbacks_answered
    return data


def render_cycle(console: Console, report: CycleReport) -> None:
    """Forecasts, rules, the plan and its explanation, and what happened to it."""
    title = f"mirrorcast · stack [bold]{report.stack}[/] · {report.mode} mode · as of {report.now:%Y-%m-%d %H:%M} UTC"
    if report.skipped:
        console.print(Panel(report.skipped, title=title, border_style="yellow"))
        return
    assert report.result is not None
    plan = report.result.plan
    horizon = report.config.forecast.horizon
    forecasts = Table(title=f"Forecasts (next {format_duration(horizon)})", expand=False)
    for column in ("pool", "metric", "model", "issued", "p50 peak", "p90 peak", "trusted"):
        forecasts.add_column(column)
    for pool, by_metric in report.result.forecasts.items():
        for metric, fc in by_metric.items():
            forecasts.add_row(
                pool,
                metric,
                fc.model,
                f"{fc.issued_at:%H:%M}",
                _peak_text(fc, 50, horizon),
                _peak_text(fc, 90, horizon),
                "[green]yes[/]" if fc.trusted else "[yellow]no[/] (see below)",
            )
    rules = Table(title="Rules", expand=False)
    for column in ("pool", "rule", "status", "detail"):
        rules.add_column(column)
    for outcome in plan.rules:
        style = "bold green" if outcome.fired else "dim"
        rules.add_row(outcome.pool, outcome.rule, Text(outcome.status, style=style), outcome.detail)
    changes = Table(title="Plan", expand=False)
    for column in ("key", "now", "planned"):
        changes.add_column(column)
    for change in plan.changes:
        changes.add_row(change.path, repr(change.old), f"[bold]{change.new!r}[/]")
    parts: list[Any] = [forecasts]
    every = [fc for by in report.result.forecasts.values() for fc in by.values()]
    for line in percent_overflow(report.config, every):
        parts.append(Text(f"note: {line}", style="dim"))
    parts.append(rules)
    parts.append(changes if plan.changes else Text("Plan: no config changes.", style="bold"))
    if plan.explanation:
        parts.append(Panel(plan.explanation.strip(), title="Why", border_style="cyan"))
    for pool in plan.rollbacks_answered:
        parts.append(
            Text(f"rollback of {pool} requested: nothing active to roll back; request cleared")
        )
    for note in report.notes:
        parts.append(Text(f"note: {note}", style="dim"))
    for pool, entry in ((report.observed or {}).get("pools") or {}).items():
        parts.append(Text(f"observed {pool}: {_observed_text(entry)}"))
    for line in report.degraded:
        parts.append(Text(f"degraded: {line}", style="yellow"))
    if report.recovered is not None:
        parts.append(
            Text(f"recovered interrupted update: {report.recovered.summary}", style="magenta")
        )
    if report.outcome is not None:
        style = "green" if report.outcome.ok else "bold red"
        parts.append(Text(f"{report.outcome.status}: {report.outcome.summary}", style=style))
    console.print(Panel(Group(*parts), title=title, border_style="blue"))


def config_state_json(config: MirrorcastConfig, memory: Any) -> dict[str, Any]:
    """Each pool's mirror, weights, capacities and the planner's in-flight ramps and rollbacks."""
    pools: dict[str, Any] = {}
    for name, pool in config.pools.items():
        mem = memory.pools.get(name) if memory is not None else None
        pools[name] = {
            "mirror_state": pool.mirror.state.value,
            "mirror_percent": pool.mirror.percent,
            "mirror_size": pool.mirror_size,
            "mirror_placement": pool.mirror_placement,
            "weights": {
                "primary": pool.balancer.weights.primary,
                "mirror": pool.balancer.weights.mirror,
            },
            "primary_capacity": pool.primary.capacity.model_dump(),
            "ramp": mem.ramp.model_dump(mode="json") if mem is not None and mem.ramp else None,
            "rollback_deadline": mem.rollback_deadline.isoformat()
            if mem is not None and mem.rollback_deadline
            else None,
            "rolling_back": bool(mem.rolling_back) if mem is not None else False,
            "activation_id": mem.activation_id if mem is not None else None,
            "original": mem.original if mem is not None else None,
        }
    return pools


def render_status(console: Console, stack: str, status: dict[str, Any]) -> None:
    """The ``status`` table: intended (the config and the planner's memory), then observed."""
    table = Table(title=f"Stack {stack}")
    for column in ("pool", "mirror", "weights p/m", "primary min/desired/max", "ramp", "rollback"):
        table.add_column(column)
    for name, pool in status["pools"].items():
        cap = pool["primary_capacity"]
        ramp = pool["ramp"]
        ramp_text = (
            f"to {ramp['target_mirror_share']}% (+{ramp['step_share']}), next {ramp.get('next_step_at') or '-'}"
            if ramp
            else "-"
        )
        rollback = "in progress" if pool["rolling_back"] else (pool["rollback_deadline"] or "-")
        table.add_row(
            name,
            f"{pool['mirror_state']} ({pool['mirror_size']} instances, {pool['mirror_percent']:g}%)",
            f"{pool['weights']['primary']}/{pool['weights']['mirror']}",
            f"{cap['min']}/{cap['desired']}/{cap['max']}",
            ramp_text,
            rollback,
        )
    console.print(table)
    observed = status.get("observed") or {}
    note = (status.get("observation") or {}).get("note")
    if note:
        console.print(f"observed: {note}", style="dim", highlight=False)
    for name, entry in (observed.get("pools") or {}).items():
        console.print(f"observed {name}: {_observed_text(entry)}", highlight=False)
        for difference in entry.get("differences", []):
            console.print(f"  differs: {difference}", highlight=False)
    for line in observed.get("degraded", []):
        console.print(f"degraded: {line}", style="yellow", highlight=False)
    for request in status.get("pending_rollback_requests", []):
        console.print(
            f"rollback requested for {request['pool']} by {request['requested_by']} at {request['requested_at']}"
        )
    if status.get("last_plan"):
        last = status["last_plan"]
        outcome = last.get("outcome")
        console.print(
            f"last plan {last['id']} ({last['status']}) at {last['created_at']}"
            + (f": {outcome}" if outcome else ""),
            highlight=False,
        )
    if status.get("lease"):
        lease = status["lease"]
        console.print(f"lease held by {lease['holder']} until {lease['expires_at']}")


def plan_record_json(
    record: PlanRecord, *, observed: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A journaled plan as JSON; ``observed`` is what the clouds reported in its cycle."""
    return {
        "observed": observed,
        "id": record.id,
        "cycle_id": record.cycle_id,
        "created_at": record.created_at.isoformat(),
        "status": record.status,
        "explanation": record.explanation,
        "changes": record.changes,
        "decisions": record.decisions,
        "outcome": record.outcome,
    }


def history_summary(record: PlanRecord) -> str:
    """One line for a plan: its decisions (grouped by rule), how many keys changed, the outcome."""
    by_rule: dict[str, list[str]] = {}
    for d in record.decisions:
        by_rule.setdefault(d.get("rule") or "", []).append(f"{d['action']} {d['pool']}")
    parts = [
        ", ".join(actions) + (f" ({rule})" if rule else "") for rule, actions in by_rule.items()
    ]
    text = "; ".join(parts) or "no decision"
    if record.changes:
        text += f"; {len(record.changes)} key{'s' if len(record.changes) != 1 else ''} changed"
    if record.outcome and record.status not in ("planned",):
        text += f"; {record.outcome}"
    return text


def render_history(
    console: Console,
    stack: str,
    records: list[PlanRecord],
    *,
    details: bool = False,
    observed: dict[str, dict[str, Any]] | None = None,
) -> None:
    """The ``history`` listing: one line per plan, newest first; ``details`` adds the rest.

    One line keeps a day of 5-minute cycles scannable at 80 columns; the changed keys and the
    explanation (which already names the decisions) are shown with ``--details``.
    """
    if not records:
        console.print(f"no plans journaled for stack {stack} yet")
        return
    if not details:
        table = Table(title=f"Decisions on stack {stack}", box=None, pad_edge=False)
        table.add_column("when", no_wrap=True)
        table.add_column("plan", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("what", no_wrap=True, overflow="ellipsis", ratio=1)
        for record in records:
            table.add_row(
                f"{record.created_at:%m-%d %H:%M}",
                record.id,
                record.status,
                history_summary(record),
            )
        console.print(table)
        console.print(
            Text("mirrorcast history --details: changed keys and explanations", style="dim")
        )
        return
    for record in records:
        console.rule(
            f"{record.created_at:%Y-%m-%d %H:%M} UTC · plan {record.id} · {record.status}",
            align="left",
        )
        if record.outcome:
            console.print(f"outcome: {record.outcome}", highlight=False)
        seen = (observed or {}).get(record.id) or {}
        for pool, entry in (seen.get("pools") or {}).items():
            console.print(f"observed {pool}: {_observed_text(entry)}", highlight=False)
        if record.explanation.strip():  # the explanation ends with the changed keys
            console.print(record.explanation.strip(), highlight=False)
        else:
            for change in record.changes:
                console.print(
                    f"  {change['path']}: {change['old']!r} -> {change['new']!r}", highlight=False
                )


def render_forecast(console: Console, fc: Forecast) -> None:
    """A forecast as a table of times and quantiles."""
    qs = sorted(fc.quantiles)
    table = Table(
        title=f"{fc.pool}.{fc.metric} forecast by {fc.model}, issued {fc.issued_at:%Y-%m-%d %H:%M} UTC"
        + ("" if fc.trusted else f" (untrusted: {fc.reason})")
    )
    table.add_column("time")
    table.add_column("mean")
    for q in qs:
        table.add_column(f"p{q}")
    for i, at in enumerate(fc.times):
        table.add_row(_hm(at), f"{fc.mean[i]:.2f}", *(f"{fc.quantiles[q][i]:.2f}" for q in qs))
    console.print(table)


def _observed_text(entry: dict[str, Any]) -> str:
    # Imported late: the observers pull in the planner's types, which `history` never needs
    # otherwise.
    from driver.observers import observed_text

    return observed_text(entry)


def _hm(at: datetime) -> str:
    return f"{at:%m-%d %H:%M}"
