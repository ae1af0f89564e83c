"""Shared fixtures of the forecasting tests: small real excerpts and a fast engine setup."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"

# Compiled numba kernels of statsforecast are kept across test runs (the engine does the same
# under its cache directory), so the suite pays the compilation once per machine.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "mirrorcast-numba"))


def _nab(name: str) -> pd.Series:
    frame = pd.read_csv(DATA / "nab" / name, parse_dates=["timestamp"])
    return pd.Series(
        frame["value"].to_numpy(dtype=float), index=pd.DatetimeIndex(frame["timestamp"])
    )


@pytest.fixture(scope="session")
def seasonal_cpu() -> pd.Series:
    """5 days of a real auto-scaling group's CPU at 5 minutes, with a daily cycle (NAB)."""
    return _nab("cpu_utilization_asg_misconfiguration_excerpt.csv")


@pytest.fixture(scope="session")
def flat_cpu() -> pd.Series:
    """3 days of a real EC2 instance's CPU at 5 minutes with no daily cycle (NAB)."""
    return _nab("ec2_cpu_utilization_825cc2_excerpt.csv")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
