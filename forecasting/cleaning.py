"""Turning a raw metric series into a regular UTC grid, with every repair stated.

Sources hand over whatever the monitoring system had: naive or zoned timestamps, duplicates,
out-of-order points, irregular steps, NaN, counters that reset, impossible negative values.
:func:`clean_series` handles each of these deliberately and returns the repairs it made, so a
forecast can say what was done to its input. Gaps stay gaps (NaN on the grid): a missing
scrape is not zero demand. Only :func:`fill_for_fit` fills them, and only for model fitting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from forecasting._result import Repair
from forecasting.errors import UnusableSeriesError

__all__ = [
    "MIN_OBSERVATIONS",
    "UNIT_UPPER_BOUNDS",
    "CleanedSeries",
    "clean_series",
    "fill_for_fit",
    "infer_step",
    "out_of_range",
]

logger = logging.getLogger(__name__)

MIN_OBSERVATIONS = 3
"""Fewest valid points from which a step can be inferred and a series cleaned at all."""

UNIT_UPPER_BOUNDS: dict[str, float] = {"percent": 100.0, "ratio": 1.0}
"""Largest possible value of the bounded units (``MetricSpec.unit``). A utilisation percentage
above 100 (a 1e12 from a broken exporter) is not demand; left in, one such sample fired a
``current(cpu) > 90%`` rule. Unbounded units (rps, ms, count, bytes/s) have no upper limit."""

_NAT = np.iinfo(np.int64).min
"""``NaT`` among nanosecond timestamps (``DatetimeIndex.asi8``)."""

_BOUND_TOLERANCE = 1e-6
"""Relative slack above a bound, so float rounding (100.0000001 %) is not rejected."""


def out_of_range(values: np.ndarray, *, unit: str | None) -> np.ndarray:
    """Boolean mask of ``values`` above the upper bound of ``unit`` (all ``False`` if unbounded).

    :param values: the measurements (NaN is never out of range).
    :param unit: the metric's unit (``percent``, ``ratio``, ...), or ``None``.
    """
    bound = UNIT_UPPER_BOUNDS.get(unit or "")
    if bound is None:
        return np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray(values, dtype=float) > bound * (1 + _BOUND_TOLERANCE)


@dataclass(frozen=True)
class CleanedSeries:
    """A series on a regular UTC grid.

    :param values: float values indexed by a regular, tz-aware UTC ``DatetimeIndex``; NaN marks a
        gap (no data), never a zero.
    :param step: the grid spacing.
    :param repairs: what was done to the raw input, in the order it was done.
    """

    values: pd.Series
    step: timedelta
    repairs: tuple[Repair, ...]

    @property
    def observed(self) -> int:
        """Number of grid points that hold a value."""
        return int(self.values.notna().sum())


def infer_step(index: pd.DatetimeIndex) -> timedelta:
    """The typical spacing of ``index``: the median positive difference between timestamps.

    The median rather than the minimum, because one jittered or duplicated scrape must not turn
    a 5-minute series into a 1-second grid full of gaps.

    :param index: sorted timestamps with at least two distinct values.
    """
    return _step_of(index.asi8)


def _as_datetime_index(raw: pd.Series, name: str) -> pd.DatetimeIndex:
    index = raw.index
    if isinstance(index, pd.DatetimeIndex):
        return index
    parsed = pd.to_datetime(
        pd.Series(index, dtype=object), errors="coerce", utc=False, format="mixed"
    )
    bad = parsed.isna() & pd.Series(index, dtype=object).notna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise UnusableSeriesError(
            name,
            f"the index is not timestamps (position {position} holds {index[position]!r})",
        )
    return pd.DatetimeIndex(parsed)


def _as_numbers(raw: pd.Series, name: str) -> np.ndarray:
    if raw.dtype == bool:
        raise UnusableSeriesError(name, "values are true/false flags, not measurements")
    if raw.dtype.kind in "fiu":
        # Already numbers (every source's usual case): nothing to coerce or report.
        return raw.to_numpy(dtype=float)
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = numbers.isna() & raw.notna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise UnusableSeriesError(
            name,
            f"values must be numbers, but position {position} (at {raw.index[position]}) "
            f"holds {raw.iloc[position]!r}",
        )
    return numbers.to_numpy(dtype=float)


def clean_series(
    raw: pd.Series,
    *,
    name: str,
    step: timedelta | None = None,
    counter: bool = False,
    non_negative: bool = True,
    end: datetime | None = None,
    unit: str | None = None,
) -> CleanedSeries:
    """Clean one raw metric series onto a regular UTC grid.

    :param raw: values indexed by timestamps (a ``DatetimeIndex`` or anything ``pandas`` parses
        as one), in any order, possibly duplicated, naive (taken as UTC) or in any time zone.
    :param name: the series name used in errors and repairs, ``pool.metric``.
    :param step: the grid spacing; default ``None`` infers it from the data (median spacing).
    :param counter: default ``False``; ``True`` for a monotonically increasing counter, which is
        turned into a per-second rate, treating any decrease as a reset to zero.
    :param non_negative: default ``True`` (every unit mirrorcast knows is non-negative): negative
        values are masked as gaps and reported, never clipped to a made-up zero.
    :param end: default ``None``; when given, points after this decision time are dropped first
        (naive means UTC), so a backtest never sees the future.
    :param unit: default ``None``; the metric's unit. For a bounded unit
        (:data:`UNIT_UPPER_BOUNDS`: percent, ratio) values above the bound are masked as gaps
        and reported, like negative ones.
    :raises UnusableSeriesError: not a series of numbers over time, all missing, or too short.
    """
    if not isinstance(raw, pd.Series):
        raise UnusableSeriesError(
            name, f"expected a pandas Series of values indexed by time, got {type(raw).__name__}"
        )
    repairs: list[Repair] = []
    index = _as_datetime_index(raw, name)
    values = _as_numbers(raw, name)

    # No index is converted: ``asi8`` below holds the UTC instants of a zoned index, and a
    # naive one taken as UTC has the same numbers.
    if index.tz is None:
        repairs.append(
            Repair("timezone", len(index), "timestamps carried no time zone and were taken as UTC")
        )
    elif str(index.tz) not in ("UTC", "utc", "UTC+00:00"):
        source_tz = str(index.tz)
        repairs.append(
            Repair("timezone", len(index), f"timestamps were converted from {source_tz} to UTC")
        )

    # From here on plain arrays: a driver or a backtest cleans the same week of history every
    # cycle, and the pandas operations this replaces (a Series, ``duplicated``'s hash of the
    # whole index, boolean indexing) cost most of that.
    stamps = (index if index.unit == "ns" else index.as_unit("ns")).asi8
    undated = stamps == _NAT
    if undated.any():
        bad = int(undated.sum())
        stamps, values = stamps[~undated], values[~undated]
        repairs.append(Repair("bad_timestamp", bad, f"{bad} points without a timestamp dropped"))

    if end is not None:
        limit = pd.Timestamp(end)
        limit = limit.tz_localize("UTC") if limit.tz is None else limit.tz_convert("UTC")
        before = stamps <= limit.value
        stamps, values = stamps[before], values[before]

    if len(stamps) > 1 and not bool(np.all(stamps[1:] >= stamps[:-1])):
        moved = int((stamps[1:] < np.maximum.accumulate(stamps)[:-1]).sum())
        # Stable, as ``sort_index(kind="stable")``: duplicates keep their arrival order.
        order = np.argsort(stamps, kind="stable")
        stamps, values = stamps[order], values[order]
        repairs.append(
            Repair("reordered", moved, f"{moved} points arrived out of time order and were sorted")
        )

    duplicated = stamps[1:] == stamps[:-1]  # sorted: a repeat follows its first occurrence
    if duplicated.any():
        count = int(duplicated.sum())
        # A counter's later sample at the same instant is the more complete one; a gauge's
        # duplicate scrapes are equally valid, so they are averaged (NaN skipped either way).
        how = "last"
        series = pd.Series(values, index=stamps)
        merged = series.groupby(level=0).last() if counter else series.groupby(level=0).mean()
        if not counter:
            how = "mean"
        stamps = merged.index.to_numpy(dtype=np.int64)
        values = merged.to_numpy(dtype=float)
        repairs.append(
            Repair(
                "duplicates",
                count,
                f"{count} duplicate timestamps merged (kept the {how} value)",
            )
        )

    numbers = values
    # The step comes from every timestamp the source reported, including those with a NaN value:
    # a scrape that returned nothing still shows the cadence.
    inferred = _step_of(stamps) if len(stamps) > 1 else None
    valid = ~np.isnan(numbers)
    missing = int(len(numbers) - valid.sum())
    if missing:
        repairs.append(
            Repair("nan", missing, f"{missing} missing values (NaN) kept as gaps, not zeros")
        )
        stamps, numbers = stamps[valid], numbers[valid]

    if counter:
        stamps, numbers, resets = _counter_to_rate(stamps, numbers)
        if resets:
            repairs.append(
                Repair(
                    "counter_reset",
                    resets,
                    f"counter reset {resets} times; the rate after a reset counts from zero",
                )
            )

    if non_negative:
        negative = numbers < 0
        if negative.any():
            count = int(negative.sum())
            stamps, numbers = stamps[~negative], numbers[~negative]
            repairs.append(
                Repair(
                    "negative",
                    count,
                    f"{count} negative values masked as gaps (impossible for this unit)",
                )
            )

    above = out_of_range(numbers, unit=unit)
    if above.any():
        count = int(above.sum())
        largest = float(numbers[above].max())
        stamps, numbers = stamps[~above], numbers[~above]
        repairs.append(
            Repair(
                "out_of_range",
                count,
                f"{count} values above {UNIT_UPPER_BOUNDS[unit or '']:g} (the most a {unit} "
                f"can be; largest {largest:g}) masked as gaps",
            )
        )

    if len(numbers) == 0:
        raise UnusableSeriesError(name, "every value is missing")
    if len(numbers) < MIN_OBSERVATIONS:
        raise UnusableSeriesError(
            name,
            f"only {len(numbers)} usable points; at least {MIN_OBSERVATIONS} are needed",
        )

    grid_step = step or inferred or _step_of(stamps)
    if grid_step <= timedelta(0):
        raise UnusableSeriesError(name, f"the step must be positive, got {grid_step}")
    offset = int(pd.Timedelta(grid_step).value)
    origin = int(stamps[0])
    relative = stamps - origin
    on_grid = relative % offset == 0
    moved = 0
    if bool(on_grid.all()):
        # Already on the grid with unique timestamps (the usual case for a scraped metric):
        # placing the values at their grid positions gives what resampling would (gaps as NaN).
        positions = relative // offset
        values = np.full(int(positions[-1]) + 1, np.nan)
        values[positions] = numbers
        grid = origin + offset * np.arange(len(values), dtype=np.int64)
        index = pd.DatetimeIndex(grid.view("datetime64[ns]")).tz_localize("UTC")
        gridded = pd.Series(values, index=index, name=name)
    else:
        # origin="start" anchors the grid on the first observation, so a series scraped at
        # :27/:32 keeps its own timestamps instead of being shifted onto :25/:30.
        kept = pd.Series(
            numbers, index=pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC")
        )
        gridded = kept.resample(pd.Timedelta(offset), origin="start").mean()
        moved = int((~on_grid).sum()) + (len(numbers) - int(gridded.notna().sum()))
        gridded.index.freq = None
        gridded.name = name
    if moved:
        repairs.append(
            Repair(
                "resampled",
                moved,
                f"irregular timestamps averaged onto a {_describe(grid_step)} grid ({moved} points moved or merged)",
            )
        )
    gaps = int(np.isnan(gridded.to_numpy()).sum())
    if gaps:
        repairs.append(
            Repair(
                "gap",
                gaps,
                f"{gaps} grid steps had no data and are left as gaps (masked, never zero demand)",
            )
        )
    for repair in repairs:
        logger.debug("%s: %s", name, repair.detail)
    if gridded.dtype != np.float64:
        gridded = gridded.astype(float)
    return CleanedSeries(values=gridded, step=grid_step, repairs=tuple(repairs))


def _step_of(stamps: np.ndarray) -> timedelta:
    """:func:`infer_step` on nanosecond timestamps (sorted, at least two distinct)."""
    diffs = np.diff(stamps)
    diffs = diffs[diffs > 0]
    if len(diffs) == 0:
        raise ValueError("fewer than two distinct timestamps")
    # A scraped series is mostly one spacing: then that is the median, without sorting for it.
    nanos = int(diffs[0]) if diffs.min() == diffs.max() else int(np.median(diffs))
    # Round to whole seconds: monitoring systems scrape on second boundaries.
    return timedelta(seconds=max(1, round(nanos / 1e9)))


def _counter_to_rate(stamps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-second rate of a cumulative counter; a decrease is a reset (the process restarted).

    After a reset the counter restarted from zero, so the increase over that interval is the new
    value itself, not the (negative) difference.

    :param stamps: nanosecond timestamps, sorted and unique.
    :param values: the counter's readings at ``stamps``.
    :returns: the timestamps of the rates (all but the first), the rates and the reset count.
    """
    seconds = np.diff(stamps) / 1e9
    increase = np.diff(values)
    reset = increase < 0
    increase[reset] = values[1:][reset]
    return stamps[1:], increase / seconds, int(reset.sum())


def fill_for_fit(values: pd.Series, *, season: int) -> tuple[pd.Series, Repair | None]:
    """Fill gaps for model fitting only: from the same slot of earlier seasons, else linearly.

    Models need a gap-free series; the cleaned series keeps its gaps, and forecasts never report
    filled points as observations. Leading gaps cannot occur (the grid starts at the first value).

    :param values: a cleaned series (regular grid, NaN at gaps).
    :param season: season length in steps; ``1`` or less means no seasonal fill.
    :returns: the filled series and a repair saying how many points were filled (``None`` if none).
    """
    gaps = int(np.isnan(values.to_numpy(dtype=float)).sum())  # without a Series of flags
    if gaps == 0:
        return values, None
    filled = values.copy()
    if season > 1:
        # Look back up to a week of seasons: a long outage (the NASA log gap is 3 days) is better
        # filled with the same time of an earlier day than with a straight line.
        for k in range(1, 8):
            if not filled.isna().any():
                break
            filled = filled.fillna(filled.shift(season * k))
    filled = filled.interpolate(limit_direction="both")
    return filled, Repair(
        "filled_for_fit",
        gaps,
        f"{gaps} gap steps filled for model fitting only (same slot of an earlier season, else linear)",
    )


def _describe(step: timedelta) -> str:
    seconds = int(step.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
