"""Reading traces: any CSV with a time and a value column becomes per-minute demand with gaps kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from driver.backtest import TraceError, load_trace


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_columns_are_detected_from_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "host,when,requests\na,2024-01-01 00:00,5\na,2024-01-01 00:01,7\n")
    trace = load_trace(path)
    assert trace.value_column == "requests"
    assert list(trace.values) == [5.0, 7.0]
    assert trace.name == "trace"


def test_five_minute_values_are_held_over_their_step(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,value\n2024-01-01 00:00,10\n2024-01-01 00:05,20\n")
    trace = load_trace(path)
    assert trace.step == timedelta(minutes=5)
    assert list(trace.values) == [10.0] * 5 + [20.0] * 5


def test_empty_values_are_gaps_not_zero_demand(tmp_path: Path) -> None:
    # NASA's file marks missing minutes with an empty value.
    path = write(
        tmp_path,
        "timestamp_local_minus0400,requests\n1995-07-28 13:31:00,40\n1995-07-28 13:32:00,\n"
        "1995-07-28 13:33:00,\n1995-07-28 13:34:00,41\n",
    )
    values = load_trace(path).values
    assert values[0] == 40 and values[3] == 41
    assert np.isnan(values[1]) and np.isnan(values[2])


def test_missing_rows_longer_than_the_step_are_gaps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:05,2\n2024-01-01 00:10,3\n"
        "2024-01-01 00:30,4\n",
    )
    values = load_trace(path).values
    assert np.isnan(values[15:30]).all()
    assert values[30] == 4 and values[14] == 3


def test_out_of_order_rows_are_sorted(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,value\n2024-01-01 00:01,2\n2024-01-01 00:00,1\n")
    assert list(load_trace(path).values) == [1.0, 2.0]


def test_an_explicit_value_column_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,a,b\n2024-01-01 00:00,1,100\n2024-01-01 00:01,2,200\n")
    assert list(load_trace(path, value_column="b").values) == [100.0, 200.0]


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        (
            "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,lots\n",
            {},
            "row 3, column 'value': 'lots' is not a number",
        ),
        (
            "timestamp,value\n2024-01-01 00:00,1\nyesterday,2\n",
            {},
            "row 3, column 'timestamp': cannot read 'yesterday' as a time",
        ),
        (
            "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,-4\n",
            {},
            "row 3, column 'value': demand -4 is negative",
        ),
        (
            "timestamp,value\n2024-01-01 00:00,1\n",
            {"value_column": "rps"},
            "no column 'rps' for --value-column; columns are timestamp, value",
        ),
        ("timestamp,value\n", {}, "header but no rows"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,\n", {}, "1 usable value(s)"),
    ],
)
def test_bad_traces_name_the_file_column_and_row(
    tmp_path: Path, text: str, kwargs: dict[str, str], message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TraceError) as caught:
        load_trace(path, **kwargs)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_the_shipped_real_excerpt_loads(elb_excerpt: Path) -> None:
    trace = load_trace(elb_excerpt)
    assert trace.step == timedelta(minutes=5)
    # 4 days of 5-minute rows; the clock shifts by a few minutes once, leaving a short gap.
    assert 4 * 1440 <= trace.minutes <= 4 * 1440 + 60
    assert 0 < np.isnan(trace.values).sum() <= 15
