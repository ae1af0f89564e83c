"""The interface every metric source implements, its error hierarchy, and shared helpers.

A source only *fetches*: it returns the raw series as the backend stored it (irregular,
duplicated or out-of-order timestamps included). Cleaning and resampling happen in the engine,
which reports every repair, so a source never hides what the data looked like.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from infra.config import MetricSpec, UserError

__all__ = [
    "DEFAULT_ATTEMPTS",
    "BatchingSource",
    "MetricSource",
    "Read",
    "ReadBatch",
    "SourceDataError",
    "SourceError",
    "SourceTimeout",
    "SourceUnavailable",
    "expand_pool",
    "make_series",
    "plan_reads",
    "with_retries",
]

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 3
"""Tries per request for transient failures (unavailable, timeout) before the error is raised."""

T = TypeVar("T")


class SourceError(UserError):
    """A metric source could not deliver a series.

    :param message: what went wrong, as a sentence a person can act on.
    :param source: the source's name (``file:examples/demo/metrics.csv``, ``prometheus:http://...``).
    :param query: the query that failed, when there is one.
    """

    def __init__(self, message: str, *, source: str, query: str | None = None) -> None:
        self.source = source
        self.query = query
        self.detail = message
        where = f"{source} (query {query!r})" if query is not None else source
        super().__init__(f"{where}: {message}")


class SourceUnavailable(SourceError):
    """The backend could not be reached (connection refused, DNS, 5xx 'unavailable'). Transient."""


class SourceTimeout(SourceError):
    """The backend did not answer in time, or the query exceeded its server-side timeout. Transient."""


class SourceDataError(SourceError, ValueError):
    """The backend answered, but not with a usable series.

    Bad responses, wrong or missing columns, unparsable timestamps or values, a query that is
    rejected (bad PromQL) or that matches several series. Not retried: asking again won't help.
    """


@runtime_checkable
class MetricSource(Protocol):
    """Where metric history comes from.

    ``fetch`` returns the raw series for ``spec.query or metric``: a float ``pd.Series`` named
    ``metric`` with a tz-aware UTC ``DatetimeIndex`` covering ``start <= t <= end``, possibly
    irregular, duplicated or out of order, NaN where the backend stored no value. No resampling,
    no filling.
    """

    name: str

    def fetch(
        self, *, pool: str, metric: str, spec: MetricSpec, start: datetime, end: datetime
    ) -> pd.Series: ...


@dataclass(frozen=True)
class Read:
    """One series a cycle asks a source for: ``fetch``'s arguments."""

    pool: str
    metric: str
    spec: MetricSpec
    start: datetime
    end: datetime


Fetched = tuple[pd.Series | BaseException, str | None]
"""One read's outcome: its series or the error it met, and a sentence to report beside a
series that came back (``None`` when there is nothing to say)."""


@dataclass(frozen=True)
class ReadBatch:
    """Reads answered by one unit of work (one request, or a few chunks of one query).

    ``run`` returns one :data:`Fetched` per index, in order; it raises only for an error every
    read in it shares (the caller reports it for each)."""

    indices: tuple[int, ...]
    run: Callable[[], list[Fetched]]


@runtime_checkable
class BatchingSource(Protocol):
    """A source that can answer many reads in fewer requests than one each (Prometheus: one
    query for the pools that share a selector)."""

    def plan(self, reads: Sequence[Read]) -> list[ReadBatch]:
        """Every read in exactly one batch."""
        ...


def plan_reads(source: MetricSource, reads: Sequence[Read]) -> list[ReadBatch]:
    """The units of work that answer ``reads``: the source's own batches when it makes them,
    else one ``fetch`` per read."""
    if isinstance(source, BatchingSource):
        batches = source.plan(reads)
        covered = sorted(index for batch in batches for index in batch.indices)
        if covered != list(range(len(reads))):
            # A source bug would silently drop series; refuse instead.
            raise RuntimeError(f"{source.name}: its batches do not cover each read exactly once")
        return batches
    return [
        ReadBatch(indices=(index,), run=functools.partial(_fetch_one, source, read))
        for index, read in enumerate(reads)
    ]


def _fetch_one(source: MetricSource, read: Read) -> list[Fetched]:
    return [
        (
            source.fetch(
                pool=read.pool, metric=read.metric, spec=read.spec, start=read.start, end=read.end
            ),
            None,
        )
    ]


def make_series(
    times: Sequence[object] | np.ndarray | pd.Index,
    values: Sequence[object] | np.ndarray,
    *,
    metric: str,
) -> pd.Series:
    """A raw series in the contract's shape: float values, tz-aware UTC index, named ``metric``.

    :param times: timestamps; naive ones are taken as UTC, aware ones converted to UTC.
    :param values: one value per timestamp; ``None`` becomes NaN.
    :param metric: the series name (the metric's name in stack config).
    """
    if isinstance(times, pd.DatetimeIndex) and times.tz is not None:
        # Already aware (a parsed file's shared time column): converting it again went through
        # pandas' datetime inference, element by element, once per series (half of parsing a
        # wide metrics file: 2.4 of 4.6 s for 300 columns of two weeks at 5 minutes).
        index = times.tz_convert("UTC").rename("timestamp")
    else:
        index = pd.DatetimeIndex(pd.to_datetime(times, utc=True), name="timestamp")
    data = (
        np.asarray([np.nan if v is None else v for v in values], dtype=float)
        if not isinstance(values, np.ndarray)
        else values.astype(float)
    )
    return pd.Series(data, index=index, name=metric, dtype=float)


def expand_pool(text: str, pool: str) -> str:
    """Replace ``$pool`` in a query, dimension value or resource id by the pool's name.

    One metric definition can then serve several pools (``AutoScalingGroupName: $pool``).
    """
    return text.replace("$pool", pool)


def to_utc(moment: datetime, *, label: str, source: str) -> pd.Timestamp:
    """``moment`` as a UTC timestamp; a naive datetime is refused (ambiguous ranges fetch wrong data)."""
    if moment.tzinfo is None:
        raise SourceError(
            f"{label} must be a time-zone aware datetime (got naive {moment.isoformat()})",
            source=source,
        )
    return pd.Timestamp(moment).tz_convert("UTC")


def with_retries(
    call: Callable[[], T],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    what: str,
    transient: tuple[type[SourceError], ...] = (),
) -> T:
    """Run ``call``, retrying transient failures (:class:`SourceUnavailable`, :class:`SourceTimeout`).

    Waits 0.2 s, 0.4 s, ... (capped at 2 s) between tries so a driver cycle is not held up for
    long; after ``attempts`` tries the last error is raised unchanged.

    :param call: the request, raising the source's typed errors.
    :param attempts: total tries, default :data:`DEFAULT_ATTEMPTS`.
    :param what: short description for the retry log line (never include credentials).
    :param transient: the errors retried; default both :class:`SourceUnavailable` and
        :class:`SourceTimeout` (a batch of many series retries only the first, and reads its
        series on their own after a timeout instead of asking for the same slow answer again).
    """

    def log_retry(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        error = outcome.exception() if outcome is not None else None
        logger.warning("%s failed (%s); retrying", what, error)

    runner = retry(
        retry=retry_if_exception_type(transient or (SourceUnavailable, SourceTimeout)),
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        reraise=True,
        before_sleep=log_retry,
    )
    return runner(call)()
