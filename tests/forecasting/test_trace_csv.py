"""One trace reader: ``evaluate-forecast`` and ``backtest`` read a CSV file the same way.

``forecasting.trace_csv.read_trace_csv`` is the reader; the backtest's ``load_trace`` turns its
series into per-minute demand and adds one rule of its own (demand is not negative). So the
same file gives the same columns, times and gaps to both, and a bad file the same sentence:
``series FILE: REASON`` from the forecasting side, ``FILE: REASON`` from the backtest's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driver.backtest import TraceError, load_trace
from forecasting.errors import UnusableSeriesError
from forecasting.trace_csv import read_trace_csv


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestBothCallersReadTheSameSeries:
    def test_a_column_named_for_its_utc_offset_gives_utc_times_to_both(
        self, data_dir: Path
    ) -> None:
        # NASA's log is in local time, 4 hours behind UTC, and its column says so.
        path = data_dir / "nasa_http_excerpt.csv"
        series = read_trace_csv(path)
        trace = load_trace(path)
        assert series.index[0] == pd.Timestamp("1995-07-01 04:00", tz="UTC")
        assert trace.start == series.index[0]
        assert trace.value_column == series.name == "requests"
        assert trace.values[: len(series)].tolist() == series.to_numpy().tolist()[: trace.minutes]

    def test_a_time_with_its_own_zone_keeps_it_whatever_the_column_name(
        self, tmp_path: Path
    ) -> None:
        path = write(
            tmp_path,
            "time_minus0400,value\n2024-01-01 00:00:00+00:00,1\n2024-01-01 00:01:00,2\n",
        )
        assert list(read_trace_csv(path).index) == [
            pd.Timestamp("2024-01-01 00:00", tz="UTC"),
            pd.Timestamp("2024-01-01 04:01", tz="UTC"),
        ]

    @pytest.mark.parametrize(
        ("header", "time_column"),
        [("host,when,requests", "when"), ("ds,y,z", "ds"), ("label,TIMESTAMP,rps", "TIMESTAMP")],
    )
    def test_the_time_column_is_found_by_a_word_of_its_name(
        self, tmp_path: Path, header: str, time_column: str
    ) -> None:
        names = header.split(",")
        at = names.index(time_column)
        cells = ["a", "5", "6"]
        cells[at] = "2024-01-01 00:00"
        second = ["a", "7", "8"]
        second[at] = "2024-01-01 00:01"
        path = write(tmp_path, f"{header}\n{','.join(cells)}\n{','.join(second)}\n")
        series = read_trace_csv(path)
        assert series.index[1] == pd.Timestamp("2024-01-01 00:01", tz="UTC")
        assert load_trace(path).value_column == series.name != time_column

    def test_empty_and_null_cells_are_gaps_for_both(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,\n2024-01-01 00:02,NULL\n"
            "2024-01-01 00:03,4\n",
        )
        assert np.isnan(read_trace_csv(path).to_numpy()[1:3]).all()
        assert np.isnan(load_trace(path).values[1:3]).all()


BAD_FILES = [
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
        "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,inf\n",
        {},
        "row 3, column 'value': value is infinite",
    ),
    (
        "timestamp,value\n2024-01-01 00:00,1\n",
        {"value_column": "rps"},
        "no column 'rps' for --value-column; columns are timestamp, value",
    ),
    (
        "timestamp,value\n2024-01-01 00:00,1\n",
        {"timestamp_column": "at"},
        "no column 'at' for --timestamp-column; columns are timestamp, value",
    ),
    ("timestamp,value\n", {}, "the file has a header but no rows"),
    (
        "timestamp,host\n2024-01-01 00:00,a\n",
        {},
        "no numeric value column found (columns: timestamp, host); name one with --value-column",
    ),
    (
        "timestamp\n2024-01-01 00:00\n",
        {},
        "only one column ('timestamp'); a trace needs a timestamp and a value column",
    ),
]


class TestABadFileGetsTheSameSentenceFromBoth:
    @pytest.mark.parametrize(("text", "kwargs", "reason"), BAD_FILES)
    def test_the_reason_names_the_row_and_column(
        self, tmp_path: Path, text: str, kwargs: dict[str, str], reason: str
    ) -> None:
        path = write(tmp_path, text)
        with pytest.raises(UnusableSeriesError) as read:
            read_trace_csv(path, **kwargs)
        assert str(read.value) == f"series {path}: {reason}"
        with pytest.raises(TraceError) as loaded:
            load_trace(path, **kwargs)
        assert str(loaded.value) == f"{path}: {reason}"

    def test_a_missing_file_is_named(self, tmp_path: Path) -> None:
        path = tmp_path / "nowhere.csv"
        with pytest.raises(UnusableSeriesError, match=r"nowhere\.csv: no such file"):
            read_trace_csv(path)
        with pytest.raises(TraceError, match=r"nowhere\.csv: no such file"):
            load_trace(path)

    def test_negative_demand_is_the_backtests_own_rule(self, tmp_path: Path) -> None:
        # A forecast metric may go below zero; demand to serve may not.
        path = write(tmp_path, "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,-4\n")
        assert read_trace_csv(path).tolist() == [1.0, -4.0]
        with pytest.raises(TraceError, match="row 3, column 'value': demand -4 is negative"):
            load_trace(path)
