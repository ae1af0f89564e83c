"""Builders for planner tests: the demo stack, forecasts from numpy arrays, UTC observation series."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting import Forecast
from infra.config import MirrorcastConfig, config_from_mapping, load_stack_file
from policies import MirrorHealth, Plan, PlannerMemory, PlanningInput, PrimaryHealth, plan

ROOT = Path(__file__).resolve().parents[2]
DEMO_STACK = ROOT / "stacks" / "Pulumi.demo.yaml"
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
QUANTILE_SPREAD = {50: 0.0, 80: 3.0, 90: 5.0, 95: 7.0, 99: 10.0}


def demo_config() -> MirrorcastConfig:
    """The demo stack exactly as shipped."""
    return load_stack_file(DEMO_STACK)


def demo_with(**pool_updates: Any) -> MirrorcastConfig:
    """The demo stack with keys of pool ``web`` replaced (plain data, validated like a stack file)."""
    data = demo_config().model_dump(mode="json")
    web = data["pools"]["web"]
    for dotted, value in pool_updates.items():
        node = web
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return config_from_mapping({f"mirrorcast:{k}": v for k, v in data.items()})


def forecast(
    median: Sequence[float],
    *,
    issued_at: datetime = T0,
    step: timedelta = timedelta(minutes=5),
    metric: str = "cpu",
    pool: str = "web",
    spread: dict[int, float] | None = None,
    trusted: bool = True,
    reason: str | None = None,
) -> Forecast:
    """A forecast whose quantiles sit ``spread[q]`` above the median at every point."""
    values = np.asarray(median, dtype=float)
    offsets = QUANTILE_SPREAD if spread is None else spread
    return Forecast(
        pool=pool,
        metric=metric,
        issued_at=issued_at,
        step=step,
        times=[issued_at + step * (i + 1) for i in range(len(values))],
        mean=values,
        quantiles={q: values + offset for q, offset in offsets.items()},
        model="test",
        trusted=trusted,
        reason=reason,
    )


def series(
    values: Sequence[float], *, end: datetime = T0, step: timedelta = timedelta(minutes=1)
) -> pd.Series:
    """Observations ending at ``end`` (inclusive), one per ``step``, UTC index."""
    index = pd.DatetimeIndex([end - step * (len(values) - 1 - i) for i in range(len(values))])
    return pd.Series(np.asarray(values, dtype=float), index=index)


def flat(value: float, *, minutes: int = 30, end: datetime = T0) -> pd.Series:
    """``minutes + 1`` one-minute observations of ``value`` ending at ``end``."""
    return series([value] * (minutes + 1), end=end)


def step_plan(
    config: MirrorcastConfig,
    *,
    now: datetime,
    cpu: pd.Series | None = None,
    cpu_forecast: Forecast | None = None,
    memory: PlannerMemory | None = None,
    ready: bool = False,
    events: frozenset[str] = frozenset(),
    rollback: frozenset[str] = frozenset(),
    extra_current: dict[str, pd.Series] | None = None,
    extra_forecasts: dict[str, Forecast] | None = None,
    actuation_time: timedelta | None = None,
    health: MirrorHealth | None = None,
    primary_health: PrimaryHealth | None = None,
    observed_desired: int | None = None,
) -> Plan:
    """One planning cycle for pool ``web`` (``observed_desired``: the primary's desired size as
    its cloud reports it; absent: not observed)."""
    current = {"cpu": cpu if cpu is not None else flat(40, end=now)}
    current.update(extra_current or {})
    forecasts = {"cpu": cpu_forecast} if cpu_forecast is not None else {}
    forecasts.update(extra_forecasts or {})
    return plan(
        PlanningInput(
            config=config,
            now=now,
            current={"web": current},
            forecasts={"web": forecasts},
            active_events=events,
            # A ready mirror: every instance the deployed config gives it is a healthy target.
            health={
                "web": health
                or MirrorHealth(
                    running=config.pools["web"].mirror_running if ready else 0,
                    healthy=config.pools["web"].mirror_running if ready else 0,
                    ready=ready,
                )
            },
            primary_health={"web": primary_health} if primary_health is not None else {},
            memory=memory or PlannerMemory(),
            rollback_requested=rollback,
            actuation_time=actuation_time,
            observed_desired={"web": observed_desired} if observed_desired is not None else {},
        )
    )


def changed(result: Plan) -> dict[str, Any]:
    """The plan's changes as path -> new value."""
    return {c.path: c.new for c in result.changes}
