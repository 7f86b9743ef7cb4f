"""Call and turn records: the tables, the async engine, and migrations run at start.

SQLite (a file, zero set-up) by default; PostgreSQL when `DATABASE_URL` names one. The schema
is owned by the alembic migrations in `store/records/migrations/`; `migrate()` runs `upgrade head`
programmatically, so deploying needs no manual step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATE_LOCK = 0x766F6963  # PostgreSQL advisory lock id: one migrator at a time
CONNECT_TIMEOUT_S = 10.0

metadata = MetaData()

COUNTERS = (
    "frames_in",
    "frames_out",
    "marks_out",
    "barge_ins",
    "turns",
    "dtmf",
    "bad_frames",
    "upstream_errors",
    "tool_calls",
    "tool_errors",
    "reconnects",
    "upstream_reconnects",
    "provider_switches",
    "upstream_fillers",
)
NOTED = ("languages", "providers")
"""Comma-separated names a leg noted (set_language, configUpdated); a later leg's replace them."""
FIGURES = (
    "response_ms",
    "upstream_ttfb_ms",
    "overhead_ms",
    "fetch_ms",
    "heard_ms",
    "barge_in_ms",
    "tool_ms",
)

calls = Table(
    "calls",
    metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("number", String(32), nullable=False, index=True),
    Column("experiment", String(64)),
    Column("arm", String(64)),
    Column("mode", String(32), nullable=False),
    Column("failover_from", String(32)),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(32)),
    Column("end_detail", String(200)),
    Column("upstream_failure", String(32)),
    Column("ended_by", String(32)),
    Column("transfer", String(40)),
    Column("context", String(300)),
    *(Column(name, String(100)) for name in NOTED),
    *(Column(name, Integer, nullable=False, server_default="0") for name in COUNTERS),
    Column("duration_s", Float),
    Column("recording_sid", String(40)),
    Column("recording_url", Text),
    Column("recording_duration_s", Float),
)

turns = Table(
    "turns",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("call_sid", String(64), nullable=False, index=True),
    Column("mode", String(32), nullable=False),
    Column("turn_index", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    *(Column(name, Float) for name in FIGURES),
    Column("interrupted", Boolean, nullable=False, server_default=false()),
    Column("failed", String(32)),
    Column("tool_calls", Integer, nullable=False, server_default="0"),
    Column("user_text", Text),
    Column("agent_text", Text),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("call_sid", String(64), nullable=False, index=True),
    Column("type", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, index=True),
    Column("lease_until", DateTime(timezone=True)),
    Column("lease_owner", String(64)),
    Column("last_status", Integer),
    Column("last_error", String(64)),
    Column("delivered_at", DateTime(timezone=True)),
)
"""The call-events outbox: written with the call's end record, delivered by webhooks/."""


outbound_calls = Table(
    "outbound_calls",
    metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("number", String(32), nullable=False, index=True),
    Column("experiment", String(64)),
    Column("arm", String(64)),
    Column("mode", String(32)),
    Column("status", String(16), nullable=False),
    Column("answered_by", String(32)),
    Column("dialled_at", DateTime(timezone=True), index=True),
    Column("ended_at", DateTime(timezone=True)),
    Column("duration_s", Float),
)


def async_url(url: str) -> str:
    """The SQLAlchemy async URL for `url`: plain `postgresql://` / `sqlite://` get a driver."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url.removeprefix(plain)
    return url


def make_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """An async engine for `url`; `schema` (PostgreSQL only) sets the search_path. Errors never
    carry SQL parameters (`hide_parameters`): they can hold transcripts and phone numbers."""
    url = async_url(url)
    connect_args: dict[str, Any] = {}
    if schema is not None:
        if not url.startswith("postgresql"):
            raise ValueError("a schema is only supported on PostgreSQL")
        connect_args["server_settings"] = {"search_path": schema}
    if url.startswith("postgresql"):
        connect_args["timeout"] = CONNECT_TIMEOUT_S
    return create_async_engine(
        url, connect_args=connect_args, pool_pre_ping=True, hide_parameters=True
    )


def private_engine(engine: AsyncEngine) -> AsyncEngine:
    """A new engine like `engine` (same URL, connect arguments, dialect) with its own pool,
    for another thread's event loop: pooled async connections belong to the loop that opened
    them. SQL parameters are hidden from its error messages."""
    sync = engine.sync_engine
    return AsyncEngine(Engine(sync.pool.recreate(), sync.dialect, sync.url, hide_parameters=True))


def _upgrade(connection: Connection) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema (`alembic upgrade head`); idempotent, and safe
    when several processes start at once (each migrates under a database-wide lock)."""
    if engine.dialect.name == "sqlite":
        await _migrate_sqlite(engine)
        return
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATE_LOCK})
        await conn.run_sync(_upgrade)


async def _migrate_sqlite(engine: AsyncEngine) -> None:
    """SQLite: `BEGIN IMMEDIATE` takes the write lock before alembic reads the version, so a
    second process waits, then finds the schema at head (the driver would begin too late)."""
    async with engine.connect() as base:
        conn = await base.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            await conn.run_sync(_upgrade)
        except BaseException:
            await conn.exec_driver_sql("ROLLBACK")
            raise
        await conn.exec_driver_sql("COMMIT")
