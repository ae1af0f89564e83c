"""The driver's journal: every cycle, plan, config change, update result and the planner's memory.

One schema (SQLAlchemy Core tables below, created and upgraded by the alembic migrations shipped
in ``driver/journal_migrations``) on SQLite by default (WAL mode, a 0600 file in the state
directory) or PostgreSQL through ``driver.journal_url``.

Crash safety rests on two rules the executors follow: a plan is written with status ``applying``
*before* anything is changed, and its outcome after. A plan still ``applying`` when a driver
starts is an interrupted update: the apply executor refreshes and reconciles it instead of
running it again. The planner's memory (pending ramps, rollback deadlines, the config to
restore) is stored at the end of every cycle, so a restart never loses a pending rollback.

A lease row per stack keeps two drivers from acting on one stack at once: its times come from
the database's clock (never a driver's), each holder is a unique id per process, and every
take-over raises the lease's fencing token, which the driver checks (and renews) before each
effect. See docs/reliability.md ("One actor per stack") for the guarantee and its limits.

Every database error surfaces as :class:`JournalError`, one sentence naming the journal (the
file for SQLite) and the cause; a corrupt, read-only, deleted or replaced journal is never a
traceback, and a journal replaced under a running driver (:class:`JournalLostError`) stops it
from acting.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from driver.redact import redact, redact_text
from driver.state import state_path
from forecasting import Forecast
from infra.config import UserError
from policies import Plan, PlannerMemory

__all__ = [
    "ACTIVE_PLAN_STATES",
    "CANCELLED",
    "OBSERVE_KIND",
    "Journal",
    "JournalError",
    "JournalLostError",
    "LeaseLostError",
    "PlanRecord",
    "RollbackRequest",
    "default_journal_url",
    "forecast_from_json",
    "forecast_to_json",
    "metadata",
    "unwritable_journal_seen",
]

logger = logging.getLogger(__name__)


_UNWRITABLE_SEEN = threading.Event()


def unwritable_journal_seen() -> bool:
    """Whether this process found a journal it cannot write (``mirrorcast`` then exits without
    closing it: see ``driver.cli._leave_an_unwritable_journal_unclosed``)."""
    return _UNWRITABLE_SEEN.is_set()


class JournalError(UserError, RuntimeError):
    """The journal cannot be opened or used; the message says which database and why."""


class JournalLostError(JournalError):
    """The journal was deleted or replaced while this driver had it open: stop acting.

    A driver that kept going would write to an unlinked file (its pooled connections keep the
    old inode open) and forget everything on the next start, including pending rollbacks.
    """


class LeaseLostError(JournalError):
    """Another driver holds the stack's lease now (this one's expired or was taken over).

    Raised by the fencing check before an effect; nothing more is done in this cycle, and the
    plan left ``applying`` is finished by the new holder.
    """


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("journal timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

cycles = sa.Table(
    "cycles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("stack", sa.String(200), nullable=False, index=True),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("status", sa.String(20), nullable=False),  # running | ok | error
    sa.Column("error", sa.Text),
    sa.Column("degraded", sa.JSON),
    sa.Column("duration_s", sa.Float),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("cycle_id", sa.Integer, sa.ForeignKey("cycles.id"), nullable=False, index=True),
    sa.Column("stack", sa.String(200), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # planned (nothing to do or plan mode) | applying | applied | proposed (gitops) | failed | mismatch
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),
    sa.Column("changes", sa.JSON, nullable=False),
    sa.Column("decisions", sa.JSON, nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("outcome", sa.Text),
    sa.Column("updated_at", UTCDateTime),
    # The planner memory the plan leaves (migration 0002); adopted when a proposal is merged.
    sa.Column("memory", sa.JSON),
)

config_changes = sa.Table(
    "config_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan_id", sa.String(40), sa.ForeignKey("plans.id"), nullable=False, index=True),
    sa.Column("path", sa.String(400), nullable=False),
    sa.Column("old", sa.JSON),
    sa.Column("new", sa.JSON),
)

updates = sa.Table(
    "updates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan_id", sa.String(40), sa.ForeignKey("plans.id"), index=True),
    sa.Column("stack", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # up | refresh | reconcile | gitops
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
)

memories = sa.Table(
    "memories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("stack", sa.String(200), nullable=False, index=True),
    sa.Column("cycle_id", sa.Integer, sa.ForeignKey("cycles.id")),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("memory", sa.JSON, nullable=False),
)

forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("stack", sa.String(200), primary_key=True),
    sa.Column("pool", sa.String(100), primary_key=True),
    sa.Column("metric", sa.String(100), primary_key=True),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
)

rollback_requests = sa.Table(
    "rollback_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("stack", sa.String(200), nullable=False, index=True),
    sa.Column("pool", sa.String(100), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("honoured_at", UTCDateTime),
    sa.Column("plan_id", sa.String(40)),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("stack", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    # Migration 0003: raised on every change of holder, checked before each effect.
    sa.Column("token", sa.Integer, nullable=False, server_default="0"),
    # Where the holder runs (host, boot, PID namespace, pid, start time): lets a driver on the
    # same machine take over at once from a holder whose process is gone.
    sa.Column("origin", sa.String(400)),
)

journal_identity = sa.Table(
    "journal_identity",
    metadata,
    # One row, written by migration 0003: this journal's id, the marker the driver writes into
    # the stack config so a second journal driving the same stack is detected.
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

OBSERVE_KIND = "observe"
"""The ``updates`` kind of a cycle's observation (observed beside intended, as JSON)."""

CANCELLED = "cancelled"
"""The ``plan_id`` of a rollback request a person withdrew (``mirrorcast rollback --cancel``)."""

ACTIVE_PLAN_STATES = frozenset({"applying"})
"""Plan states that mean an update was started and its outcome never recorded."""


@dataclass(frozen=True)
class PlanRecord:
    """A journaled plan, as ``status`` and ``history`` show it."""

    id: str
    cycle_id: int
    stack: str
    created_at: datetime
    status: str
    explanation: str
    changes: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    rules: list[dict[str, Any]]
    outcome: str | None
    memory: dict[str, Any] | None = None


@dataclass(frozen=True)
class RollbackRequest:
    """A person's request to roll a pool back, honoured by the next cycle."""

    id: int
    stack: str
    pool: str
    requested_at: datetime
    requested_by: str
    reason: str
    honoured_at: datetime | None


def default_journal_url() -> str:
    """SQLite in the state directory."""
    return f"sqlite:///{state_path('journal.db')}"


def _json(value: Any) -> Any:
    """A JSON-safe, secret-free copy of ``value``."""
    return redact(json.loads(json.dumps(value, default=str)))


class Journal:
    """The journal of one database (shared by every stack the driver runs).

    :param url: SQLAlchemy URL; default SQLite ``journal.db`` in the state directory.
    :param migrate: bring the schema up to date on open; default ``True``.
    """

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = url or default_journal_url()
        try:
            self.engine: Engine = sa.create_engine(self.url, future=True)
        except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
            raise JournalError(f"cannot use journal URL {self._safe_url()}: {exc}") from None
        self._file: Path | None = None
        self._file_identity: tuple[int, int] | None = None
        self._id: str | None = None
        if self.engine.dialect.name == "sqlite":
            self._prepare_sqlite()
        if migrate:
            self.upgrade()
            self._remember_identity()

    # ------------------------------------------------------------------ setup

    def _safe_url(self) -> str:
        try:
            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "<unparseable URL>"

    @property
    def where(self) -> str:
        """The journal as a person finds it: the file for SQLite, the password-free URL otherwise."""
        return str(self._file) if self._file is not None else self._safe_url()

    def _prepare_sqlite(self) -> None:
        database = self.engine.url.database
        if database and database != ":memory:":
            path = Path(database).absolute()
            self._file = path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    # Create it private before SQLite does, so it never exists world-readable.
                    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                    os.close(fd)
                if path.stat().st_mode & 0o777 != 0o600:
                    path.chmod(0o600)
                self._check_writable()
            except OSError as exc:
                raise JournalError(
                    f"cannot use the journal {path}: {exc.strerror or exc} (it must be a writable "
                    "file of this user; check its owner, mode and attributes, e.g. 'lsattr')"
                ) from None

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets `mirrorcast status` read while the service writes; the busy timeout makes
            # a concurrent writer wait instead of failing at once.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    def _failure(self, exc: BaseException) -> JournalError:
        """One sentence for a database error: the journal, the cause, what to do."""
        orig = getattr(exc, "orig", None) or exc
        cause = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        hint = ""
        lowered = cause.lower()
        if "not a database" in lowered or "malformed" in lowered:
            hint = (
                "; the file is corrupt: move it aside (the driver starts a new journal and "
                "rebuilds the active mirrors from the stack) or restore it from a backup"
            )
        elif "readonly" in lowered or "read-only" in lowered or "permission" in lowered:
            hint = "; the journal must be writable by the driver (check owner, mode, 'lsattr')"
        elif "disk" in lowered and "full" in lowered:
            hint = "; free some space: nothing is acted on until the journal can record it"
        return JournalError(redact_text(f"cannot use the journal {self.where}: {cause}{hint}"))

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        try:
            yield
        except JournalError:
            raise
        except (sa.exc.DBAPIError, sa.exc.ResourceClosedError) as exc:
            raise self._failure(exc) from exc
        except OSError as exc:
            raise self._failure(exc) from exc

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """SQLite: an exclusive ``flock`` on the database file while migrating.

        SQLite's own locks are POSIX ``fcntl`` locks, which ``flock`` does not interfere with on
        Linux. Taken outside the migration's transaction, so it is released only after commit.
        """
        if self._file is None:
            yield
            return
        with open(self._file, "rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def upgrade(self, revision: str = "head") -> None:
        """Apply the shipped migrations up to ``revision`` (default the newest; idempotent).

        Two drivers opening one fresh journal at once must not both create it: the migration
        runs under a lock (SQLite: :meth:`_file_lock`; PostgreSQL: a transaction-scoped
        advisory lock), so the second waits, then finds the schema at head and does nothing.
        """
        if revision == "head" and self._at(_shipped_head()):
            # Every open of a journal already at head (every cycle of a one-shot driver) would
            # otherwise import alembic and run its upgrade machinery to do nothing: about 0.3 s
            # of a one-shot cycle's start on a quiet 2-core machine.
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self._guarded(), self._file_lock(), self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def _at(self, revision: str | None) -> bool:
        """Whether the database's schema is at ``revision`` (``None``: unknown, so no)."""
        if revision is None:
            return False
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        except sa.exc.DBAPIError:  # no version table yet (a new journal), or unreadable
            return False
        return [row[0] for row in rows] == [revision]

    def revision(self) -> str | None:
        """The schema revision the database is at (``None`` before the first migration)."""
        from alembic.runtime.migration import MigrationContext

        with self._read() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def _remember_identity(self) -> None:
        self._id = self._read_id()
        if self._file is not None:
            st = self._file.stat()
            self._file_identity = (st.st_dev, st.st_ino)

    def _read_id(self) -> str:
        with self._read() as c:
            row = c.execute(sa.select(journal_identity.c.id).limit(1)).first()
        if row is None:
            raise JournalError(f"cannot use the journal {self.where}: it has no identity row")
        return str(row[0])

    @property
    def id(self) -> str:
        """This journal's id (written once by migration 0003; the stack-config marker)."""
        if self._id is None:
            self._remember_identity()
        assert self._id is not None
        return self._id

    def _check_writable(self) -> None:
        """Refuse a journal whose file, WAL or shared-memory index cannot be written.

        SQLite maps the ``-shm`` index into memory: writing through the map to a file made
        immutable (``chattr +i``) kills the process with SIGBUS, which no handler can turn into
        a message. ``access(W_OK)`` sees the immutable flag (even for root), so checking first
        turns it into one sentence. A change between this check and the next write is not
        covered.
        """
        if self._file is None:
            return
        for path in (self._file, *(Path(f"{self._file}{suffix}") for suffix in ("-wal", "-shm"))):
            if path.exists() and not os.access(path, os.W_OK):
                _UNWRITABLE_SEEN.set()
                raise JournalError(
                    f"cannot use the journal {self._file}: {path.name} is not writable (read-only "
                    "or immutable: check its owner, mode and 'lsattr'); nothing is acted on until "
                    "it is"
                )

    def verify(self) -> None:
        """Raise :class:`JournalLostError` when the journal is no longer the one opened.

        Checked at the start of every cycle and before every effect: a SQLite file deleted
        (pooled connections would go on writing to the unlinked inode) or replaced by another
        file, or a database whose identity row changed (dropped and recreated).
        """
        if self._file is not None and self._file_identity is not None:
            try:
                st = self._file.stat()
            except FileNotFoundError:
                raise JournalLostError(
                    f"the journal {self._file} was deleted while the driver had it open; this "
                    "driver stops acting. Restart it: it starts a new journal and rebuilds the "
                    "active mirrors and their original config from the stack"
                ) from None
            if (st.st_dev, st.st_ino) != self._file_identity:
                raise JournalLostError(
                    f"the journal {self._file} was replaced by another file while the driver had "
                    "it open; this driver stops acting. Restart it to use the new file"
                )
        self._check_writable()
        if self._id is not None:
            current = self._read_id()
            if current != self._id:
                raise JournalLostError(
                    f"the journal {self.where} is not the one this driver opened (id {self._id}, "
                    f"now {current}); this driver stops acting. Restart it to use the new journal"
                )

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        with self._guarded(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._guarded(), self.engine.connect() as connection:
            yield connection

    def _db_now(self, c: sa.Connection) -> datetime:
        """The database server's clock (UTC): the one clock every driver of a journal shares."""
        if c.dialect.name == "sqlite":
            text = c.execute(sa.text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
            return datetime.fromisoformat(str(text)).replace(tzinfo=UTC)
        if c.dialect.name == "postgresql":
            value = c.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
        else:
            value = c.execute(sa.select(sa.func.current_timestamp())).scalar_one()
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def now(self) -> datetime:
        """The database's current time (lease times are measured on it)."""
        with self._read() as c:
            return self._db_now(c)

    # ------------------------------------------------------------------ cycles

    def start_cycle(self, *, stack: str, mode: str, at: datetime) -> int:
        """Record a cycle start; returns its id."""
        with self._begin() as c:
            result = c.execute(
                cycles.insert().values(stack=stack, mode=mode, started_at=at, status="running")
            )
            return _inserted_id(result)

    def finish_cycle(
        self,
        cycle_id: int,
        *,
        at: datetime,
        ok: bool,
        error: str | None = None,
        degraded: list[str] | None = None,
        duration_s: float | None = None,
    ) -> None:
        """Record how a cycle ended.

        :param error: the cause when it failed (redacted); default none.
        :param degraded: the cycle's fallbacks; default none.
        :param duration_s: wall-clock duration; default none.
        """
        with self._begin() as c:
            c.execute(
                cycles.update()
                .where(cycles.c.id == cycle_id)
                .values(
                    finished_at=at,
                    status="ok" if ok else "error",
                    error=_json(error) if error else None,
                    degraded=_json(degraded or []),
                    duration_s=duration_s,
                )
            )

    def cycles(self, *, stack: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest cycles of ``stack``, newest first."""
        with self._read() as c:
            rows = c.execute(
                sa.select(cycles)
                .where(cycles.c.stack == stack)
                .order_by(cycles.c.id.desc())
                .limit(limit)
            ).mappings()
            return [dict(row) for row in rows]

    # ------------------------------------------------------------------ plans

    def record_plan(self, *, stack: str, cycle_id: int, plan: Plan, status: str) -> str:
        """Journal a plan with its changes, decisions and rule outcomes; returns its id.

        :param status: ``planned`` (nothing will be done), ``applying`` (intent, written before
            acting) or ``proposed``.
        """
        plan_id = uuid.uuid4().hex[:12]
        changes = [
            {"path": ch.path, "old": _json(ch.old), "new": _json(ch.new)} for ch in plan.changes
        ]
        with self._begin() as c:
            c.execute(
                plans.insert().values(
                    id=plan_id,
                    cycle_id=cycle_id,
                    stack=stack,
                    created_at=plan.now,
                    status=status,
                    explanation=_json(plan.explanation),
                    changes=changes,
                    decisions=_json([d.model_dump(mode="json") for d in plan.decisions]),
                    rules=_json([r.model_dump(mode="json") for r in plan.rules]),
                    updated_at=plan.now,
                    memory=_json(plan.memory.model_dump(mode="json")),
                )
            )
            if changes:
                c.execute(config_changes.insert(), [{"plan_id": plan_id, **ch} for ch in changes])
        return plan_id

    def set_plan_status(
        self, plan_id: str, *, status: str, at: datetime, outcome: str | None = None
    ) -> None:
        """Record a plan's outcome (``applied``, ``failed``, ``mismatch``, ``proposed`` ...)."""
        with self._begin() as c:
            c.execute(
                plans.update()
                .where(plans.c.id == plan_id)
                .values(status=status, updated_at=at, outcome=_json(outcome) if outcome else None)
            )

    def plans(self, *, stack: str, limit: int = 20) -> list[PlanRecord]:
        """The newest plans of ``stack``, newest first."""
        with self._read() as c:
            rows = c.execute(
                sa.select(plans)
                .where(plans.c.stack == stack)
                .order_by(plans.c.created_at.desc(), plans.c.cycle_id.desc())
                .limit(limit)
            ).mappings()
            return [_plan_record(row) for row in rows]

    def latest_plan(self, *, stack: str, status: str) -> PlanRecord | None:
        """The newest plan of ``stack`` with ``status`` (e.g. the open ``proposed`` one)."""
        with self._read() as c:
            row = (
                c.execute(
                    sa.select(plans)
                    .where(plans.c.stack == stack, plans.c.status == status)
                    .order_by(plans.c.created_at.desc(), plans.c.cycle_id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            return _plan_record(row) if row is not None else None

    def unfinished_plan(self, *, stack: str) -> PlanRecord | None:
        """The newest plan written as ``applying`` whose outcome was never recorded."""
        with self._read() as c:
            row = (
                c.execute(
                    sa.select(plans)
                    .where(plans.c.stack == stack, plans.c.status.in_(ACTIVE_PLAN_STATES))
                    .order_by(plans.c.created_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            return _plan_record(row) if row is not None else None

    def record_update(
        self, *, stack: str, plan_id: str | None, kind: str, at: datetime, ok: bool, summary: str
    ) -> None:
        """Record the result of a ``pulumi up``/``refresh``/reconcile or a gitops push."""
        with self._begin() as c:
            c.execute(
                updates.insert().values(
                    stack=stack, plan_id=plan_id, kind=kind, at=at, ok=ok, summary=_json(summary)
                )
            )

    def updates(self, *, stack: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest update results of ``stack``, newest first."""
        with self._read() as c:
            rows = c.execute(
                sa.select(updates)
                .where(updates.c.stack == stack)
                .order_by(updates.c.id.desc())
                .limit(limit)
            ).mappings()
            return [dict(row) for row in rows]

    def has_update(self, *, stack: str, kind: str, summary: str) -> bool:
        """Whether ``stack`` has an update row of ``kind`` with exactly ``summary``."""
        with self._read() as c:
            row = c.execute(
                sa.select(updates.c.id)
                .where(
                    updates.c.stack == stack, updates.c.kind == kind, updates.c.summary == summary
                )
                .limit(1)
            ).first()
        return row is not None

    def actuation_times(self, *, stack: str, limit: int = 50) -> list[timedelta]:
        """Decision-to-effect times of ``stack``'s newest successful ``pulumi up`` runs, newest
        first: from the start of the cycle that made the plan to the update's finish."""
        query = (
            sa.select(updates.c.at, cycles.c.started_at)
            .select_from(
                updates.join(plans, updates.c.plan_id == plans.c.id).join(
                    cycles, plans.c.cycle_id == cycles.c.id
                )
            )
            .where(updates.c.stack == stack, updates.c.kind == "up", updates.c.ok.is_(True))
            .order_by(updates.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as c:
            return [row.at - row.started_at for row in c.execute(query)]

    def latest_update(self, *, stack: str, kind: str) -> dict[str, Any] | None:
        """The newest update row of ``stack`` of ``kind`` (e.g. the last cycle's observation)."""
        with self._read() as c:
            row = (
                c.execute(
                    sa.select(updates)
                    .where(updates.c.stack == stack, updates.c.kind == kind)
                    .order_by(updates.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def updates_of_plan(self, *, plan_id: str, kind: str) -> list[dict[str, Any]]:
        """Every update row of one plan and kind, oldest first (e.g. its notification deliveries)."""
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(updates)
                .where(updates.c.plan_id == plan_id, updates.c.kind == kind)
                .order_by(updates.c.id)
            ).mappings()
            return [dict(row) for row in rows]

    # ------------------------------------------------------------------ memory

    def save_memory(
        self, *, stack: str, memory: PlannerMemory, at: datetime, cycle_id: int | None = None
    ) -> None:
        """Store the planner's memory (pending ramps, rollback deadlines, originals to restore)."""
        with self._begin() as c:
            c.execute(
                memories.insert().values(
                    stack=stack,
                    cycle_id=cycle_id,
                    at=at,
                    memory=_json(memory.model_dump(mode="json")),
                )
            )

    def load_memory(self, *, stack: str) -> PlannerMemory:
        """The newest stored memory of ``stack`` (empty when none)."""
        with self._read() as c:
            row = c.execute(
                sa.select(memories.c.memory)
                .where(memories.c.stack == stack)
                .order_by(memories.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return PlannerMemory()
        return PlannerMemory.model_validate(row[0])

    # ------------------------------------------------------------------ forecasts

    def save_forecasts(
        self, *, stack: str, forecasts: Mapping[str, Mapping[str, Forecast]]
    ) -> None:
        """Keep the newest forecast per pool metric, the fallback for a later failing cycle.

        One read of the stack's kept issue times and one batched insert and update, not a
        read and a write per series: those were two round trips per pool metric per cycle
        (about 0.3 ms a series on SQLite, 20,000 series a cycle at 10,000 pools).
        """
        given = [
            (pool, metric, fc)
            for pool, by_metric in forecasts.items()
            for metric, fc in by_metric.items()
        ]
        if not given:
            return
        with self._begin() as c:
            kept = {
                (row.pool, row.metric): row.issued_at
                for row in c.execute(
                    sa.select(
                        forecasts_t.c.pool, forecasts_t.c.metric, forecasts_t.c.issued_at
                    ).where(forecasts_t.c.stack == stack)
                )
            }
            inserts: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            for pool, metric, fc in given:
                held = kept.get((pool, metric))
                if held is not None and held > fc.issued_at:
                    continue  # an older forecast than the one kept
                values = {"issued_at": fc.issued_at, "payload": forecast_to_json(fc)}
                if held is None:
                    inserts.append({"stack": stack, "pool": pool, "metric": metric, **values})
                else:
                    changes.append({"k_pool": pool, "k_metric": metric, **values})
            if inserts:
                c.execute(forecasts_t.insert(), inserts)
            if changes:
                c.execute(
                    forecasts_t.update().where(
                        (forecasts_t.c.stack == stack)
                        & (forecasts_t.c.pool == sa.bindparam("k_pool"))
                        & (forecasts_t.c.metric == sa.bindparam("k_metric"))
                    ),
                    changes,
                )

    def last_forecasts(self, *, stack: str) -> dict[str, dict[str, Forecast]]:
        """pool -> metric -> newest stored forecast."""
        out: dict[str, dict[str, Forecast]] = {}
        with self._read() as c:
            for row in c.execute(sa.select(forecasts_t).where(forecasts_t.c.stack == stack)):
                out.setdefault(row.pool, {})[row.metric] = forecast_from_json(row.payload)
        return out

    # ------------------------------------------------------------------ rollback requests

    def request_rollback(
        self, *, stack: str, pool: str, at: datetime, requested_by: str, reason: str
    ) -> int:
        """Record a person's rollback request; the next cycle honours it."""
        with self._begin() as c:
            result = c.execute(
                rollback_requests.insert().values(
                    stack=stack,
                    pool=pool,
                    requested_at=at,
                    requested_by=requested_by,
                    reason=_json(reason),
                )
            )
            return _inserted_id(result)

    def pending_rollbacks(self, *, stack: str) -> list[RollbackRequest]:
        """Requests not yet honoured, oldest first."""
        with self._read() as c:
            rows = c.execute(
                sa.select(rollback_requests)
                .where(
                    rollback_requests.c.stack == stack, rollback_requests.c.honoured_at.is_(None)
                )
                .order_by(rollback_requests.c.id)
            ).mappings()
            return [
                RollbackRequest(
                    id=r["id"],
                    stack=r["stack"],
                    pool=r["pool"],
                    requested_at=r["requested_at"],
                    requested_by=r["requested_by"],
                    reason=r["reason"],
                    honoured_at=r["honoured_at"],
                )
                for r in rows
            ]

    def honour_rollbacks(self, ids: list[int], *, at: datetime, plan_id: str | None) -> None:
        """Mark requests as honoured by ``plan_id``."""
        if not ids:
            return
        with self._begin() as c:
            c.execute(
                rollback_requests.update()
                .where(rollback_requests.c.id.in_(ids))
                .values(honoured_at=at, plan_id=plan_id)
            )

    def cancel_rollbacks(self, *, stack: str, pool: str, at: datetime) -> list[int]:
        """Withdraw the pool's pending requests; returns their ids (empty when none was pending).

        A cancelled request is closed like an honoured one, with :data:`CANCELLED` in place of
        the plan that honoured it, so ``status`` no longer lists it and the audit trail keeps it.
        """
        with self._begin() as c:
            ids = [
                int(row[0])
                for row in c.execute(
                    sa.select(rollback_requests.c.id).where(
                        rollback_requests.c.stack == stack,
                        rollback_requests.c.pool == pool,
                        rollback_requests.c.honoured_at.is_(None),
                    )
                )
            ]
            if ids:
                c.execute(
                    rollback_requests.update()
                    .where(rollback_requests.c.id.in_(ids))
                    .values(honoured_at=at, plan_id=CANCELLED)
                )
        return ids

    # ------------------------------------------------------------------ lease

    def acquire_lease(
        self,
        *,
        stack: str,
        holder: str,
        ttl: timedelta,
        origin: str | None = None,
        take_over_from: str | None = None,
    ) -> int | None:
        """Take or renew the stack's lease; returns its fencing token, ``None`` while another holds it.

        Times are the database's (:meth:`now`), so a driver whose clock runs ahead cannot take
        over a live lease. The conditional UPDATE is atomic on every backend, so of two drivers
        racing for an expired lease exactly one sees its row updated. A new holder gets the
        token plus one; a renewal by the same holder keeps it.

        :param ttl: how long the lease lasts without a renewal.
        :param origin: where the holder runs (see ``driver.service``); default none.
        :param take_over_from: a holder known to be dead (its process is gone); its lease is
            taken even if unexpired. Default none.
        """
        with self._begin() as c:
            now = self._db_now(c)
            allowed = (leases.c.holder == holder) | (leases.c.expires_at <= now)
            if take_over_from is not None:
                allowed = allowed | (leases.c.holder == take_over_from)
            result = c.execute(
                leases.update()
                .where(leases.c.stack == stack, allowed)
                .values(
                    token=sa.case(
                        (leases.c.holder == holder, leases.c.token), else_=leases.c.token + 1
                    ),
                    holder=holder,
                    origin=origin,
                    acquired_at=sa.case(
                        (leases.c.holder == holder, leases.c.acquired_at), else_=now
                    ),
                    expires_at=now + ttl,
                )
            )
            if result.rowcount == 1:
                token = c.execute(
                    sa.select(leases.c.token).where(leases.c.stack == stack)
                ).scalar_one()
                return int(token)
        try:
            with self._begin() as c:
                now = self._db_now(c)
                c.execute(
                    leases.insert().values(
                        stack=stack,
                        holder=holder,
                        origin=origin,
                        acquired_at=now,
                        expires_at=now + ttl,
                        token=1,
                    )
                )
            return 1
        except JournalError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                return None  # another driver inserted the row first
            raise

    def renew_lease(self, *, stack: str, holder: str, token: int, ttl: timedelta) -> None:
        """The fencing check: renew the lease if ``holder`` still holds it with ``token``.

        Raises :class:`LeaseLostError` otherwise (it expired, or another driver took it over).
        Called before each effect and by the driver's heartbeat during long steps.
        """
        with self._begin() as c:
            now = self._db_now(c)
            result = c.execute(
                leases.update()
                .where(
                    leases.c.stack == stack,
                    leases.c.holder == holder,
                    leases.c.token == token,
                    leases.c.expires_at > now,
                )
                .values(expires_at=now + ttl)
            )
            if result.rowcount == 1:
                return
            row = c.execute(sa.select(leases).where(leases.c.stack == stack)).mappings().first()
        if row is None or row["holder"] == holder:
            why = "it expired"
        else:
            why = (
                f"driver {row['holder']} holds it now (token {row['token']}, this one had {token})"
            )
        raise LeaseLostError(
            f"this driver lost the lease on stack {stack}: {why}; it does nothing more this cycle"
        )

    def release_lease(self, *, stack: str, holder: str) -> None:
        """Give the lease up (on every exit), so a successor need not wait for expiry.

        The row stays, expired, so the next holder's token is still higher than this one's.
        """
        with self._begin() as c:
            now = self._db_now(c)
            c.execute(
                leases.update()
                .where(
                    leases.c.stack == stack, leases.c.holder == holder, leases.c.expires_at > now
                )
                .values(expires_at=now)
            )

    def lease(self, *, stack: str) -> dict[str, Any] | None:
        """The stack's live lease (holder, token, times, origin), or ``None`` when nobody holds it."""
        with self._read() as c:
            now = self._db_now(c)
            row = (
                c.execute(
                    sa.select(leases).where(leases.c.stack == stack, leases.c.expires_at > now)
                )
                .mappings()
                .first()
            )
            return dict(row) if row is not None else None

    # ------------------------------------------------------------------ recovery

    def mark_interrupted(self, *, stack: str, current: int, at: datetime) -> int:
        """Mark the stack's cycles still ``running`` (except ``current``) as ``interrupted``.

        Called by the lease holder at the start of its cycle: only it acts on the stack, so a
        ``running`` cycle of another id belongs to a driver that was killed. Returns how many.
        """
        with self._begin() as c:
            result = c.execute(
                cycles.update()
                .where(
                    cycles.c.stack == stack, cycles.c.status == "running", cycles.c.id != current
                )
                .values(
                    status="interrupted",
                    finished_at=at,
                    error="the driver stopped before this cycle finished (killed, or the host "
                    "went down); the next cycle reconciled what it left",
                )
            )
            return int(result.rowcount or 0)

    def knows_stack(self, *, stack: str) -> bool:
        """Whether this journal has any record of ``stack`` (cycles or memory)."""
        with self._read() as c:
            for table in (cycles, memories):
                if c.execute(sa.select(table.c.id).where(table.c.stack == stack).limit(1)).first():
                    return True
        return False


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None, "an INSERT returns its row's key"
    return int(key[0])


_MIGRATIONS = Path(__file__).parent / "journal_migrations"
_REVISION_LINE = re.compile(
    r"""^(revision|down_revision)\s*=\s*(?:"([^"]*)"|'([^']*)'|None)\s*$""", re.M
)


def _shipped_head() -> str | None:
    """The newest shipped migration, from the version files' own ``revision`` lines.

    Read without alembic (which costs a one-shot cycle its import). The head is the revision no
    other file names as its ``down_revision``; anything this does not read plainly (a merge's
    tuple, two heads) gives ``None``, and alembic decides. ``tests/driver/test_journal.py``
    checks it against alembic's own ``ScriptDirectory.get_current_head``.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("[0-9]*.py"):
        found = {
            m.group(1): m.group(2) or m.group(3) for m in _REVISION_LINE.finditer(path.read_text())
        }
        if "revision" not in found or "down_revision" not in found or not found["revision"]:
            return None
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


_PG_LOCK = 0x6D697272  # "mirr": the advisory lock key the journal's migrations take


forecasts_t = forecasts


def _plan_record(row: sa.RowMapping) -> PlanRecord:
    return PlanRecord(
        id=row["id"],
        cycle_id=row["cycle_id"],
        stack=row["stack"],
        created_at=row["created_at"],
        status=row["status"],
        explanation=row["explanation"],
        changes=list(row["changes"] or []),
        decisions=list(row["decisions"] or []),
        rules=list(row["rules"] or []),
        outcome=row["outcome"],
        memory=row.get("memory"),
    )


def forecast_to_json(fc: Forecast) -> dict[str, Any]:
    """A :class:`Forecast` as JSON (for the journal and ``--json`` output): :meth:`Forecast.to_json`."""
    return fc.to_json()


def forecast_from_json(data: Mapping[str, Any]) -> Forecast:
    """The inverse of :func:`forecast_to_json`: :meth:`Forecast.from_json`."""
    return Forecast.from_json(data)
