"""Demand traces: any CSV with a timestamp and a value column, turned into per-minute demand.

The simulator evaluates demand minute by minute, so coarser traces are resampled by holding
each value over its own step (a 5-minute CloudWatch point is the demand of those 5 minutes).
Gaps stay gaps: an empty value, or a stretch longer than the trace's step with no rows, becomes
NaN and is masked by the scorer, never read as zero demand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from driver.backtest.errors import BacktestError
from forecasting.errors import UnusableSeriesError
from forecasting.trace_csv import read_trace_csv

__all__ = ["Trace", "TraceError", "load_trace", "trace_from_series"]

logger = logging.getLogger(__name__)


class TraceError(BacktestError):
    """A trace that cannot be used, with the file, column and row a person needs to fix it."""


@dataclass(frozen=True)
class Trace:
    """A per-minute demand series.

    :param name: a short name for reports (the file's stem by default).
    :param demand: demand per minute on a regular UTC minute index; NaN marks a gap.
    :param step: the spacing of the original observations (1 minute for per-minute traces).
    :param source: where it came from (a path, or ``"<series>"``).
    :param value_column: the column the values came from.
    """

    name: str
    demand: pd.Series
    step: timedelta
    source: str = "<series>"
    value_column: str = "value"

    @property
    def values(self) -> npt.NDArray[np.float64]:
        """Demand per minute as a float array (NaN in gaps)."""
        return np.asarray(self.demand.to_numpy(dtype=np.float64), dtype=np.float64)

    @property
    def minutes(self) -> int:
        return len(self.demand)

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.demand.index[0])

    def head(self, minutes: int) -> Trace:
        """The first ``minutes`` of the trace (same step and source), e.g. for a shorter run."""
        if minutes < 2:
            raise TraceError(f"{self.source}: a trace needs at least two minutes, not {minutes}")
        return replace(self, demand=self.demand.iloc[:minutes])


def load_trace(
    path: str | Path,
    *,
    timestamp_column: str | None = None,
    value_column: str | None = None,
    name: str | None = None,
) -> Trace:
    """Read a CSV trace into per-minute demand.

    The file is read by the project's one trace reader (:func:`forecasting.trace_csv.read_trace_csv`:
    the same columns found, gaps and time zones as ``mirrorcast evaluate-forecast`` reads);
    demand must also not be negative.

    :param path: the CSV file.
    :param timestamp_column: the time column; default: the first column whose name looks like a
        time (``timestamp``, ``time``, ``date``...), else the first column.
    :param value_column: the demand column; default: the first other column holding numbers.
    :param name: the name used in reports; default: the file's stem.
    :raises TraceError: naming the file, column and row of the first unusable value.
    """
    path = Path(path)
    try:
        series = read_trace_csv(path, timestamp_column=timestamp_column, value_column=value_column)
    except UnusableSeriesError as exc:
        raise TraceError(f"{exc.series}: {exc.reason}") from None
    negative = np.flatnonzero(series.to_numpy() < 0)
    if len(negative):
        row = int(negative[0])  # the reader keeps file order: row + 2 is the file's line
        raise TraceError(
            f"{path}: row {row + 2}, column {series.name!r}: "
            f"demand {series.iloc[row]:g} is negative"
        )
    return trace_from_series(
        series, name=name or path.stem, source=str(path), value_column=str(series.name)
    )


def trace_from_series(
    series: pd.Series,
    *,
    name: str,
    source: str = "<series>",
    value_column: str = "value",
) -> Trace:
    """Turn observations (any step, possibly unordered or duplicated) into per-minute demand.

    :param series: values on a datetime index; a naive index is taken as UTC.
    :param name: the trace's name for reports.
    :param source: where it came from, for messages.
    :param value_column: the column name, for messages.
    :raises TraceError: when fewer than two usable observations remain.
    """
    index = pd.DatetimeIndex(series.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    data = pd.Series(series.to_numpy(dtype=np.float64), index=index)
    if not data.index.is_monotonic_increasing:
        logger.info("%s: rows are out of order; sorted by time", source)
        data = data.sort_index(kind="stable")
    observed = data.dropna()
    if len(observed) < 2:
        raise TraceError(
            f"{source}: column {value_column!r} has {len(observed)} usable value(s); a trace needs at least two"
        )
    minute_index = data.index.floor("min")
    diffs = np.diff(observed.index.floor("min").asi8) / 60e9
    positive = diffs[diffs > 0]
    step_minutes = max(1, round(float(np.median(positive)))) if len(positive) else 1
    # Sub-minute observations (or duplicates) are averaged per minute: traces hold rates.
    duplicates = int(minute_index.duplicated().sum())
    if duplicates:
        logger.info(
            "%s: %d observation(s) share a minute with another; averaged per minute",
            source,
            duplicates,
        )
    per_minute = data.groupby(minute_index).mean()
    full = pd.date_range(
        per_minute.index[0],
        per_minute.index[-1] + pd.Timedelta(minutes=step_minutes - 1),
        freq="min",
    )
    # Hold each value over its own step, and no further: a longer silence is a gap.
    if step_minutes == 1:
        held = per_minute.reindex(full)
    else:
        held = per_minute.reindex(full, method="ffill", limit=step_minutes - 1)
    held.name = value_column
    gap_minutes = int(held.isna().sum())
    if gap_minutes:
        logger.info("%s: %d minute(s) without data are masked as gaps", source, gap_minutes)
    if not held.notna().any():
        raise TraceError(f"{source}: column {value_column!r} holds no usable values")
    return Trace(
        name=name,
        demand=held,
        step=timedelta(minutes=step_minutes),
        source=source,
        value_column=value_column,
    )
