"""The Prometheus source against a real Prometheus server (see conftest.py)."""

from __future__ import annotations

import http.server
import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from local_http import local_http_server
from source_servers import (
    BACKFILL_STEP,
    LIVE_VALUE,
    PrometheusServer,
    backfill_value,
    free_port,
)

from forecasting.sources import (
    MAX_POINTS_PER_QUERY,
    PrometheusMetricSource,
    SourceDataError,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
)
from forecasting.sources._prometheus import chunk_range
from infra.config import MetricSpec, PrometheusSource

pytestmark = pytest.mark.server


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls += 1
        return super().request(*args, **kwargs)


def source(url: str, **settings: Any) -> PrometheusMetricSource:
    attempts = settings.pop("attempts", 2)
    session = settings.pop("session", None)
    return PrometheusMetricSource(
        PrometheusSource(url=url, **settings), session=session, attempts=attempts
    )


def test_backfilled_weeks_come_back_with_their_values(prometheus_server: PrometheusServer) -> None:
    server = prometheus_server
    raw = source(server.url, step="5m").fetch(
        pool="web",
        metric="load",
        spec=MetricSpec(query='demo_load{pool="web"}'),
        start=at(server.start),
        end=at(server.end),
    )
    expected_times = np.arange(server.start, server.end + 1, BACKFILL_STEP)
    assert raw.name == "load"
    assert str(raw.index.tz) == "UTC"
    assert len(raw) == len(expected_times) == 21 * 288 + 1
    assert (raw.index.asi8 // 10**9 == expected_times).all()
    assert raw.to_numpy() == pytest.approx(
        [backfill_value(int(t), server.start) for t in expected_times]
    )


def test_long_ranges_are_split_under_the_point_limit(prometheus_server: PrometheusServer) -> None:
    server = prometheus_server
    session = CountingSession()
    # One-minute steps over three weeks: 30,241 points, more than one answer may hold.
    raw = source(server.url, step="1m", session=session).fetch(
        pool="web",
        metric="load",
        spec=MetricSpec(query="demo_load"),
        start=at(server.start),
        end=at(server.end),
    )
    points = 21 * 1440 + 1
    assert points > MAX_POINTS_PER_QUERY
    assert session.calls == -(-points // MAX_POINTS_PER_QUERY) == 3
    assert len(raw) == points
    assert raw.index.is_unique and raw.index.is_monotonic_increasing
    # Between samples Prometheus answers with the latest one (its lookback): check a few.
    for offset in (0, 60, 7 * 60, 11_000 * 60, 30_000 * 60):
        t = server.start + offset
        latest = server.start + (offset // BACKFILL_STEP) * BACKFILL_STEP
        assert raw[pd.Timestamp(t, unit="s", tz="UTC")] == backfill_value(latest, server.start)


def test_live_scraped_series_is_read_back(prometheus_server: PrometheusServer) -> None:
    now = datetime.now(UTC)
    raw = source(prometheus_server.url, step="1s").fetch(
        pool="web",
        metric="live",
        spec=MetricSpec(query="mirrorcast_test_load"),
        start=now - timedelta(seconds=20),
        end=now,
    )
    assert len(raw) >= 1
    assert (raw.dropna() == LIVE_VALUE).all()


def test_dimensions_become_label_matchers_with_the_pool_expanded(
    prometheus_server: PrometheusServer,
) -> None:
    server = prometheus_server
    prom = source(server.url, step="1h")
    spec = MetricSpec(query="demo_load", dimensions={"pool": "$pool"})
    assert prom.query_for(pool="web", metric="load", spec=spec) == 'demo_load{pool="web"}'
    window = {"start": at(server.start), "end": at(server.start + 86400)}
    assert len(prom.fetch(pool="web", metric="load", spec=spec, **window)) == 25
    assert prom.fetch(pool="db", metric="load", spec=spec, **window).empty


def test_dimensions_on_a_promql_expression_are_refused() -> None:
    prom = source("http://127.0.0.1:9")
    with pytest.raises(SourceError, match="write the label matchers into the PromQL"):
        prom.query_for(
            pool="web", metric="x", spec=MetricSpec(query="sum(rate(x[5m]))", dimensions={"a": "b"})
        )


def test_bad_promql_raises_data_error_with_prometheus_message(
    prometheus_server: PrometheusServer,
) -> None:
    server = prometheus_server
    with pytest.raises(SourceDataError) as caught:
        source(server.url).fetch(
            pool="web",
            metric="load",
            spec=MetricSpec(query="rate(demo_load[5m]"),
            start=at(server.start),
            end=at(server.start + 3600),
        )
    message = str(caught.value)
    assert "bad_data" in message and "unclosed left parenthesis" in message
    assert "rate(demo_load[5m]" in message


def test_a_query_selecting_several_series_must_be_aggregated(
    prometheus_server: PrometheusServer,
) -> None:
    now = datetime.now(UTC)
    with pytest.raises(SourceDataError, match=r"selects \d+ series .*aggregate it"):
        source(prometheus_server.url, step="1s").fetch(
            pool="web",
            metric="x",
            spec=MetricSpec(query='{job="test-exporter"}'),
            start=now - timedelta(seconds=10),
            end=now,
        )


def test_query_timing_out_in_prometheus_raises_source_timeout(
    prometheus_server: PrometheusServer,
) -> None:
    server = prometheus_server
    session = CountingSession()
    slow = source(server.url, step="5m", query_timeout="0.001s", session=session)
    with pytest.raises(SourceTimeout, match="query timed out"):
        slow.fetch(
            pool="web",
            metric="load",
            spec=MetricSpec(query="sum_over_time(demo_load[3w])"),
            start=at(server.start),
            end=at(server.end),
        )
    assert session.calls == 2, "a timeout is transient: retried, then raised"


def test_server_down_raises_source_unavailable() -> None:
    down = source(f"http://127.0.0.1:{free_port()}")
    now = datetime.now(UTC)
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        down.fetch(
            pool="web", metric="cpu", spec=MetricSpec(), start=now - timedelta(hours=1), end=now
        )


def test_a_server_that_never_answers_raises_source_timeout(black_hole: str) -> None:
    hung = source(black_hole, timeout="0.3s")
    now = datetime.now(UTC)
    with pytest.raises(SourceTimeout, match=r"no answer within 0.3 s"):
        hung.fetch(
            pool="web", metric="cpu", spec=MetricSpec(), start=now - timedelta(hours=1), end=now
        )


class _AuthRejectingHandler(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_POST(self) -> None:
        header = self.headers.get("Authorization")
        type(self).seen.append(header)
        # A careless proxy echoing the credential back: it must not reach our messages.
        body = f"401 Unauthorized: invalid credential {header}".encode()
        self.send_response(401)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def auth_proxy() -> Iterator[str]:
    _AuthRejectingHandler.seen = []
    with local_http_server(_AuthRejectingHandler) as url:
        yield url


def test_bearer_token_is_sent_but_never_appears_in_errors_or_logs(
    auth_proxy: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = "s3cr3t-token-value"
    monkeypatch.setenv("MIRRORCAST_TEST_PROM_TOKEN", token)
    prom = source(auth_proxy, bearer_token_env="MIRRORCAST_TEST_PROM_TOKEN")
    now = datetime.now(UTC)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceDataError) as caught:
        prom.fetch(
            pool="web", metric="cpu", spec=MetricSpec(), start=now - timedelta(hours=1), end=now
        )
    assert _AuthRejectingHandler.seen == [f"Bearer {token}"]
    assert "HTTP 401" in str(caught.value)
    assert token not in str(caught.value)
    assert token not in caplog.text


def test_missing_token_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIRRORCAST_TEST_UNSET", raising=False)
    prom = source("http://127.0.0.1:9", bearer_token_env="MIRRORCAST_TEST_UNSET")
    now = datetime.now(UTC)
    with pytest.raises(SourceError, match="MIRRORCAST_TEST_UNSET"):
        prom.fetch(
            pool="web", metric="cpu", spec=MetricSpec(), start=now - timedelta(hours=1), end=now
        )


def test_chunks_cover_the_range_once_and_stay_under_the_limit() -> None:
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    end = start + pd.Timedelta(minutes=25_000)
    chunks = chunk_range(start, end, step=timedelta(minutes=1))
    assert chunks[0][0] == start and chunks[-1][1] == end
    for lo, hi in chunks:
        assert (hi - lo) / pd.Timedelta(minutes=1) + 1 <= MAX_POINTS_PER_QUERY
    for (_, previous_end), (next_start, _) in itertools.pairwise(chunks):
        assert next_start == previous_end + pd.Timedelta(minutes=1)
    assert sum(int((hi - lo) / pd.Timedelta(minutes=1)) + 1 for lo, hi in chunks) == 25_001


def test_credentials_in_the_url_are_not_shown() -> None:
    prom = source("http://alice:hunter2@127.0.0.1:9/prom")
    assert prom.name == "prometheus:http://127.0.0.1:9/prom"
    assert "hunter2" not in repr(prom)
