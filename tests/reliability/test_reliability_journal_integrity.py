"""The journal itself fails: deleted, replaced, corrupt, read-only, or opened by two drivers at once.

Real driver cycles (apply mode, the Pulumi stand-in) on a real SQLite file, the real CLI as a
subprocess for the one-line errors, and real processes racing on one fresh journal (SQLite and
a PostgreSQL 15 server started by the fixture).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from cycle_support import TRACE, make_driver, open_journal
from pg_server import postgres_server
from soak_harness import STACK, Faults, KillableCli, make_project

from driver.journal import Journal
from driver.service import CycleReport, Driver
from infra.config import load_stack

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2014, 4, 11, 0, 59, tzinfo=UTC)
"""A cycle at which the soak stack's predictive rule fires and the mirror is activated."""
STEP = timedelta(minutes=5)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "project", TRACE, quantile=0.7, update_timeout=120)
    # Near-zero demand from the activation on: the mirror must be rolled back.
    metrics = pd.read_csv(root / "metrics.csv")
    late = pd.to_datetime(metrics["timestamp"], utc=True) > pd.Timestamp(T0)
    metrics.loc[late, "value"] = 1.0
    metrics.to_csv(root / "metrics.csv", index=False)
    return root


def _cycle(driver: Driver, clock: Clock, at: datetime) -> CycleReport:
    clock.at = at
    return driver.run_cycle(now=at)


def _remove_journal(project: Path) -> None:
    # As `rm journal.db*` would: the file, its WAL and shared-memory index.
    for path in project.glob("journal.db*"):
        path.unlink()


# ----------------------------------------------------------------------------- journal loss


def test_a_deleted_journal_stops_the_driver_and_the_restarted_one_still_rolls_back(
    project: Path,
) -> None:
    url = f"sqlite:///{project / 'journal.db'}"
    clock = Clock(T0)
    cli = KillableCli(Faults())
    initial = load_stack(STACK, project).pools["web"]
    driver = make_driver(project, cli=cli, journal=open_journal(url), clock=clock)

    _cycle(driver, clock, T0)
    active = load_stack(STACK, project)
    assert active.pools["web"].mirror.state.value == "active"
    _remove_journal(project)  # (the stack itself records the activation and its original)
    ups = len(cli.commands("up"))
    with pytest.raises(Exception, match=r"journal\.db was deleted"):
        _cycle(driver, clock, T0 + STEP)
    assert len(cli.commands("up")) == ups  # it stopped acting

    # The restart: a new process, a new (empty) journal at the same place.
    restarted = make_driver(
        project, cli=cli, journal=open_journal(url), clock=clock, holder="driver-2"
    )
    first = _cycle(restarted, clock, T0 + 2 * STEP)
    assert any("memory rebuilt from the stack config" in note for note in first.notes)
    for i in range(3, 36):  # near-zero demand for almost three hours
        _cycle(restarted, clock, T0 + i * STEP)

    final = load_stack(STACK, project).pools["web"]
    assert final.mirror.state.value == "paused", "the pending rollback was lost"
    assert (final.balancer.weights.primary, final.balancer.weights.mirror) == (100, 0)
    assert final.primary.capacity == initial.primary.capacity
    # And the stack's record says so: a new journal would find nothing left to roll back.
    from driver.record import rebuild_memory

    assert rebuild_memory(load_stack(STACK, project), now=clock.at)[1] == []


def test_a_journal_replaced_by_another_file_is_detected_before_acting(project: Path) -> None:
    url = f"sqlite:///{project / 'journal.db'}"
    clock = Clock(T0 - timedelta(hours=1))
    cli = KillableCli(Faults())
    driver = make_driver(project, cli=cli, journal=open_journal(url), clock=clock)
    _cycle(driver, clock, clock.at)
    other = project / "other.db"
    Journal(f"sqlite:///{other}").close()
    os.replace(other, project / "journal.db")
    done = len(cli.calls)

    with pytest.raises(Exception, match=r"journal\.db was replaced"):
        _cycle(driver, clock, T0)
    assert cli.calls[done:] == []  # not even a refresh


def test_a_second_journal_for_the_stack_is_refused_unless_told_to_adopt(project: Path) -> None:
    clock = Clock(T0)
    cli = KillableCli(Faults())
    first = make_driver(
        project, cli=cli, journal=open_journal(f"sqlite:///{project / 'a.db'}"), clock=clock
    )
    _cycle(first, clock, T0)
    first.close()
    ups = len(cli.commands("up"))

    second = make_driver(
        project,
        cli=cli,
        journal=open_journal(f"sqlite:///{project / 'b.db'}"),
        clock=clock,
        holder="driver-2",
    )
    with pytest.raises(Exception, match="driven through another journal") as refused:
        _cycle(second, clock, T0 + STEP)
    assert "--adopt" in str(refused.value)
    assert len(cli.commands("up")) == ups

    second.adopt = True
    report = _cycle(second, clock, T0 + 2 * STEP)
    assert report.outcome is not None and report.outcome.ok
    second.adopt = False  # taken over once: later cycles (and restarts) need no flag
    for i in (3, 4):
        later = _cycle(second, clock, T0 + i * STEP)
        assert later.outcome is not None and later.outcome.ok
    memory = second.journal.load_memory(stack=STACK).pools["web"]
    assert memory.activation_id == first.journal.load_memory(stack=STACK).pools["web"].activation_id


# ----------------------------------------------------------------------------- killed cycles


def test_cycles_of_a_killed_driver_are_marked_interrupted_by_the_next_one(project: Path) -> None:
    url = f"sqlite:///{project / 'journal.db'}"
    journal = open_journal(url)
    killed = journal.start_cycle(stack=STACK, mode="apply", at=T0)  # what a SIGKILL leaves
    clock = Clock(T0 + STEP)
    driver = make_driver(project, cli=KillableCli(Faults()), journal=journal, clock=clock)

    report = _cycle(driver, clock, T0 + STEP)

    rows = {row["id"]: row for row in journal.cycles(stack=STACK)}
    assert rows[killed]["status"] == "interrupted" and rows[killed]["finished_at"] is not None
    assert "stopped before this cycle finished" in rows[killed]["error"]
    assert any("marked interrupted" in note for note in report.notes)
    assert [r["status"] for r in rows.values()].count("running") == 0


# ----------------------------------------------------------------------------- bad files


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MIRRORCAST_STATE_DIR": str(project / "state"),
        "PYTHONPATH": str(REPO),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "driver.cli", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    root = tmp_path / "demo"
    (root / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(REPO / "stacks" / "Pulumi.demo.yaml", root / "stacks" / "Pulumi.demo.yaml")
    shutil.copytree(REPO / "examples" / "demo", root / "examples" / "demo")
    return root


@pytest.mark.parametrize(
    "command", [["status", "--stack", "demo"], ["run", "--stack", "demo", "--once"]]
)
def test_a_corrupt_journal_is_one_line_naming_the_file_and_exit_2(
    demo: Path, command: list[str]
) -> None:
    state = demo / "state"
    state.mkdir(mode=0o700)
    (state / "journal.db").write_bytes(os.urandom(4096))

    result = _cli(demo, *command)

    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(state / "journal.db") in lines[0] and "not a database" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_an_immutable_journal_is_one_line_naming_the_file_and_exit_2(demo: Path) -> None:
    state = demo / "state"
    assert _cli(demo, "status", "--stack", "demo").returncode == 0  # a good journal
    journal = state / "journal.db"
    for path in state.glob("journal.db-*"):
        path.unlink()
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    made = subprocess.run(["chattr", "+i", str(journal)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make the journal immutable here: {made.stderr.strip()}")
    try:
        result = _cli(demo, "run", "--stack", "demo", "--once")
    finally:
        subprocess.run(["chattr", "-i", str(journal)], check=True)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(journal) in lines[0], result.stderr
    assert "Traceback" not in result.stderr


_MID_RUN = """
import subprocess, sys
from datetime import UTC, datetime
from driver.journal import Journal, JournalError
journal = Journal(sys.argv[1])
journal.start_cycle(stack="x", mode="plan", at=datetime.now(UTC))
for path in sys.argv[2:]:
    subprocess.run(["chattr", "+i", path], check=True)
try:
    getattr(journal, "verify", lambda: None)()  # the driver's check at every cycle start
    journal.start_cycle(stack="x", mode="plan", at=datetime.now(UTC))
except JournalError as exc:
    print(exc)
"""


def _immutable_mid_run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    journal = tmp_path / "journal.db"
    files = [str(journal), f"{journal}-wal", f"{journal}-shm"]
    probe = tmp_path / "probe"
    probe.write_text("x")
    if subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode != 0:
        pytest.skip("cannot make files immutable here (not root, or the filesystem has no flag)")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    try:
        return subprocess.run(
            [sys.executable, "-c", _MID_RUN, f"sqlite:///{journal}", *files],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        subprocess.run(["chattr", "-i", *files], capture_output=True)


def test_a_journal_made_immutable_mid_run_is_reported_before_the_next_write(
    tmp_path: Path,
) -> None:
    # SQLite writes its -shm index through a memory map: writing there once it is immutable
    # is SIGBUS. The check at every cycle start (and before every effect) says so first.
    result = _immutable_mid_run(tmp_path)
    assert "not writable" in result.stdout and "journal.db" in result.stdout, result


# The journal is open (its -shm index mapped) when it is made immutable; then a command of the
# real CLI entry point (``driver.cli.main``) meets it. Closing the connections at exit would
# write into the mapped -shm (SIGBUS, exit -7); the CLI leaves without closing them.
_MID_RUN_CLI = """
import subprocess, sys
from datetime import UTC, datetime
from driver.journal import Journal
journal = Journal(sys.argv[1])
journal.start_cycle(stack="x", mode="plan", at=datetime.now(UTC))
for path in sys.argv[2:]:
    subprocess.run(["chattr", "+i", path], check=True)
sys.argv = ["mirrorcast", "status", "--stack", "demo", "--no-observe"]
from driver.cli import main
main()
"""


def test_a_journal_made_immutable_mid_run_is_one_line_and_exit_2_without_a_sigbus(
    demo: Path,
) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    state = demo / "state"
    state.mkdir(mode=0o700)
    journal = state / "journal.db"
    probe = demo / "probe"
    probe.write_text("x")
    if subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode != 0:
        pytest.skip("cannot make files immutable here (not root, or the filesystem has no flag)")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    files = [str(journal), f"{journal}-wal", f"{journal}-shm"]
    try:
        result = subprocess.run(
            [sys.executable, "-c", _MID_RUN_CLI, f"sqlite:///{journal}", *files],
            cwd=demo,
            env={**os.environ, "MIRRORCAST_STATE_DIR": str(state), "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        subprocess.run(["chattr", "-i", *files], capture_output=True)
    # Before: the one line, then SIGBUS while the interpreter closed the connections (-7).
    assert result.returncode == 2, f"exit {result.returncode} (SIGBUS is -7): {result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not writable" in lines[0] and str(journal) in lines[0], lines


# ----------------------------------------------------------------------------- migrations


def _open(url: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        Journal(url).close()
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def _race(url: str, drivers: int = 4) -> list[str]:
    # Spawned, not forked: the whole suite's process has server threads running (moto's, the
    # sources' local HTTP servers), and a child forked while one of them holds a lock (logging,
    # import) waits on it forever; once in the whole suite a driver never answered (queue.Empty).
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(drivers)
    results = context.Queue()
    processes = [
        context.Process(target=_open, args=(url, barrier, results)) for _ in range(drivers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    return [results.get(timeout=5) for _ in processes]


def test_drivers_opening_one_fresh_sqlite_journal_at_once_all_succeed(tmp_path: Path) -> None:
    for attempt in range(5):  # the race lost about one time in two before the lock
        url = f"sqlite:///{tmp_path / f'fresh-{attempt}.db'}"
        assert _race(url) == ["ok"] * 4
        assert Journal(url).revision() == "0003"


def test_drivers_opening_one_fresh_postgresql_journal_at_once_all_succeed(
    tmp_path: Path,
) -> None:
    with postgres_server(tmp_path) as url:
        for _attempt in range(3):
            engine = sa.create_engine(url)
            with engine.begin() as c:
                c.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
            assert _race(url) == ["ok"] * 4
            journal = Journal(url)
            assert journal.revision() == "0003"
            journal.close()
