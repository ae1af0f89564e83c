"""Collecting metric history for a cycle: every pool metric from the stack's source, bounded in time.

A source that fails or hangs for one series costs only that series (reported in the cycle's
``degraded`` list); the cycle goes on with the rest and the forecasts fall back as
:func:`driver.cycle.decide` describes.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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


def collect_history(
    config: MirrorcastConfig, *, root: Path, now: datetime, timeout: float = 60.0
) -> Collected:
    """Fetch ``forecast.history`` of every pool metric up to ``now``.

    :param config: the stack config (its ``metrics`` source and pools).
    :param root: the project root, for relative file paths.
    :param now: end of the window (tz-aware).
    :param timeout: seconds to wait for all series together; default 60.
    """
    from forecasting.sources import SourceError, open_source

    source = open_source(config.metrics, root=root)
    start = now - config.forecast.history
    history: dict[str, dict[str, pd.Series]] = {name: {} for name in config.pools}
    degraded: list[str] = []
    pool_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="collect")
    futures = {
        (pool_name, metric): pool_executor.submit(
            source.fetch, pool=pool_name, metric=metric, spec=spec, start=start, end=now
        )
        for pool_name, pool in config.pools.items()
        for metric, spec in pool.metrics.items()
    }
    deadline = datetime.now(UTC).timestamp() + timeout
    try:
        for (pool_name, metric), future in futures.items():
            remaining = max(0.0, deadline - datetime.now(UTC).timestamp())
            try:
                history[pool_name][metric] = future.result(timeout=remaining)
            except FutureTimeout:
                degraded.append(
                    f"{pool_name}.{metric}: metric source did not answer within {timeout:g}s"
                )
            except SourceError as exc:
                degraded.append(f"{pool_name}.{metric}: metric source error: {exc}")
            except Exception as exc:
                # A source bug must not stop the other pools; the cause is logged in full.
                logger.warning("fetching %s.%s failed", pool_name, metric, exc_info=exc)
                degraded.append(f"{pool_name}.{metric}: metric source failed ({exc})")
    finally:
        # Do not wait for a hung fetch: the cycle has moved on.
        pool_executor.shutdown(wait=False, cancel_futures=True)
    return Collected(history=history, degraded=degraded)


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
