"""The journal on SQLite and on a real PostgreSQL server: schema, records, memory, lease."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from driver_helpers import NOW, activation_plan

from driver.journal import (
    Journal,
    JournalError,
    LeaseLostError,
    forecast_from_json,
    forecast_to_json,
)
from forecasting import Forecast
from policies import PlannerMemory, PoolMemory, RampState

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster on a free loopback port (initdb/pg_ctl as ``postgres``)."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root.
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser; cannot start PostgreSQL as 'postgres'")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="mirrorcast-pg-"))
    data = base / "data"
    if as_postgres:
        shutil.chown(base, user="postgres")
    port = _free_port()
    pg_ctl = [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *pg_ctl,
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1",
            "-w",
            "-l",
            str(base / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'journal.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        engine = sa.create_engine(url)
        with engine.begin() as c:  # every test starts from an empty database
            c.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    j = Journal(url)
    yield j
    j.close()


def test_migrations_build_the_schema_from_empty_and_are_idempotent(journal: Journal) -> None:
    assert journal.revision() == "0003"
    tables = set(sa.inspect(journal.engine).get_table_names())
    assert {"cycles", "plans", "config_changes", "updates", "memories", "forecasts"} <= tables
    assert {"rollback_requests", "leases", "alembic_version", "journal_identity"} <= tables
    journal.upgrade()  # again: nothing to do, nothing breaks
    assert journal.revision() == "0003"


def test_the_shipped_head_read_without_alembic_is_alembics_own_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from driver.journal import _MIGRATIONS, _shipped_head

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))

    assert _shipped_head() == ScriptDirectory.from_config(config).get_current_head()


def test_opening_a_journal_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    # A one-shot driver opens its journal every cycle; alembic's import and upgrade run cost it
    # about 0.3 s to do nothing. Checked in a fresh interpreter (this one imported alembic).
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    Journal(url).close()  # created and migrated to head
    probe = (
        "import sys\n"
        "from driver.journal import Journal\n"
        f"journal = Journal({url!r})\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert done.stdout.split() == ["False"]


def test_a_journal_from_an_older_schema_is_upgraded_in_place(tmp_path: Path, project: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Journal(url, migrate=False)
    old.upgrade("0001")
    cycle = old.start_cycle(stack="demo", mode="plan", at=NOW)
    with old.engine.begin() as c:  # a plan row as the first schema stored it (no memory column)
        c.execute(
            sa.text(
                "insert into plans (id, cycle_id, stack, created_at, status, explanation, changes,"
                " decisions, rules) values ('p0', :c, 'demo', :t, 'applied', 'why', '[]', '[]', '[]')"
            ),
            {"c": cycle, "t": NOW.replace(tzinfo=None)},
        )
    old.close()

    upgraded = Journal(url)

    assert upgraded.revision() == "0003"
    (record,) = upgraded.plans(stack="demo")
    assert record.id == "p0" and record.memory is None
    plan_id = upgraded.record_plan(
        stack="demo", cycle_id=cycle, plan=activation_plan(project), status="proposed"
    )
    proposed = upgraded.latest_plan(stack="demo", status="proposed")
    assert proposed is not None and proposed.id == plan_id and proposed.memory is not None


def test_a_cycle_its_plan_changes_and_outcome_are_recorded(journal: Journal, project: Path) -> None:
    plan = activation_plan(project)
    cycle = journal.start_cycle(stack="demo", mode="apply", at=NOW)
    plan_id = journal.record_plan(stack="demo", cycle_id=cycle, plan=plan, status="applying")

    unfinished = journal.unfinished_plan(stack="demo")
    assert unfinished is not None and unfinished.id == plan_id
    assert unfinished.changes[0] == {
        "path": "pools.web.mirror.state",
        "old": "paused",
        "new": "active",
    }
    assert unfinished.decisions[0]["action"] == "activate_mirror"

    journal.set_plan_status(plan_id, status="applied", at=NOW, outcome="updated")
    journal.record_update(
        stack="demo", plan_id=plan_id, kind="up", at=NOW, ok=True, summary="updated"
    )
    journal.finish_cycle(
        cycle, at=NOW + timedelta(seconds=3), ok=True, degraded=["x"], duration_s=3.0
    )

    assert journal.unfinished_plan(stack="demo") is None
    (record,) = journal.plans(stack="demo")
    assert record.status == "applied" and "predicted-cpu fired" in record.explanation
    (row,) = journal.cycles(stack="demo")
    assert row["status"] == "ok" and row["degraded"] == ["x"]
    assert row["started_at"] == NOW  # timezone-aware UTC on every backend
    with journal.engine.connect() as c:
        assert c.execute(sa.text("select count(*) from config_changes")).scalar() == 5


def test_planner_memory_survives_with_its_pending_deadlines(journal: Journal) -> None:
    memory = PlannerMemory(
        pools={
            "web": PoolMemory(
                activation_id="a1",
                activated_at=NOW,
                original={"pools.web.mirror.state": "paused"},
                ramp=RampState(
                    target_mirror_share=30,
                    step_share=10,
                    next_step_at=NOW + timedelta(minutes=5),
                    started_at=NOW,
                    rule="r",
                ),
                rollback_deadline=NOW + timedelta(minutes=30),
            )
        }
    )
    journal.save_memory(stack="demo", memory=PlannerMemory(), at=NOW)
    journal.save_memory(stack="demo", memory=memory, at=NOW)

    loaded = journal.load_memory(stack="demo")

    assert loaded == memory
    assert journal.load_memory(stack="other") == PlannerMemory()


def test_secrets_never_reach_the_journal(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_supersecret_value")
    cycle = journal.start_cycle(stack="demo", mode="gitops", at=NOW)
    journal.finish_cycle(
        cycle, at=NOW, ok=False, error="push failed with ghp_supersecret_value in URL"
    )
    journal.record_update(
        stack="demo",
        plan_id=None,
        kind="gitops",
        at=NOW,
        ok=False,
        summary="token ghp_supersecret_value",
    )
    journal.save_memory(
        stack="demo",
        memory=PlannerMemory(
            pools={"web": PoolMemory(original={"db_password": "hunter2", "x": {"secure": "AAAB"}})}
        ),
        at=NOW,
    )
    with journal.engine.connect() as c:
        dump = " ".join(
            str(row)
            for table in ("cycles", "updates", "memories")
            for row in c.execute(sa.text(f"select * from {table}"))
        )
    assert "ghp_supersecret_value" not in dump and "hunter2" not in dump and "AAAB" not in dump
    assert "[redacted]" in dump


def test_the_lease_lets_one_driver_act_until_it_expires(journal: Journal) -> None:
    # Lease times are the database's clock: expiry is waited out for real (short TTLs).
    ttl = timedelta(seconds=1.5)
    first = journal.acquire_lease(stack="demo", holder="a", ttl=ttl)
    assert first == 1
    assert journal.acquire_lease(stack="demo", holder="b", ttl=ttl) is None
    assert journal.acquire_lease(stack="demo", holder="a", ttl=ttl) == first  # renewal
    assert journal.acquire_lease(stack="other", holder="a", ttl=ttl) == 1  # per stack
    time.sleep(1.7)
    second = journal.acquire_lease(stack="demo", holder="b", ttl=timedelta(minutes=5))
    assert second == first + 1  # a new holder, a higher fencing token
    with pytest.raises(LeaseLostError, match="holds it now"):
        journal.renew_lease(stack="demo", holder="a", token=first, ttl=ttl)
    journal.release_lease(stack="demo", holder="b")
    assert journal.lease(stack="demo") is None
    # Released, not deleted: the next holder's token is still higher.
    assert journal.acquire_lease(stack="demo", holder="c", ttl=ttl) == second + 1


def test_rollback_requests_wait_until_honoured(journal: Journal) -> None:
    first = journal.request_rollback(
        stack="demo", pool="web", at=NOW, requested_by="ana", reason="false alarm"
    )
    assert [r.pool for r in journal.pending_rollbacks(stack="demo")] == ["web"]
    journal.honour_rollbacks([first], at=NOW, plan_id=None)
    assert journal.pending_rollbacks(stack="demo") == []


def _flat_forecast(
    issued: datetime, level: float, *, pool: str = "web", metric: str = "cpu"
) -> Forecast:
    times = [issued + timedelta(minutes=5 * i) for i in range(1, 4)]
    values = np.full(3, level)
    return Forecast(
        pool=pool,
        metric=metric,
        issued_at=issued,
        step=timedelta(minutes=5),
        times=times,
        mean=values,
        quantiles={50: values, 90: values + 5},
        model="mstl",
    )


def test_the_newest_forecast_per_series_is_kept_for_fallback(journal: Journal) -> None:
    forecast = _flat_forecast

    journal.save_forecasts(stack="demo", forecasts={"web": {"cpu": forecast(NOW, 40)}})
    journal.save_forecasts(
        stack="demo", forecasts={"web": {"cpu": forecast(NOW - timedelta(hours=1), 10)}}
    )

    kept = journal.last_forecasts(stack="demo")["web"]["cpu"]
    assert kept.issued_at == NOW and float(kept.mean[0]) == 40
    assert forecast_from_json(forecast_to_json(kept)).quantiles[90].tolist() == [45.0, 45.0, 45.0]


def test_a_cycles_forecasts_are_kept_in_a_few_statements_not_two_per_series(
    journal: Journal,
) -> None:
    """20,000 series a cycle were 40,000 round trips; a batch is a read and two writes."""
    pools = [f"p{i:02d}" for i in range(40)]
    first = {p: {"cpu": _flat_forecast(NOW, 1.0, pool=p)} for p in pools}
    journal.save_forecasts(stack="demo", forecasts=first)
    # Another stack's rows with the same pool names are not this stack's.
    journal.save_forecasts(
        stack="other", forecasts={"p00": {"cpu": _flat_forecast(NOW, 7.0, pool="p00")}}
    )
    later = NOW + timedelta(minutes=5)
    second: dict[str, dict[str, Forecast]] = {}
    for index, pool in enumerate(pools):
        # Newer for most, older for every fifth (kept as it was), a new metric for every third.
        issued = NOW - timedelta(minutes=5) if index % 5 == 0 else later
        second[pool] = {"cpu": _flat_forecast(issued, 2.0, pool=pool)}
        if index % 3 == 0:
            second[pool]["rps"] = _flat_forecast(later, 3.0, pool=pool, metric="rps")
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    sa.event.listen(journal.engine, "before_cursor_execute", count)
    try:
        journal.save_forecasts(stack="demo", forecasts=second)
    finally:
        sa.event.remove(journal.engine, "before_cursor_execute", count)
    writes = [s for s in statements if not s.lstrip().upper().startswith(("SELECT", "PRAGMA"))]
    assert len(statements) <= 4, statements
    assert len(writes) <= 2, writes

    kept = journal.last_forecasts(stack="demo")
    for index, pool in enumerate(pools):
        cpu = kept[pool]["cpu"]
        expected = (NOW, 1.0) if index % 5 == 0 else (later, 2.0)
        assert (cpu.issued_at, float(cpu.mean[0])) == expected, pool
        assert ("rps" in kept[pool]) == (index % 3 == 0), pool
        if index % 3 == 0:
            assert float(kept[pool]["rps"].mean[0]) == 3.0
    assert float(journal.last_forecasts(stack="other")["p00"]["cpu"].mean[0]) == 7.0


def test_the_sqlite_journal_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "j" / "journal.db"
    journal = Journal(f"sqlite:///{path}")
    with journal.engine.connect() as c:
        assert c.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    assert path.stat().st_mode & 0o777 == 0o600
    journal.close()


def test_an_unreachable_journal_is_one_clear_error() -> None:
    with pytest.raises(JournalError, match="cannot use the journal postgresql") as caught:
        Journal(f"postgresql+psycopg2://nobody:secretpw@127.0.0.1:{_free_port()}/x")
    assert "secretpw" not in str(caught.value)


def test_the_default_journal_lives_in_the_state_dir(private_state: Path) -> None:
    journal = Journal()
    assert journal.url == f"sqlite:///{private_state / 'journal.db'}"
    assert private_state.stat().st_mode & 0o777 == 0o700
    journal.close()
