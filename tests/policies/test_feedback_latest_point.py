"""The planner's "latest observation" (policies._feedback) read by binary search, not a mask.

``_latest_point`` runs twice a pool every cycle on the whole kept history; it now searches the
time-ordered index and walks back over trailing gaps. These tests hold it to the expression it
replaced (mask at ``now``, drop gaps, take the last) on the shipped NASA excerpt with gaps cut
into it the way the real trace has them (an empty value is no data, not zero demand).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from policies._feedback import _latest_point, latest

EXCERPT = Path(__file__).parents[1] / "data" / "nasa_http_5min_excerpt.csv"


def nasa_with_gaps() -> pd.Series:
    table = pd.read_csv(EXCERPT)
    index = pd.DatetimeIndex(
        pd.to_datetime(table["timestamp_local_minus0400"]) + pd.Timedelta(hours=4), tz="UTC"
    )
    values = table["requests"].to_numpy(dtype=float)
    values[100:112] = np.nan  # an hour with no data
    values[500:800] = np.nan  # a day without logs, like 28-31 July
    values[-3:] = np.nan  # the newest points not in yet
    return pd.Series(values, index=index, name="rps")


def replaced(series: pd.Series, now: datetime) -> tuple[datetime, float] | None:
    """The code before: a boolean mask over the history, then dropna."""
    past = series[series.index <= now].dropna()
    if not len(past):
        return None
    return pd.Timestamp(past.index[-1]).to_pydatetime(), float(past.iloc[-1])


def moments(series: pd.Series) -> list[datetime]:
    index = series.index
    picks = [index[0] - timedelta(minutes=1), index[0], index[99], index[100], index[105]]
    picks += [index[111], index[112], index[650], index[-4], index[-1], index[-1] + timedelta(1)]
    # Between two points, not on one.
    picks += [index[i] + timedelta(minutes=2) for i in (0, 99, 104, 499, 700, 1000)]
    return [pd.Timestamp(p).to_pydatetime() for p in picks]


@pytest.mark.parametrize("position", range(17))
def test_the_latest_point_is_what_the_mask_and_dropna_gave(position: int) -> None:
    series = nasa_with_gaps()
    now = moments(series)[position]
    assert _latest_point(series, now) == replaced(series, now)


def test_inside_a_gap_the_last_point_before_it_is_latest() -> None:
    series = nasa_with_gaps()
    point = _latest_point(series, pd.Timestamp(series.index[650]).to_pydatetime())
    assert point is not None
    assert point[0] == series.index[499].to_pydatetime()
    assert point[1] == series.iloc[499]


def test_before_the_first_point_or_only_gaps_there_is_none() -> None:
    series = nasa_with_gaps()
    assert latest(series, (series.index[0] - timedelta(minutes=5)).to_pydatetime()) is None
    empty = pd.Series(np.nan, index=series.index[:10])
    assert latest(empty, series.index[9].to_pydatetime()) is None
    assert latest(None, series.index[9].to_pydatetime()) is None


def test_a_series_out_of_time_order_is_read_as_before() -> None:
    series = nasa_with_gaps()
    shuffled = series.sample(frac=1.0, random_state=3)
    for now in moments(series):
        assert _latest_point(shuffled, now) == replaced(shuffled, now)


def test_integer_observations_are_read_as_floats() -> None:
    series = nasa_with_gaps().iloc[:100].astype(int)
    now = series.index[-1].to_pydatetime()
    assert _latest_point(series, now) == replaced(series, now)
