"""Shared builders for the backtest specifications."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driver.backtest import Trace, trace_from_series

DATA = Path(__file__).resolve().parents[1] / "data" / "backtest"
ELB_EXCERPT = DATA / "elb_request_count_8c0756_4days.csv"


def minute_trace(
    values: Sequence[float], *, start: str = "2024-01-01 00:00", name: str = "t"
) -> Trace:
    """A per-minute trace from plain numbers (NaN for gaps)."""
    index = pd.date_range(start, periods=len(values), freq="min", tz="UTC")
    return trace_from_series(pd.Series(np.asarray(values, dtype=float), index=index), name=name)


@pytest.fixture(name="minute_trace")
def minute_trace_fixture() -> Callable[..., Trace]:
    """The :func:`minute_trace` builder, for tests."""
    return minute_trace


@pytest.fixture
def elb_excerpt() -> Path:
    return ELB_EXCERPT
