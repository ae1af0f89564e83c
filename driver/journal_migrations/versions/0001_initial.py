"""The journal's first schema: cycles, plans, config changes, updates, memories, forecasts,
rollback requests and leases.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from driver.journal import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cycles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("stack", sa.String(200), nullable=False, index=True),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("degraded", sa.JSON),
        sa.Column("duration_s", sa.Float),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("cycle_id", sa.Integer, sa.ForeignKey("cycles.id"), nullable=False, index=True),
        sa.Column("stack", sa.String(200), nullable=False, index=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("decisions", sa.JSON, nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("outcome", sa.Text),
        sa.Column("updated_at", UTCDateTime),
    )
    op.create_table(
        "config_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.String(40), sa.ForeignKey("plans.id"), nullable=False, index=True),
        sa.Column("path", sa.String(400), nullable=False),
        sa.Column("old", sa.JSON),
        sa.Column("new", sa.JSON),
    )
    op.create_table(
        "updates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.String(40), sa.ForeignKey("plans.id"), index=True),
        sa.Column("stack", sa.String(200), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_table(
        "memories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("stack", sa.String(200), nullable=False, index=True),
        sa.Column("cycle_id", sa.Integer, sa.ForeignKey("cycles.id")),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("memory", sa.JSON, nullable=False),
    )
    op.create_table(
        "forecasts",
        sa.Column("stack", sa.String(200), primary_key=True),
        sa.Column("pool", sa.String(100), primary_key=True),
        sa.Column("metric", sa.String(100), primary_key=True),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_table(
        "rollback_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("stack", sa.String(200), nullable=False, index=True),
        sa.Column("pool", sa.String(100), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("honoured_at", UTCDateTime),
        sa.Column("plan_id", sa.String(40)),
    )
    op.create_table(
        "leases",
        sa.Column("stack", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "leases",
        "rollback_requests",
        "forecasts",
        "memories",
        "updates",
        "config_changes",
        "plans",
        "cycles",
    ):
        op.drop_table(table)
