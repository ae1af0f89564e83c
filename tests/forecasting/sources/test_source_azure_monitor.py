"""The Azure Monitor source at the azure-monitor-query client boundary.

No Azure service can be reached here: these tests hand the source a recording client, check the
exact arguments it passes to ``MetricsQueryClient.query_resource``, and feed back answers built
by the SDK's own deserialiser (``MetricsQueryResult._from_generated``) from REST API JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.monitor.query import MetricsQueryResult

from forecasting.sources import (
    AzureMonitorMetricSource,
    SourceDataError,
    SourceError,
    SourceUnavailable,
)
from infra.config import AzureMonitorSource, MetricSpec

RESOURCE = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/$pool-vmss"
START = datetime(2026, 11, 20, tzinfo=UTC)
END = START + timedelta(minutes=15)


def rest_answer(series: list[list[dict[str, Any]]]) -> MetricsQueryResult:
    """What the Azure Monitor metrics REST API returns, parsed by the SDK itself."""
    return MetricsQueryResult._from_generated(  # the SDK's own response parsing
        {
            "timespan": f"{START.isoformat()}/{END.isoformat()}",
            "interval": "PT5M",
            "namespace": "Microsoft.Compute/virtualMachineScaleSets",
            "resourceregion": "westeurope",
            "value": [
                {
                    "id": "metric-id",
                    "type": "Microsoft.Insights/metrics",
                    "name": {"value": "Percentage CPU", "localizedValue": "Percentage CPU"},
                    "unit": "Percent",
                    "displayDescription": "CPU",
                    "timeseries": [{"metadatavalues": [], "data": data} for data in series],
                }
            ],
        }
    )


class RecordingClient:
    def __init__(self, *answers: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self.answers = list(answers)

    def query_resource(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def azure(client: RecordingClient) -> AzureMonitorMetricSource:
    return AzureMonitorMetricSource(
        AzureMonitorSource(resource_id=RESOURCE, interval="5m", timeout="20s"),
        client=client,
        attempts=2,
    )


POINTS: list[dict[str, Any]] = [
    {"timeStamp": "2026-11-20T00:00:00Z", "average": 41.5, "maximum": 60.0},
    {"timeStamp": "2026-11-20T00:05:00Z"},  # no samples in the interval: Azure omits the aggregate
    {"timeStamp": "2026-11-20T00:10:00Z", "average": 43.0, "maximum": 71.0},
]


def test_azure_monitor_query_construction_at_client_boundary() -> None:
    client = RecordingClient(rest_answer([POINTS]))
    spec = MetricSpec(
        query="Percentage CPU",
        statistic="max",
        dimensions={"VMName": "$pool-0", "Region": "o'hare"},
    )
    azure(client).fetch(pool="web", metric="cpu", spec=spec, start=START, end=END)
    assert client.calls == [
        {
            "resource_uri": RESOURCE.replace("$pool", "web"),
            "metric_names": ["Percentage CPU"],
            "timespan": (START, END),
            "granularity": timedelta(minutes=5),
            "aggregations": ["Maximum"],
            "filter": "Region eq 'o''hare' and VMName eq 'web-0'",
            "connection_timeout": 20.0,
            "read_timeout": 20.0,
        }
    ]


def test_azure_monitor_response_parsing_at_client_boundary() -> None:
    client = RecordingClient(rest_answer([POINTS]))
    raw = azure(client).fetch(
        pool="web", metric="cpu", spec=MetricSpec(query="Percentage CPU"), start=START, end=END
    )
    assert raw.name == "cpu" and str(raw.index.tz) == "UTC"
    assert [t.isoformat() for t in raw.index] == [
        p["timeStamp"].replace("Z", "+00:00") for p in POINTS
    ]
    np.testing.assert_array_equal(
        raw.to_numpy(), [41.5, np.nan, 43.0]
    )  # a gap stays a gap, not zero


def test_azure_monitor_split_series_are_refused_at_client_boundary() -> None:
    client = RecordingClient(rest_answer([POINTS, POINTS]))
    with pytest.raises(SourceDataError, match="2 time series"):
        azure(client).fetch(
            pool="web", metric="cpu", spec=MetricSpec(query="Percentage CPU"), start=START, end=END
        )


def test_azure_monitor_unreachable_service_is_retried_then_unavailable_at_client_boundary() -> None:
    client = RecordingClient(ServiceRequestError("Failed to establish a new connection"))
    with pytest.raises(SourceUnavailable, match="cannot reach Azure Monitor"):
        azure(client).fetch(pool="web", metric="cpu", spec=MetricSpec(), start=START, end=END)
    assert len(client.calls) == 2


def test_azure_monitor_rejected_query_is_a_data_error_at_client_boundary() -> None:
    error = HttpResponseError(
        message="Failed to find metric configuration for provider: Percentage CPUX"
    )
    error.status_code = 400
    client = RecordingClient(error)
    with pytest.raises(SourceDataError, match="HTTP 400: Failed to find metric configuration"):
        azure(client).fetch(
            pool="web", metric="cpu", spec=MetricSpec(query="Percentage CPUX"), start=START, end=END
        )
    assert len(client.calls) == 1, "a rejected query is not retried"


def test_azure_monitor_unknown_statistic_is_named() -> None:
    with pytest.raises(SourceError, match="'p99' is not an Azure Monitor aggregation"):
        azure(RecordingClient(None)).query_for(
            pool="web", metric="cpu", spec=MetricSpec(statistic="p99")
        )
