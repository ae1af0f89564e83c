"""Metrics from a CSV or Parquet file: the embedded default source, needing no server.

Two layouts are understood:

- **long**: columns ``timestamp, pool, metric, value`` (one row per observation);
- **wide**: a ``timestamp`` column and one column per ``<metric>`` or ``<pool>.<metric>``
  (``<pool>.<metric>`` wins when both exist).

Timestamps are ISO 8601 (a timestamp without an offset is UTC; offsets are converted) or
numbers of seconds since the Unix epoch. A parsed file is cached by path, size and modification
time, so a driver cycle fetching many series reads the file once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from forecasting.sources._base import SourceDataError, SourceError, make_series, to_utc
from infra.config import FileSource, MetricSpec

__all__ = ["MAX_METRICS_FILE_BYTES", "FileMetricSource"]

logger = logging.getLogger(__name__)

_LONG_COLUMNS = ("pool", "metric", "value")

MAX_METRICS_FILE_BYTES = 2_000_000_000
"""Metrics files larger than this are refused before parsing: the whole file is read into memory
(2 GB is years of 5-minute data for hundreds of series); larger histories belong in a metrics
server such as Prometheus."""


@dataclass(frozen=True)
class _Table:
    """A parsed metrics file: series by key, timestamps already UTC."""

    layout: str  # "long" or "wide"
    series: dict[str, pd.Series]  # key: _long_key(pool, metric) (long) or column name (wide)
    pools: tuple[str, ...]
    metrics: tuple[str, ...]


class FileMetricSource:
    """Reads metric history from a CSV or Parquet file.

    :param spec: the stack's ``metrics`` section (``type: file``).
    :param root: directory a relative ``spec.path`` is resolved against (the project root).
    """

    def __init__(self, spec: FileSource, *, root: Path) -> None:
        path = Path(spec.path)
        self.path = path if path.is_absolute() else root / path
        self.spec = spec
        self.name = f"file:{spec.path}"

    def __repr__(self) -> str:
        return f"FileMetricSource({str(self.path)!r})"

    def fetch(
        self, *, pool: str, metric: str, spec: MetricSpec, start: datetime, end: datetime
    ) -> pd.Series:
        """The raw series of ``pool``/``metric`` between ``start`` and ``end`` inclusive.

        :param pool: the pool name (selects rows in long files, ``<pool>.<metric>`` columns in wide).
        :param metric: the metric's name in stack config; names the returned series.
        :param spec: the metric's definition; ``spec.query`` overrides the metric/column name.
        :param start: first instant (tz-aware).
        :param end: last instant (tz-aware, inclusive).
        :raises SourceDataError: unreadable file content, naming the line, or no such series.
        """
        query = spec.query or metric
        lo = to_utc(start, label="start", source=self.name)
        hi = to_utc(end, label="end", source=self.name)
        table = self._table()
        if table.layout == "long":
            key = _long_key(pool, query)
            if key not in table.series:
                raise SourceDataError(
                    f"no rows with pool {pool!r} and metric {query!r}; the file has pools "
                    f"{_listing(table.pools)} and metrics {_listing(table.metrics)}",
                    source=self.name,
                    query=query,
                )
            found = table.series[key]
        else:
            column = next((c for c in (f"{pool}.{query}", query) if c in table.series), None)
            if column is None:
                raise SourceDataError(
                    f"no column {pool}.{query} or {query}; the file has columns "
                    f"{_listing(tuple(table.series))}",
                    source=self.name,
                    query=query,
                )
            found = table.series[column]
        index = found.index
        # Cut as arrays, not as a pandas slice of the cached series: each slice registers a
        # weak reference on that series' block (pandas 2's copy-on-write bookkeeping), dead
        # ones cleared only once hundreds pile up, so fetching every series every cycle left
        # kilobytes a series on the parse cache (tests/forecasting/sources/test_source_file.py).
        values = found.to_numpy()
        if index.is_monotonic_increasing:
            # The usual file (rows in time order): two binary searches instead of two
            # comparisons over the whole column. A driver cycle fetches every series of the
            # file, and the masks cost about 1 ms a series (10 s a cycle at 10,000 series).
            rows = slice(index.searchsorted(lo, "left"), index.searchsorted(hi, "right"))
            return pd.Series(values[rows].copy(), index=index[rows], name=metric)
        # Raw data stays raw: disorder is kept, so select by mask.
        mask = (index >= lo) & (index <= hi)
        return pd.Series(values[mask], index=index[mask], name=metric)

    def _table(self) -> _Table:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise SourceError(
                f"cannot read metrics file {self.path} ({exc.strerror}); check metrics.path",
                source=self.name,
            ) from exc
        if stat.st_size > MAX_METRICS_FILE_BYTES:
            raise SourceDataError(
                f"metrics file {self.path} is {stat.st_size:,} bytes; metrics files are limited to "
                f"{MAX_METRICS_FILE_BYTES:,} bytes (serve longer histories from Prometheus or a cloud "
                "source instead)",
                source=self.name,
            )
        # One parse per file even when a cycle's collection threads (driver.collect_concurrency)
        # all ask at once: lru_cache does not make concurrent misses wait, so each thread parsed
        # the whole file itself (16 parses of a 300-pool file took the first cycle past
        # driver.collect_timeout, collecting 0 series). Hits take the lock only for a lookup.
        with _PARSE_LOCK:
            return _read_table(
                str(self.path),
                stat.st_mtime_ns,
                stat.st_size,
                self.spec.timestamp_column,
                self.spec.format,
                self.name,
            )


_PARSE_LOCK = threading.Lock()


def _long_key(pool: str, metric: str) -> str:
    # JSON-like quoting keeps any pool/metric pair distinct (no separator can collide).
    return repr((pool, metric))


def _listing(names: tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "") or "(none)"


class _CacheInfo(NamedTuple):
    hits: int
    misses: int
    currsize: int


class _ParsedFiles:
    """Parsed metrics files: the newest version (modification time and size) of each path.

    It was an ``lru_cache`` of 16 (path, version) entries, so a process cycling the stacks of
    more than 16 metrics files (a driver process serving a fleet's stacks, each with its own
    file) evicted every file before its stack's next cycle and parsed all of them again every
    cycle: about 1 s of CPU for a 100-pool file, most of a 10,000-pool warm cycle's rise per
    series. One entry per path bounds the cache by the files the process reads, and a
    changed file replaces its own entry instead of piling up versions. Called under
    :data:`_PARSE_LOCK`.
    """

    def __init__(self) -> None:
        self._tables: dict[tuple[str, str, str, str], tuple[tuple[int, int], _Table]] = {}
        self.hits = 0
        self.misses = 0

    def __call__(
        self, path: str, mtime_ns: int, size: int, timestamp_column: str, fmt: str, name: str
    ) -> _Table:
        key = (path, timestamp_column, fmt, name)
        held = self._tables.get(key)
        if held is not None and held[0] == (mtime_ns, size):
            self.hits += 1
            return held[1]
        self.misses += 1
        table = _parse_table(path, timestamp_column, fmt, name)
        self._tables[key] = ((mtime_ns, size), table)
        return table

    def cache_clear(self) -> None:
        self._tables.clear()
        self.hits = self.misses = 0

    def cache_info(self) -> _CacheInfo:
        return _CacheInfo(self.hits, self.misses, len(self._tables))


def _parse_table(path: str, timestamp_column: str, fmt: str, name: str) -> _Table:
    """Parse a metrics file (:data:`_read_table` keeps it until the file changes)."""
    kind = (
        fmt
        if fmt != "auto"
        else ("parquet" if path.lower().endswith((".parquet", ".pq")) else "csv")
    )
    logger.debug("parsing %s metrics file %s", kind, path)
    if kind == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a damaged file
            raise SourceDataError(f"not a readable Parquet file ({exc})", source=name) from exc
        # Parquet has no text lines: positions are 1-based rows.
        positions = np.arange(1, len(frame) + 1)
        where = "row"
    else:
        try:
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, skip_blank_lines=True, on_bad_lines="error"
            )
        except pd.errors.EmptyDataError as exc:
            raise SourceDataError("the file is empty; expected a header row", source=name) from exc
        except pd.errors.ParserError as exc:
            raise SourceDataError(f"malformed CSV: {exc}", source=name) from exc
        except UnicodeDecodeError as exc:
            raise SourceDataError("the file is not UTF-8 text", source=name) from exc
        # Line numbers for messages: the header is line 1. pandas skips blank lines, so count them.
        positions = _csv_line_numbers(path, len(frame))
        where = "line"
    frame.columns = [str(c).strip() for c in frame.columns]
    if timestamp_column not in frame.columns:
        raise SourceDataError(
            f"no timestamp column {timestamp_column!r}; the columns are {', '.join(frame.columns)} "
            "(set metrics.timestamp_column)",
            source=name,
        )
    times = _parse_times(
        frame[timestamp_column], positions, where=where, column=timestamp_column, name=name
    )
    others = [c for c in frame.columns if c != timestamp_column]
    if all(c in others for c in _LONG_COLUMNS):
        values = _parse_values(frame["value"], positions, where=where, column="value", name=name)
        pools = frame["pool"].astype(str).str.strip().to_numpy()
        metrics = frame["metric"].astype(str).str.strip().to_numpy()
        series: dict[str, pd.Series] = {}
        groups = pd.DataFrame({"pool": pools, "metric": metrics}).groupby(
            ["pool", "metric"], sort=False
        )
        for (pool, metric), rows in groups.indices.items():
            series[_long_key(str(pool), str(metric))] = make_series(
                times[rows], values[rows], metric="value"
            )
        return _Table(
            layout="long",
            series=series,
            pools=tuple(sorted(set(pools))),
            metrics=tuple(sorted(set(metrics))),
        )
    present = [c for c in _LONG_COLUMNS if c in others]
    if "pool" in present or "metric" in present:
        # A 'pool' or 'metric' column only means something in long format; reading the file as
        # wide would report the pool names as values that are "not a number".
        missing = [c for c in _LONG_COLUMNS if c not in present]
        raise SourceDataError(
            f"the file has the long-format column(s) {', '.join(present)} but no "
            f"{' and no '.join(repr(c) for c in missing)} column; long format is "
            f"{timestamp_column}, pool, metric, value (one row per observation)",
            source=name,
        )
    if not others:
        raise SourceDataError(
            f"no value columns besides {timestamp_column!r}; expected long format "
            "(timestamp, pool, metric, value) or one column per <metric> or <pool>.<metric>",
            source=name,
        )
    wide = {
        column: make_series(
            times,
            _parse_values(frame[column], positions, where=where, column=column, name=name),
            metric=column,
        )
        for column in others
    }
    return _Table(layout="wide", series=wide, pools=(), metrics=tuple(others))


def _csv_line_numbers(path: str, rows: int) -> np.ndarray:
    """The 1-based file line of each data row (pandas drops blank lines, so they are skipped here too)."""
    lines: list[int] = []
    with open(path, encoding="utf-8", newline="") as handle:
        for number, text in enumerate(handle, start=1):
            if number == 1 or not text.strip():
                continue
            lines.append(number)
            if len(lines) == rows:
                break
    # Quoted fields with embedded newlines would shift lines; fall back to row order then.
    if len(lines) != rows:
        return np.arange(2, rows + 2)
    return np.asarray(lines)


_MAX_UNIX_SECONDS = 9_200_000_000
"""Largest absolute Unix time in seconds pandas can hold (about the year 2261)."""

_MISSING = frozenset({"", "nan", "NaN", "NA", "null", "None"})
"""Value cells read as 'no observation' (NaN), never as zero demand."""


def _parse_times(
    raw: pd.Series, positions: np.ndarray, *, where: str, column: str, name: str
) -> pd.DatetimeIndex:
    """UTC timestamps; the first unparsable cell is reported with its line or row."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = pd.DatetimeIndex(raw)
        parsed = parsed.tz_localize("UTC") if parsed.tz is None else parsed.tz_convert("UTC")
        bad = np.flatnonzero(parsed.isna())
        if bad.size:
            raise SourceDataError(
                f"{where} {positions[bad[0]]}: column {column!r}: missing timestamp", source=name
            )
        return parsed
    text = raw.astype(str).str.strip()
    empty = np.flatnonzero((text == "").to_numpy())
    if empty.size:
        raise SourceDataError(
            f"{where} {positions[empty[0]]}: column {column!r}: missing timestamp", source=name
        )
    numeric = pd.to_numeric(text, errors="coerce")
    if len(text) and not numeric.isna().any():
        # Every cell is a number: seconds since the Unix epoch (what Prometheus and most exporters write).
        seconds = numeric.to_numpy(dtype=float)
        # pandas timestamps end in 2262; beyond that (or a millisecond stamp) the conversion overflows.
        out_of_range = np.flatnonzero(~np.isfinite(seconds) | (np.abs(seconds) > _MAX_UNIX_SECONDS))
        if out_of_range.size:
            first = int(out_of_range[0])
            raise SourceDataError(
                f"{where} {positions[first]}: column {column!r}: {text.iloc[first]!r} is not a "
                "Unix time in seconds between 1677 and 2262 (milliseconds? divide by 1000)",
                source=name,
            )
        return pd.DatetimeIndex(pd.to_datetime(seconds, unit="s", utc=True))
    parsed = pd.DatetimeIndex(pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce"))
    bad = np.flatnonzero(parsed.isna())
    if bad.size:
        first = int(bad[0])
        raise SourceDataError(
            f"{where} {positions[first]}: column {column!r}: cannot parse timestamp "
            f"{text.iloc[first]!r} (use ISO 8601 such as 2026-11-27T09:00:00Z, or Unix seconds)",
            source=name,
        )
    return parsed


def _parse_values(
    raw: pd.Series, positions: np.ndarray, *, where: str, column: str, name: str
) -> np.ndarray:
    """Float values, NaN for empty cells; the first non-numeric cell is reported with its line."""
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.to_numpy(dtype=float)
    text = raw.astype(str).str.strip()
    missing = text.isin(_MISSING).to_numpy()
    numbers = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(numbers) & ~missing)
    if bad.size:
        first = int(bad[0])
        raise SourceDataError(
            f"{where} {positions[first]}: column {column!r}: {text.iloc[first]!r} is not a number",
            source=name,
        )
    return numbers


_read_table = _ParsedFiles()
"""The process's parsed metrics files (see :class:`_ParsedFiles`)."""
