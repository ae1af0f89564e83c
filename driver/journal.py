"""The driver's journal: every cycle, plan, config change, update result and the planner's memory.

One schema (SQLAlchemy Core tables below, created and upgraded by the alembic migrations shipped
in ``driver/journal_migrations``) on SQLite by default (WAL mode, a 0600 file in the state
directory) or PostgreSQL through ``driver.journal_url``.

Crash safety rests on two rules the executors follow: a plan is written with status ``applying``
*before* anything is changed, and its outcome after. A plan still ``applying`` when a driver
starts is an interrupted update: the apply executor refreshes and reconciles it instead of
running it again. The planner's memory (pending ramps, rollback deadlines, the config to
restore) is stored at the end of every cycle, so a restart never loses a pending rollback.

A lease row per stack keeps two drivers from acting on one stack at once.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from driver.redact import redact
from driver.state import state_path
from forecasting import Forecast
from infra.config import UserError
from policies import Plan, PlannerMemory

__all__ = [
    "ACTIVE_PLAN_STATES",
    "CANCELLED",
    "Journal",
    "JournalError",
    "PlanRecord",
    "RollbackRequest",
    "default_journal_url",
    "forecast_from_json",
    "forecast_to_json",
    "metadata",
]

logger = logging.getLogger(__name__)


class JournalError(UserError, RuntimeError):
    """The journal cannot be opened or used; the message says which database and why."""


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
)

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
        if self.engine.dialect.name == "sqlite":
            self._prepare_sqlite()
        if migrate:
            self.upgrade()

    # ------------------------------------------------------------------ setup

    def _safe_url(self) -> str:
        try:
            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "<unparseable URL>"

    def _prepare_sqlite(self) -> None:
        database = self.engine.url.database
        if database and database != ":memory:":
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Create it private before SQLite does, so it never exists world-readable.
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            path.chmod(0o600)

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets `mirrorcast status` read while the service writes; the busy timeout makes
            # a concurrent writer wait instead of failing at once.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    def upgrade(self, revision: str = "head") -> None:
        """Apply the shipped migrations up to ``revision`` (default the newest; idempotent)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "journal_migrations"))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except sa.exc.OperationalError as exc:
            raise JournalError(
                f"cannot open the journal at {self._safe_url()}: {exc.orig}"
            ) from None

    def revision(self) -> str | None:
        """The schema revision the database is at (``None`` before the first migration)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def close(self) -> None:
        self.engine.dispose()

    def _begin(self) -> Any:
        return self.engine.begin()

    # ------------------------------------------------------------------ cycles

    def start_cycle(self, *, stack: str, mode: str, at: datetime) -> int:
        """Record a cycle start; returns its id."""
        with self._begin() as c:
            result = c.execute(
                cycles.insert().values(stack=stack, mode=mode, started_at=at, status="running")
            )
            return int(result.inserted_primary_key[0])

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
        with self.engine.connect() as c:
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
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(plans)
                .where(plans.c.stack == stack)
                .order_by(plans.c.created_at.desc(), plans.c.cycle_id.desc())
                .limit(limit)
            ).mappings()
            return [_plan_record(row) for row in rows]

    def latest_plan(self, *, stack: str, status: str) -> PlanRecord | None:
        """The newest plan of ``stack`` with ``status`` (e.g. the open ``proposed`` one)."""
        with self.engine.connect() as c:
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
        with self.engine.connect() as c:
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
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(updates)
                .where(updates.c.stack == stack)
                .order_by(updates.c.id.desc())
                .limit(limit)
            ).mappings()
            return [dict(row) for row in rows]

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
        with self.engine.connect() as c:
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
        """Keep the newest forecast per pool metric, the fallback for a later failing cycle."""
        with self._begin() as c:
            for pool, by_metric in forecasts.items():
                for metric, fc in by_metric.items():
                    key = (
                        (forecasts_t.c.stack == stack)
                        & (forecasts_t.c.pool == pool)
                        & (forecasts_t.c.metric == metric)
                    )
                    existing = c.execute(sa.select(forecasts_t.c.issued_at).where(key)).first()
                    values = {"issued_at": fc.issued_at, "payload": forecast_to_json(fc)}
                    if existing is None:
                        c.execute(
                            forecasts_t.insert().values(
                                stack=stack, pool=pool, metric=metric, **values
                            )
                        )
                    elif existing[0] <= fc.issued_at:
                        c.execute(forecasts_t.update().where(key).values(**values))

    def last_forecasts(self, *, stack: str) -> dict[str, dict[str, Forecast]]:
        """pool -> metric -> newest stored forecast."""
        out: dict[str, dict[str, Forecast]] = {}
        with self.engine.connect() as c:
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
            return int(result.inserted_primary_key[0])

    def pending_rollbacks(self, *, stack: str) -> list[RollbackRequest]:
        """Requests not yet honoured, oldest first."""
        with self.engine.connect() as c:
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
        at: datetime,
        ttl: timedelta,
        take_over_from: str | None = None,
    ) -> bool:
        """Take or renew the stack's lease; ``False`` while another holder's lease is unexpired.

        The conditional UPDATE is atomic on every backend, so of two drivers racing for an expired
        lease exactly one sees its row updated.

        :param take_over_from: a holder known to be dead (its process is gone); its lease is taken
            even if unexpired. Default none.
        """
        expires = at + ttl
        allowed = (leases.c.holder == holder) | (leases.c.expires_at < at)
        if take_over_from is not None:
            allowed = allowed | (leases.c.holder == take_over_from)
        with self._begin() as c:
            result = c.execute(
                leases.update()
                .where(leases.c.stack == stack, allowed)
                .values(holder=holder, acquired_at=at, expires_at=expires)
            )
            if result.rowcount == 1:
                return True
        try:
            with self._begin() as c:
                c.execute(
                    leases.insert().values(
                        stack=stack, holder=holder, acquired_at=at, expires_at=expires
                    )
                )
            return True
        except IntegrityError:
            return False

    def release_lease(self, *, stack: str, holder: str) -> None:
        """Give the lease up (on clean exit), so a successor need not wait for expiry."""
        with self._begin() as c:
            c.execute(leases.delete().where(leases.c.stack == stack, leases.c.holder == holder))

    def lease(self, *, stack: str) -> dict[str, Any] | None:
        """The stack's lease row, if any."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(leases).where(leases.c.stack == stack)).mappings().first()
            return dict(row) if row is not None else None


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
