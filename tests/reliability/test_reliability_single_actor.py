"""One actor per stack: the lease holds across PID namespaces, skewed clocks and long cycles.

Real driver cycles (apply mode, the Pulumi stand-in) sharing one real SQLite journal; real
processes in separate PID namespaces (``unshare``, root only) for the holder ids; the real CLI
as a subprocess for the release on every exit path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cycle_support import TRACE, make_driver, open_journal
from soak_harness import STACK, Faults, KillableCli, make_project

from driver.journal import Journal
from infra.config import load_stack

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2014, 4, 11, 0, 59, tzinfo=UTC)
"""A cycle at which the soak stack's predictive rule fires and the mirror is activated."""
STEP = timedelta(minutes=5)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project", TRACE, quantile=0.7, update_timeout=120)


def _url(project: Path) -> str:
    return f"sqlite:///{project / 'journal.db'}"


# ----------------------------------------------------------------------------- holder ids

_CONTENDER = """
import json, sys, time
from datetime import timedelta
from pathlib import Path
from driver.journal import Journal
from driver.service import Driver
journal = Journal(sys.argv[1])
driver = Driver(stack="soak", root=Path(sys.argv[2]), mode="plan", journal=journal)
got = driver._take_lease(timedelta(minutes=10))
print(json.dumps({"pid": __import__("os").getpid(), "holder": driver.holder, "got": got}), flush=True)
if got:
    Path(sys.argv[3]).write_text("held")
    time.sleep(float(sys.argv[4]))
"""


def test_drivers_in_separate_pid_namespaces_on_one_host_do_not_share_the_lease(
    project: Path, tmp_path: Path
) -> None:
    # Two containers on one hostname, both pid 1: the holder was `host:1` for both, so both acted.
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot create PID namespaces here: {probe.stderr.strip()}")
    Journal(_url(project)).close()
    held = tmp_path / "held"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def contender(hold: float) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                *("unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", _CONTENDER),
                *(_url(project), str(project), str(held), str(hold)),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )

    first = contender(hold=5.0)
    deadline = time.monotonic() + 60
    while not held.exists():
        assert time.monotonic() < deadline and first.poll() is None, "the first never got the lease"
        time.sleep(0.05)
    second = contender(hold=0.0)
    out_second, _ = second.communicate(timeout=60)
    out_first, _ = first.communicate(timeout=60)
    a, b = json.loads(out_first), json.loads(out_second)
    assert a["pid"] == b["pid"] == 1  # the same pid, each in its own namespace
    assert a["holder"] != b["holder"]
    assert a["got"] and not b["got"]


# ----------------------------------------------------------------------------- clocks


def test_a_driver_whose_clock_runs_16_minutes_ahead_does_not_take_over_a_live_lease(
    project: Path,
) -> None:
    cli = KillableCli(Faults())
    on_time = make_driver(project, cli=cli, journal=open_journal(_url(project)), clock=lambda: T0)
    ahead = make_driver(
        project,
        cli=cli,
        journal=open_journal(_url(project)),
        clock=lambda: T0 + timedelta(minutes=16),  # past the 15-minute lease, on its own clock
        holder="driver-ahead",
    )
    first = on_time.run_cycle(now=T0)
    assert first.skipped is None
    ups = len(cli.commands("up"))

    second = ahead.run_cycle(now=T0 + timedelta(minutes=16))

    assert second.skipped is not None and "holds the lease" in second.skipped
    assert len(cli.commands("up")) == ups


# ----------------------------------------------------------------------------- long cycles


def test_a_cycle_longer_than_the_lease_keeps_it_and_a_second_driver_waits(project: Path) -> None:
    cli = KillableCli(Faults())
    # The heartbeat renews every third of the TTL. 1.5 s left half a second a beat, which a
    # loaded machine's scheduling or a journal write of the slow cycle itself outlasted once
    # (the lease expired under the slow driver before its `up`): 3 s leaves a second a beat.
    ttl = timedelta(seconds=3)
    slow = make_driver(
        project, cli=cli, journal=open_journal(_url(project)), clock=lambda: T0, holder="slow"
    )
    slow.lease_ttl = ttl
    other = make_driver(
        project, cli=cli, journal=open_journal(_url(project)), clock=lambda: T0, holder="other"
    )
    other.lease_ttl = ttl
    release, finished = cli.hold_next_up()  # `up` runs for as long as the test says: 10 s
    worker = threading.Thread(target=slow.run_cycle, kwargs={"now": T0})
    worker.start()
    tries = []
    try:
        while (slow.journal.lease(stack=STACK) or {}).get("holder") != "slow":
            assert worker.is_alive()
            time.sleep(0.01)
        started = time.monotonic()
        while time.monotonic() - started < 10.0:  # more than three lease lifetimes
            tries.append(other.run_cycle(now=T0))
            time.sleep(0.25)
    finally:
        release.set()
        worker.join(timeout=60)
    assert finished.is_set()
    assert tries and all(t.skipped is not None for t in tries), [t.skipped for t in tries]
    assert len(cli.commands("up")) == 1
    assert load_stack(STACK, project).pools["web"].mirror.state.value == "active"


# ----------------------------------------------------------------------------- fencing


def test_a_driver_that_lost_its_lease_before_acting_changes_nothing(project: Path) -> None:
    cli = KillableCli(Faults())
    stale = make_driver(
        project, cli=cli, journal=open_journal(_url(project)), clock=lambda: T0, holder="stale"
    )
    fresh = make_driver(
        project, cli=cli, journal=open_journal(_url(project)), clock=lambda: T0, holder="fresh"
    )
    observe = stale.observer.observe

    def stall_then_lose_the_lease(config: Any, **kwargs: Any) -> Any:
        # A long pause (GC, a slow refresh, a suspended VM) past the lease's expiry, during
        # which another driver takes the stack over.
        with stale.journal.engine.begin() as c:
            c.execute(sa.text("UPDATE leases SET expires_at = '2000-01-01 00:00:00'"))
        assert fresh._take_lease(timedelta(minutes=15))
        return observe(config, **kwargs)

    stale.observer.observe = stall_then_lose_the_lease  # type: ignore[method-assign]
    with pytest.raises(Exception, match="lost the lease"):
        stale.run_cycle(now=T0)

    assert cli.commands("config", "set-all") == [] and cli.commands("up") == []
    assert all(p.status != "applying" for p in stale.journal.plans(stack=STACK))
    report = fresh.run_cycle(now=T0 + STEP)
    assert report.outcome is not None and report.outcome.ok
    assert cli.activations == 1


# ----------------------------------------------------------------------------- release


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    root = tmp_path / "demo"
    (root / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(REPO / "stacks" / "Pulumi.demo.yaml", root / "stacks" / "Pulumi.demo.yaml")
    shutil.copytree(REPO / "examples" / "demo", root / "examples" / "demo")
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--stack", "demo", "--once", "--at", "2026-11-22T18:00:00Z"],
        ["rollback", "--stack", "demo", "--pool", "web", "--now"],
    ],
    ids=["run-once-at", "rollback-now"],
)
def test_every_exit_path_releases_the_lease(demo: Path, command: list[str]) -> None:
    env = {**os.environ, "MIRRORCAST_STATE_DIR": str(demo / "state"), "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "driver.cli", *command, "--mode", "plan"],
        cwd=demo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    journal = Journal(f"sqlite:///{demo / 'state' / 'journal.db'}")
    assert journal.cycles(stack="demo"), "the cycle ran"
    assert journal.lease(stack="demo") is None  # a pending rollback need not wait 40 minutes
