"""The driver's forecast error (``mirrorcast_forecast_abs_error``) is the same number it was.

``forecast_abs_error`` used to sort, de-duplicate and drop the gaps of a series' whole history
(two weeks) and search it once per forecast point, about 10 ms per series per cycle; it now
cuts the few points around the forecast by binary search when the series is in time order with
one point per time (how sources return it), and searches them once. ``reference`` below is the
code it replaced, kept here as the "before" to compare with, on a real excerpt (NASA HTTP
requests at 5 minutes, tests/data/nasa_http_excerpt.README.md) made irregular in the ways a
source can be: jittered times, gaps, NaN, duplicates, disorder.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driver.observe import forecast_abs_error
from forecasting import Forecast

NASA = Path(__file__).resolve().parents[1] / "data" / "nasa_http_5min_excerpt.csv"
STEP = timedelta(minutes=5)


def reference(previous: Forecast, actual: pd.Series, *, now: datetime) -> float | None:
    """``forecast_abs_error`` before (driver/observe.py at 16c9661), unchanged."""
    if len(actual) == 0:
        return None
    observed = actual.sort_index()
    observed = observed[~observed.index.duplicated(keep="last")].dropna()
    if len(observed) == 0:
        return None
    errors: list[float] = []
    for at, value in zip(previous.times, previous.mean, strict=True):
        if at > now:
            break
        position = observed.index.get_indexer([pd.Timestamp(at)], method="nearest")[0]
        if position < 0:
            continue
        seen_at = observed.index[position]
        if abs(seen_at - pd.Timestamp(at)) <= previous.step:
            errors.append(abs(float(observed.iloc[position]) - float(value)))
    if not errors:
        return None
    result = float(np.mean(errors))
    return result if math.isfinite(result) else None


def _nasa() -> pd.Series:
    frame = pd.read_csv(NASA)
    index = pd.DatetimeIndex(pd.to_datetime(frame.iloc[:, 0]), name="timestamp").tz_localize("UTC")
    return pd.Series(frame.iloc[:, 1].to_numpy(dtype=float), index=index, name="requests")


def _forecast(issued: datetime, *, points: int, step: timedelta, level: float) -> Forecast:
    times = [issued + step * (k + 1) for k in range(points)]
    mean = np.linspace(level, level * 1.3, points)
    return Forecast(
        pool="web",
        metric="requests",
        issued_at=issued,
        step=step,
        times=times,
        mean=mean,
        quantiles={10: mean * 0.8, 50: mean, 90: mean * 1.2},
        model="seasonal_naive",
    )


SERIES = _nasa()


@settings(max_examples=150, deadline=None)
@given(
    at=st.integers(min_value=0, max_value=len(SERIES) - 1),
    points=st.integers(min_value=1, max_value=24),
    step_minutes=st.sampled_from([1, 5, 15]),
    ahead=st.integers(min_value=-3, max_value=30),
    jitter_s=st.integers(min_value=0, max_value=200),
    drop=st.floats(min_value=0.0, max_value=0.6),
    nan=st.floats(min_value=0.0, max_value=0.3),
    duplicates=st.booleans(),
    shuffled=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_the_error_equals_the_replaced_codes_on_real_irregular_series(
    at: int,
    points: int,
    step_minutes: int,
    ahead: int,
    jitter_s: int,
    drop: float,
    nan: float,
    duplicates: bool,
    shuffled: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    series = SERIES.copy()
    if jitter_s:
        shift = rng.integers(-jitter_s, jitter_s + 1, size=len(series))
        series.index = series.index + pd.to_timedelta(shift, unit="s")
        series = series.sort_index()  # jittered but still a source's time order (mostly)
    keep = rng.random(len(series)) >= drop
    series = series[keep]
    values = series.to_numpy().copy()
    values[rng.random(len(values)) < nan] = np.nan
    series = pd.Series(values, index=series.index, name="requests")
    if duplicates and len(series) > 2:
        twice = series.iloc[rng.integers(0, len(series), size=5)]
        series = pd.concat([series, twice + 1.0])
    if shuffled:
        series = series.iloc[rng.permutation(len(series))]
    step = timedelta(minutes=step_minutes)
    issued = SERIES.index[at].to_pydatetime()
    previous = _forecast(issued, points=points, step=step, level=float(SERIES.iloc[at]) + 1.0)
    now = issued + STEP * ahead

    assert forecast_abs_error(previous, series, now=now) == reference(previous, series, now=now)


class TestEdges:
    def test_nothing_due_yet_or_nothing_observed_is_none(self) -> None:
        issued = SERIES.index[100].to_pydatetime()
        previous = _forecast(issued, points=12, step=STEP, level=300.0)

        assert forecast_abs_error(previous, SERIES, now=issued) is None
        assert forecast_abs_error(previous, SERIES.iloc[:0], now=issued + STEP * 3) is None
        empty_window = SERIES[SERIES.index < issued - timedelta(hours=1)]
        assert forecast_abs_error(previous, empty_window, now=issued + STEP * 3) is None

    def test_an_exact_tie_takes_the_later_observation_as_before(self) -> None:
        issued = datetime(2026, 1, 1, tzinfo=UTC)
        previous = _forecast(issued, points=1, step=timedelta(minutes=10), level=10.0)
        due = previous.times[0]
        series = pd.Series(
            [0.0, 100.0],
            index=pd.DatetimeIndex([due - timedelta(minutes=2), due + timedelta(minutes=2)]),
        )

        got = forecast_abs_error(previous, series, now=due)
        assert got == reference(previous, series, now=due) == pytest.approx(90.0)
