"""The journal gets an identity (the marker written into the stack config) and the lease a
fencing token and the holder's origin.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from driver.journal import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    identity = op.create_table(
        "journal_identity",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    # Each journal, new or upgraded, gets its own id once; it never changes afterwards.
    op.bulk_insert(identity, [{"id": uuid.uuid4().hex[:16], "created_at": datetime.now(UTC)}])
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("token", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("origin", sa.String(400), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("origin")
        batch.drop_column("token")
    op.drop_table("journal_identity")
