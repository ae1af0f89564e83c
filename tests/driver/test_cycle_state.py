"""One cycle state, advanced alike by the service (in its journal) and the backtest (in memory).

``driver.cycle.CycleState`` is what a cycle hands the next: the planner's memory and the last
good forecasts. The backtest keeps it in memory (tests/backtest/test_mirrorcast_strategy.py
checks it falls back as the service does); the service keeps it in its journal. These
specifications pin the one rule and check the journal keeps what ``advanced`` keeps.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from driver_helpers import STEP, flat
from pulumi_standin import StandInPulumi

from driver.automation import AutomationExecutor
from driver.cycle import CycleResult, CycleState, good_forecasts
from driver.service import Driver
from forecasting import Forecast
from forecasting.errors import UnusableSeriesError
from policies import Plan, PlannerMemory, PoolMemory

# Inside the demo recording (9-23 Nov 2026), so the file source has 14 days of history.
AT = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


def result_with(
    forecasts: dict[str, dict[str, Forecast]], *, memory: PlannerMemory | None = None
) -> CycleResult:
    """A cycle's result holding ``forecasts`` and a plan that leaves ``memory``."""
    plan = Plan.model_construct(memory=memory or PlannerMemory())
    return CycleResult(plan=plan, forecasts=forecasts, degraded=[])


def untrusted(forecast: Forecast) -> Forecast:
    return dataclasses.replace(forecast, trusted=False, reason="no model beat seasonal-naive")


class TestAdvancing:
    def test_every_trusted_forecast_is_kept_whatever_its_age(self) -> None:
        # Issued 40 minutes before the decision (a gap at the end of the series): still the
        # newest forecast that worked.
        old = flat("web", "cpu", issued=AT - timedelta(minutes=40), level=50)
        state = CycleState().advanced(result_with({"web": {"cpu": old}}))
        assert state.last_good == {"web": {"cpu": old}}

    def test_an_untrusted_forecast_is_never_kept(self) -> None:
        good = flat("web", "cpu", issued=AT, level=50)
        later = untrusted(flat("web", "cpu", issued=AT + STEP, level=90))
        state = CycleState().advanced(result_with({"web": {"cpu": good}}))
        assert state.advanced(result_with({"web": {"cpu": later}})).last_good["web"]["cpu"] is good

    def test_a_newer_forecast_replaces_the_kept_one_and_an_older_does_not(self) -> None:
        now = flat("web", "cpu", issued=AT, level=50)
        newer = flat("web", "cpu", issued=AT + STEP, level=60)
        older = flat("web", "cpu", issued=AT - STEP, level=40)
        state = CycleState().advanced(result_with({"web": {"cpu": now}}))
        assert state.advanced(result_with({"web": {"cpu": newer}})).last_good["web"]["cpu"] is newer
        assert state.advanced(result_with({"web": {"cpu": older}})).last_good["web"]["cpu"] is now

    def test_metrics_a_cycle_did_not_forecast_keep_their_last_good(self) -> None:
        cpu = flat("web", "cpu", issued=AT, level=50)
        rps = flat("web", "rps", issued=AT, level=100)
        state = CycleState().advanced(result_with({"web": {"cpu": cpu, "rps": rps}}))
        after = state.advanced(result_with({"web": {}}))
        assert after.last_good == {"web": {"cpu": cpu, "rps": rps}}
        assert state.last_good == {"web": {"cpu": cpu, "rps": rps}}  # a new state, not edited

    def test_the_memory_is_the_one_the_plan_left(self) -> None:
        left = PlannerMemory(pools={"web": PoolMemory(activated_at=AT)})
        state = CycleState().advanced(result_with({}, memory=left))
        assert state.memory == left


class ScriptedByCycle:
    """Per cycle (by decision time) and metric: a forecast issued ``age`` minutes before the
    cycle, trusted or not, or ``None`` for a series that cannot be forecast."""

    def __init__(
        self,
        script: dict[datetime, dict[str, tuple[int, bool] | None]],
        *,
        cpu: float = 50.0,
    ) -> None:
        self.script = script
        self.levels = {"cpu": cpu, "rps": 100.0}

    def forecast(
        self, history: pd.Series, *, pool: str, metric: str, now: Any = None, **_: Any
    ) -> Forecast:
        entry = self.script[now][metric]
        if entry is None:
            raise UnusableSeriesError(f"{pool}.{metric}", "no points in the last hour")
        age, trusted = entry
        made = flat(pool, metric, issued=now - timedelta(minutes=age), level=self.levels[metric])
        return made if trusted else untrusted(made)


def comparable(last_good: Any) -> dict[tuple[str, str], tuple[Any, ...]]:
    """pool metric -> what identifies a forecast (issue time, model, trust, values)."""
    return {
        (pool, metric): (fc.issued_at, fc.model, fc.trusted, np.asarray(fc.mean).tolist())
        for pool, by_metric in last_good.items()
        for metric, fc in by_metric.items()
    }


class TestTheServiceKeepsTheSameState:
    def test_the_journal_keeps_the_last_good_forecasts_advanced_keeps(self, project: Path) -> None:
        at = [AT + STEP * i for i in range(4)]
        script: dict[datetime, dict[str, tuple[int, bool] | None]] = {
            at[0]: {"cpu": (0, True), "rps": (20, True)},  # rps: a gap before the cycle
            at[1]: {"cpu": (0, False), "rps": None},  # untrusted; rps falls back (young)
            at[2]: {"cpu": None, "rps": (0, True)},  # cpu falls back to at[0]'s
            at[3]: {"cpu": None, "rps": None},  # both fall back; cpu's is still young
        }
        driver = Driver(
            stack="demo",
            root=project,
            mode="plan",
            engine=ScriptedByCycle(script),
            holder="test-driver",
            clock=lambda: AT,
        )
        state = CycleState()
        for now in at:
            report = driver.run_cycle(now=now)
            assert report.result is not None
            state = state.advanced(report.result)
            assert comparable(driver.cycle_state().last_good) == comparable(state.last_good)
        kept = driver.cycle_state().last_good["web"]
        assert kept["cpu"].issued_at == at[0] and kept["rps"].issued_at == at[2]

    def test_an_apply_cycle_leaves_the_memory_advanced_gives(self, project: Path) -> None:
        script = {AT: {"cpu": (0, True), "rps": (0, True)}}
        engine = ScriptedByCycle(script, cpu=95.0)  # the demo's predictive rule activates
        driver = Driver(
            stack="demo",
            root=project,
            mode="apply",
            executor=AutomationExecutor(
                stack="demo", project_root=project, pulumi_command=StandInPulumi(), lock_wait=0.01
            ),
            engine=engine,
            holder="test-driver",
            clock=lambda: AT,
        )
        report = driver.run_cycle(now=AT)
        assert report.result is not None
        advanced = CycleState().advanced(report.result)
        assert advanced.memory.pools["web"].activated_at == AT
        assert driver.cycle_state().memory == advanced.memory
        assert comparable(driver.cycle_state().last_good) == comparable(advanced.last_good)


def test_good_forecasts_are_exactly_the_trusted_ones() -> None:
    cpu = flat("web", "cpu", issued=AT, level=50)
    rps = untrusted(flat("web", "rps", issued=AT, level=100))
    assert good_forecasts(result_with({"web": {"cpu": cpu, "rps": rps}})) == {"web": {"cpu": cpu}}
