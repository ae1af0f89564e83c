"""The journal database goes away mid-cycle: the driver stops acting rather than act without a record.

A real PostgreSQL 15 (``/usr/lib/postgresql/15/bin``) is started in a temp dir by the fixture
(as the ``postgres`` user when run as root, since initdb refuses root) on a free loopback port,
stopped in the middle of a cycle, and started again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cycle_support import TRACE, make_driver
from pg_server import Postgres, running_postgres
from soak_harness import STACK, DyingJournal, Faults, KillableCli, make_project

from driver.journal import JournalError
from driver.observers import StackObservation
from infra.config import MirrorcastConfig, load_stack

T0 = datetime(2014, 4, 11, 0, 59, tzinfo=UTC)

DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError, JournalError)
"""What a cycle raises while the journal's database cannot be reached."""

pytestmark = pytest.mark.server


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


def test_the_driver_stops_acting_while_the_journal_is_down_and_resumes_after(
    tmp_path: Path, postgres: Postgres
) -> None:
    project = make_project(tmp_path / "project", TRACE, quantile=0.7)
    stack_file = project / "stacks" / f"Pulumi.{STACK}.yaml"
    now = [T0]
    cli = KillableCli(Faults())
    journal = DyingJournal(postgres.url)
    journal.faults = Faults()
    driver = make_driver(project, cli=cli, journal=journal, clock=lambda: now[0])
    before = stack_file.read_text()

    # The database stops after the metrics were collected and before the plan is recorded.
    # (The pools are observed between collecting and deciding: stop the database there.)
    observe = driver.observer.observe

    def stop_then_observe(config: MirrorcastConfig, *, now: datetime) -> StackObservation:
        postgres.stop()
        return observe(config, now=now)

    driver.observer.observe = stop_then_observe  # type: ignore[method-assign]
    with pytest.raises(DATABASE_DOWN) as caught:
        driver.run_cycle(now=T0)
    assert "connect" in str(caught.value) or "terminat" in str(caught.value), caught.value
    # Nothing was acted on: no config set, no update, the stack file untouched.
    assert cli.commands("config", "set-all") == [] and cli.commands("up") == []
    assert stack_file.read_text() == before

    # Still down at the next cycle: it refuses at the start, again without acting.
    now[0] = T0 + timedelta(minutes=5)
    with pytest.raises(DATABASE_DOWN):
        driver.run_cycle(now=now[0])
    assert cli.commands("up") == []

    # Back: the next cycle acts, once, with a record.
    driver.observer.observe = observe  # type: ignore[method-assign]
    postgres.start()
    now[0] = T0 + timedelta(minutes=10)
    started = time.monotonic()
    report = driver.run_cycle(now=now[0])
    assert time.monotonic() - started < 30
    assert report.outcome is not None and report.outcome.ok
    assert cli.activations == 1
    (plan,) = [p for p in journal.plans(stack=STACK, limit=10) if p.changes]
    assert plan.status == "applied"
    assert load_stack(STACK, project).pools["web"].mirror.state.value == "active"
    # The cycle the outage interrupted is on record as failed or never finished, not as ok.
    statuses = [c["status"] for c in journal.cycles(stack=STACK, limit=10)]
    assert statuses[0] == "ok" and "ok" not in statuses[1:]


def test_a_full_journal_disk_never_lets_the_driver_act_without_a_record_and_it_resumes(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "project", TRACE, quantile=0.7)
    journal = DyingJournal(f"sqlite:///{project / 'journal.db'}")
    journal.faults = Faults()
    cli = KillableCli(Faults())
    now = [T0 - timedelta(hours=1)]
    driver = make_driver(project, cli=cli, journal=journal, clock=lambda: now[0])
    driver.run_cycle(now=now[0])  # a quiet cycle: the journal has its tables and some rows
    full = {"on": True}

    @sa.event.listens_for(journal.engine, "connect")
    def _no_room(dbapi_connection: Any, _record: Any) -> None:
        # SQLite's own "database or disk is full" (SQLITE_FULL), as on a full disk.
        if full["on"]:
            cursor = dbapi_connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count = {pages}")
            cursor.close()

    journal.engine.dispose()
    failures = 0
    for step in range(6):
        now[0] = T0 + timedelta(minutes=5 * step)
        try:
            driver.run_cycle(now=now[0])
        except JournalError as error:
            # One sentence naming the file and SQLite's own "database or disk is full".
            assert "full" in str(error) and "journal.db" in str(error)
            failures += 1
    assert failures >= 1, "the journal filled up"
    # Whatever was set on the stack was journaled as intent first: nothing acted without a record.
    intents = {
        change["path"]
        for plan in journal.plans(stack=STACK, limit=50)
        if plan.status != "planned"
        for change in plan.changes
    }
    for command in cli.commands("config", "set-all"):
        keys = {w.split("=")[0].removeprefix("mirrorcast:") for w in command if "=" in w}
        assert keys <= intents, f"{keys - intents} set without a journaled plan"

    full["on"] = False
    journal.engine.dispose()
    for step in range(6, 9):
        now[0] = T0 + timedelta(minutes=5 * step)
        report = driver.run_cycle(now=now[0])
        assert report.outcome is not None and report.outcome.ok
    assert all(p.status != "applying" for p in journal.plans(stack=STACK, limit=50))
    assert cli.activations == 1
    # The stack shows what the newest applied plan set (the mirror may since have been rolled
    # back by the health timeout: nothing observes it here).
    newest = next(
        change["new"]
        for plan in journal.plans(stack=STACK, limit=50)
        if plan.status == "applied"
        for change in plan.changes
        if change["path"] == "pools.web.mirror.state"
    )
    assert load_stack(STACK, project).pools["web"].mirror.state.value == newest
