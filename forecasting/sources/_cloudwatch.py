"""Metrics from AWS CloudWatch through boto3 ``GetMetricData``.

The query is ``Namespace/MetricName`` (the namespace may itself contain ``/``:
``AWS/EC2/CPUUtilization`` is namespace ``AWS/EC2``, metric ``CPUUtilization``). The metric's
``dimensions`` (``$pool`` expanded) and ``statistic`` select and aggregate the data; the period
comes from the source config. Answers are paginated (``NextToken``) by boto3's paginator.
Credentials come from boto3's usual chain (environment, profile, instance role).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import boto3
import pandas as pd
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

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
from infra.config import CloudWatchSource, MetricSpec

__all__ = ["CloudWatchMetricSource"]

logger = logging.getLogger(__name__)

_RETRYABLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure", "InternalError"}
)


class CloudWatchMetricSource:
    """Reads metric history from CloudWatch.

    :param spec: the stack's ``metrics`` section (``type: cloudwatch``): region, optional
        ``endpoint_url`` (a VPC endpoint, LocalStack or moto), period and request timeout.
    :param client: a boto3 CloudWatch client to use instead of creating one (tests, custom
        sessions); default one built from ``spec``.
    :param attempts: tries per request for transient failures, default 3.
    """

    def __init__(
        self,
        spec: CloudWatchSource,
        *,
        client: Any | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        self.spec = spec
        self.name = f"cloudwatch:{spec.region}" + (
            f"@{spec.endpoint_url}" if spec.endpoint_url else ""
        )
        self.attempts = attempts
        timeout = spec.timeout.total_seconds()
        self.client = client or boto3.client(
            "cloudwatch",
            region_name=spec.region,
            endpoint_url=spec.endpoint_url,
            # tenacity retries around the whole fetch; botocore's own retries stay minimal so
            # an unreachable endpoint fails in seconds, not minutes.
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )

    def __repr__(self) -> str:
        return f"CloudWatchMetricSource({self.name!r})"

    def query_for(self, *, pool: str, metric: str, spec: MetricSpec) -> dict[str, Any]:
        """The ``MetricDataQueries`` entry for ``metric`` of ``pool``.

        :raises SourceError: the query is not ``Namespace/MetricName``.
        """
        query = expand_pool(spec.query or metric, pool)
        namespace, _, name = query.rpartition("/")
        if not namespace or not name:
            raise SourceError(
                "a CloudWatch query is Namespace/MetricName, e.g. AWS/EC2/CPUUtilization",
                source=self.name,
                query=query,
            )
        period = int(self.spec.period.total_seconds())
        dimensions = [
            {"Name": key, "Value": expand_pool(value, pool)}
            for key, value in sorted(spec.dimensions.items())
        ]
        return {
            "Id": "m0",
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                "Period": period,
                "Stat": spec.statistic,
            },
            "ReturnData": True,
        }

    def fetch(
        self, *, pool: str, metric: str, spec: MetricSpec, start: datetime, end: datetime
    ) -> pd.Series:
        """The raw series between ``start`` and ``end`` at the configured period.

        :param pool: the pool name (substituted for ``$pool`` in the query and dimensions).
        :param metric: the metric's name in stack config; names the returned series.
        :param spec: the metric's definition (``query``, ``dimensions``, ``statistic``).
        :param start: first instant (tz-aware).
        :param end: last instant (tz-aware).
        :raises SourceUnavailable: the endpoint cannot be reached or throttles (after retries).
        :raises SourceTimeout: no answer within ``timeout``.
        :raises SourceDataError: CloudWatch rejected the request or answered with an error status.
        """
        entry = self.query_for(pool=pool, metric=metric, spec=spec)
        label = spec.query or metric
        lo = to_utc(start, label="start", source=self.name)
        hi = to_utc(end, label="end", source=self.name)
        times, values = with_retries(
            lambda: self._get(entry, lo, hi, label=label),
            attempts=self.attempts,
            what=f"{self.name} GetMetricData",
        )
        return make_series(times, values, metric=metric)

    def _get(
        self, entry: dict[str, Any], start: pd.Timestamp, end: pd.Timestamp, *, label: str
    ) -> tuple[list[datetime], list[float]]:
        times: list[datetime] = []
        values: list[float] = []
        try:
            paginator = self.client.get_paginator("get_metric_data")
            pages = paginator.paginate(
                MetricDataQueries=[entry],
                StartTime=start.to_pydatetime(),
                EndTime=end.to_pydatetime(),
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for message in page.get("Messages", []):
                    logger.info("%s: %s: %s", self.name, message.get("Code"), message.get("Value"))
                for result in page.get("MetricDataResults", []):
                    status = result.get("StatusCode", "Complete")
                    if status not in ("Complete", "PartialData"):
                        detail = "; ".join(
                            f"{m.get('Code')}: {m.get('Value')}" for m in result.get("Messages", [])
                        )
                        raise SourceDataError(
                            f"CloudWatch answered with status {status} ({detail or 'no detail'})",
                            source=self.name,
                            query=label,
                        )
                    stamps = result.get("Timestamps", [])
                    points = result.get("Values", [])
                    if len(stamps) != len(points):
                        raise SourceDataError(
                            f"the answer has {len(stamps)} timestamps but {len(points)} values",
                            source=self.name,
                            query=label,
                        )
                    times.extend(stamps)
                    values.extend(float(v) for v in points)
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise SourceTimeout(
                f"no answer within {self.spec.timeout.total_seconds():g} s (metrics.timeout)",
                source=self.name,
                query=label,
            ) from exc
        except EndpointConnectionError as exc:
            raise SourceUnavailable(
                f"cannot connect to {exc.kwargs.get('endpoint_url', 'the endpoint')}",
                source=self.name,
                query=label,
            ) from exc
        except NoCredentialsError as exc:
            raise SourceError(
                "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, "
                "or run with an instance role)",
                source=self.name,
                query=label,
            ) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            text = f"CloudWatch {code}: {error.get('Message', '')}"
            if code in _RETRYABLE_CODES:
                raise SourceUnavailable(text, source=self.name, query=label) from exc
            raise SourceDataError(text, source=self.name, query=label) from exc
        except BotoCoreError as exc:
            raise SourceError(f"boto3 failed: {exc}", source=self.name, query=label) from exc
        return times, values
