"""The Cloud Monitoring source at the google-cloud-monitoring client boundary.

No Google service can be reached here: these tests hand the source a recording client that
answers with the SDK's own pager (``ListTimeSeriesPager``) over ``monitoring_v3`` response types,
and check the exact ``ListTimeSeriesRequest`` the source builds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.pagers import ListTimeSeriesPager

from forecasting.sources import GcpMonitoringMetricSource, SourceDataError, SourceTimeout
from infra.config import GcpMonitoringSource, MetricSpec

START = datetime(2026, 11, 20, tzinfo=UTC)
END = START + timedelta(minutes=20)
METRIC = "compute.googleapis.com/instance/cpu/utilization"


def series(values: list[tuple[datetime, Any]]) -> monitoring_v3.TimeSeries:
    points = []
    for end, value in values:
        typed = {"double_value": value} if isinstance(value, float) else {"int64_value": value}
        points.append(
            monitoring_v3.Point(
                interval=monitoring_v3.TimeInterval(end_time=end),
                value=monitoring_v3.TypedValue(**typed),
            )
        )
    return monitoring_v3.TimeSeries(
        metric={"type": METRIC}, resource={"type": "gce_instance"}, points=points
    )


class RecordingClient:
    """Answers ``list_time_series`` with real pagers over the given pages (or raises)."""

    def __init__(self, pages: list[list[monitoring_v3.TimeSeries]] | Exception) -> None:
        self.pages = pages
        self.requests: list[Any] = []
        self.options: list[dict[str, Any]] = []

    def _page(self, request: Any, **_: Any) -> monitoring_v3.ListTimeSeriesResponse:
        assert not isinstance(self.pages, Exception)
        index = int(request.page_token or 0)
        self.requests.append(request)
        token = str(index + 1) if index + 1 < len(self.pages) else ""
        return monitoring_v3.ListTimeSeriesResponse(
            time_series=self.pages[index], next_page_token=token
        )

    def list_time_series(self, *, request: Any, retry: Any, timeout: float) -> ListTimeSeriesPager:
        self.options.append({"retry": retry, "timeout": timeout})
        if isinstance(self.pages, Exception):
            self.requests.append(request)
            raise self.pages
        request = monitoring_v3.ListTimeSeriesRequest(request)
        return ListTimeSeriesPager(self._page, request, self._page(request))


def gcp(client: RecordingClient) -> GcpMonitoringMetricSource:
    return GcpMonitoringMetricSource(
        GcpMonitoringSource(project="shop-prod", alignment_period="5m", timeout="15s"),
        client=client,
        attempts=2,
    )


def test_gcp_monitoring_query_construction_at_client_boundary() -> None:
    client = RecordingClient([[]])
    spec = MetricSpec(
        query=METRIC,
        statistic="Maximum",
        dimensions={"resource.labels.zone": "europe-west1-b", "instance_group": "$pool-mig"},
    )
    gcp(client).fetch(pool="web", metric="cpu", spec=spec, start=START, end=END)
    request = client.requests[0]
    assert request.name == "projects/shop-prod"
    assert request.filter == (
        f'metric.type = "{METRIC}" AND metric.labels.instance_group = "web-mig" '
        'AND resource.labels.zone = "europe-west1-b"'
    )
    assert request.interval.start_time == START and request.interval.end_time == END
    assert request.aggregation.alignment_period == timedelta(minutes=5)
    assert request.aggregation.per_series_aligner == monitoring_v3.Aggregation.Aligner.ALIGN_MAX
    assert request.aggregation.cross_series_reducer == monitoring_v3.Aggregation.Reducer.REDUCE_MAX
    assert request.view == monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL
    assert client.options == [{"retry": None, "timeout": 15.0}]


def test_gcp_monitoring_response_parsing_across_pages_at_client_boundary() -> None:
    # One series on page 1 (double and int64 points) and an empty page 2 behind a page token.
    times = [START + timedelta(minutes=5 * i) for i in range(1, 5)]
    client = RecordingClient(
        [[series([(times[3], 0.4), (times[2], 0.3), (times[1], 7), (times[0], 0.1)])], []]
    )
    raw = gcp(client).fetch(
        pool="web", metric="cpu", spec=MetricSpec(query=METRIC), start=START, end=END
    )
    assert len(client.requests) == 2, "the pager's second page was fetched"
    assert raw.name == "cpu" and str(raw.index.tz) == "UTC"
    # Cloud Monitoring answers newest first; the raw series keeps that order (cleaning sorts).
    assert list(raw.index.to_pydatetime()) == times[::-1]
    assert raw.tolist() == [0.4, 0.3, 7.0, 0.1]


def test_gcp_monitoring_several_series_are_refused_at_client_boundary() -> None:
    client = RecordingClient([[series([(END, 1.0)])], [series([(END, 2.0)])]])
    with pytest.raises(SourceDataError, match="2 time series"):
        gcp(client).fetch(
            pool="web", metric="cpu", spec=MetricSpec(query=METRIC), start=START, end=END
        )


def test_gcp_monitoring_deadline_is_retried_then_timeout_at_client_boundary() -> None:
    client = RecordingClient(gexc.DeadlineExceeded("Deadline Exceeded"))
    with pytest.raises(SourceTimeout, match="no answer within 15 s"):
        gcp(client).fetch(
            pool="web", metric="cpu", spec=MetricSpec(query=METRIC), start=START, end=END
        )
    assert len(client.requests) == 2


def test_gcp_monitoring_invalid_filter_is_a_data_error_at_client_boundary() -> None:
    client = RecordingClient(gexc.InvalidArgument("Field filter had an invalid value"))
    with pytest.raises(
        SourceDataError, match="rejected the request: Field filter had an invalid value"
    ):
        gcp(client).fetch(
            pool="web", metric="cpu", spec=MetricSpec(query=METRIC), start=START, end=END
        )
    assert len(client.requests) == 1
