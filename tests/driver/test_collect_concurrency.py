"""Collection at scale: requests in flight sized by ``driver.collect_concurrency``, a deadline
per request (``metrics.timeout``) and per cycle (``driver.collect_timeout``), and a cut-off
collection's partial results used and reported in one line.

The metrics backend is a Prometheus HTTP API on loopback that answers every ``query_range``
after a fixed latency, in the answer format the Prometheus documentation gives
(https://prometheus.io/docs/prometheus/latest/querying/api/#range-queries: ``status``,
``data.resultType: matrix``, ``data.result[].values`` as ``[unix seconds, "value"]``).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from local_http import local_http_server

from driver.collect import collect_history
from infra.config import MirrorcastConfig, PrometheusSource, load_stack

LATENCY = 0.25
"""Seconds every answer takes (a loaded Prometheus, or one far away)."""
END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class _InFlight:
    """How many requests the server is answering at once, and the most seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self.now -= 1


class _SlowPrometheus(BaseHTTPRequestHandler):
    in_flight = _InFlight()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        start, end = float(form["start"][0]), float(form["end"][0])
        step = float(form["step"][0])
        with self.in_flight:
            time.sleep(LATENCY)
        values = [[start + i * step, "42"] for i in range(int((end - start) // step) + 1)]
        body = json.dumps(
            {
                "status": "success",
                "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    _SlowPrometheus.in_flight = _InFlight()
    with local_http_server(_SlowPrometheus) as url:
        yield url


def _fleet(
    project: Path, url: str, *, pools: int, concurrency: int, deadline: str
) -> MirrorcastConfig:
    """The demo stack with ``pools`` copies of its pool (2 metrics each) on that Prometheus."""
    config = load_stack("demo", project)
    web = config.pools["web"]
    return config.model_copy(
        update={
            "metrics": PrometheusSource(url=url, timeout=timedelta(seconds=5)),
            "pools": {f"web{i}": web for i in range(pools)},
            "forecast": config.forecast.model_copy(update={"history": timedelta(hours=6)}),
            "driver": config.driver.model_copy(
                update={
                    "collect_concurrency": concurrency,
                    "collect_timeout": timedelta(seconds=float(deadline)),
                }
            ),
        }
    )


class TestConcurrencyFromConfig:
    # Counted at the server, not timed: on a loaded machine a wall-clock bound fails for the
    # load's sake, while the requests the server answers at once are the setting's own effect.
    @pytest.mark.parametrize(("concurrency", "at_least"), [(1, 1), (4, 2), (24, 5)])
    def test_the_requests_in_flight_are_the_configured_concurrency(
        self, project: Path, prometheus: str, concurrency: int, at_least: int
    ) -> None:
        config = _fleet(project, prometheus, pools=12, concurrency=concurrency, deadline="60")
        collected = collect_history(config, root=project, now=END)

        assert collected.summary is None and collected.degraded == []
        assert sum(len(by) for by in collected.history.values()) == 24
        # Never more than configured, and more than the old fixed 4 threads when 24 are
        # allowed (each answer sleeps 0.25 s, so requests sent together overlap however slow
        # the machine; the lower bounds leave room for threads that start late under load).
        assert at_least <= _SlowPrometheus.in_flight.most <= concurrency


class TestACutOffCollectionIsUsedAndReported:
    def test_the_series_read_by_the_deadline_are_kept_and_one_line_counts_them(
        self, project: Path, prometheus: str
    ) -> None:
        config = _fleet(project, prometheus, pools=12, concurrency=1, deadline="1.1")
        collected = collect_history(config, root=project, now=END)

        read = sum(len(by) for by in collected.history.values())
        assert 1 <= read < 24
        assert collected.summary is not None
        assert collected.summary.startswith(f"collected {read} of 24 series within 1.1s")
        assert "driver.collect_concurrency" in collected.summary
        late = [line for line in collected.degraded if "did not answer within 1.1s" in line]
        assert len(late) == 24 - read
        for by in collected.history.values():
            for series in by.values():
                assert len(series) > 0 and float(series.iloc[-1]) == 42.0
