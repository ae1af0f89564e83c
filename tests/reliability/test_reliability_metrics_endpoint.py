"""``/metrics`` under 1,100 idle connections: the driver's cycles keep working, scrapes resume.

``prometheus_client.start_http_server`` gave every connection a thread and a descriptor for as
long as the client liked, so at 1,023 idle connections (a soft limit of 1,024 descriptors) the
cycle could not open its journal or stack file: "Too many open files". The idle clients run in
a child process (with its own descriptor limit raised just enough for them); this process,
which serves ``/metrics`` and runs the cycles, keeps the usual soft limit of 1,024.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cycle_support import RecentPeakEngine

from driver.metrics_http import DEFAULT_MAX_CONNECTIONS
from driver.observe import DriverMetrics
from driver.service import Driver

REPO = Path(__file__).resolve().parents[2]
IDLE_CONNECTIONS = 1_100
"""More than the 1,023 at which cycles failed."""
SERVING_LIMIT = 1_024
"""The soft descriptor limit this process runs the test under (the usual default)."""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(REPO / "stacks" / "Pulumi.demo.yaml", root / "stacks" / "Pulumi.demo.yaml")
    shutil.copytree(REPO / "examples" / "demo", root / "examples" / "demo")
    return root


@pytest.fixture
def usual_descriptor_limit() -> Iterator[None]:
    """This process at a soft limit of 1,024 descriptors for the test, restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE_CONNECTIONS + 100:
        pytest.skip(f"the hard descriptor limit {hard} is too low for {IDLE_CONNECTIONS} clients")
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(SERVING_LIMIT, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


_CLIENTS = textwrap.dedent(
    """
    import resource, socket, sys, time
    count, port = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Only as many descriptors as the clients need, never more than the hard limit.
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        held.append(sock)  # connected and silent: an idle client
    print("connected", len(held), flush=True)
    sys.stdin.read()  # hold them until the test closes our stdin
    """
)


def test_a_thousand_idle_metrics_connections_do_not_stop_the_cycles(
    project: Path, usual_descriptor_limit: None
) -> None:
    metrics = DriverMetrics()
    server = metrics.serve("127.0.0.1:0")
    port = server.server_port
    driver = Driver(
        stack="demo", root=project, mode="plan", engine=RecentPeakEngine(), metrics=metrics
    )
    clients = subprocess.Popen(
        [sys.executable, "-c", _CLIENTS, str(IDLE_CONNECTIONS), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert clients.stdout is not None
        assert clients.stdout.readline().strip() == f"connected {IDLE_CONNECTIONS}"
        # Let the server accept every one of them (a backlog is not this process's descriptors).
        deadline = time.monotonic() + 30
        while server.accepted < IDLE_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.accepted >= IDLE_CONNECTIONS, server.accepted
        # All but the slots' worth were closed at once instead of each holding a descriptor.
        assert server.refused >= IDLE_CONNECTIONS - 4 * DEFAULT_MAX_CONNECTIONS, server.refused

        for _ in range(2):
            report = driver.run_cycle()
            assert report.result is not None
            # Every series read (the observer's 'no AWS credentials' line is this machine's).
            assert not [line for line in report.degraded if "web." in line], report.degraded
            assert "Too many open files" not in " ".join(report.degraded)
        assert [c["status"] for c in driver.journal.cycles(stack="demo")] == ["ok", "ok"]

        # The idle clients that took the slots are dropped at the timeout; scrapes work again.
        text = _scrape(port, within=40)
        assert 'mirrorcast_cycles_total{outcome="ok",stack="demo"} 2.0' in text
    finally:
        if clients.stdin is not None:
            clients.stdin.close()
        clients.wait(timeout=30)
        server.shutdown()
        server.server_close()


def _scrape(port: int, *, within: float) -> str:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                return str(answer.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
