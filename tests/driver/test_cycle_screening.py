"""What a cycle refuses to act on: impossible values of bounded units, and data too old.

The demo stack's rule ``cpu-now`` is ``current(cpu) > 90% for 5m`` (unit percent). Before: one
1e12 sample in the last five minutes fired it (a broken exporter activated the mirror), and data
three hours old was acted on without a word.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from driver_helpers import NOW, ScriptedEngine, history

from driver.cycle import decide, screen_observations
from forecasting.cleaning import clean_series
from infra.config import MetricSpec, load_stack
from policies import PlannerMemory


def _rule(result: object, name: str) -> object:
    return next(r for r in result.plan.rules if r.rule == name)  # type: ignore[attr-defined]


def test_a_1e12_sample_in_a_percent_metric_is_rejected_with_a_stated_repair(project: Path) -> None:
    config = load_stack("demo", project)
    observed = history(level=40.0)
    cpu = observed["web"]["cpu"]
    # The rule's last 5 minutes (two samples) hold only what a broken exporter sent.
    window = (cpu.index >= pd.Timestamp(NOW) - pd.Timedelta(minutes=5)) & (
        cpu.index <= pd.Timestamp(NOW)
    )
    cpu[window] = 1e12
    engine = ScriptedEngine({"cpu": 40.0, "rps": 100.0})

    result = decide(config=config, history=observed, engine=engine, now=NOW, memory=PlannerMemory())

    # Before: current(cpu) > 90% for 5m fired and the mirror was activated.
    assert _rule(result, "cpu-now").status != "fired"  # type: ignore[attr-defined]
    assert not [c for c in result.plan.changes if "mirror.state" in c.path]
    assert (
        "web.cpu: 2 samples above 100 (the most a percent can be; largest 1e+12) rejected"
        in result.degraded
    ), result.degraded
    assert engine.seen["cpu"].max() <= 100  # the forecast never saw it either


def test_the_engine_masks_out_of_range_values_of_bounded_units_as_a_repair() -> None:
    index = pd.date_range("2026-11-22", periods=6, freq="5min", tz="UTC")
    raw = pd.Series([40.0, 1e12, 55.0, 100.0, 101.0, 0.5], index=index)

    cleaned = clean_series(raw, name="web.cpu", unit="percent")

    assert np.isnan(cleaned.values.iloc[1]) and np.isnan(cleaned.values.iloc[4])
    assert cleaned.values.iloc[3] == 100.0  # the bound itself is possible
    (repair,) = [r for r in cleaned.repairs if r.kind == "out_of_range"]
    assert repair.count == 2 and "largest 1e+12" in repair.detail
    # An unbounded unit keeps large values: 1e12 requests per second is odd, not impossible.
    assert not [
        r for r in clean_series(raw, name="web.rps", unit="rps").repairs if r.kind == "out_of_range"
    ]


def test_data_three_hours_old_gives_a_degraded_line_and_is_not_acted_on(project: Path) -> None:
    config = load_stack("demo", project)
    # Hot (95%) for the last day of data, but the exporter died three hours before now.
    observed = history(level=95.0, until=pd.Timestamp(NOW) - pd.Timedelta(hours=3))
    engine = ScriptedEngine({"cpu": 95.0, "rps": 100.0})

    result = decide(config=config, history=observed, engine=engine, now=NOW, memory=PlannerMemory())

    assert (
        "web.cpu: newest observation is 3h old (2026-11-22T15:00:00+00:00), older than its max_age 30m; not acted on"
        in result.degraded
    ), result.degraded
    assert "cpu" not in engine.seen  # no fresh forecast from stale data
    assert result.plan.changes == [] or all(
        "mirror.state" not in c.path for c in result.plan.changes
    )
    assert not [r for r in result.plan.rules if r.fired]


def test_the_staleness_limit_is_per_metric(project: Path) -> None:
    config = load_stack("demo", project)
    spec = config.pools["web"].metrics["cpu"].model_copy(update={"max_age": timedelta(hours=4)})
    pools = {
        "web": config.pools["web"].model_copy(
            update={"metrics": {**config.pools["web"].metrics, "cpu": spec}}
        )
    }
    relaxed = config.model_copy(update={"pools": pools})
    observed = history(level=40.0, until=pd.Timestamp(NOW) - pd.Timedelta(hours=3))
    engine = ScriptedEngine({"cpu": 40.0, "rps": 100.0})

    result = decide(
        config=relaxed, history=observed, engine=engine, now=NOW, memory=PlannerMemory()
    )

    assert "cpu" in engine.seen  # within its own 4h limit
    assert [line for line in result.degraded if "not acted on" in line] == [
        "web.rps: newest observation is 3h old (2026-11-22T15:00:00+00:00), older than its max_age 30m; not acted on"
    ]


def _screened(values: list[float], *, ordered: bool = True) -> tuple[pd.Series | None, list[str]]:
    spec = MetricSpec(unit="percent")
    index = pd.date_range(end=pd.Timestamp(NOW), periods=len(values), freq="5min")
    series = pd.Series(values, index=index, dtype=float)
    if not ordered:
        series = series.iloc[::-1]
    return screen_observations(series, spec=spec, now=pd.Timestamp(NOW), name="web.cpu")


def test_the_newest_present_observation_decides_staleness_when_the_latest_are_missing() -> None:
    # The exporter stopped three hours ago and the source still returns NaN rows up to now:
    # the newest real observation is what counts, whether or not the rows are in time order.
    values = [40.0] * 12 + [float("nan")] * 36
    for ordered in (True, False):
        series, problems = _screened(values, ordered=ordered)
        assert series is None
        assert problems == [
            "web.cpu: newest observation is 3h old (2026-11-22T15:00:00+00:00), older than its "
            "max_age 30m; not acted on"
        ]


def test_a_series_with_every_value_missing_is_passed_on_for_the_rules_to_refuse() -> None:
    series, problems = _screened([float("nan")] * 6)
    assert series is not None and problems == []
