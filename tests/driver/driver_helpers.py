"""Shared helpers of the driver's tests: a fixed clock, plans to apply, a scripted engine."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting import Forecast
from forecasting.errors import UnusableSeriesError
from infra.config import MetricSpec, MirrorcastConfig, load_stack
from policies import ConfigChange, Decision, Plan

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


def with_changes(config: MirrorcastConfig, changes: list[ConfigChange]) -> MirrorcastConfig:
    """``config`` with each change's path set to its new value."""
    data: dict[str, Any] = config.model_dump(mode="json")
    for change in changes:
        node = data
        *parents, last = change.path.split(".")
        for part in parents:
            node = node[part]
        node[last] = change.new
    return MirrorcastConfig.model_validate(data)


ACTIVATE = [
    ConfigChange(path="pools.web.mirror.state", old="paused", new="active"),
    ConfigChange(path="pools.web.balancer.weights.primary", old=100, new=70),
    ConfigChange(path="pools.web.balancer.weights.mirror", old=0, new=30),
    ConfigChange(path="pools.web.primary.capacity.desired", old=4, new=6),
    ConfigChange(path="pools.web.primary.capacity.min", old=2, new=6),
]


def activation_plan(root: Path, *, changes: list[ConfigChange] | None = None) -> Plan:
    """A plan that activates the demo stack's mirror with a 30% share and raises the floor."""
    config = load_stack("demo", root)
    chosen = ACTIVATE if changes is None else changes
    return Plan(
        now=NOW,
        stack_config=with_changes(config, chosen),
        changes=chosen,
        decisions=[Decision(pool="web", action="activate_mirror", rule="predicted-cpu")],
        explanation="predicted-cpu fired: p90 cpu forecast 91% at 18:25, above 80% within 30m.",
    )


STEP = timedelta(minutes=5)


def history(
    level: float = 40.0, *, until: pd.Timestamp | None = None
) -> dict[str, dict[str, pd.Series]]:
    end = until or pd.Timestamp(NOW) + pd.Timedelta(hours=2)  # includes points after NOW
    index = pd.date_range(end=end, periods=24 * 12, freq="5min", tz="UTC")
    return {
        "web": {
            "cpu": pd.Series(level, index=index, name="cpu"),
            "rps": pd.Series(100.0, index=index, name="rps"),
        }
    }


def flat(pool: str, metric: str, *, issued: Any, level: float) -> Forecast:
    times = [issued + STEP * i for i in range(1, 13)]
    values = np.full(12, level)
    return Forecast(
        pool=pool,
        metric=metric,
        issued_at=issued,
        step=STEP,
        times=times,
        mean=values,
        quantiles={q: values + (q - 50) / 10 for q in (50, 80, 90, 95, 99)},
        model="test-double",
    )


class ScriptedEngine:
    """Returns flat forecasts at a chosen level per metric, or raises for chosen metrics."""

    def __init__(self, levels: dict[str, float], *, unusable: tuple[str, ...] = ()) -> None:
        self.levels = levels
        self.unusable = unusable
        self.seen: dict[str, pd.Series] = {}

    def forecast(
        self,
        history: pd.Series,
        *,
        pool: str,
        metric: str,
        spec: MetricSpec | None = None,
        now: Any = None,
        events: Any = None,
    ) -> Forecast:
        self.seen[metric] = history
        if metric in self.unusable:
            raise UnusableSeriesError(f"{pool}.{metric}", "only 3 points in the last 14 days")
        return flat(pool, metric, issued=now, level=self.levels[metric])


def multicloud_project(root: Path) -> Path:
    """A project holding the multicloud example stack, whose failover metrics name their AWS
    target group and load balancer as stack outputs (``${outputs.pools.$pool.ids...}``)."""
    repo = Path(__file__).resolve().parents[2]
    (root / "stacks").mkdir(parents=True)
    shutil.copy(repo / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(repo / "stacks" / "Pulumi.multicloud.yaml", root / "stacks")
    return root


def assert_reads_the_primarys_ids(config: MirrorcastConfig, ids: dict[str, str]) -> None:
    """The multicloud stack's metrics, resolved, name the primary's deployed ``ids``."""
    metrics = config.pools["checkout"].metrics
    assert metrics["healthy_hosts"].dimensions == {
        "TargetGroup": ids["target_group"],
        "LoadBalancer": ids["load_balancer"],
    }
    assert metrics["cpu"].dimensions == {"AutoScalingGroupName": ids["autoscaling_group"]}
