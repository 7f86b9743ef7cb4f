"""Whose fault a failed records write was, from the error the database driver raised."""

from __future__ import annotations

import sqlite3

import asyncpg.exceptions as pg
import pytest
from sqlalchemy.exc import DBAPIError

from voiceagent.store.records.faults import Fault, classify


def _wrapped(orig: BaseException) -> DBAPIError:
    """The error as SQLAlchemy raises it around the driver's."""
    return DBAPIError("INSERT INTO turns ...", None, orig)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (pg.DiskFullError("disk full"), Fault.OUTAGE),  # 53100
        (pg.ReadOnlySQLTransactionError("read only"), Fault.OUTAGE),  # 25006
        (pg.ConnectionDoesNotExistError("gone"), Fault.OUTAGE),  # 08003
        (pg.AdminShutdownError("shutdown"), Fault.OUTAGE),  # 57P01
        (pg.CheckViolationError("check"), Fault.ROW),  # 23514
        (pg.StringDataRightTruncationError("too long"), Fault.ROW),  # 22001
        (pg.UndefinedTableError("no table"), None),  # 42P01: neither, probe the database
    ],
)
def test_postgresql_sqlstate_classes(error: BaseException, fault: Fault | None) -> None:
    """PostgreSQL classes 08, 53, 57 and 25006 are outages, 22 and 23 the row's fault; any
    other code is left undecided."""
    assert classify(_wrapped(error)) is fault


def test_sqlite_result_codes_from_a_real_database(tmp_path: object) -> None:
    """A real SQLite error: a constraint is the row's fault, a read-only database an outage."""
    path = f"{tmp_path}/faults.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x INTEGER CHECK (x > 0))")
        with pytest.raises(sqlite3.IntegrityError) as refused:
            conn.execute("INSERT INTO t VALUES (-1)")
    assert classify(_wrapped(refused.value)) is Fault.ROW
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            read_only.execute("INSERT INTO t VALUES (1)")
    finally:
        read_only.close()
    assert classify(_wrapped(locked.value)) is Fault.OUTAGE
    assert classify(TimeoutError()) is Fault.OUTAGE
