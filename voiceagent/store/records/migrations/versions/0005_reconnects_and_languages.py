"""reconnects (ConversationRelay, Inworld Realtime), provider switches, languages used

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COUNTERS = ("reconnects", "upstream_reconnects", "provider_switches")
_NOTED = ("languages", "providers")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        for name in _COUNTERS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="0"))
        for name in _NOTED:
            batch.add_column(sa.Column(name, sa.String(100)))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        for name in (*_NOTED, *_COUNTERS):
            batch.drop_column(name)
