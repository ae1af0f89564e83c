"""Building blocks for whole-loop fault tests: a driver on the soak project, and a small engine.

:class:`RecentPeakEngine` is a deliberately simple, *trusted* forecaster (the last hour's peak,
held flat over the horizon). The real engine marks forecasts of the short excerpts untrusted
(too little history to learn a daily season), which would hide the first fallback stage
(the last good forecast within ``forecast.max_staleness``) these tests are about.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from soak_harness import STACK, DyingJournal, Faults, KillableCli

from driver.automation import AutomationExecutor
from driver.journal import Journal
from driver.observe import DriverMetrics
from driver.service import Driver
from forecasting._result import Forecast
from infra.config import MetricSpec, load_stack

TRACE = (
    Path(__file__).resolve().parents[1] / "data" / "backtest" / "elb_request_count_8c0756_4days.csv"
)


class RecentPeakEngine:
    """Forecasts the last hour's peak for the next hour: trusted, deterministic, instant."""

    def __init__(self) -> None:
        self.calls = 0

    def forecast(
        self,
        history: pd.Series,
        *,
        pool: str,
        metric: str,
        spec: MetricSpec | None = None,
        now: datetime | None = None,
        events: Any = None,
    ) -> Forecast:
        self.calls += 1
        clean = history.dropna().sort_index()
        last = pd.Timestamp(clean.index[-1]).to_pydatetime()
        peak = float(clean[clean.index >= clean.index[-1] - pd.Timedelta(hours=1)].max())
        step = timedelta(minutes=5)
        times = [last + step * (i + 1) for i in range(12)]
        mean = np.full(12, peak)
        return Forecast(
            pool=pool,
            metric=metric,
            issued_at=last,
            step=step,
            times=times,
            mean=mean,
            quantiles={q: mean * (1 + q / 500) for q in (50, 80, 90, 95, 99)},
            model="recent_peak",
        )


def make_driver(
    root: Path,
    *,
    cli: KillableCli,
    journal: Journal,
    clock: Any,
    holder: str = "driver-1",
    engine: Any = None,
    metrics: DriverMetrics | None = None,
    lock_attempts: int = 2,
) -> Driver:
    """An apply-mode driver on the soak project, through the Pulumi stand-in."""
    config = load_stack(STACK, root)
    executor = AutomationExecutor(
        stack=STACK,
        project_root=root,
        pulumi_command=cli,
        update_timeout=config.driver.update_timeout,
        lock_attempts=lock_attempts,
        lock_wait=0.001,
        progress=lambda _event: None,
    )
    return Driver(
        stack=STACK,
        root=root,
        mode="apply",
        journal=journal,
        executor=executor,
        engine=engine if engine is not None else RecentPeakEngine(),
        metrics=metrics or DriverMetrics(),
        clock=clock,
        holder=holder,
    )


def open_journal(url: str, faults: Faults | None = None) -> DyingJournal:
    journal = DyingJournal(url)
    journal.faults = faults or Faults()
    return journal
