"""Collecting metric history for a cycle: every pool metric from the stack's source, bounded in time.

A source that fails or hangs for one series costs only that series (reported in the cycle's
``degraded`` list); the cycle goes on with the rest and the forecasts fall back as
:func:`driver.cycle.decide` describes.

A long-running driver reads a remote source incrementally: what the last cycle read is kept
(:class:`Kept`, the history the driver holds anyway), and the next cycle asks only for the
recent end, from :data:`REFETCH` before the newest kept point. Re-reading all of
``forecast.history`` every cycle was 4,032 points a series at 5 minutes over 14 days: at
20,000 series that is about 80 million points a cycle, far over ``driver.collect_timeout``
from a local Prometheus (``benchmarks/prometheus_scale.py``, docs/forecasting.md).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infra.config import FileSource, MetricSpec, MirrorcastConfig

__all__ = ["REFETCH", "Collected", "Kept", "collect_history", "recording_end"]

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

REFETCH = timedelta(minutes=30)
"""How far before the newest kept point a cycle reads a series again. Points that recent may
still change: a scrape or a datapoint that arrived after the last cycle read (CloudWatch
publishes some metrics minutes late; a Prometheus rate over a window that was still
filling). Rounded up to whole steps of the source (Prometheus ``step``, CloudWatch
``period``, Azure ``interval``), so a read continues the kept points' time grid."""


@dataclass(frozen=True)
class Kept:
    """What a cycle read, for the next cycle to extend: per series, the metric's definition
    it was read with and the raw observations. Only for the same metrics section: another
    source, URL or step reads everything again, and so does a metric whose definition changed."""

    source: str
    """The stack's ``metrics`` section the series were read from, as JSON."""
    series: dict[tuple[str, str], tuple[MetricSpec, pd.Series]] = field(default_factory=dict)


@dataclass(frozen=True)
class Collected:
    """pool -> metric -> raw observations, and one sentence per series that could not be read."""

    history: dict[str, dict[str, pd.Series]]
    degraded: list[str]
    summary: str | None = None
    """One line for a cut-off collection (how many series of how many came in), or ``None``."""
    requests: int = 0
    """Units of work sent to the source (requests, or a query's chunks): fewer than the series
    where the source batches them."""
    kept: Kept | None = None
    """For the next cycle's ``kept``: every series this cycle has, read now or kept (``None``
    for a metrics file, which is read whole and parsed once anyway)."""
    incremental: int = 0
    """Series read only from their recent end, extending what the last cycle read."""


def collect_history(
    config: MirrorcastConfig,
    *,
    root: Path,
    now: datetime,
    timeout: float | None = None,
    kept: Kept | None = None,
    skip: Mapping[tuple[str, str], str] | None = None,
) -> Collected:
    """Fetch ``forecast.history`` of every pool metric up to ``now``.

    :param config: the stack config (its ``metrics`` source and pools).
    :param root: the project root, for relative file paths.
    :param now: end of the window (tz-aware).
    :param timeout: seconds to wait for all series together; default ``driver.collect_timeout``.
    :param kept: the last cycle's :attr:`Collected.kept`: a series kept from the same source
        and definition, whose newest point is inside this cycle's window, is read only from
        :data:`REFETCH` before that point and joined to its kept older points.
    :param skip: ``(pool, metric) -> why`` for series not to fetch (a dimension whose stack
        output could not be read: :mod:`driver.stack_outputs`); each is a degraded line.
    """
    from forecasting.sources import Read, SourceError, open_source, plan_reads

    if timeout is None:
        timeout = config.driver.collect_timeout.total_seconds()
    source = open_source(config.metrics, root=root)
    start = now - config.forecast.history
    history: dict[str, dict[str, pd.Series]] = {name: {} for name in config.pools}
    skip = skip or {}
    degraded: list[str] = [
        f"{pool}.{metric}: not collected: {why}" for (pool, metric), why in skip.items()
    ]
    series = [
        (pool_name, metric, spec)
        for pool_name, pool in config.pools.items()
        for metric, spec in pool.metrics.items()
        if (pool_name, metric) not in skip
    ]
    remote = not isinstance(config.metrics, FileSource)
    source_key = config.metrics.model_dump_json() if remote else ""
    usable = kept.series if kept is not None and remote and kept.source == source_key else {}
    refetch = _refetch(config)
    # Per series: (where this cycle's read starts, the kept points before it, if any).
    reads: list[tuple[datetime, pd.Series | None]] = []
    for pool_name, metric, spec in series:
        older = _kept_before(usable.get((pool_name, metric)), spec, start, now, refetch)
        reads.append(older if older is not None else (start, None))
    reads_wanted = [
        Read(pool=pool_name, metric=metric, spec=spec, start=since, end=now)
        for (pool_name, metric, spec), (since, _older) in zip(series, reads, strict=True)
    ]
    # The source's own batches where it makes them (Prometheus: one query for the pools that
    # share a selector), one request per series otherwise; concurrency and the deadline are
    # the batches'.
    batches = plan_reads(source, reads_wanted)
    ran = _run_bounded(
        [batch.run for batch in batches],
        workers=config.driver.collect_concurrency,
        timeout=timeout,
    )
    results: list[Any] = [None] * len(series)
    notes: dict[int, str] = {}
    for batch, outcome in zip(batches, ran, strict=True):
        if outcome is None or isinstance(outcome, BaseException):
            for index in batch.indices:
                results[index] = outcome
            continue
        for index, (value, note) in zip(batch.indices, outcome, strict=True):
            results[index] = value
            if note is not None:
                notes[index] = note
    late = incremental = 0
    for index, ((pool_name, metric, _spec), outcome) in enumerate(
        zip(series, results, strict=True)
    ):
        older = reads[index][1]
        if older is not None and isinstance(outcome, pd.Series):
            outcome = _joined(older, outcome)
            incremental += 1
        if index in notes:
            degraded.append(f"{pool_name}.{metric}: {notes[index]}")
        if outcome is None:
            late += 1
            degraded.append(
                f"{pool_name}.{metric}: metric source did not answer within {timeout:g}s"
            )
        elif isinstance(outcome, SourceError):
            degraded.append(f"{pool_name}.{metric}: metric source error: {outcome}")
        elif isinstance(outcome, BaseException):
            # A source bug must not stop the other pools; the cause is logged in full.
            logger.warning("fetching %s.%s failed", pool_name, metric, exc_info=outcome)
            degraded.append(f"{pool_name}.{metric}: metric source failed ({outcome})")
        else:
            history[pool_name][metric] = outcome
    summary = None
    if late:
        summary = (
            f"collected {len(series) - late:,} of {len(series):,} series within {timeout:g}s "
            f"(driver.collect_timeout, {len(batches):,} requests, "
            f"{config.driver.collect_concurrency} at once: driver.collect_concurrency); the cycle "
            "goes on with those"
        )
    next_kept = None
    if remote:
        _share_time_indexes(history)
        next_kept = Kept(source=source_key)
        for pool_name, metric, spec in series:
            got = history[pool_name].get(metric)
            if got is not None:
                next_kept.series[(pool_name, metric)] = (spec, got)
            elif (pool_name, metric) in usable:
                # Not read this cycle (late or failed): the next cycle extends the older read.
                next_kept.series[(pool_name, metric)] = usable[(pool_name, metric)]
    return Collected(
        history=history,
        degraded=degraded,
        summary=summary,
        requests=len(batches),
        kept=next_kept,
        incremental=incremental,
    )


_SHARED_CANDIDATES = 4
"""Distinct time grids of one length, first and last point compared against before a series
keeps its own index: a fleet's series are on a few grids (one a source step), so a few
candidates find the shared one and a source whose every series has its own gaps costs at
most this many comparisons a series."""


def _share_time_indexes(history: dict[str, dict[str, pd.Series]]) -> None:
    """Series with the same timestamps hold one time index (in place).

    A remote source's series are kept until the next cycle (:class:`Kept`), and each came with
    its own index: the parsed answer, then the join of the kept points and the recent read. On
    a shared time grid (a Prometheus ``step``, a CloudWatch ``period``) those indexes are equal
    and cost as much as the values, 8 bytes a point (32 KB a series for 14 days at 5 minutes).
    Each series keeps its own values; only an equal index is replaced by the first one."""
    grids: dict[tuple[int, int, int], list[pd.DatetimeIndex]] = {}
    for by_metric in history.values():
        for metric, series in by_metric.items():
            index = series.index
            if not isinstance(index, pd.DatetimeIndex) or not len(index):
                continue
            stamps = index.asi8
            known = grids.setdefault((len(stamps), int(stamps[0]), int(stamps[-1])), [])
            same = next(
                (
                    grid
                    for grid in known
                    if grid is index
                    or (
                        grid.dtype == index.dtype
                        and grid.name == index.name
                        and np.array_equal(grid.asi8, stamps)
                    )
                ),
                None,
            )
            if same is None:
                if len(known) < _SHARED_CANDIDATES:
                    known.append(index)
            elif same is not index:
                by_metric[metric] = pd.Series(
                    series.to_numpy(), index=same, name=series.name, copy=False
                )


def _refetch(config: MirrorcastConfig) -> timedelta:
    """:data:`REFETCH` in whole steps of the source, when it has a step."""
    step = next(
        (
            value
            for name in ("step", "period", "interval")
            if isinstance(value := getattr(config.metrics, name, None), timedelta)
            and value > timedelta(0)
        ),
        None,
    )
    if step is None:
        return REFETCH
    return step * math.ceil(REFETCH / step)


def _kept_before(
    entry: tuple[MetricSpec, pd.Series] | None,
    spec: MetricSpec,
    start: datetime,
    now: datetime,
    refetch: timedelta,
) -> tuple[datetime, pd.Series] | None:
    """Where to read a kept series from, and its kept points before that (inside the window);
    ``None`` to read the whole window (nothing kept, another definition, or kept points that
    do not reach into this window or lie after ``now``)."""
    if entry is None or entry[0] != spec or not len(entry[1]):
        return None
    series = entry[1]
    index = pd.DatetimeIndex(series.index)
    if not index.is_monotonic_increasing:
        return None  # a source that answers out of order: read it whole, as before
    newest = index[-1].to_pydatetime()
    since = newest - refetch
    if since <= start or newest > now:
        return None
    times = index.asi8
    # Kept points in [start, since): binary search on the time-ordered index (nanoseconds).
    lo = int(np.searchsorted(times, pd.Timestamp(start).value, side="left"))
    hi = int(np.searchsorted(times, pd.Timestamp(since).value, side="left"))
    return since, series.iloc[lo:hi]


def _joined(older: pd.Series, recent: pd.Series) -> pd.Series:
    """The kept points before the read, then the read (which starts at or after them)."""
    if not len(older):
        return recent
    if not len(recent):
        return older.copy()
    return pd.concat([older, recent.astype(float)]).rename(recent.name)


def recording_end(config: MirrorcastConfig, *, root: Path, now: datetime) -> datetime | None:
    """For a file source, the last timestamp in the file at or before ``now``; else ``None``.

    A metrics file is a recording, so "now" for a cycle over it is where the recording ends;
    this is what lets ``mirrorcast run --stack demo --once`` decide on the demo data.
    """
    if not isinstance(config.metrics, FileSource):
        return None
    from forecasting.sources import open_source

    source = open_source(config.metrics, root=root)
    latest: pd.Timestamp | None = None
    for pool_name, pool in config.pools.items():
        for metric, spec in pool.metrics.items():
            series = source.fetch(pool=pool_name, metric=metric, spec=spec, start=_EPOCH, end=now)
            if len(series):
                last = pd.DatetimeIndex(series.index).max()
                latest = last if latest is None or last > latest else latest
    return latest.to_pydatetime() if latest is not None else None


def _run_bounded(calls: Sequence[Callable[[], Any]], *, workers: int, timeout: float) -> list[Any]:
    """Run ``calls`` on up to ``workers`` threads; each result, exception or ``None`` if unfinished.

    Returns after ``timeout`` seconds at the latest, whatever the calls do. The threads are
    daemons and not a ``ThreadPoolExecutor``'s: the executor's exit hook joins its workers, so a
    fetch stuck on a server that never finishes its answer would keep the process alive after
    ``run --once`` (a systemd timer or a CronJob with ``concurrencyPolicy: Forbid`` would stop
    cycling). A call still running at the deadline is abandoned; calls not yet started are dropped.
    """
    results: list[Any] = [None] * len(calls)
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(calls)):
        pending.put(index)
    done = threading.Semaphore(0)
    abandoned = threading.Event()

    def work() -> None:
        while not abandoned.is_set():
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            try:
                outcome: Any = calls[index]()
            except BaseException as exc:  # reported to the caller, like a future would
                outcome = exc
            if not abandoned.is_set():
                results[index] = outcome
            done.release()

    for number in range(min(workers, len(calls))):
        threading.Thread(target=work, name=f"collect-{number}", daemon=True).start()
    deadline = time.monotonic() + timeout
    for _ in calls:
        if not done.acquire(timeout=max(0.0, deadline - time.monotonic())):
            break
    abandoned.set()
    return list(results)
