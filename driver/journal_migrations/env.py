"""Alembic environment for the journal: runs on the connection the :class:`~driver.journal.Journal` passes."""

from __future__ import annotations

from alembic import context

from driver.journal import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the journal migrations run through driver.journal.Journal.upgrade(), which passes a connection"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
