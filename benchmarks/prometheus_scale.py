"""Collection at fleet scale from a real local Prometheus: a cycle's reading of every series.

    .venv/bin/python benchmarks/prometheus_scale.py /work/shared/data/traces [--pools 500]
        [--metrics-per-pool 2] [--concurrency 16,64] [--rounds 2] [--timeout 60]

Backfills ``--pools`` x ``--metrics-per-pool`` series of 14 days at 5 minutes (the same values
as ``benchmarks/scale.py``'s pools: NAB CloudWatch traces shifted and rescaled per pool) into a
Prometheus TSDB with ``promtool tsdb create-blocks-from openmetrics``, starts the Debian
``prometheus`` binary on a loopback port on that TSDB, and times the driver's own collection
(``driver.collect.collect_history``: one ``query_range`` per series, ``forecast.history`` of
14 days at the source's ``step``, ``driver.collect_concurrency`` requests at once, each within
the source's ``timeout`` and all within ``driver.collect_timeout``) for each concurrency, in
turns: the first cycle of a driver just started (all 14 days of every series) and the next
cycle, 5 minutes later, which extends what the first read (``driver.collect.Kept``: only
``REFETCH`` before each series' newest point is read again). Prints the seconds (wall and the
driver's CPU), the series collected, the points read and per-series figures, and what that
means for 20,000 series against the 60 s target. Needs ``prometheus`` and
``promtool`` on PATH (Debian package ``prometheus``); the TSDB is built in a temp dir and the
server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from scale import POINTS, _scaled, _series  # noqa: E402

from driver.collect import Kept, collect_history  # noqa: E402
from infra.config import MirrorcastConfig, load_stack  # noqa: E402

STEP_S = 300

_HEAD = """\
config:
  aws:region: us-east-1
  mirrorcast:metrics: {{type: prometheus, url: '{url}', step: 5m, timeout: {request_timeout}s}}
  mirrorcast:forecast: {{horizon: 1h, history: 14d}}
  mirrorcast:driver: {{mode: plan, interval: 5m, collect_concurrency: {concurrency}, collect_timeout: {timeout}s}}
  mirrorcast:pools:
"""
_POOL = """\
    {name}:
      primary:
        cloud: aws
        region: us-east-1
        machine_type: t3.medium
        app: {{version: 1.0.0, images: {{aws: ami-0a1b2c3d4e5f60718}}}}
        capacity: {{min: 2, max: 20, desired: 4}}
        network: {{vpc_id: vpc-0123456789abcdef0, subnet_ids: [subnet-0aa11bb22cc33dd44]}}
      mirror: {{percent: 50, state: paused}}
      balancer: {{kind: alb}}
      metrics:
        cpu: {{unit: percent, query: 'mirrorcast_scale_cpu{{pool="$pool"}}'}}
{rps}"""
_RPS = """\
        rps: {unit: rps, kind: application, query: 'mirrorcast_scale_rps{pool="$pool"}'}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openmetrics(path: Path, *, pools: list[str], per_pool: int, end: int, traces: Path) -> int:
    """Write the backfill (OpenMetrics text: one family after the other, each series' samples
    in time order, ``# EOF`` last, as promtool requires) and return the samples written."""
    series = _series(traces)
    stamps = [end - STEP_S * (POINTS - 1 - i) for i in range(POINTS)]
    families = [("cpu", 10.0, 90.0, 37, 0)]
    if per_pool == 2:
        families.append(("rps", 100.0, 2000.0, 53, len(series) // 3 + 1))
    written = 0
    with path.open("w") as out:
        for metric, low, high, shift, offset in families:
            out.write(f"# HELP mirrorcast_scale_{metric} scale benchmark series.\n")
            out.write(f"# TYPE mirrorcast_scale_{metric} gauge\n")
            for index, pool in enumerate(pools):
                base = series[(index + offset) % len(series)]
                values = _scaled(base, shift=index * shift, low=low, high=high)
                label = f'mirrorcast_scale_{metric}{{pool="{pool}"}}'
                out.writelines(
                    f"{label} {value:g} {stamp}\n"
                    for stamp, value in zip(stamps, values, strict=True)
                )
                written += len(values)
        out.write("# EOF\n")
    return written


@dataclass(frozen=True)
class _Timed:
    seconds: float
    cpu: float
    series: int
    points: int
    incremental: int
    summary: str | None
    kept: Kept | None

    def line(self, label: str, count: int) -> str:
        return (
            f"{label}: {self.seconds:6.1f} s wall, {self.cpu:6.1f} s driver CPU; "
            f"{self.series:,}/{count:,} series ({self.incremental:,} extended), "
            f"{self.points:,} points of history; {self.seconds / count * 1000:.2f} ms a series -> "
            f"{self.seconds / count * 20_000:.0f} s for 20,000 at this rate"
            + (f"; {self.summary}" if self.summary else "")
        )


def _timed(config: MirrorcastConfig, root: Path, *, now: datetime, kept: Kept | None) -> _Timed:
    cpu = time.process_time()
    started = time.perf_counter()
    collected = collect_history(config, root=root, now=now, kept=kept)
    seconds = time.perf_counter() - started
    got = [s for metrics in collected.history.values() for s in metrics.values()]
    return _Timed(
        seconds=seconds,
        cpu=time.process_time() - cpu,
        series=len(got),
        points=sum(len(s) for s in got),
        incremental=collected.incremental,
        summary=collected.summary,
        kept=collected.kept,
    )


def _wait_ready(url: str, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/-/ready", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"Prometheus at {url} was not ready within {seconds:g}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument("--pools", type=int, default=500, help="pools (500)")
    parser.add_argument("--metrics-per-pool", type=int, choices=(1, 2), default=2)
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[16, 64],
        help="driver.collect_concurrency values to time, comma-separated (16,64)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="turns over the concurrencies (2)")
    parser.add_argument(
        "--timeout", type=int, default=60, help="driver.collect_timeout in seconds (60)"
    )
    parser.add_argument(
        "--request-timeout", type=int, default=10, help="the source's per-request timeout (10)"
    )
    args = parser.parse_args(argv)
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        raise SystemExit("prometheus and promtool are not on PATH (Debian package 'prometheus')")
    pools = [f"p{i:05d}" for i in range(args.pools)]
    # The backfill ends an hour before now, whole hours: inside the TSDB's retention and clear
    # of the head block (as the source tests' fixture does).
    end = (int(time.time()) // 3600) * 3600 - 3600
    # The first cycle an hour before the backfill's end, so the next cycle has new points.
    now = datetime.fromtimestamp(end - 3600, tz=UTC)
    with tempfile.TemporaryDirectory(prefix="mirrorcast-promscale-") as scratch:
        work = Path(scratch)
        started = time.perf_counter()
        samples = _openmetrics(
            work / "backfill.om",
            pools=pools,
            per_pool=args.metrics_per_pool,
            end=end,
            traces=args.traces,
        )
        written = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(
            [
                promtool,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--max-block-duration=504h",
                str(work / "backfill.om"),
                str(work / "data"),
            ],
            check=True,
            capture_output=True,
        )
        backfilled = time.perf_counter() - started
        (work / "backfill.om").unlink()
        (work / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = (work / "prometheus.log").open("wb")
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                "--storage.tsdb.retention.time=10y",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(url, seconds=120)
            version = requests.get(f"{url}/api/v1/status/buildinfo", timeout=5).json()["data"]
            count = args.pools * args.metrics_per_pool
            print(
                f"machine: {os.cpu_count()} cores; Prometheus {version['version']} on loopback; "
                f"{count:,} series ({args.pools:,} pools x {args.metrics_per_pool}), 14 days at "
                f"5m = {samples:,} samples (written in {written:.1f} s, promtool backfill "
                f"{backfilled:.1f} s)"
            )
            print(
                f"driver.collect_timeout {args.timeout} s, per-request timeout "
                f"{args.request_timeout} s; each series one query_range of forecast.history (14d)"
            )
            for round_number in range(1, args.rounds + 1):
                for concurrency in args.concurrency:
                    stack = f"c{concurrency}"
                    (work / "stacks").mkdir(exist_ok=True)
                    text = _HEAD.format(
                        url=url,
                        concurrency=concurrency,
                        timeout=args.timeout,
                        request_timeout=args.request_timeout,
                    ) + "".join(
                        _POOL.format(name=pool, rps=_RPS if args.metrics_per_pool == 2 else "")
                        for pool in pools
                    )
                    (work / "stacks" / f"Pulumi.{stack}.yaml").write_text(text)
                    config = load_stack(stack, work)
                    # A cycle of a driver just started (all of forecast.history), then the
                    # next cycle's, which extends what the first read (driver.collect.Kept).
                    first = _timed(config, work, now=now, kept=None)
                    print(
                        first.line(
                            f"round {round_number}, concurrency {concurrency:>3}, whole", count
                        )
                    )
                    then = _timed(config, work, now=now + timedelta(minutes=5), kept=first.kept)
                    print(
                        then.line(
                            f"round {round_number}, concurrency {concurrency:>3}, next ", count
                        )
                    )
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
