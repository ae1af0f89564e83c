"""A Prometheus that answers badly: every answer is a typed source error naming the server and query.

A tiny HTTP server of our own on a free loopback port speaks the Prometheus HTTP API wrongly on
purpose (garbage, truncated bodies, error statuses, wrong shapes, slowness). The well-behaved
cases (a real Prometheus, down, black hole) are in ``tests/forecasting/sources``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pytest
from local_http import local_http_server

from forecasting.sources import (
    PrometheusMetricSource,
    SourceDataError,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
)
from infra.config import MetricSpec, PrometheusSource

END = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
START = END - timedelta(hours=1)


def _matrix(values: list[list[Any]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
    }


T = START.timestamp()
ANSWERS: dict[str, tuple[int, str | bytes, float]] = {
    # name: (HTTP status, body, seconds to wait before answering)
    "html": (200, "<html><body>Welcome to nginx!</body></html>", 0),
    "bad-gateway": (502, "<html>502 Bad Gateway</html>", 0),
    "empty": (200, "", 0),
    "not-an-object": (200, "[1, 2, 3]", 0),
    "data-is-text": (200, json.dumps({"status": "success", "data": "oops"}), 0),
    "result-is-text": (
        200,
        json.dumps({"status": "success", "data": {"resultType": "matrix", "result": "x"}}),
        0,
    ),
    "series-is-a-list": (
        200,
        json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [[1, 2]]}}),
        0,
    ),
    "vector": (200, json.dumps({"status": "success", "data": {"resultType": "vector"}}), 0),
    "short-pairs": (200, json.dumps(_matrix([[T], [T + 60, "1"]])), 0),
    "text-values": (200, json.dumps(_matrix([[T, "lots"]])), 0),
    "absurd-time": (200, json.dumps(_matrix([[1e20, "1"]])), 0),
    "bad-data": (
        400,
        json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}),
        0,
    ),
    "unavailable": (
        503,
        json.dumps({"status": "error", "errorType": "unavailable", "error": "shutting down"}),
        0,
    ),
    "server-timeout": (
        503,
        json.dumps({"status": "error", "errorType": "timeout", "error": "query timed out"}),
        0,
    ),
    "slow": (200, json.dumps(_matrix([[T, "1"]])), 3.0),
    "truncated": (200, b"TRUNCATED", 0),
    # Prometheus itself sends these: the raw series keeps them for the engine to clean.
    "odd-but-valid": (
        200,
        json.dumps(
            _matrix([[T + 120, "5"], [T, "NaN"], [T + 60, "-3"], [T + 60, "-3"], [T + 180, "+Inf"]])
        ),
        0,
    ),
}


class _BadPrometheus(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        # The client may give up first (the 'slow' answer): that is the point.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(length).decode()
        query = next((p.split("=", 1)[1] for p in form.split("&") if p.startswith("query=")), "")
        status, body, delay = ANSWERS[query]
        time.sleep(delay)
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if query == "truncated":
            # Promise more than is sent, then hang up: a proxy dying mid-answer.
            self.send_header("Content-Length", str(len(data) + 1000))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def bad_prometheus() -> Iterator[str]:
    with local_http_server(_BadPrometheus) as url:
        yield url


def _fetch(url: str, query: str, *, timeout: str = "1s") -> Any:
    source = PrometheusMetricSource(
        PrometheusSource.model_validate({"url": url, "timeout": timeout, "step": "1m"}),
        attempts=2,
    )
    return source.fetch(
        pool="web", metric="cpu", spec=MetricSpec(query=query), start=START, end=END
    )


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("html", SourceDataError),
        ("bad-gateway", SourceUnavailable),
        ("empty", SourceDataError),
        ("not-an-object", SourceDataError),
        ("data-is-text", SourceDataError),
        ("result-is-text", SourceDataError),
        ("series-is-a-list", SourceDataError),
        ("vector", SourceDataError),
        ("short-pairs", SourceDataError),
        ("text-values", SourceDataError),
        ("absurd-time", SourceDataError),
        ("bad-data", SourceDataError),
        ("unavailable", SourceUnavailable),
        ("server-timeout", SourceTimeout),
        ("slow", SourceTimeout),
        ("truncated", SourceUnavailable),
    ],
)
def test_a_bad_prometheus_answer_is_a_typed_error_naming_the_server_and_query(
    bad_prometheus: str, answer: str, error: type[SourceError]
) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        _fetch(bad_prometheus, answer)

    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    message = str(caught.value)
    assert message.startswith(f"prometheus:{bad_prometheus} (query {answer!r}): "), message
    assert "Traceback" not in message
    # Two attempts at a 1 s timeout, plus a short backoff: bounded, never a hang.
    assert time.monotonic() - started < 8


def test_odd_but_valid_samples_come_back_raw_for_the_engine_to_clean(bad_prometheus: str) -> None:
    series = _fetch(bad_prometheus, "odd-but-valid")

    # Reordered, duplicated, NaN, negative and infinite samples are passed on as stored.
    assert len(series) == 5
    assert np.isnan(series.iloc[1]) and series.iloc[2] == -3 and np.isinf(series.iloc[4])
    assert not series.index.is_monotonic_increasing
