"""The CloudWatch source against a real moto server on loopback (see source_servers.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from source_servers import free_port

from forecasting.sources import (
    CloudWatchMetricSource,
    SourceDataError,
    SourceError,
    SourceUnavailable,
)
from infra.config import CloudWatchSource, MetricSpec

pytestmark = pytest.mark.server

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
PERIOD = timedelta(minutes=5)


def put_series(
    endpoint: str,
    *,
    namespace: str,
    name: str,
    dimensions: dict[str, str],
    points: dict[datetime, list[float]],
) -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=endpoint)
    entries = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            "Timestamp": t,
            "Value": value,
            "Unit": "Percent",
        }
        for t, values in points.items()
        for value in values
    ]
    for offset in range(0, len(entries), 500):
        client.put_metric_data(Namespace=namespace, MetricData=entries[offset : offset + 500])


def cloudwatch(endpoint: str, **settings: object) -> CloudWatchMetricSource:
    return CloudWatchMetricSource(
        CloudWatchSource(region="us-east-1", endpoint_url=endpoint, **settings), attempts=2
    )


@pytest.mark.usefixtures("aws_credentials")
def test_cloudwatch_returns_the_data_put_there(moto_server: str) -> None:
    group = f"asg-{uuid.uuid4().hex[:8]}"
    points = {START + i * PERIOD: [20.0 + (i % 12)] for i in range(288)}
    put_series(
        moto_server,
        namespace="AWS/EC2",
        name="CPUUtilization",
        dimensions={"AutoScalingGroupName": group},
        points=points,
    )
    raw = cloudwatch(moto_server).fetch(
        pool=group,
        metric="cpu",
        spec=MetricSpec(
            query="AWS/EC2/CPUUtilization", dimensions={"AutoScalingGroupName": "$pool"}
        ),
        start=START,
        end=START + 288 * PERIOD,
    )
    assert raw.name == "cpu" and str(raw.index.tz) == "UTC"
    assert len(raw) == 288
    assert list(raw.index.to_pydatetime()) == list(points)
    assert raw.tolist() == [v[0] for v in points.values()]


@pytest.mark.usefixtures("aws_credentials")
def test_the_statistic_aggregates_within_each_period(moto_server: str) -> None:
    group = f"asg-{uuid.uuid4().hex[:8]}"
    points = {START + i * PERIOD: [10.0, 30.0 + i] for i in range(12)}
    put_series(
        moto_server,
        namespace="AWS/EC2",
        name="CPUUtilization",
        dimensions={"AutoScalingGroupName": group},
        points=points,
    )
    source = cloudwatch(moto_server)
    window = {"start": START, "end": START + 12 * PERIOD}
    dims = {"AutoScalingGroupName": group}
    maximum = source.fetch(
        pool="web",
        metric="cpu",
        spec=MetricSpec(query="AWS/EC2/CPUUtilization", dimensions=dims, statistic="Maximum"),
        **window,
    )
    average = source.fetch(
        pool="web",
        metric="cpu",
        spec=MetricSpec(query="AWS/EC2/CPUUtilization", dimensions=dims, statistic="Average"),
        **window,
    )
    assert maximum.tolist() == [30.0 + i for i in range(12)]
    assert average.tolist() == [(10.0 + 30.0 + i) / 2 for i in range(12)]


@pytest.mark.usefixtures("aws_credentials")
def test_other_dimensions_are_not_mixed_in(moto_server: str) -> None:
    ours, theirs = f"asg-{uuid.uuid4().hex[:8]}", f"asg-{uuid.uuid4().hex[:8]}"
    for group, value in ((ours, 1.0), (theirs, 99.0)):
        put_series(
            moto_server,
            namespace="AWS/EC2",
            name="CPUUtilization",
            dimensions={"AutoScalingGroupName": group},
            points={START + i * PERIOD: [value] for i in range(6)},
        )
    raw = cloudwatch(moto_server).fetch(
        pool="web",
        metric="cpu",
        spec=MetricSpec(query="AWS/EC2/CPUUtilization", dimensions={"AutoScalingGroupName": ours}),
        start=START,
        end=START + 6 * PERIOD,
    )
    assert raw.tolist() == [1.0] * 6


def test_query_must_be_namespace_slash_metric() -> None:
    source = cloudwatch("http://127.0.0.1:9")
    with pytest.raises(SourceError, match="Namespace/MetricName"):
        source.query_for(pool="web", metric="CPUUtilization", spec=MetricSpec())
    entry = source.query_for(
        pool="web", metric="cpu", spec=MetricSpec(query="AWS/EC2/CPUUtilization")
    )
    assert entry["MetricStat"]["Metric"]["Namespace"] == "AWS/EC2"
    assert entry["MetricStat"]["Metric"]["MetricName"] == "CPUUtilization"
    assert entry["MetricStat"]["Period"] == 300


@pytest.mark.usefixtures("aws_credentials")
def test_endpoint_down_raises_source_unavailable() -> None:
    source = CloudWatchMetricSource(
        CloudWatchSource(
            region="us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}", timeout="2s"
        ),
        attempts=2,
    )
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        source.fetch(
            pool="web",
            metric="cpu",
            spec=MetricSpec(query="AWS/EC2/CPUUtilization"),
            start=START,
            end=START + PERIOD * 3,
        )


@pytest.mark.usefixtures("aws_credentials")
def test_rejected_request_raises_data_error_with_cloudwatch_message(moto_server: str) -> None:
    with pytest.raises(SourceDataError, match="EndTime must be greater than StartTime"):
        cloudwatch(moto_server).fetch(
            pool="web",
            metric="cpu",
            spec=MetricSpec(query="AWS/EC2/CPUUtilization"),
            start=START,
            end=START - PERIOD,
        )


@pytest.mark.usefixtures("aws_credentials")
def test_pages_are_followed_by_next_token_at_client_boundary() -> None:
    # moto answers in one page, so paging is checked with botocore's Stubber on a real client.
    client = boto3.client("cloudwatch", region_name="us-east-1")
    source = CloudWatchMetricSource(CloudWatchSource(region="us-east-1"), client=client)
    spec = MetricSpec(query="AWS/EC2/CPUUtilization")
    entry = source.query_for(pool="web", metric="cpu", spec=spec)
    times = [START + i * PERIOD for i in range(4)]
    expected = {
        "MetricDataQueries": [entry],
        "StartTime": START,
        "EndTime": times[-1],
        "ScanBy": "TimestampAscending",
    }
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "m0",
                        "Timestamps": times[:2],
                        "Values": [1.0, 2.0],
                        "StatusCode": "PartialData",
                    }
                ],
                "NextToken": "page-2",
            },
            expected,
        )
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "m0",
                        "Timestamps": times[2:],
                        "Values": [3.0, 4.0],
                        "StatusCode": "Complete",
                    }
                ],
            },
            {**expected, "NextToken": "page-2"},
        )
        raw = source.fetch(pool="web", metric="cpu", spec=spec, start=START, end=times[-1])
        stub.assert_no_pending_responses()
    assert raw.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert list(raw.index.to_pydatetime()) == times
