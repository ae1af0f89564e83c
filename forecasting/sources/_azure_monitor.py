"""Metrics from Azure Monitor through ``azure-monitor-query`` (``MetricsQueryClient.query_resource``).

The query is an Azure Monitor metric name (``Percentage CPU``, ``Requests``); the resource is
``resource_id`` from the source config (``$pool`` expanded, so one source can serve pools named
after their scale sets). The metric's ``statistic`` picks the aggregation (``Average``,
``Maximum``, ``Minimum``, ``Total``/``Sum``, ``Count``) and its ``dimensions`` become an OData
``$filter`` (``name eq 'value' and ...``). Credentials come from ``azure-identity``'s
``DefaultAzureCredential`` (environment, workload identity, managed identity, Azure CLI).

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
from infra.config import AzureMonitorSource, MetricSpec

__all__ = ["AzureMonitorMetricSource"]

logger = logging.getLogger(__name__)

_AGGREGATIONS = {
    "average": "Average",
    "avg": "Average",
    "mean": "Average",
    "maximum": "Maximum",
    "max": "Maximum",
    "minimum": "Minimum",
    "min": "Minimum",
    "total": "Total",
    "sum": "Total",
    "count": "Count",
    "samplecount": "Count",
}
"""Statistic names people write -> Azure Monitor aggregation types."""


class AzureMonitorMetricSource:
    """Reads metric history from Azure Monitor.

    :param spec: the stack's ``metrics`` section (``type: azure_monitor``): resource id,
        interval (granularity) and request timeout.
    :param client: a ``MetricsQueryClient`` (or anything with the same ``query_resource``) to use;
        default one built with ``DefaultAzureCredential``.
    :param attempts: tries per request for transient failures, default 3.
    """

    def __init__(
        self,
        spec: AzureMonitorSource,
        *,
        client: Any | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        self.spec = spec
        self.name = f"azure_monitor:{spec.resource_id}"
        self.attempts = attempts
        self.client = client if client is not None else _default_client(spec, self.name)

    def __repr__(self) -> str:
        return f"AzureMonitorMetricSource({self.spec.resource_id!r})"

    def query_for(self, *, pool: str, metric: str, spec: MetricSpec) -> dict[str, Any]:
        """The keyword arguments of ``query_resource`` for ``metric`` of ``pool`` (without the timespan)."""
        name = expand_pool(spec.query or metric, pool)
        aggregation = _AGGREGATIONS.get(spec.statistic.lower())
        if aggregation is None:
            raise SourceError(
                f"statistic {spec.statistic!r} is not an Azure Monitor aggregation; use one of "
                "Average, Maximum, Minimum, Total, Count",
                source=self.name,
                query=name,
            )
        arguments: dict[str, Any] = {
            # A metric may name its own resource (the driver puts a stack output's value
            # there: driver/stack_outputs.py).
            "resource_uri": expand_pool(spec.resource or self.spec.resource_id, pool),
            "metric_names": [name],
            "granularity": self.spec.interval,
            "aggregations": [aggregation],
        }
        if spec.dimensions:
            arguments["filter"] = " and ".join(
                f"{key} eq '{expand_pool(value, pool).replace(chr(39), chr(39) * 2)}'"
                for key, value in sorted(spec.dimensions.items())
            )
        return arguments

    def fetch(
        self, *, pool: str, metric: str, spec: MetricSpec, start: datetime, end: datetime
    ) -> pd.Series:
        """The raw series between ``start`` and ``end`` at the configured interval.

        :param pool: the pool name (substituted for ``$pool`` in resource id, query, dimensions).
        :param metric: the metric's name in stack config; names the returned series.
        :param spec: the metric's definition (``query``, ``dimensions``, ``statistic``).
        :param start: first instant (tz-aware).
        :param end: last instant (tz-aware).
        :raises SourceUnavailable: the service cannot be reached (after retries).
        :raises SourceTimeout: no answer within ``timeout``.
        :raises SourceDataError: the request was rejected, or the answer holds several series.
        """
        arguments = self.query_for(pool=pool, metric=metric, spec=spec)
        query = arguments["metric_names"][0]
        lo = to_utc(start, label="start", source=self.name).to_pydatetime()
        hi = to_utc(end, label="end", source=self.name).to_pydatetime()
        result = with_retries(
            lambda: self._call(arguments, lo, hi, query=query),
            attempts=self.attempts,
            what=f"{self.name} query_resource",
        )
        return self.parse(
            result, query=query, aggregation=arguments["aggregations"][0], metric=metric
        )

    def _call(
        self, arguments: dict[str, Any], start: datetime, end: datetime, *, query: str
    ) -> Any:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceRequestTimeoutError,
            ServiceResponseError,
            ServiceResponseTimeoutError,
        )

        try:
            return self.client.query_resource(
                timespan=(start, end),
                connection_timeout=self.spec.timeout.total_seconds(),
                read_timeout=self.spec.timeout.total_seconds(),
                **arguments,
            )
        except (ServiceRequestTimeoutError, ServiceResponseTimeoutError) as exc:
            raise SourceTimeout(
                f"no answer within {self.spec.timeout.total_seconds():g} s",
                source=self.name,
                query=query,
            ) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise SourceUnavailable(
                f"cannot reach Azure Monitor ({exc.message})", source=self.name, query=query
            ) from exc
        except ClientAuthenticationError as exc:
            raise SourceError(
                "Azure authentication failed; configure DefaultAzureCredential (AZURE_CLIENT_ID/"
                "AZURE_TENANT_ID/AZURE_CLIENT_SECRET, a managed identity, or az login)",
                source=self.name,
                query=query,
            ) from exc
        except HttpResponseError as exc:
            status = exc.status_code or 0
            text = f"Azure Monitor HTTP {status}: {exc.message}"
            if status == 429 or status >= 500:
                raise SourceUnavailable(text, source=self.name, query=query) from exc
            raise SourceDataError(text, source=self.name, query=query) from exc

    def parse(self, result: Any, *, query: str, aggregation: str, metric: str) -> pd.Series:
        """Turn an ``azure.monitor.query.MetricsQueryResult`` into the raw series.

        :param result: the SDK's answer.
        :param query: the metric name asked for (for messages).
        :param aggregation: the aggregation asked for; its field is read from each value.
        :param metric: the series name.
        """
        metrics = list(getattr(result, "metrics", None) or [])
        if not metrics:
            raise SourceDataError("the answer holds no metric", source=self.name, query=query)
        series = list(metrics[0].timeseries or [])
        if len(series) > 1:
            raise SourceDataError(
                f"the answer holds {len(series)} time series (split by dimension); narrow the "
                "metric's dimensions to one value each",
                source=self.name,
                query=query,
            )
        field = aggregation.lower()
        times: list[datetime] = []
        values: list[float | None] = []
        for element in series:
            for position, point in enumerate(element.data or []):
                if point.timestamp is None:
                    raise SourceDataError(
                        f"value {position} has no timestamp", source=self.name, query=query
                    )
                times.append(point.timestamp)
                # Azure leaves the aggregate out when no sample fell in the interval: a gap.
                values.append(getattr(point, field, None))
        return make_series(times, values, metric=metric)


def _default_client(spec: AzureMonitorSource, name: str) -> Any:
    try:
        from azure.identity import DefaultAzureCredential
        from azure.monitor.query import MetricsQueryClient
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise SourceError(
            "Azure Monitor needs the clouds extra: pip install 'mirrorcast[clouds]'", source=name
        ) from exc
    return MetricsQueryClient(DefaultAzureCredential())
