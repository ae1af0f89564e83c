"""Metrics from Prometheus over its HTTP API (``/api/v1/query_range``).

The query is PromQL and must select exactly one series (aggregate with ``sum``/``avg`` when a
job has several instances). ``$pool`` in the query is replaced by the pool's name, and the
metric's ``dimensions`` become label matchers when the query is a bare metric name.

Prometheus refuses ranges of more than 11,000 points per series, so long ranges are fetched in
chunks under that limit and concatenated.

A fleet's pools usually share one selector but for the pool's label (``cpu{pool="$pool"}``).
:meth:`PrometheusMetricSource.plan` reads such pools with one query whose pool matcher is a
regex over their names (``cpu{pool=~"a|b|c"}``, at most ``batch_series`` of them and as many
as ``max_answer_bytes`` holds) and splits the answer by that label: one request per 100
series instead of one per series (``benchmarks/prometheus_scale.py``, docs/sources.md). A pool
the answer lacks is reported by name. A batch that times out or whose answer is over the size
cap is split in halves, and a half that fails again in halves, down to single series read on
their own: a batch too big for the server's time costs a few requests, not one a series. A batch
whose answer is malformed is read again series by series (the fault is in a series' data, not
the size). Either way one bad batch costs no series the per-series read would have delivered.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import requests

from forecasting.sources._base import (
    DEFAULT_ATTEMPTS,
    Fetched,
    Read,
    ReadBatch,
    SourceDataError,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
    expand_pool,
    make_series,
    to_utc,
    with_retries,
)
from forecasting.sources._http import AnswerTooLarge, bounded_request
from infra.config import MetricSpec, PrometheusSource, redact_text

__all__ = ["MAX_POINTS_PER_QUERY", "PrometheusMetricSource"]

logger = logging.getLogger(__name__)

MAX_POINTS_PER_QUERY = 11_000
"""Prometheus's limit on points per series in one ``query_range`` answer."""

_BARE_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_SELECTOR = re.compile(r"^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{(?P<body>.*)\}\s*$", re.S)
_MATCHER = re.compile(
    r'\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*'
)
_POOL_MARK = "\x00pool\x00"
"""Stands for the pool's name while a query is read as a template (no PromQL text holds it)."""
_BYTES_PER_SAMPLE = 48
"""A generous size of one sample in an answer (``[1733100000,"123.4567890123"],``): a batch is
sized so that its answer stays under ``max_answer_bytes``."""
_BYTES_PER_SERIES = 512
"""A series' labels and framing in an answer."""


@dataclass(frozen=True)
class _Template:
    """A selector whose only pool-dependent part is one ``label="<prefix>$pool<suffix>"``."""

    name: str
    others: tuple[str, ...]
    label: str
    prefix: str
    suffix: str

    def query(self, pools: Sequence[str]) -> str:
        names = "|".join(_re2_escape(pool) for pool in pools)
        regex = f"{_re2_escape(self.prefix)}(?:{names}){_re2_escape(self.suffix)}"
        matchers = [*self.others, f'{self.label}=~"{_escape(regex)}"']
        return f"{self.name}{{{','.join(matchers)}}}"

    def pool_of(self, value: str) -> str | None:
        if (
            len(value) > len(self.prefix) + len(self.suffix)
            and value.startswith(self.prefix)
            and value.endswith(self.suffix)
        ):
            return value[len(self.prefix) : len(value) - len(self.suffix)]
        return None


def _template(query: str) -> _Template | None:
    """``query`` (with :data:`_POOL_MARK` for the pool) as a template many pools can share in
    one query, or ``None`` when the pool is anywhere but one plain ``=`` matcher's value."""
    if query.count(_POOL_MARK) != 1:
        return None
    found = _SELECTOR.match(query)
    if found is None or _POOL_MARK in (found["name"] or ""):
        return None
    body = found["body"]
    position = 0
    others: list[str] = []
    pool_matcher: tuple[str, str, str] | None = None
    while position < len(body):
        matcher = _MATCHER.match(body, position)
        if matcher is None:
            return None
        position = matcher.end()
        if position < len(body):
            if body[position] != ",":
                return None
            position += 1
        label, op, value = matcher["label"], matcher["op"], matcher["value"]
        if _POOL_MARK in value:
            prefix, _, suffix = value.partition(_POOL_MARK)
            # Escapes around the pool would need PromQL's unquoting to match the answer's label
            # values; such a query is read per series, as before.
            if op != "=" or label == "__name__" or "\\" in prefix + suffix:
                return None
            pool_matcher = (label, prefix, suffix)
        else:
            others.append(f'{label}{op}"{value}"')
    if pool_matcher is None:
        return None
    label, prefix, suffix = pool_matcher
    return _Template(
        name=found["name"] or "", others=tuple(others), label=label, prefix=prefix, suffix=suffix
    )


@dataclass(frozen=True)
class _Split:
    """Where a batch's reads came from when it was split: the sizes of the batches that failed
    in time or size (largest first) and the last failure's detail."""

    sizes: tuple[int, ...]
    detail: str

    def note(self, *, delivered: int) -> str:
        """The degraded line beside a series delivered by a query for ``delivered`` series."""
        how = "read on its own" if delivered == 1 else f"read in a query for {delivered} series"
        if len(self.sizes) == 1:
            failed = f"the query for its batch of {self.sizes[0]} series"
        else:
            chain = " and then ".join(str(size) for size in self.sizes)
            failed = f"the queries for its batches of {chain} series"
        return f"{how}: {failed} failed ({self.detail})"


class _AnswerOverCap(SourceDataError):
    """An answer larger than ``metrics.max_answer_bytes``: a smaller query may fit."""


class PrometheusMetricSource:
    """Reads metric history from a Prometheus server.

    :param spec: the stack's ``metrics`` section (``type: prometheus``): URL, timeout, step and
        the name of the environment variable holding a bearer token (optional).
    :param session: a ``requests.Session`` to use; default a new one.
    :param attempts: tries per request for transient failures, default 3.
    """

    def __init__(
        self,
        spec: PrometheusSource,
        *,
        session: requests.Session | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        self.spec = spec
        self.base_url = spec.url.rstrip("/")
        # Credentials in the URL (http://user:pass@host) are used but never shown.
        parts = urlsplit(self.base_url)
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        self.name = f"prometheus:{shown}"
        self._url_password = parts.password
        self.session = session or requests.Session()
        self.attempts = attempts

    def __repr__(self) -> str:
        return f"PrometheusMetricSource({self.name!r})"

    def query_for(self, *, pool: str, metric: str, spec: MetricSpec) -> str:
        """The PromQL sent for ``metric`` of ``pool``: ``spec.query or metric``, ``$pool`` expanded,
        ``spec.dimensions`` added as label matchers to a bare metric name."""
        query = expand_pool(spec.query or metric, pool)
        if spec.dimensions:
            if not _BARE_METRIC.match(query):
                raise SourceError(
                    "dimensions can only be added to a bare metric name; write the label "
                    f"matchers into the PromQL query instead ({query})",
                    source=self.name,
                    query=query,
                )
            matchers = ",".join(
                f'{key}="{_escape(expand_pool(value, pool))}"'
                for key, value in sorted(spec.dimensions.items())
            )
            query = f"{query}{{{matchers}}}"
        return query

    def fetch(
        self, *, pool: str, metric: str, spec: MetricSpec, start: datetime, end: datetime
    ) -> pd.Series:
        """The raw series between ``start`` and ``end`` (inclusive) at the configured step.

        :param pool: the pool name (substituted for ``$pool`` in the query).
        :param metric: the metric's name in stack config; names the returned series.
        :param spec: the metric's definition (``query``, ``dimensions``).
        :param start: first instant (tz-aware).
        :param end: last instant (tz-aware).
        :raises SourceUnavailable: the server cannot be reached (after retries).
        :raises SourceTimeout: no answer within ``timeout``, or the query timed out in Prometheus.
        :raises SourceDataError: the query is rejected, or selects more than one series.
        """
        query = self.query_for(pool=pool, metric=metric, spec=spec)
        lo = to_utc(start, label="start", source=self.name)
        hi = to_utc(end, label="end", source=self.name)
        if hi < lo:
            raise SourceError(
                f"end {hi.isoformat()} is before start {lo.isoformat()}",
                source=self.name,
                query=query,
            )
        times: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for chunk_start, chunk_end in chunk_range(lo, hi, step=self.spec.step):
            t, v = with_retries(
                functools.partial(self._query_range, query, chunk_start, chunk_end),
                attempts=self.attempts,
                what=f"{self.name} query_range",
            )
            times.append(t)
            values.append(v)
        all_times = np.concatenate(times) if times else np.array([], dtype=float)
        all_values = np.concatenate(values) if values else np.array([], dtype=float)
        if not len(all_times):
            logger.info("%s: query %r returned no data for %s - %s", self.name, query, lo, hi)
        return make_series(pd.to_datetime(all_times, unit="s", utc=True), all_values, metric=metric)

    def plan(self, reads: Sequence[Read]) -> list[ReadBatch]:
        """The requests that answer ``reads``: one query for up to ``batch_series`` reads that
        share a selector template and a time range, one ``fetch`` for every other read.

        Batches are made in the order of ``reads``, so the same stack gives the same batches
        every cycle."""
        groups: dict[tuple[_Template, datetime, datetime], list[int]] = {}
        singles: list[int] = []
        for index, read in enumerate(reads):
            try:
                template = _template(
                    self.query_for(pool=_POOL_MARK, metric=read.metric, spec=read.spec)
                )
            except SourceError:
                template = None  # fetch reports it for this read
            if template is None or self.spec.batch_series == 1:
                singles.append(index)
            else:
                groups.setdefault((template, read.start, read.end), []).append(index)
        batches = [
            ReadBatch(indices=(index,), run=functools.partial(self._fetch_read, reads[index]))
            for index in singles
        ]
        for (template, start, end), indices in groups.items():
            size = self._batch_size(start, end)
            for first in range(0, len(indices), size):
                part = tuple(indices[first : first + size])
                members = [reads[index] for index in part]
                if len(part) == 1:
                    batches.append(
                        ReadBatch(indices=part, run=functools.partial(self._fetch_read, members[0]))
                    )
                else:
                    batches.append(
                        ReadBatch(
                            indices=part,
                            run=functools.partial(self._fetch_batch, template, members),
                        )
                    )
        return batches

    def _batch_size(self, start: datetime, end: datetime) -> int:
        """``batch_series``, or fewer when that many series' points (one chunk's each) are more
        than ``batch_points`` or their answer would not fit ``max_answer_bytes``.

        Bounding the points matters more than the bytes: 100 series of 14 days in one request
        took over 10 s (the default ``timeout``) on the loaded 2-core machine while single
        series took tens of milliseconds (``benchmarks/prometheus_scale.py``)."""
        points = min(MAX_POINTS_PER_QUERY, int((end - start) / self.spec.step) + 1)
        fits = self.spec.max_answer_bytes // (points * _BYTES_PER_SAMPLE + _BYTES_PER_SERIES)
        return max(1, min(self.spec.batch_series, fits, self.spec.batch_points // points))

    def _fetch_read(self, read: Read) -> list[Fetched]:
        return [
            (
                self.fetch(
                    pool=read.pool,
                    metric=read.metric,
                    spec=read.spec,
                    start=read.start,
                    end=read.end,
                ),
                None,
            )
        ]

    def _fetch_batch(
        self, template: _Template, reads: Sequence[Read], *, split: _Split | None = None
    ) -> list[Fetched]:
        """One query for ``reads`` (the same template, start and end), split per pool; halved
        when it times out or its answer is over ``max_answer_bytes``.

        :param split: set when ``reads`` are half of a batch that failed in time or size: the
            failed batches' sizes and the last failure, said beside every series delivered.
        :raises SourceUnavailable: the server cannot be reached: every read shares that.
        """
        try:
            outcomes = self._query_batch(template, reads)
        except (SourceTimeout, _AnswerOverCap) as exc:
            # Too big for the server's time or the size cap: each half asks for half the
            # points. Down to single series, each read on its own as before (with its retries).
            logger.warning(
                "%s: the query for %d series failed (%s); splitting it in halves",
                self.name,
                len(reads),
                exc.detail,
            )
            failed = _Split(sizes=(*(split.sizes if split else ()), len(reads)), detail=exc.detail)
            middle = (len(reads) + 1) // 2
            return [
                *self._split_part(template, reads[:middle], split=failed),
                *self._split_part(template, reads[middle:], split=failed),
            ]
        except SourceDataError as exc:
            # A malformed answer: the fault is in a series' data, not the batch's size, so
            # smaller batches would meet it again; each series read alone fails on its own.
            logger.warning(
                "%s: the query for %d series failed (%s); reading them one by one",
                self.name,
                len(reads),
                exc.detail,
            )
            return [self._fallback(read, exc) for read in reads]
        if split is None:
            return outcomes
        said = split.note(delivered=len(reads))
        return [(value, said if note is None else f"{said}; {note}") for value, note in outcomes]

    def _split_part(
        self, template: _Template, reads: Sequence[Read], *, split: _Split
    ) -> list[Fetched]:
        """Half of a batch that failed in time or size: one query again, or a read on its own."""
        if len(reads) > 1:
            return self._fetch_batch(template, reads, split=split)
        try:
            return [(self._fetch_read(reads[0])[0][0], split.note(delivered=1))]
        except SourceError as exc:
            return [(exc, None)]

    def _query_batch(self, template: _Template, reads: Sequence[Read]) -> list[Fetched]:
        """The one query for ``reads``, split per pool.

        :raises SourceTimeout: the query timed out (client or server side).
        :raises SourceDataError: the answer is malformed (or over the size cap:
            :class:`_AnswerOverCap`).
        :raises SourceUnavailable: the server cannot be reached.
        """
        lo = to_utc(reads[0].start, label="start", source=self.name)
        hi = to_utc(reads[0].end, label="end", source=self.name)
        pools = [read.pool for read in reads]
        query = template.query(pools)
        times: dict[str, list[np.ndarray]] = {pool: [] for pool in pools}
        values: dict[str, list[np.ndarray]] = {pool: [] for pool in pools}
        several: dict[str, list[dict[str, str]]] = {}
        if hi < lo:
            raise SourceError(
                f"end {hi.isoformat()} is before start {lo.isoformat()}",
                source=self.name,
                query=query,
            )
        for chunk_start, chunk_end in chunk_range(lo, hi, step=self.spec.step):
            result = with_retries(
                functools.partial(self._query_range_all, query, chunk_start, chunk_end),
                attempts=self.attempts,
                what=f"{self.name} query_range for {len(reads)} series",
                transient=(SourceUnavailable,),
            )
            seen: dict[str, dict[str, str]] = {}
            for position, entry in enumerate(result):
                labels = entry.get("metric") or {}
                pool = template.pool_of(str(labels.get(template.label, "")))
                if pool not in times:
                    continue  # not one of ours (the regex is anchored, so not expected)
                if pool in seen:
                    several.setdefault(pool, [seen[pool]]).append(labels)
                    continue
                seen[pool] = labels
                t, v = _samples(entry, query=query, source=self.name, position=position)
                times[pool].append(t)
                values[pool].append(v)
        outcomes: list[Fetched] = []
        for read in reads:
            own = self.query_for(pool=read.pool, metric=read.metric, spec=read.spec)
            if read.pool in several:
                labels = "; ".join(_labels(found) for found in several[read.pool][:3])
                outcomes.append(
                    (
                        SourceDataError(
                            f"the query selects {len(several[read.pool])} series ({labels}"
                            f"{'; ...' if len(several[read.pool]) > 3 else ''}); aggregate it "
                            "to one, e.g. sum(...) or avg(...)",
                            source=self.name,
                            query=own,
                        ),
                        None,
                    )
                )
                continue
            got_times = np.concatenate(times[read.pool]) if times[read.pool] else np.array([])
            got_values = np.concatenate(values[read.pool]) if values[read.pool] else np.array([])
            note = None
            if not len(got_times):
                note = (
                    f"no series with {template.label}={template.prefix + read.pool + template.suffix!r} "
                    f"in the answer to the query for {len(reads)} pools sharing its selector "
                    f"({own}, {lo.isoformat()} to {hi.isoformat()})"
                )
            outcomes.append(
                (
                    make_series(
                        pd.to_datetime(got_times, unit="s", utc=True),
                        got_values.astype(float),
                        metric=read.metric,
                    ),
                    note,
                )
            )
        return outcomes

    def _fallback(self, read: Read, failure: SourceError) -> Fetched:
        note = f"read on its own: the query for its batch failed ({failure.detail})"
        try:
            return self._fetch_read(read)[0][0], note
        except SourceError as exc:
            return exc, None

    def _headers(self) -> tuple[dict[str, str], str | None]:
        env = self.spec.bearer_token_env
        if not env:
            return {}, None
        token = os.environ.get(env)
        if not token:
            raise SourceError(
                f"the environment variable {env} (metrics.bearer_token_env) is not set or empty",
                source=self.name,
            )
        return {"Authorization": f"Bearer {token}"}, token

    def _query_range(
        self, query: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> tuple[np.ndarray, np.ndarray]:
        result = self._query_range_all(query, start, end)
        if len(result) > 1:
            labels = "; ".join(_labels(r.get("metric", {})) for r in result[:3])
            raise SourceDataError(
                f"the query selects {len(result)} series ({labels}{'; ...' if len(result) > 3 else ''}); "
                "aggregate it to one, e.g. sum(...) or avg(...)",
                source=self.name,
                query=query,
            )
        if not result:
            return np.array([], dtype=float), np.array([], dtype=float)
        return _samples(result[0], query=query, source=self.name, position=None)

    def _query_range_all(
        self, query: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> list[dict[str, Any]]:
        """The answer's series (``data.result``), checked to be a list of objects."""
        headers, token = self._headers()
        timeout = self.spec.timeout.total_seconds()
        evaluation = (self.spec.query_timeout or self.spec.timeout).total_seconds()
        params = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{self.spec.step.total_seconds():g}",
            # The server-side limit defaults to the client's, so a slow query is cut off by
            # Prometheus (errorType timeout) rather than left running after we gave up.
            "timeout": f"{evaluation:g}",
        }
        url = f"{self.base_url}/api/v1/query_range"
        try:
            response = bounded_request(
                self.session,
                "POST",
                url,
                data=params,
                headers=headers,
                deadline=timeout,
                max_bytes=self.spec.max_answer_bytes,
            )
        except requests.Timeout as exc:
            raise SourceTimeout(
                f"no answer within {timeout:g} s (metrics.timeout, the whole request)",
                source=self.name,
                query=query,
            ) from exc
        except AnswerTooLarge as exc:
            # Not retried: the same query gets the same answer. Usually a step too small for
            # the range, or a proxy answering with something else entirely.
            raise _AnswerOverCap(
                f"{exc} (metrics.max_answer_bytes)", source=self.name, query=query
            ) from exc
        except requests.ConnectionError as exc:
            raise SourceUnavailable(
                f"cannot connect ({redact_text(_root_cause(exc), values=[token, self._url_password])})",
                source=self.name,
                query=query,
            ) from exc
        except requests.RequestException as exc:
            # For example the connection broke mid-answer (a proxy restarting): worth a retry.
            raise SourceUnavailable(
                f"the answer was cut off ({redact_text(_root_cause(exc), values=[token, self._url_password])})",
                source=self.name,
                query=query,
            ) from exc
        return self._parse(response, query=query, token=token)

    def _parse(
        self, response: requests.Response, *, query: str, token: str | None
    ) -> list[dict[str, Any]]:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            excerpt = redact_text(response.text[:200], values=[token, self._url_password]).strip()
            error: type[SourceError] = (
                SourceUnavailable if response.status_code in (502, 503, 504) else SourceDataError
            )
            raise error(
                f"HTTP {response.status_code} without a Prometheus API answer: {excerpt!r}",
                source=self.name,
                query=query,
            )
        if body["status"] != "success":
            kind = str(body.get("errorType", "unknown"))
            message = redact_text(str(body.get("error", "")), values=[token, self._url_password])
            text = f"Prometheus {kind} error (HTTP {response.status_code}): {message}"
            if kind == "timeout":
                raise SourceTimeout(text, source=self.name, query=query)
            if kind == "unavailable" or response.status_code in (502, 503, 504):
                raise SourceUnavailable(text, source=self.name, query=query)
            raise SourceDataError(text, source=self.name, query=query)
        data = body.get("data") or {}
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise SourceDataError(
                "expected a range vector (matrix) answer, got "
                f"{data.get('resultType') if isinstance(data, dict) else type(data).__name__!r}",
                source=self.name,
                query=query,
            )
        result = data.get("result") or []
        if not isinstance(result, list):
            raise SourceDataError(
                "malformed answer: data.result must be a list of series objects",
                source=self.name,
                query=query,
            )
        for position, entry in enumerate(result):
            if not isinstance(entry, dict) or not isinstance(entry.get("metric", {}), dict):
                raise SourceDataError(
                    f"malformed answer: data.result[{position}] is not a series object "
                    "(metric labels and values)",
                    source=self.name,
                    query=query,
                )
        return result


def _samples(
    entry: dict[str, Any], *, query: str, source: str, position: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """One answer series' times (Unix seconds) and values; a malformed sample is named by its
    place in the answer (``data.result[3].values[17]``)."""
    where = "data.result" + (f"[{position}]" if position is not None else "[0]")
    pairs = entry.get("values") or []
    try:
        times = np.array([float(t) for t, _ in pairs], dtype=float)
        values = np.array([float(v) for _, v in pairs], dtype=float)
    except (TypeError, ValueError) as exc:
        at = next(
            (number for number, pair in enumerate(pairs) if not _sample_ok(pair)),
            None,
        )
        raise SourceDataError(
            f"malformed sample in the answer at {where}.values[{at}] ({exc})",
            source=source,
            query=query,
        ) from exc
    bad = np.flatnonzero(~np.isfinite(times) | (np.abs(times) > _MAX_UNIX_SECONDS))
    if bad.size:
        raise SourceDataError(
            f"malformed sample in the answer at {where}.values[{bad[0]}]: timestamp "
            f"{times[bad[0]]!r} is not a Unix time in seconds",
            source=source,
            query=query,
        )
    return times, values


def _sample_ok(pair: Any) -> bool:
    try:
        stamp, value = pair
        float(stamp)
        float(value)
    except (TypeError, ValueError):
        return False
    return True


_MAX_UNIX_SECONDS = 9_200_000_000
"""Largest absolute Unix time in seconds pandas can hold (about the year 2261)."""


def chunk_range(
    start: pd.Timestamp, end: pd.Timestamp, *, step: timedelta
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Split ``[start, end]`` into inclusive chunks of at most :data:`MAX_POINTS_PER_QUERY` points.

    Chunks are aligned to ``start`` and do not overlap (the next begins one step after the
    previous ends), so no sample is fetched twice.
    """
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    span = pd.Timedelta(step) * (MAX_POINTS_PER_QUERY - 1)
    chunks: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    lo = start
    while lo <= end:
        hi = min(lo + span, end)
        chunks.append((lo, hi))
        lo = hi + pd.Timedelta(step)
    return chunks


_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def _re2_escape(text: str) -> str:
    """``text`` as a literal in a Prometheus (RE2) regex."""
    return "".join(f"\\{char}" if char in _RE2_SPECIAL else char for char in text)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in sorted(labels.items())) + "}"


def _root_cause(exc: BaseException) -> str:
    """The innermost error message (requests nests urllib3's), which names refused/DNS plainly."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return str(exc) or type(exc).__name__
