"""Metrics from Prometheus over its HTTP API (``/api/v1/query_range``).

The query is PromQL and must select exactly one series (aggregate with ``sum``/``avg`` when a
job has several instances). ``$pool`` in the query is replaced by the pool's name, and the
metric's ``dimensions`` become label matchers when the query is a bare metric name.

Prometheus refuses ranges of more than 11,000 points per series, so long ranges are fetched in
chunks under that limit and concatenated.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import requests

from forecasting.sources._base import (
    DEFAULT_ATTEMPTS,
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
            raise SourceDataError(
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
    ) -> tuple[np.ndarray, np.ndarray]:
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
        if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
            raise SourceDataError(
                "malformed answer: data.result must be a list of series objects",
                source=self.name,
                query=query,
            )
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
        pairs = result[0].get("values") or []
        try:
            times = np.array([float(t) for t, _ in pairs], dtype=float)
            values = np.array([float(v) for _, v in pairs], dtype=float)
        except (TypeError, ValueError) as exc:
            raise SourceDataError(
                f"malformed sample in the answer ({exc})", source=self.name, query=query
            ) from exc
        bad = np.flatnonzero(~np.isfinite(times) | (np.abs(times) > _MAX_UNIX_SECONDS))
        if bad.size:
            raise SourceDataError(
                f"malformed sample in the answer: timestamp {times[bad[0]]!r} is not a Unix time "
                "in seconds",
                source=self.name,
                query=query,
            )
        return times, values


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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in sorted(labels.items())) + "}"


def _root_cause(exc: BaseException) -> str:
    """The innermost error message (requests nests urllib3's), which names refused/DNS plainly."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return str(exc) or type(exc).__name__
