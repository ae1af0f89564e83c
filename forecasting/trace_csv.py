"""The one CSV trace reader: a time column and a value column in, one UTC series out.

Everything that reads a trace file goes through :func:`read_trace_csv`: ``mirrorcast
evaluate-forecast`` (``forecasting.trace``), ``mirrorcast backtest``
(``driver.backtest.trace.load_trace``, which then turns the series into per-minute demand) and
the benchmarks. So a file reads the same everywhere: the same columns are found, the same
cells are gaps, and a bad file is refused with the same sentence, naming the file, the row
(its line in the file, the header being line 1) and the column.

Only pandas and the forecasting errors are imported here, so the backtest can read a trace
without loading the forecasting engine.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import UnusableSeriesError

__all__ = ["TIME_HINTS", "count_per_interval", "read_trace_csv"]

logger = logging.getLogger(__name__)

TIME_HINTS = ("timestamp", "time", "date", "datetime", "ds", "ts", "when")
"""A column is the time column when a word of its name starts with one of these."""

_EMPTY = ("", "nan", "na", "n/a", "null", "none")
"""Cells (stripped, any case) that are gaps, not values: NASA's log marks them empty."""

_OWN_ZONE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|UTC|GMT|[+-]\d{2}:?\d{2})$")
"""A time that carries its own zone (``...Z``, ``...+02:00``): a column name's offset does not
apply to it."""


def read_trace_csv(
    path: str | Path,
    *,
    timestamp_column: str | None = None,
    value_column: str | None = None,
    count_per: timedelta | None = None,
) -> pd.Series:
    """Read one series from a CSV file; columns detected when not given.

    The time column is the first whose name has a word starting with one of
    :data:`TIME_HINTS` (``timestamp``, ``time``, ``date``, ``ts``...), else the first column
    whose values read as times, else the first column. The value column is the first other
    column that mostly holds numbers. Empty cells (and ``NaN``, ``null``...) are gaps, never
    zeros. Times without a zone are UTC, unless the column's name gives their offset from UTC
    (``timestamp_local_minus0400``, ``..._plus0530``).

    :param path: the CSV file.
    :param timestamp_column: the time column; default: detected.
    :param value_column: the value column; default: detected.
    :param count_per: for a per-request log (one row per request), the interval to count rows
        in: the series is then requests per interval (:func:`count_per_interval`) and no value
        column is read. Default ``None``.
    :returns: the values (float, NaN in gaps) on a UTC index in file order, named after the
        value column (``requests`` when counting).
    :raises UnusableSeriesError: with the file as its series and a reason naming the row and
        column of the first thing that cannot be used.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise UnusableSeriesError(source, "no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnusableSeriesError(source, f"not a readable CSV file ({first})") from None
    if count_per is not None and value_column is not None:
        raise UnusableSeriesError(
            source, "--count-per counts rows, so it takes no --value-column; pass one or the other"
        )
    if frame.empty:
        raise UnusableSeriesError(source, "the file has a header but no rows")
    columns = [str(c) for c in frame.columns]
    time_col = _pick_time_column(frame, columns, timestamp_column, source)
    index = _timestamps(frame, time_col, source)
    if count_per is not None:
        return count_per_interval(index, every=count_per, name=source)
    value_col = _pick_value_column(frame, columns, time_col, value_column, source)
    return pd.Series(_values(frame, value_col, source), index=index, name=value_col)


def count_per_interval(stamps: pd.DatetimeIndex, *, every: timedelta, name: str) -> pd.Series:
    """Turn a per-request log (one timestamp per request) into requests per interval.

    Every interval between the first and the last request counts, and one without requests is
    a real zero (the log records every request in its span). The first and last intervals are
    only partly covered by the log, so they are dropped rather than reported as a dip.

    :param stamps: one timestamp per request, any order (missing ones are ignored).
    :param every: the interval, e.g. one minute.
    :param name: the log's name in errors.
    :raises UnusableSeriesError: when fewer than three whole intervals remain.
    """
    if every <= timedelta(0):
        raise UnusableSeriesError(name, f"--count-per must be a positive duration, got {every}")
    known = stamps.dropna().sort_values()
    if len(known) == 0:
        raise UnusableSeriesError(name, "holds no request timestamps to count")
    width = pd.Timedelta(every)
    first = known[0].ceil(width)
    last = known[-1].floor(width)  # the interval starting here is cut off by the log's end
    whole = pd.date_range(first, last, freq=width, inclusive="left")
    if len(whole) < 3:
        raise UnusableSeriesError(
            name,
            f"spans {known[-1] - known[0]}: fewer than 3 whole intervals of {every} to count "
            "requests in (pass a shorter --count-per)",
        )
    inside = known[(known >= first) & (known < last)]
    counts = pd.Series(1.0, index=inside.floor(width)).groupby(level=0).sum()
    series = counts.reindex(whole, fill_value=0.0)
    series.name = "requests"
    logger.info(
        "%s: %d requests counted per %s into %d intervals", name, len(inside), every, len(whole)
    )
    return series


def _timestamps(frame: pd.DataFrame, column: str, source: str) -> pd.DatetimeIndex:
    """``column`` as UTC times; the first cell that is not a time is an error naming its row."""
    raw = frame[column].str.strip()
    stamps = pd.Series(pd.to_datetime(raw, errors="coerce", utc=True, format="mixed"))
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise UnusableSeriesError(
            source, f"row {row + 2}, column {column!r}: cannot read {raw.iloc[row]!r} as a time"
        )
    offset = _offset_from_name(column)
    if offset is not None:
        # Local times read as UTC are ``offset`` away from UTC; a time with its own zone is not.
        local = ~raw.str.contains(_OWN_ZONE)
        stamps = stamps.where(~local, stamps - offset)
    return pd.DatetimeIndex(stamps)


def _values(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """``column`` as floats, NaN for empty cells; text or an infinity is an error naming its row."""
    raw = frame[column].str.strip()
    empty = raw.str.lower().isin(_EMPTY)
    values = pd.to_numeric(raw.where(~empty, None), errors="coerce")
    bad = np.flatnonzero((values.isna() & ~empty).to_numpy())
    if len(bad):
        row = int(bad[0])
        raise UnusableSeriesError(
            source, f"row {row + 2}, column {column!r}: {raw.iloc[row]!r} is not a number"
        )
    numbers = values.to_numpy(dtype=np.float64)
    infinite = np.flatnonzero(np.isinf(numbers))
    if len(infinite):
        row = int(infinite[0])
        raise UnusableSeriesError(source, f"row {row + 2}, column {column!r}: value is infinite")
    return numbers


def _offset_from_name(column: str) -> pd.Timedelta | None:
    """The offset from UTC a column's name gives (``..._minus0400`` is -4 h), if any."""
    lower = column.lower()
    for sign, word in ((-1, "_minus"), (1, "_plus")):
        if word in lower:
            digits = lower.split(word, 1)[1][:4]
            if digits.isdigit():
                return sign * pd.Timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return None


def _pick_time_column(
    frame: pd.DataFrame, columns: list[str], wanted: str | None, source: str
) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise UnusableSeriesError(
                source,
                f"no column {wanted!r} for --timestamp-column; columns are {', '.join(columns)}",
            )
        return wanted
    for column in columns:
        words = re.split(r"[^a-z0-9]+", column.lower())
        if any(word.startswith(hint) for word in words for hint in TIME_HINTS):
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
            raise UnusableSeriesError(
                source,
                f"no column {wanted!r} for --value-column; columns are {', '.join(columns)}",
            )
        if wanted == time_col:
            raise UnusableSeriesError(
                source, f"column {wanted!r} is the timestamp column, not a value"
            )
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
    raise UnusableSeriesError(
        source,
        f"no numeric value column found (columns: {', '.join(columns)}); "
        "name one with --value-column"
        if others
        else f"only one column ({time_col!r}); a trace needs a timestamp and a value column",
    )
