"""tool calls per turn and call, tool time, how a call ended

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("ended_by", sa.String(32)))
        batch.add_column(sa.Column("transfer", sa.String(40)))
        batch.add_column(sa.Column("tool_calls", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("tool_ms", sa.Float))
        batch.add_column(sa.Column("tool_calls", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("tool_calls")
        batch.drop_column("tool_ms")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("tool_calls")
        batch.drop_column("transfer")
        batch.drop_column("ended_by")
