"""calls and turns

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_COUNTERS = (
    "frames_in",
    "frames_out",
    "marks_out",
    "barge_ins",
    "turns",
    "dtmf",
    "bad_frames",
    "upstream_errors",
)
_FIGURES = ("response_ms", "upstream_ttfb_ms", "overhead_ms", "fetch_ms", "heard_ms", "barge_in_ms")


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("experiment", sa.String(64)),
        sa.Column("arm", sa.String(64)),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("failover_from", sa.String(32)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.String(32)),
        sa.Column("end_detail", sa.String(200)),
        sa.Column("upstream_failure", sa.String(32)),
        *(sa.Column(n, sa.Integer, nullable=False, server_default="0") for n in _COUNTERS),
        sa.Column("duration_s", sa.Float),
    )
    op.create_index("ix_calls_number", "calls", ["number"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_table(
        "turns",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("turn_index", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(n, sa.Float) for n in _FIGURES),
        sa.Column("interrupted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("failed", sa.String(32)),
        sa.Column("user_text", sa.Text),
        sa.Column("agent_text", sa.Text),
    )
    op.create_index("ix_turns_call_sid", "turns", ["call_sid"])


def downgrade() -> None:
    op.drop_table("turns")
    op.drop_table("calls")
