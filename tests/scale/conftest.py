"""The scale-out topology: two `voiceagent serve` processes behind HAProxy (deploy/haproxy.cfg,
run with round robin: each call's requests alternate between the instances), sharing the test
Redis and PostgreSQL.

``topology`` (one per run)  starts HAProxy (installed from Debian's packages if missing) and
    the instances, with a Redis database number of their own (an empty one, locked, flushed
    at the end) and a fresh PostgreSQL database (dropped at the end); skips with the reason
    when HAProxy cannot be installed or Redis / PostgreSQL do not answer.
``scale``                   per test: an instance a test stopped is started again, both
    fakes run in this test's loop on the topology's fixed ports with the rig's test options
    (change ``scale.realtime.options`` / ``scale.router`` knobs between calls), and
    ``scale.place_call`` calls through the balancer. See ``tests.scale.harness.Scale``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

import aiohttp
import pytest
from sqlalchemy import text

from tests.rig import make_router, realtime_options
from tests.scale.harness import Scale
from tests.scale.topology import Topology, haproxy_binary
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.store.records.schema import make_engine

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LOCK = "voiceagent-tests-scale:lock"


def _with_path(parts: SplitResult, path: str) -> str:
    """`parts` as a URL with its path replaced."""
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


@contextlib.contextmanager
def _own_redis_db() -> Iterator[str]:
    """An empty Redis database number nobody else uses (locked), flushed afterwards."""
    from redis import Redis
    from redis.exceptions import RedisError

    parts = urlsplit(REDIS_URL)
    try:
        for db in range(15, 0, -1):
            client = Redis.from_url(_with_path(parts, f"/{db}"),
                                    socket_connect_timeout=2)  # fmt: skip
            with client:
                if client.dbsize() == 0 and client.set(LOCK, os.getpid(), nx=True, ex=3600):
                    break
        else:
            pytest.skip(f"no free Redis database number at {REDIS_URL}")
    except (OSError, RedisError) as exc:
        pytest.skip(f"no Redis server answers at {REDIS_URL}: {exc!r}")
    try:
        yield _with_path(parts, f"/{db}")
    finally:
        with Redis.from_url(_with_path(parts, f"/{db}")) as client:
            client.flushdb()


async def _database(sql: str) -> None:
    """Run `sql` outside a transaction (CREATE / DROP DATABASE) on the test server."""
    engine = make_engine(PG_URL)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _unreachable(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, OSError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def _own_database() -> Iterator[str]:
    """A fresh PostgreSQL database on the test server (the instances migrate it), dropped after."""
    name = f"scale_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_database(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if not _unreachable(exc):
            raise  # a server answered: a refused role is a failure, not a skip
        pytest.skip(f"no PostgreSQL server answers at {PG_URL}: {exc!r}")
    parts = urlsplit(PG_URL)
    try:
        yield _with_path(parts, f"/{name}")
    finally:
        asyncio.run(_database(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """HAProxy and two instances sharing Redis and PostgreSQL, for the whole run."""
    haproxy = haproxy_binary()
    if haproxy is None:
        pytest.skip("HAProxy is not installed and could not be installed with apt-get")
    workdir: Path = tmp_path_factory.mktemp("scale")
    with _own_redis_db() as redis_url, _own_database() as database_url:
        topo = Topology(workdir, redis_url, database_url, haproxy)
        try:
            topo.start()
            yield topo
        finally:
            topo.stop()


@pytest.fixture
async def scale(topology: Topology) -> AsyncIterator[Scale]:
    """Both instances in rotation, this test's fakes on the topology's ports, an HTTP client."""
    await asyncio.to_thread(topology.ensure_up)
    realtime = FakeInworldRealtime(realtime_options())
    await realtime.start(port=topology.realtime_port)
    router = make_router()
    await router.start(port=topology.router_port)
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            yield Scale(topology, realtime, router, http)
    finally:
        await router.close()
        await realtime.stop()
