"""Pools whose metric is one selector but for the pool's label are read with one query per batch.

Against a real Prometheus (source_servers.py: ``demo_fleet{pool="f0"}`` ... ``{pool="f4"}``
backfilled by promtool), counting the requests with the server's own
``prometheus_http_requests_total``: one query per ``batch_series`` pools instead of one per
pool, the answer split per pool to the values the server holds, a pool the answer lacks and a
pool with two series reported by name, a batch that times out or is over the size cap split in halves (down to single
series) and a batch whose answer is malformed read again series by series.
"""

from __future__ import annotations

import http.server
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest
import requests
from local_http import local_http_server
from object_graph import array_bytes
from source_servers import (
    FLEET_DOUBLED,
    FLEET_POOLS,
    PrometheusServer,
    fleet_value,
    query_range_requests,
)

from driver.collect import collect_history
from driver.stack_template import fleet_stack_text
from infra.config import MirrorcastConfig, load_stack

pytestmark = pytest.mark.server

STEP = timedelta(minutes=5)


def fleet(
    project: Path,
    url: str,
    pools: tuple[str, ...] = FLEET_POOLS,
    *,
    source: str = "",
    query: str = 'demo_fleet{pool="$pool"}',
) -> MirrorcastConfig:
    text = fleet_stack_text(
        pools=pools,
        metrics=f"{{type: prometheus, url: '{url}', step: 5m{source}}}",
        pool_metrics=f"{{load: {{unit: count, query: '{query}'}}}}",
        forecast="{horizon: 1h, history: 14d, models: [seasonal_naive]}",
    )
    (project / "stacks" / "Pulumi.fleet.yaml").write_text(text)
    return load_stack("fleet", project)


def cycle_time(server: PrometheusServer) -> datetime:
    # A day before the backfill ends, off the samples' grid (as a real cycle's clock is).
    return datetime.fromtimestamp(server.end - 86_400 + 17.25, tz=UTC)


def assert_known_values(config: MirrorcastConfig, history: Any, server: PrometheusServer) -> None:
    for pool in config.pools:
        series = history[pool]["load"]
        stamps = series.index.asi8 // 10**9
        assert len(series) in (14 * 288, 14 * 288 + 1)  # the window, both ends inclusive
        # Query-range points sit between samples; each is the sample at or before it.
        sampled = stamps - (stamps - server.start) % 300
        assert series.to_numpy() == pytest.approx(
            [fleet_value(int(t), server.start, pool) for t in sampled]
        )


class TestOneQueryPerBatch:
    def test_five_pools_sharing_a_selector_cost_one_request_each_cycle(
        self, stack_project: Path, prometheus_server: PrometheusServer
    ) -> None:
        config = fleet(stack_project, prometheus_server.url)
        now = cycle_time(prometheus_server)
        before = query_range_requests(prometheus_server.url)
        first = collect_history(config, root=stack_project, now=now)
        middle = query_range_requests(prometheus_server.url)
        second = collect_history(config, root=stack_project, now=now + STEP, kept=first.kept)
        after = query_range_requests(prometheus_server.url)

        assert (middle - before, after - middle) == (1, 1)  # one a pool before: 5 and 5
        assert first.requests == second.requests == 1
        assert first.degraded == second.degraded == []
        assert second.incremental == len(FLEET_POOLS)
        assert_known_values(config, first.history, prometheus_server)
        assert_known_values(config, second.history, prometheus_server)

    def test_the_split_answer_equals_reading_each_pool_on_its_own(
        self, stack_project: Path, prometheus_server: PrometheusServer
    ) -> None:
        now = cycle_time(prometheus_server)
        batched = collect_history(
            fleet(stack_project, prometheus_server.url), root=stack_project, now=now
        )
        alone = collect_history(
            fleet(stack_project, prometheus_server.url, source=", batch_series: 1"),
            root=stack_project,
            now=now,
        )

        assert (batched.requests, alone.requests) == (1, len(FLEET_POOLS))
        for pool in FLEET_POOLS:
            got, expected = batched.history[pool]["load"], alone.history[pool]["load"]
            assert got.name == expected.name == "load"
            assert (got.index == expected.index).all()
            assert np.array_equal(got.to_numpy(), expected.to_numpy())

    def test_batch_series_bounds_the_pools_in_one_query(
        self, stack_project: Path, prometheus_server: PrometheusServer
    ) -> None:
        config = fleet(stack_project, prometheus_server.url, source=", batch_series: 2")
        before = query_range_requests(prometheus_server.url)
        collected = collect_history(config, root=stack_project, now=cycle_time(prometheus_server))

        assert query_range_requests(prometheus_server.url) - before == 3  # 2 + 2 + 1
        assert collected.requests == 3 and collected.degraded == []
        assert_known_values(config, collected.history, prometheus_server)

    def test_batch_points_bounds_a_first_cycle_batch_but_not_the_next(
        self, stack_project: Path, prometheus_server: PrometheusServer
    ) -> None:
        # 14 days at 5 minutes are 4,033 points a series: two series a query under 10,000;
        # the next cycle's 30 minutes (7 points) fit all five.
        config = fleet(stack_project, prometheus_server.url, source=", batch_points: 10000")
        now = cycle_time(prometheus_server)
        before = query_range_requests(prometheus_server.url)
        first = collect_history(config, root=stack_project, now=now)
        middle = query_range_requests(prometheus_server.url)
        second = collect_history(config, root=stack_project, now=now + STEP, kept=first.kept)

        assert (middle - before, query_range_requests(prometheus_server.url) - middle) == (3, 1)
        assert first.degraded == second.degraded == []
        assert_known_values(config, second.history, prometheus_server)

    @pytest.mark.parametrize(
        "query",
        [
            'sum(demo_fleet{pool="$pool"})',  # an aggregation: its answer has no pool label
            'demo_fleet{pool=~"$pool"}',  # the pool already in a regex
            'demo_fleet{pool="$pool"} * 1',
        ],
    )
    def test_a_query_that_is_not_a_plain_selector_is_read_per_pool(
        self, stack_project: Path, prometheus_server: PrometheusServer, query: str
    ) -> None:
        config = fleet(stack_project, prometheus_server.url, query=query)
        before = query_range_requests(prometheus_server.url)
        collected = collect_history(config, root=stack_project, now=cycle_time(prometheus_server))

        assert query_range_requests(prometheus_server.url) - before == len(FLEET_POOLS)
        assert collected.degraded == []
        assert_known_values(config, collected.history, prometheus_server)


class TestWhatTheKeptReadsHold:
    def test_pools_on_one_time_grid_keep_one_time_index_and_their_own_values(
        self, stack_project: Path, prometheus_server: PrometheusServer
    ) -> None:
        """A running driver keeps every remote series until the next cycle extends it; each
        came with its own time index, as many bytes as its values (32 KB a series for 14
        days at 5 minutes). Pools read on one grid now keep one index between them, whether
        read whole or extended, and each pool's points are those it has read on its own."""
        config = fleet(stack_project, prometheus_server.url)
        now = cycle_time(prometheus_server)
        first = collect_history(config, root=stack_project, now=now)
        second = collect_history(config, root=stack_project, now=now + STEP, kept=first.kept)
        alone = collect_history(
            fleet(stack_project, prometheus_server.url, source=", batch_series: 1"),
            root=stack_project,
            now=now + STEP,
        )

        for collected in (first, second):
            assert collected.kept is not None and len(collected.kept.series) == len(FLEET_POOLS)
            kept = [series for _spec, series in collected.kept.series.values()]
            assert len({id(series.index) for series in kept}) == 1
            points = len(kept[0])
            # Each series' values (8 bytes a point) and its share of the one index; with an
            # index each, 16 bytes a point.
            per_series = array_bytes(kept) / len(kept)
            assert per_series == pytest.approx(8 * points * (1 + 1 / len(FLEET_POOLS)))
        assert second.incremental == len(FLEET_POOLS)
        for pool in FLEET_POOLS:
            pd.testing.assert_series_equal(
                second.history[pool]["load"], alone.history[pool]["load"]
            )
            assert second.kept is not None
            assert second.kept.series[(pool, "load")][1] is second.history[pool]["load"]


class TestWhatABatchReports:
    def test_a_pool_missing_from_the_answer_and_a_pool_of_two_series_are_named(
        self, stack_project: Path, prometheus_server: PrometheusServer
    ) -> None:
        config = fleet(stack_project, prometheus_server.url, pools=("f0", "ghost", FLEET_DOUBLED))
        collected = collect_history(config, root=stack_project, now=cycle_time(prometheus_server))

        assert collected.requests == 1
        ghost, doubled = collected.degraded
        assert ghost.startswith("ghost.load: no series with pool='ghost' in the answer")
        assert 'demo_fleet{pool="ghost"}' in ghost
        assert doubled.startswith(f"{FLEET_DOUBLED}.load: metric source error:")
        assert "selects 2 series" in doubled and "instance='a'" in doubled
        assert len(collected.history["f0"]["load"]) == 14 * 288 + 1
        assert len(collected.history["ghost"]["load"]) == 0
        assert "load" not in collected.history[FLEET_DOUBLED]

    def test_a_malformed_batch_answer_names_its_place_and_its_pools_are_read_alone(
        self,
        stack_project: Path,
        prometheus_server: PrometheusServer,
        corrupting_proxy: str,
    ) -> None:
        config = fleet(stack_project, corrupting_proxy)
        before = query_range_requests(prometheus_server.url)
        collected = collect_history(config, root=stack_project, now=cycle_time(prometheus_server))

        # The batch, then each pool on its own (the proxy spoils only the batched answer).
        assert query_range_requests(prometheus_server.url) - before == 1 + len(FLEET_POOLS)
        assert len(collected.degraded) == len(FLEET_POOLS)
        for pool, line in zip(FLEET_POOLS, collected.degraded, strict=True):
            assert line.startswith(f"{pool}.load: read on its own: the query for its batch failed")
            assert "malformed sample in the answer at data.result[1].values[2]" in line
        assert_known_values(config, collected.history, prometheus_server)


TIMED_OUT = "(no answer within 3 s (metrics.timeout, the whole request))"
OVER_CAP = "more than the limit of 1,000,000 bytes (metrics.max_answer_bytes))"


class TestABatchTooBigForTheServersTimeOrTheSizeCap:
    # The proxy spoils the answer to a batched query naming `big_from` pools or more: held back
    # past the client's 3 s deadline (metrics.timeout), or padded past max_answer_bytes (which
    # the planner's estimate lets 5 pools of 14 days share); smaller queries pass unchanged.
    @pytest.mark.parametrize(
        ("spoil", "big_from", "requests_sent", "lines"),
        [
            pytest.param(
                "hold",
                4,
                3,  # 5 (late), then 3 and 2; reading the pools one by one after 5 sent 6
                {
                    pool: f"read in a query for {size} series: the query for its batch of 5 "
                    f"series failed {TIMED_OUT}"
                    for pool, size in (("f0", 3), ("f1", 3), ("f2", 3), ("f3", 2), ("f4", 2))
                },
                id="timeout",
            ),
            pytest.param(
                "hold",
                3,
                5,  # 5 and 3 (late), then 2, 1 and 2
                {
                    **{
                        pool: "read in a query for 2 series: the queries for its batches of 5 "
                        f"and then 3 series failed {TIMED_OUT}"
                        for pool in ("f0", "f1")
                    },
                    "f2": "read on its own: the queries for its batches of 5 and then 3 series "
                    f"failed {TIMED_OUT}",
                    **{
                        pool: "read in a query for 2 series: the query for its batch of 5 "
                        f"series failed {TIMED_OUT}"
                        for pool in ("f3", "f4")
                    },
                },
                id="timeout-twice",
            ),
            pytest.param(
                "pad",
                4,
                3,
                {
                    pool: f"read in a query for {size} series: the query for its batch of 5 "
                    "series failed (the answer is "
                    for pool, size in (("f0", 3), ("f1", 3), ("f2", 3), ("f3", 2), ("f4", 2))
                },
                id="over-the-size-cap",
            ),
        ],
    )
    def test_it_is_split_in_halves_down_to_queries_that_answer(
        self,
        stack_project: Path,
        prometheus_server: PrometheusServer,
        spoiling_proxy: tuple[str, dict[str, Any]],
        spoil: str,
        big_from: int,
        requests_sent: int,
        lines: dict[str, str],
    ) -> None:
        url, spoils = spoiling_proxy
        spoils.update(how=spoil, big_from=big_from)
        config = fleet(
            stack_project,
            url,
            source=", timeout: 3s, query_timeout: 30s, max_answer_bytes: 1000000",
        )
        before = query_range_requests(prometheus_server.url)
        collected = collect_history(config, root=stack_project, now=cycle_time(prometheus_server))

        assert query_range_requests(prometheus_server.url) - before == requests_sent
        assert collected.requests == 1  # one planned batch: the splits are inside it
        assert len(collected.degraded) == len(FLEET_POOLS)
        for pool, line in zip(FLEET_POOLS, collected.degraded, strict=True):
            assert line.startswith(f"{pool}.load: {lines[pool]}"), line
            assert line.endswith(TIMED_OUT if spoil == "hold" else OVER_CAP), line
        assert_known_values(config, collected.history, prometheus_server)


def _forwarded(
    handler: http.server.BaseHTTPRequestHandler, prometheus_server: PrometheusServer
) -> tuple[str, requests.Response]:
    """A proxy's request passed on to the real Prometheus: its PromQL query and the answer."""
    body = handler.rfile.read(int(handler.headers["Content-Length"]))
    upstream = requests.post(
        prometheus_server.url + handler.path,
        data=body,
        headers={"Content-Type": handler.headers["Content-Type"]},
        timeout=30,
    )
    return parse_qs(body.decode())["query"][0], upstream


@pytest.fixture
def spoiling_proxy(prometheus_server: PrometheusServer) -> Iterator[tuple[str, dict[str, Any]]]:
    """Passes requests on to the real Prometheus (which counts them); the answer to a batched
    query whose regex names at least ``big_from`` pools is held back for 4 s (``how: hold``) or
    padded with 1 MB of JSON whitespace (``how: pad``)."""
    spoils: dict[str, Any] = {}

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query, upstream = _forwarded(self, prometheus_server)
            answer = upstream.content
            if "=~" in query and query.count("|") + 1 >= spoils["big_from"]:
                if spoils["how"] == "hold":
                    time.sleep(4)
                else:
                    answer += b" " * 1_000_000
            try:
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up on the answer, as it should

        def log_message(self, *args: object) -> None:
            pass

    with local_http_server(Proxy) as url:
        yield url, spoils


@pytest.fixture
def corrupting_proxy(prometheus_server: PrometheusServer) -> Iterator[str]:
    """Passes requests on to the real Prometheus; in the answer to a batched query (a regex
    pool matcher) it spoils the third sample of the second series."""

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query, upstream = _forwarded(self, prometheus_server)
            answer = upstream.content
            if "=~" in query:
                parsed = json.loads(answer)
                parsed["data"]["result"][1]["values"][2][1] = "not a number"
                answer = json.dumps(parsed).encode()
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    with local_http_server(Proxy) as url:
        yield url
