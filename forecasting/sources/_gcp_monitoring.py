"""Metrics from Google Cloud Monitoring through ``google-cloud-monitoring`` (``list_time_series``).

The query is a metric type (``compute.googleapis.com/instance/cpu/utilization``). The metric's
``dimensions`` become filter terms: a key with a dot is used as written
(``resource.labels.instance_group``), a bare key means a metric label (``metric.labels.<key>``);
``$pool`` is expanded in values. The metric's ``statistic`` picks both the per-series aligner
and the cross-series reducer, so the answer is always one series however many instances report.
Credentials come from Application Default Credentials.

Install with the ``clouds`` extra: ``pip install 'mirrorcast[clouds]'``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pandas as pd

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
from infra.config import GcpMonitoringSource, MetricSpec

__all__ = ["GcpMonitoringMetricSource"]

logger = logging.getLogger(__name__)

_ALIGNMENT = {
    "average": ("ALIGN_MEAN", "REDUCE_MEAN"),
    "avg": ("ALIGN_MEAN", "REDUCE_MEAN"),
    "mean": ("ALIGN_MEAN", "REDUCE_MEAN"),
    "maximum": ("ALIGN_MAX", "REDUCE_MAX"),
    "max": ("ALIGN_MAX", "REDUCE_MAX"),
    "minimum": ("ALIGN_MIN", "REDUCE_MIN"),
    "min": ("ALIGN_MIN", "REDUCE_MIN"),
    "sum": ("ALIGN_SUM", "REDUCE_SUM"),
    "total": ("ALIGN_SUM", "REDUCE_SUM"),
    "count": ("ALIGN_COUNT", "REDUCE_SUM"),
    "rate": ("ALIGN_RATE", "REDUCE_SUM"),
}
"""Statistic -> (per-series aligner, cross-series reducer)."""


class GcpMonitoringMetricSource:
    """Reads metric history from Google Cloud Monitoring.

    :param spec: the stack's ``metrics`` section (``type: gcp_monitoring``): project, alignment
        period and request timeout.
    :param client: a ``monitoring_v3.MetricServiceClient`` (or anything with the same
        ``list_time_series``) to use; default one built from Application Default Credentials.
    :param attempts: tries per request for transient failures, default 3.
    """

    def __init__(
        self,
        spec: GcpMonitoringSource,
        *,
        client: Any | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        self.spec = spec
        self.name = f"gcp_monitoring:{spec.project}"
        self.attempts = attempts
        self.client = client if client is not None else _default_client(self.name)

    def __repr__(self) -> str:
        return f"GcpMonitoringMetricSource({self.spec.project!r})"

    def request_for(
        self, *, pool: str, metric: str, spec: MetricSpec, start: datetime, end: datetime
    ) -> Any:
        """The ``ListTimeSeriesRequest`` for ``metric`` of ``pool`` over ``[start, end]``."""
        from google.cloud import monitoring_v3
        from google.protobuf import duration_pb2, timestamp_pb2

        metric_type = expand_pool(spec.query or metric, pool)
        alignment = _ALIGNMENT.get(spec.statistic.lower())
        if alignment is None:
            raise SourceError(
                f"statistic {spec.statistic!r} has no Cloud Monitoring aligner; use one of "
                "Average, Maximum, Minimum, Sum, Count, Rate",
                source=self.name,
                query=metric_type,
            )
        terms = [f'metric.type = "{_quote(metric_type)}"']
        for key, value in sorted(spec.dimensions.items()):
            field = key if "." in key else f"metric.labels.{key}"
            terms.append(f'{field} = "{_quote(expand_pool(value, pool))}"')
        lo = to_utc(start, label="start", source=self.name)
        hi = to_utc(end, label="end", source=self.name)
        start_pb, end_pb = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
        start_pb.FromDatetime(lo.to_pydatetime())
        end_pb.FromDatetime(hi.to_pydatetime())
        period = duration_pb2.Duration()
        period.FromTimedelta(self.spec.alignment_period)
        aligner, reducer = alignment
        return monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{self.spec.project}",
            filter=" AND ".join(terms),
            interval=monitoring_v3.TimeInterval(start_time=start_pb, end_time=end_pb),
            aggregation=monitoring_v3.Aggregation(
                alignment_period=period,
                per_series_aligner=getattr(monitoring_v3.Aggregation.Aligner, aligner),
                cross_series_reducer=getattr(monitoring_v3.Aggregation.Reducer, reducer),
            ),
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )

    def fetch(
        self, *, pool: str, metric: str, spec: MetricSpec, start: datetime, end: datetime
    ) -> pd.Series:
        """The raw series between ``start`` and ``end`` at the alignment period.

        :param pool: the pool name (substituted for ``$pool`` in query and dimensions).
        :param metric: the metric's name in stack config; names the returned series.
        :param spec: the metric's definition (``query``, ``dimensions``, ``statistic``).
        :param start: first instant (tz-aware).
        :param end: last instant (tz-aware).
        :raises SourceUnavailable: the service cannot be reached (after retries).
        :raises SourceTimeout: no answer within ``timeout``.
        :raises SourceDataError: the request was rejected, or the answer is not one numeric series.
        """
        request = self.request_for(pool=pool, metric=metric, spec=spec, start=start, end=end)
        query = expand_pool(spec.query or metric, pool)
        series = with_retries(
            lambda: self._call(request, query=query),
            attempts=self.attempts,
            what=f"{self.name} list_time_series",
        )
        return self.parse(series, query=query, metric=metric)

    def _call(self, request: Any, *, query: str) -> list[Any]:
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import DefaultCredentialsError

        try:
            # The pager fetches further pages while it is iterated; list() drains it here so
            # paging errors are mapped below as well.
            return list(
                self.client.list_time_series(
                    request=request, retry=None, timeout=self.spec.timeout.total_seconds()
                )
            )
        except gexc.DeadlineExceeded as exc:
            raise SourceTimeout(
                f"no answer within {self.spec.timeout.total_seconds():g} s",
                source=self.name,
                query=query,
            ) from exc
        except (gexc.ServiceUnavailable, gexc.TooManyRequests, gexc.InternalServerError) as exc:
            raise SourceUnavailable(
                f"Cloud Monitoring: {exc.message}", source=self.name, query=query
            ) from exc
        except (gexc.InvalidArgument, gexc.NotFound, gexc.BadRequest) as exc:
            raise SourceDataError(
                f"Cloud Monitoring rejected the request: {exc.message}",
                source=self.name,
                query=query,
            ) from exc
        except (gexc.PermissionDenied, gexc.Unauthenticated, DefaultCredentialsError) as exc:
            raise SourceError(
                "Cloud Monitoring refused the credentials; set up Application Default Credentials "
                "(GOOGLE_APPLICATION_CREDENTIALS or a workload identity) with monitoring.viewer",
                source=self.name,
                query=query,
            ) from exc
        except gexc.GoogleAPICallError as exc:
            raise SourceError(
                f"Cloud Monitoring: {exc.message}", source=self.name, query=query
            ) from exc

    def parse(self, series: list[Any], *, query: str, metric: str) -> pd.Series:
        """Turn ``monitoring_v3.TimeSeries`` messages into the raw series.

        :param series: the time series of the answer (all pages).
        :param query: the metric type asked for (for messages).
        :param metric: the series name.
        """
        if len(series) > 1:
            raise SourceDataError(
                f"the answer holds {len(series)} time series; the cross-series reducer should "
                "have merged them, check the metric's dimensions",
                source=self.name,
                query=query,
            )
        times: list[datetime] = []
        values: list[float] = []
        for item in series:
            for position, point in enumerate(item.points):
                kind = point.value._pb.WhichOneof("value")
                if kind == "double_value":
                    value = float(point.value.double_value)
                elif kind == "int64_value":
                    value = float(point.value.int64_value)
                elif kind == "bool_value":
                    value = float(point.value.bool_value)
                elif kind == "distribution_value":
                    value = float(point.value.distribution_value.mean)
                else:
                    raise SourceDataError(
                        f"point {position} holds a {kind or 'empty'} value; only numeric metrics "
                        "can be forecast",
                        source=self.name,
                        query=query,
                    )
                # A point describes the interval ending at end_time: that is its timestamp.
                times.append(point.interval.end_time)
                values.append(value)
        return make_series(times, values, metric=metric)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _default_client(name: str) -> Any:
    try:
        from google.cloud import monitoring_v3
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise SourceError(
            "Cloud Monitoring needs the clouds extra: pip install 'mirrorcast[clouds]'", source=name
        ) from exc
    try:
        return monitoring_v3.MetricServiceClient()
    except Exception as exc:  # google.auth raises DefaultCredentialsError without ADC set up
        raise SourceError(
            f"cannot create a Cloud Monitoring client ({exc}); set up Application Default Credentials",
            source=name,
        ) from exc
