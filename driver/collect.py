"""Collecting metric history for a cycle: every pool metric from the stack's source, bounded in time.

A source that fails or hangs for one series costs only that series (reported in the cycle's
``degraded`` list); the cycle goes on with the rest and the forecasts fall back as
:func:`driver.cycle.decide` describes.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from infra.config import FileSource, MirrorcastConfig

__all__ = ["Collected", "collect_history", "recording_end"]

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Collected:
    """pool -> metric -> raw observations, and one sentence per series that could not be read."""

    history: dict[str, dict[str, pd.Series]]
    degraded: list[str]
    summary: str | None = None
    """One line for a cut-off collection (how many series of how many came in), or ``None``."""


def collect_history(
    config: MirrorcastConfig, *, root: Path, now: datetime, timeout: float | None = None
) -> Collected:
    """Fetch ``forecast.history`` of every pool metric up to ``now``.

    :param config: the stack config (its ``metrics`` source and pools).
    :param root: the project root, for relative file paths.
    :param now: end of the window (tz-aware).
    :param timeout: seconds to wait for all series together; default ``driver.collect_timeout``.
    """
    from forecasting.sources import SourceError, open_source

    if timeout is None:
        timeout = config.driver.collect_timeout.total_seconds()
    source = open_source(config.metrics, root=root)
    start = now - config.forecast.history
    history: dict[str, dict[str, pd.Series]] = {name: {} for name in config.pools}
    degraded: list[str] = []
    series = [
        (pool_name, metric, spec)
        for pool_name, pool in config.pools.items()
        for metric, spec in pool.metrics.items()
    ]
    results = _run_bounded(
        [
            functools.partial(
                source.fetch, pool=pool_name, metric=metric, spec=spec, start=start, end=now
            )
            for pool_name, metric, spec in series
        ],
        workers=config.driver.collect_concurrency,
        timeout=timeout,
    )
    late = 0
    for (pool_name, metric, _spec), outcome in zip(series, results, strict=True):
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
            f"(driver.collect_timeout, {config.driver.collect_concurrency} requests at once: "
            "driver.collect_concurrency); the cycle goes on with those"
        )
    return Collected(history=history, degraded=degraded, summary=summary)


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
