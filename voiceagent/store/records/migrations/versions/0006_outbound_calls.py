"""outbound calls: every dialled call's final status and AMD verdict, per number and arm

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_calls",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("experiment", sa.String(64)),
        sa.Column("arm", sa.String(64)),
        sa.Column("mode", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answered_by", sa.String(32)),
        sa.Column("dialled_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("duration_s", sa.Float),
    )
    op.create_index("ix_outbound_calls_number", "outbound_calls", ["number"])
    op.create_index("ix_outbound_calls_dialled_at", "outbound_calls", ["dialled_at"])


def downgrade() -> None:
    op.drop_index("ix_outbound_calls_dialled_at", "outbound_calls")
    op.drop_index("ix_outbound_calls_number", "outbound_calls")
    op.drop_table("outbound_calls")
