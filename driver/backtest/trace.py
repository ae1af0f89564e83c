"""Demand traces: any CSV with a timestamp and a value column, turned into per-minute demand.

The simulator evaluates demand minute by minute, so coarser traces are resampled by holding
each value over its own step (a 5-minute CloudWatch point is the demand of those 5 minutes).
Gaps stay gaps: an empty value, or a stretch longer than the trace's step with no rows, becomes
NaN and is masked by the scorer, never read as zero demand.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from driver.backtest.errors import BacktestError

__all__ = ["Trace", "TraceError", "load_trace", "trace_from_series"]

logger = logging.getLogger(__name__)

_TIME_HINTS = ("timestamp", "time", "date", "datetime", "ts", "when")


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

    :param path: the CSV file.
    :param timestamp_column: the time column; default: the first column whose name looks like a
        time (``timestamp``, ``time``, ``date``...), else the first column.
    :param value_column: the demand column; default: the first other column holding numbers.
    :param name: the name used in reports; default: the file's stem.
    :raises TraceError: naming the file, column and row of the first unusable value.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise TraceError(f"{source}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TraceError(f"{source}: not a readable CSV file ({first})") from None
    if frame.empty:
        raise TraceError(f"{source}: the file has a header but no rows")
    columns = [str(c) for c in frame.columns]
    time_col = _pick_time_column(frame, columns, timestamp_column, source)
    value_col = _pick_value_column(frame, columns, time_col, value_column, source)

    # Row numbers in messages are file lines: the header is line 1.
    raw_times = frame[time_col].str.strip()
    times = pd.to_datetime(raw_times, errors="coerce", utc=True, format="mixed")
    bad_time = np.flatnonzero(times.isna().to_numpy())
    if len(bad_time):
        row = int(bad_time[0])
        raise TraceError(
            f"{source}: row {row + 2}, column {time_col!r}: cannot read {raw_times.iloc[row]!r} as a time"
        )
    raw_values = frame[value_col].str.strip()
    empty = raw_values.eq("") | raw_values.str.lower().isin(["nan", "na", "null", "none"])
    values = pd.to_numeric(raw_values.where(~empty, None), errors="coerce")
    bad_value = np.flatnonzero((values.isna() & ~empty).to_numpy())
    if len(bad_value):
        row = int(bad_value[0])
        raise TraceError(
            f"{source}: row {row + 2}, column {value_col!r}: {raw_values.iloc[row]!r} is not a number"
        )
    finite = values.to_numpy(dtype=np.float64)
    negative = np.flatnonzero(finite < 0)
    if len(negative):
        row = int(negative[0])
        raise TraceError(
            f"{source}: row {row + 2}, column {value_col!r}: demand {finite[row]:g} is negative"
        )
    infinite = np.flatnonzero(np.isinf(finite))
    if len(infinite):
        row = int(infinite[0])
        raise TraceError(f"{source}: row {row + 2}, column {value_col!r}: value is infinite")
    series = pd.Series(finite, index=pd.DatetimeIndex(times), name=value_col)
    return trace_from_series(series, name=name or path.stem, source=source, value_column=value_col)


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


def _pick_time_column(
    frame: pd.DataFrame, columns: list[str], wanted: str | None, source: str
) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise TraceError(
                f"{source}: no column {wanted!r} for --timestamp-column; columns are {', '.join(columns)}"
            )
        return wanted
    for column in columns:
        words = re.split(r"[^a-z0-9]+", column.lower())
        if any(word.startswith(hint) for word in words for hint in _TIME_HINTS):
            return column
    # No telling name: the first column whose values read as times (and not as plain numbers).
    for column in columns:
        sample = frame[column].str.strip().head(20)
        if pd.to_numeric(sample, errors="coerce").notna().any():
            continue
        parsed = pd.to_datetime(sample, errors="coerce", utc=True, format="mixed")
        if len(sample) and parsed.notna().all():
            return column
    return columns[0]


def _pick_value_column(
    frame: pd.DataFrame,
    columns: list[str],
    time_col: str,
    wanted: str | None,
    source: str,
) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise TraceError(
                f"{source}: no column {wanted!r} for --value-column; columns are {', '.join(columns)}"
            )
        if wanted == time_col:
            raise TraceError(f"{source}: column {wanted!r} is the timestamp column, not a value")
        return wanted
    for column in columns:
        if column == time_col:
            continue
        sample = frame[column].str.strip()
        sample = sample[sample != ""].head(50)
        # Most, not all: a column with one typo is still the value column, and the typo then
        # gets an error naming its row instead of the column being skipped.
        if len(sample) and pd.to_numeric(sample, errors="coerce").notna().mean() >= 0.5:
            return column
    others = [c for c in columns if c != time_col]
    raise TraceError(
        f"{source}: no numeric value column found (columns: {', '.join(columns)}); "
        "name one with --value-column"
        if others
        else f"{source}: only one column ({time_col!r}); a trace needs a timestamp and a value column"
    )
