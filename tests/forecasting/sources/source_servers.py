"""Real servers for the source tests, started once per session on free loopback ports (fixtures in conftest.py).

- Prometheus (Debian package ``prometheus``) with three weeks of a known series backfilled
  through ``promtool tsdb create-blocks-from openmetrics``, scraping a tiny exporter of ours;
  beside it a small fleet's series (``demo_fleet``: one per pool of :data:`FLEET_POOLS`, and
  two for :data:`FLEET_DOUBLED`) for the batched reads.
- A moto server (``moto[server]``) standing in for CloudWatch.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

BACKFILL_STEP = 300
"""Seconds between backfilled samples."""
BACKFILL_DAYS = 21
FLEET_POOLS = ("f0", "f1", "f2", "f3", "f4")
"""Pools with one ``demo_fleet{pool=...}`` series each: :func:`fleet_value`."""
FLEET_DOUBLED = "f5"
"""A pool with two ``demo_fleet`` series (instances ``a`` and ``b``): not one series."""
LIVE_VALUE = 42.5
"""What the test exporter's gauge reports; Prometheus scrapes it every second."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def backfill_value(timestamp: int, start: int) -> float:
    """The known series: a sawtooth counting 5-minute slots through each day, plus a weekly step."""
    slot = (timestamp - start) // BACKFILL_STEP
    return float(slot % 288) + (100.0 if (slot // 2016) % 2 else 0.0)


def fleet_value(timestamp: int, start: int, pool: str) -> float:
    """``demo_fleet`` of a pool of :data:`FLEET_POOLS`: the known series plus 1,000 a pool."""
    return backfill_value(timestamp, start) + 1000.0 * FLEET_POOLS.index(pool)


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    start: int
    """First backfilled sample (Unix seconds)."""
    end: int
    """Last backfilled sample (Unix seconds)."""


def _wait_until(check: object, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {seconds:g}s waiting for {what}")


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    if PROMETHEUS is None or PROMTOOL is None:
        pytest.skip("prometheus and promtool are not installed (Debian package 'prometheus')")
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    workdir = tmp_path_factory.mktemp("prometheus")
    # Backfill three weeks ending an hour before now: inside the TSDB's retention, and old
    # enough not to overlap the head block that live scrapes write to.
    end = (int(time.time()) // 3600) * 3600 - 3600
    start = end - BACKFILL_DAYS * 86400
    lines = ["# HELP demo_load A known backfilled series.", "# TYPE demo_load gauge"]
    lines += [
        f'demo_load{{pool="web"}} {backfill_value(t, start)} {t}'
        for t in range(start, end + 1, BACKFILL_STEP)
    ]
    lines += ["# HELP demo_fleet A small fleet's backfilled series.", "# TYPE demo_fleet gauge"]
    for pool in FLEET_POOLS:
        lines += [
            f'demo_fleet{{pool="{pool}"}} {fleet_value(t, start, pool)} {t}'
            for t in range(start, end + 1, BACKFILL_STEP)
        ]
    for instance in ("a", "b"):
        lines += [
            f'demo_fleet{{instance="{instance}",pool="{FLEET_DOUBLED}"}} 1 {t}'
            for t in range(start, end + 1, BACKFILL_STEP)
        ]
    lines.append("# EOF")
    openmetrics = workdir / "backfill.om"
    openmetrics.write_text("\n".join(lines) + "\n")
    data = workdir / "data"
    subprocess.run(
        [
            PROMTOOL,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=504h",
            str(openmetrics),
            str(data),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )

    registry = CollectorRegistry()
    Gauge("mirrorcast_test_load", "Known live value.", registry=registry).set(LIVE_VALUE)
    exporter_port = free_port()
    exporter, exporter_thread = start_http_server(
        exporter_port, addr="127.0.0.1", registry=registry
    )

    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: test-exporter\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n"
    )
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=10y",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until(
            lambda: requests.get(f"{url}/-/ready", timeout=1).ok,
            seconds=30,
            what="Prometheus ready",
        )
        _wait_until(
            lambda: requests.get(
                f"{url}/api/v1/query", params={"query": "mirrorcast_test_load"}, timeout=1
            ).json()["data"]["result"],
            seconds=30,
            what="the first scrape of the test exporter",
        )
        yield PrometheusServer(url=url, start=start, end=end)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        exporter.shutdown()
        exporter_thread.join(timeout=5)


@pytest.fixture()
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for the moto server (never real ones: keep them out of the environment)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture()
def black_hole() -> Iterator[str]:
    """A loopback port that accepts connections and never answers (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture
def stack_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project for stacks a test writes (``stacks/Pulumi.<stack>.yaml``), with its
    state directory and passphrase in the test's own places."""
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    repo = Path(__file__).resolve().parents[3]
    (root / "Pulumi.yaml").write_text((repo / "Pulumi.yaml").read_text())
    monkeypatch.setenv("MIRRORCAST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct-horse-battery-staple")
    return root


def query_range_requests(url: str) -> int:
    """``query_range`` requests the server has answered so far, from its own counter
    (``prometheus_http_requests_total`` on its ``/metrics``)."""
    total = 0
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and (
            'handler="/api/v1/query_range"' in line
        ):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The repository checkout (where stacks/ and examples/ live)."""
    return Path(__file__).resolve().parents[3]
