"""Collection at fleet scale from a real local Prometheus: a cycle's reading of every series.

    .venv/bin/python benchmarks/prometheus_scale.py /work/shared/data/traces [--pools 500]
        [--metrics-per-pool 2] [--concurrency 16,64] [--rounds 2] [--timeout 60]
        [--days 14] [--baseline REV]

Backfills ``--pools`` x ``--metrics-per-pool`` series of 14 days at 5 minutes (the same values
as ``benchmarks/scale.py``'s pools: NAB CloudWatch traces shifted and rescaled per pool) into a
Prometheus TSDB with ``promtool tsdb create-blocks-from openmetrics``, starts the Debian
``prometheus`` binary on a loopback port on that TSDB, and times the driver's own collection
(``driver.collect.collect_history``: ``forecast.history`` of 14 days at the source's ``step``,
one ``query_range`` per ``batch_series`` pools sharing a selector, or per series on a head
before that, ``driver.collect_concurrency`` requests at once, each within the source's
``timeout`` and all within ``driver.collect_timeout``) for each concurrency, in turns: the first cycle of a driver just started (all 14 days of every series) and the next
cycle, 5 minutes later, which extends what the first read (``driver.collect.Kept``: only
``REFETCH`` before each series' newest point is read again). Prints the seconds (wall and the
driver's CPU), the series collected, the points read and per-series figures, and what that
means for 20,000 series against the 60 s target, and the ``query_range`` requests the server
counted (its own ``prometheus_http_requests_total``). ``--baseline REV`` times that revision's
collection too, in the same turns against the same server (each head in a fresh process on the
same stack files), so the two heads' figures are side by side. ``--days`` backfills fewer days
than the 14 of ``forecast.history`` (a first cycle then reads only those) to keep a build of
20,000 series to minutes. Needs ``prometheus`` and
``promtool`` on PATH (Debian package ``prometheus``); the TSDB is built in a temp dir and the
server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]

STEP_S = 300

_CPU = "cpu: {unit: percent, query: 'mirrorcast_scale_cpu{pool=\"$pool\"}'}"
_RPS = "rps: {unit: rps, kind: application, query: 'mirrorcast_scale_rps{pool=\"$pool\"}'}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openmetrics(
    path: Path, *, pools: list[str], per_pool: int, end: int, traces: Path, points: int
) -> int:
    """Write the backfill (OpenMetrics text: one family after the other, each series' samples
    in time order, ``# EOF`` last, as promtool requires) and return the samples written."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from scale import _scaled, _series

    series = _series(traces)
    stamps = [end - STEP_S * (points - 1 - i) for i in range(points)]
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
                values = _scaled(base, shift=index * shift, low=low, high=high, points=points)
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
    requests: int
    server_cpu: float
    summary: str | None

    def line(self, label: str, count: int) -> str:
        return (
            f"{label}: {self.seconds:6.1f} s wall, {self.cpu:6.1f} s driver CPU, "
            f"{self.server_cpu:6.1f} s Prometheus CPU; "
            f"{self.series:,}/{count:,} series ({self.incremental:,} extended) in "
            f"{self.requests:,} query_range requests, {self.points:,} points of history; "
            f"{self.seconds / count * 1000:.2f} ms a series -> "
            f"{self.seconds / count * 20_000:.0f} s for 20,000 at this rate"
            + (f"; {self.summary}" if self.summary else "")
        )


def _query_range_requests(url: str) -> int:
    """The server's own count of ``query_range`` requests answered (all status codes)."""
    total = 0
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and (
            'handler="/api/v1/query_range"' in line
        ):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def _process_cpu(pid: int) -> float:
    """Seconds of CPU (user and system) process ``pid`` has used (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(arguments: dict[str, str]) -> int:
    """Time a first and a next cycle's collection with the code under ``code``; print JSON.

    Runs in its own process so that ``code`` (this checkout or a baseline's) is the only
    ``driver``/``infra`` imported; the stack files were written by the parent."""
    sys.path.insert(0, arguments["code"])
    from driver.collect import collect_history
    from infra.config import load_stack

    root = Path(arguments["root"])
    # A fleet over the stack file's size limit is several stacks, collected one after the
    # other as one driver process cycles them; the figures are the fleet's sums.
    configs = [load_stack(name, root) for name in arguments["stacks"].split(",")]
    now = datetime.fromisoformat(arguments["now"])
    url = arguments["url"]
    out = []
    kept: list[Any] = [None] * len(configs)
    for moment in (now, now + timedelta(minutes=5)):
        sent = _query_range_requests(url)
        server_cpu = _process_cpu(int(arguments["server"]))
        cpu = time.process_time()
        started = time.perf_counter()
        results = []
        for number, config in enumerate(configs):
            results.append(collect_history(config, root=root, now=moment, kept=kept[number]))
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        got = [
            s
            for collected in results
            for metrics in collected.history.values()
            for s in metrics.values()
            if len(s)
        ]
        summaries = [collected.summary for collected in results if collected.summary]
        out.append(
            {
                "seconds": seconds,
                "cpu": cpu,
                "series": len(got),
                "points": sum(len(s) for s in got),
                "incremental": sum(collected.incremental for collected in results),
                "requests": _query_range_requests(url) - sent,
                "server_cpu": _process_cpu(int(arguments["server"])) - server_cpu,
                "summary": "; ".join(summaries) or None,
            }
        )
        kept = [collected.kept for collected in results]
    print(json.dumps(out))
    return 0


def _run_head(
    code: Path, *, root: Path, stacks: list[str], now: datetime, url: str, server: int
) -> list[_Timed]:
    arguments = {"code": str(code), "root": str(root), "stacks": ",".join(stacks)}
    arguments["now"] = now.isoformat()
    arguments.update(url=url, server=str(server))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(arguments)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(code)},
    )
    if done.returncode:
        raise SystemExit(f"the collection under {code} failed:\n{done.stderr}")
    return [_Timed(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


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


def _baseline(revision: str, into: Path) -> Path:
    """``revision``'s tree, exported (``git archive``) into ``into``."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(json.loads(argv[1]))
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
    parser.add_argument(
        "--pools-per-stack",
        type=int,
        default=1000,
        help="pools a stack file (1000: stack files are limited to 1 MB); a fleet of several "
        "stacks is collected stack after stack, as one driver process cycles them",
    )
    parser.add_argument(
        "--days", type=int, default=14, help="days backfilled (14, forecast.history)"
    )
    parser.add_argument(
        "--baseline", help="a git revision whose collection is timed beside this checkout's"
    )
    args = parser.parse_args(argv)
    # A stopped run still stops its server and removes its TSDB (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        raise SystemExit("prometheus and promtool are not on PATH (Debian package 'prometheus')")
    pools = [f"p{i:05d}" for i in range(args.pools)]
    # The backfill ends an hour before now, whole hours: inside the TSDB's retention and clear
    # of the head block (as the source tests' fixture does).
    end = (int(time.time()) // 3600) * 3600 - 3600
    # The first cycle an hour before the backfill's end, so the next cycle has new points.
    now = datetime.fromtimestamp(end - 3600, tz=UTC)
    points = args.days * 288 + 12
    with tempfile.TemporaryDirectory(prefix="mirrorcast-promscale-") as scratch:
        work = Path(scratch)
        heads = [("this checkout", REPO)]
        if args.baseline:
            heads.insert(0, (f"baseline {args.baseline}", _baseline(args.baseline, work / "base")))
        started = time.perf_counter()
        samples = _openmetrics(
            work / "backfill.om",
            pools=pools,
            per_pool=args.metrics_per_pool,
            end=end,
            traces=args.traces,
            points=points,
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
            _wait_ready(url, seconds=300)
            version = requests.get(f"{url}/api/v1/status/buildinfo", timeout=5).json()["data"]
            count = args.pools * args.metrics_per_pool
            print(
                f"machine: {os.cpu_count()} cores; Prometheus {version['version']} on loopback; "
                f"{count:,} series ({args.pools:,} pools x {args.metrics_per_pool}), "
                f"{args.days} days at 5m = {samples:,} samples (written in {written:.1f} s, "
                f"promtool backfill {backfilled:.1f} s)"
            )
            print(
                f"driver.collect_timeout {args.timeout} s, per-request timeout "
                f"{args.request_timeout} s; forecast.history 14d; heads: "
                + ", ".join(name for name, _ in heads)
            )
            sys.path.insert(0, str(REPO))
            from driver.stack_template import fleet_stack_text

            (work / "stacks").mkdir()
            shutil.copy(REPO / "Pulumi.yaml", work / "Pulumi.yaml")
            pool_metrics = "{" + _CPU + (", " + _RPS if args.metrics_per_pool == 2 else "") + "}"
            stacks: dict[int, list[str]] = {}
            for concurrency in args.concurrency:
                for first in range(0, len(pools), args.pools_per_stack):
                    name = f"c{concurrency}-{first // args.pools_per_stack}"
                    stacks.setdefault(concurrency, []).append(name)
                    (work / "stacks" / f"Pulumi.{name}.yaml").write_text(
                        fleet_stack_text(
                            pools=pools[first : first + args.pools_per_stack],
                            metrics=f"{{type: prometheus, url: '{url}', step: 5m, "
                            f"timeout: {args.request_timeout}s}}",
                            pool_metrics=pool_metrics,
                            driver="{mode: plan, interval: 5m, collect_concurrency: "
                            f"{concurrency}, collect_timeout: {args.timeout}s}}",
                        )
                    )
            for round_number in range(1, args.rounds + 1):
                for concurrency in args.concurrency:
                    for name, code in heads:
                        # A cycle of a driver just started (all of forecast.history), then the
                        # next cycle's, which extends what the first read (driver.collect.Kept).
                        first, then = _run_head(
                            code,
                            root=work,
                            stacks=stacks[concurrency],
                            now=now,
                            url=url,
                            server=server.pid,
                        )
                        label = f"round {round_number}, {name}, concurrency {concurrency:>3}"
                        print(first.line(f"{label}, whole", count), flush=True)
                        print(then.line(f"{label}, next ", count), flush=True)
                    print(f"load {Path('/proc/loadavg').read_text().strip()}", flush=True)
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
