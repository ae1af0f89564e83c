"""``driver.cycle.decide`` forecasts a cycle's series in one batched engine call where it can."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from driver_helpers import NOW, ScriptedEngine

from driver.cycle import decide
from forecasting import ForecastEngine
from forecasting._result import Forecast, ForecastUnavailable
from infra.config import load_stack
from policies import PlannerMemory


def _daily_history() -> dict[str, dict[str, pd.Series]]:
    # Three days at 5 minutes with a daily cycle: long enough for the engine's real model
    # selection, short enough to keep the test fast.
    index = pd.date_range(end=pd.Timestamp(NOW), periods=3 * 288, freq="5min", tz="UTC")
    phase = 2 * np.pi * np.arange(len(index)) / 288
    noise = np.random.default_rng(7).normal(0, 1.5, len(index))
    return {
        "web": {
            "cpu": pd.Series(50 + 20 * np.sin(phase) + noise, index=index, name="cpu"),
            "rps": pd.Series(100 + 40 * np.sin(phase) + 2 * noise, index=index, name="rps"),
        }
    }


class CountingEngine(ForecastEngine):
    """The real engine, counting which entry point :func:`decide` used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batched_calls: list[set[tuple[str, str]]] = []
        self.single_calls = 0

    def forecast_many(
        self, histories: Mapping[tuple[str, str], pd.Series], **kwargs: Any
    ) -> dict[tuple[str, str], Forecast | ForecastUnavailable]:
        self.batched_calls.append(set(histories))
        return super().forecast_many(histories, **kwargs)

    def forecast(self, history: pd.Series, **kwargs: Any) -> Forecast:
        self.single_calls += 1
        return super().forecast(history, **kwargs)


def test_an_engine_with_forecast_many_gets_every_series_in_one_call(project: Path) -> None:
    config = load_stack("demo", project)
    engine = CountingEngine(config.forecast)

    result = decide(
        config=config, history=_daily_history(), engine=engine, now=NOW, memory=PlannerMemory()
    )

    # One call with both series; the one-series entry point (which would also reach
    # forecast_many, once per series) is never used.
    assert engine.batched_calls == [{("web", "cpu"), ("web", "rps")}]
    assert engine.single_calls == 0
    assert set(result.forecasts["web"]) == {"cpu", "rps"}


def test_batched_forecasts_equal_one_by_one_forecasts(project: Path) -> None:
    config = load_stack("demo", project)
    history = _daily_history()

    batched = decide(
        config=config,
        history=history,
        engine=ForecastEngine(config.forecast),
        now=NOW,
        memory=PlannerMemory(),
    )
    single = ForecastEngine(config.forecast)
    for metric in ("cpu", "rps"):
        alone = single.forecast(
            history["web"][metric],
            pool="web",
            metric=metric,
            spec=config.pools["web"].metrics[metric],
            now=NOW,
        )
        got = batched.forecasts["web"][metric]
        assert got.model == alone.model
        assert got.trusted == alone.trusted
        assert got.times == alone.times
        np.testing.assert_allclose(got.mean, alone.mean, rtol=1e-9)
        for q, curve in alone.quantiles.items():
            np.testing.assert_allclose(got.quantiles[q], curve, rtol=1e-9)


class BrokenBatchEngine(ScriptedEngine):
    """A batched call that fails as a whole; the one-series path still works."""

    def forecast_many(self, histories: Any, **kwargs: Any) -> Any:
        raise RuntimeError("batch backend down")


def test_a_failing_batched_call_falls_back_to_one_series_at_a_time(project: Path) -> None:
    config = load_stack("demo", project)
    engine = BrokenBatchEngine({"cpu": 40.0, "rps": 100.0}, unusable=("rps",))

    result = decide(
        config=config, history=_daily_history(), engine=engine, now=NOW, memory=PlannerMemory()
    )

    assert result.forecasts["web"]["cpu"].mean[0] == 40.0
    assert result.degraded == [
        "web.rps: unusable series: only 3 points in the last 14 days; no earlier forecast, left out"
    ]


class PartlyUnavailableEngine(ScriptedEngine):
    """A batched engine that cannot forecast ``rps`` (as ``ForecastEngine.forecast_many`` says)."""

    def forecast_many(
        self, histories: Mapping[tuple[str, str], pd.Series], **kwargs: Any
    ) -> dict[tuple[str, str], Forecast | ForecastUnavailable]:
        out: dict[tuple[str, str], Forecast | ForecastUnavailable] = {}
        for (pool, metric), series in histories.items():
            if metric == "rps":
                out[(pool, metric)] = ForecastUnavailable(
                    pool=pool, metric=metric, reason="series web.rps: every value is missing"
                )
            else:
                out[(pool, metric)] = self.forecast(
                    series, pool=pool, metric=metric, now=kwargs["now"]
                )
        return out


def test_a_series_the_batch_cannot_forecast_is_reported_as_unusable(project: Path) -> None:
    config = load_stack("demo", project)
    engine = PartlyUnavailableEngine({"cpu": 40.0, "rps": 100.0})

    result = decide(
        config=config, history=_daily_history(), engine=engine, now=NOW, memory=PlannerMemory()
    )

    assert set(result.forecasts["web"]) == {"cpu"}
    assert result.degraded == [
        "web.rps: unusable series: series web.rps: every value is missing; "
        "no earlier forecast, left out"
    ]
