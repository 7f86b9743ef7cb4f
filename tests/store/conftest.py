"""Database fixtures: a temporary SQLite file and an isolated schema on the real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.store.records.schema import make_engine

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HOW = "start it (README, 'PostgreSQL and Redis for the full test suite') or set TEST_*_URL"


@dataclass(frozen=True)
class Database:
    """Where a test's records live: a URL and, on PostgreSQL, the test's own schema."""

    url: str
    schema: str | None

    def engine(self) -> AsyncEngine:
        return make_engine(self.url, schema=self.schema)


def _unreachable(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) is a connection failure: nobody listening."""
    while exc is not None:
        if isinstance(exc, OSError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


async def _postgres_schema() -> str:
    """Create a unique schema on the test PostgreSQL; skip the test if no server answers."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        if not _unreachable(exc):
            raise  # a server answered: a refused role or a bad database is a failure
        pytest.skip(f"no PostgreSQL server answers at {PG_URL} ({type(exc).__name__}): {HOW}")
    finally:
        await admin.dispose()
    return schema


async def _drop_schema(schema: str) -> None:
    admin = make_engine(PG_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Database]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield Database(f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}", None)
        return
    schema = await _postgres_schema()
    try:
        yield Database(PG_URL, schema)
    finally:
        await _drop_schema(schema)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The test Redis (TEST_REDIS_URL), skipping the test if no server answers; the keys a test
    writes are namespaced by the stores' own prefixes and expire."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, RedisError) as exc:
        pytest.skip(f"no Redis server answers at {REDIS_URL} ({type(exc).__name__}): {HOW}")
    finally:
        await client.aclose()
    yield REDIS_URL
