"""The demo's data: real traffic, the stack's fleet, and a campaign in the first horizon."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from forecasting.events import EventSchedule
from infra.config import load_stack

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"
TRACES = REPO.parent / "shared" / "data" / "traces"


def demo_metrics() -> pd.DataFrame:
    """metrics.csv as one column per metric, indexed by UTC time."""
    table = pd.read_csv(DEMO / "metrics.csv")
    wide = table.pivot(index="timestamp", columns="metric", values="value")
    wide.index = pd.DatetimeIndex(pd.to_datetime(wide.index, utc=True))
    return wide


def make_demo_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_demo_data", DEMO / "make_demo_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_cpu_is_the_utilisation_of_the_stacks_fleet_serving_the_demo_rps() -> None:
    pool = load_stack("demo", REPO).pools["web"]
    capacity = pool.metrics["rps"].per_instance_capacity
    assert capacity is not None
    fleet = pool.primary.capacity.desired
    metrics = demo_metrics()

    expected = np.minimum(100.0, 100.0 * metrics["rps"] / (fleet * capacity))

    # Both columns are rounded to 4 decimals; the rps rounding is scaled up in cpu.
    tolerance = 0.5e-4 * 100.0 / (fleet * capacity) + 0.5e-4
    np.testing.assert_allclose(metrics["cpu"], expected, rtol=0, atol=tolerance)
    # Real traffic: a quiet night, weekday peaks near the rule's 80%, and one saturated spike.
    assert metrics["cpu"].min() < 10 and metrics["cpu"].max() == 100.0
    assert 0 < (metrics["cpu"] >= 100.0).mean() < 0.01


def test_the_demo_campaign_starts_inside_the_first_forecast_horizon() -> None:
    config = load_stack("demo", REPO)
    end = demo_metrics().index.max()
    horizon = pd.Timedelta(config.forecast.horizon)
    schedule = EventSchedule.from_file(DEMO / "events.yaml")

    (campaign,) = [e for e in schedule if e.kind == "campaign"]

    assert end < pd.Timestamp(campaign.start) <= end + horizon
    assert all(pd.Timestamp(e.start) <= end for e in schedule if e.name == "release-2.14.0")


@pytest.mark.skipif(
    not (TRACES / "nasa_http").is_dir(), reason=f"the shared traces are not at {TRACES}"
)
def test_make_demo_data_reproduces_the_shipped_metrics_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "metrics.csv"

    assert make_demo_data().main([str(TRACES), "--out", str(out)]) == 0

    assert out.read_bytes() == (DEMO / "metrics.csv").read_bytes()
