"""A driver's collection from a remote source reads only what is new, against a real Prometheus.

Reading all of ``forecast.history`` every cycle was 4,032 points a series (14 days at 5 minutes):
at 20,000 series about 80 million points a cycle from the metrics backend. A cycle that kept
the last cycle's reads asks only from ``driver.collect.REFETCH`` before the newest kept point,
and the joined history is what a whole read on the same time grid returns (the server here is
the Debian ``prometheus`` binary on a TSDB backfilled by ``promtool``: source_servers.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from source_servers import PrometheusServer

from driver.collect import REFETCH, collect_history
from driver.stack_template import fleet_stack_text
from forecasting.sources import PrometheusMetricSource
from infra.config import MirrorcastConfig, load_stack

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[3]
STEP = timedelta(minutes=5)

_RULES = """\
        - name: busy
          when: current(load) > 1000 for 5m
          actions: [{type: activate_mirror}]
"""


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def stack(
    stack_project: Path, url: str, *, query: str = 'demo_load{pool="web"}'
) -> MirrorcastConfig:
    text = fleet_stack_text(
        pools=["web"],
        metrics=f"{{type: prometheus, url: '{url}', step: 5m}}",
        pool_metrics=f"{{load: {{unit: count, query: '{query}'}}}}",
        forecast="{horizon: 1h, history: 14d, models: [seasonal_naive]}",
        rules=_RULES,
    )
    (stack_project / "stacks" / "Pulumi.prom.yaml").write_text(text)
    return load_stack("prom", stack_project)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """Every ``query_range`` the source sends (start, end), recorded on the way to the server."""
    real = PrometheusMetricSource._query_range
    sent: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def recording(self: PrometheusMetricSource, query: str, start: Any, end: Any) -> Any:
        sent.append((start, end))
        return real(self, query, start, end)

    monkeypatch.setattr(PrometheusMetricSource, "_query_range", recording)
    yield sent


def first_cycle_time(server: PrometheusServer) -> datetime:
    # A day before the backfill ends, off the samples' 5-minute grid (a real cycle's clock is).
    return at(server.end - 86_400 + 17.25)


class TestASecondCycleReadsOnlyTheRecentEnd:
    def test_the_joined_history_equals_a_whole_read_on_the_same_time_grid(
        self, stack_project: Path, prometheus_server: PrometheusServer, reads: list[Any]
    ) -> None:
        config = stack(stack_project, prometheus_server.url)
        now1 = first_cycle_time(prometheus_server)
        first = collect_history(config, root=stack_project, now=now1)
        now2 = now1 + STEP + timedelta(seconds=3.5)
        reads.clear()
        second = collect_history(config, root=stack_project, now=now2, kept=first.kept)

        newest = pd.DatetimeIndex(first.history["web"]["load"].index)[-1]
        assert second.incremental == 1 and second.degraded == []
        assert reads == [(pd.Timestamp(newest - REFETCH), pd.Timestamp(now2))]
        # A whole read of the window from the first grid point inside it: the same points.
        grid = now1 - config.forecast.history
        start2 = now2 - config.forecast.history
        steps = -(-(start2 - grid) // STEP)
        whole = PrometheusMetricSource(config.metrics).fetch(  # type: ignore[arg-type]
            pool="web",
            metric="load",
            spec=config.pools["web"].metrics["load"],
            start=grid + steps * STEP,
            end=now2,
        )
        pd.testing.assert_series_equal(second.history["web"]["load"], whole)
        assert len(whole) == 14 * 288

    def test_a_long_running_driver_extends_its_last_read(
        self, stack_project: Path, prometheus_server: PrometheusServer, reads: list[Any]
    ) -> None:
        from driver.service import Driver

        stack(stack_project, prometheus_server.url)
        now1 = first_cycle_time(prometheus_server)
        with Driver(stack="prom", root=stack_project, mode="plan") as driver:
            driver.run_cycle(now=now1)
            assert reads and reads[0][0] == pd.Timestamp(now1 - timedelta(days=14))
            reads.clear()
            report = driver.run_cycle(now=now1 + STEP)

        assert len(reads) == 1
        start, end = reads[0]
        assert end - start <= pd.Timedelta(REFETCH + STEP)
        assert not [line for line in report.degraded if "metric source" in line]


class TestWhatIsReadWhole:
    def test_a_changed_query_reads_the_whole_window(
        self, stack_project: Path, prometheus_server: PrometheusServer, reads: list[Any]
    ) -> None:
        now1 = first_cycle_time(prometheus_server)
        first = collect_history(
            stack(stack_project, prometheus_server.url), root=stack_project, now=now1
        )
        changed = stack(stack_project, prometheus_server.url, query='demo_load{pool="web"} * 2')
        reads.clear()
        second = collect_history(changed, root=stack_project, now=now1 + STEP, kept=first.kept)

        assert second.incremental == 0
        assert reads[0][0] == pd.Timestamp(now1 + STEP - timedelta(days=14))
        assert second.history["web"]["load"].iloc[-1] == pytest.approx(
            2 * first.history["web"]["load"].iloc[-1], rel=0.05, abs=300
        )

    def test_another_source_url_reads_the_whole_window(
        self, stack_project: Path, prometheus_server: PrometheusServer, reads: list[Any]
    ) -> None:
        now1 = first_cycle_time(prometheus_server)
        first = collect_history(
            stack(stack_project, prometheus_server.url), root=stack_project, now=now1
        )
        # The same server under another name: another metrics section, so nothing is reused.
        other = stack(stack_project, prometheus_server.url.replace("127.0.0.1", "localhost"))
        second = collect_history(other, root=stack_project, now=now1 + STEP, kept=first.kept)

        assert second.incremental == 0

    def test_kept_points_older_than_the_window_are_not_extended(
        self, stack_project: Path, prometheus_server: PrometheusServer
    ) -> None:
        config = stack(stack_project, prometheus_server.url)
        now1 = first_cycle_time(prometheus_server)
        first = collect_history(config, root=stack_project, now=now1)
        later = now1 + timedelta(days=14, hours=1)  # the whole kept read is outside the window
        second = collect_history(config, root=stack_project, now=later, kept=first.kept)

        assert second.incremental == 0

    def test_a_metrics_file_is_read_whole_and_keeps_nothing(self, tmp_path: Path) -> None:
        # The demo's recording: parsed once per file anyway, and a file can be replaced whole.
        config = load_stack("demo", REPO)
        collected = collect_history(config, root=REPO, now=datetime(2026, 1, 15, tzinfo=UTC))

        assert collected.kept is None and collected.incremental == 0
