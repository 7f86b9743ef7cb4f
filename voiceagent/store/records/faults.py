"""Whose fault a failed write was: the database's (an outage: keep the rows and retry) or the
rows' (the database refused their content: skip them).

Decided from the error itself, never by asking the database again: a full disk or a read-only
database still answers ``SELECT 1``. SQLite's result code (``sqlite_errorcode``, primary code
in its low byte) and PostgreSQL's SQLSTATE name both cases; an error with neither is left
undecided (``None``) for the caller to probe.
"""

from __future__ import annotations

import sqlite3
from enum import Enum

from voiceagent.store.records.rows import error_code


class Fault(Enum):
    OUTAGE = "outage"  # the database cannot take any write now: keep the batch, retry later
    ROW = "row"  # the database refused this content: skip the row, keep the others


SQLITE_OUTAGES = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
     sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
     sqlite3.SQLITE_INTERRUPT}
)  # fmt: skip
SQLITE_ROW_FAULTS = frozenset(
    {sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG,
     sqlite3.SQLITE_RANGE}
)  # fmt: skip
PG_OUTAGE_CLASSES = ("08", "53", "57", "58", "40")
"""Connection exception, insufficient resources (53100 disk full), operator intervention
(shutdown, cannot connect now), system error (I/O), transaction rollback (serialization,
deadlock): nothing is wrong with the rows."""
PG_OUTAGE_CODES = frozenset({"25006"})  # read_only_sql_transaction: a standby, a full disk guard
PG_ROW_CLASSES = ("22", "23")  # data exception, integrity constraint violation


def classify(exc: BaseException) -> Fault | None:
    """The fault of a failed write, from its error code; None when the error names none."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return Fault.OUTAGE
    sqlite_code = _sqlite_code(exc)
    if sqlite_code is not None:
        primary = sqlite_code & 0xFF
        if primary in SQLITE_OUTAGES:
            return Fault.OUTAGE
        return Fault.ROW if primary in SQLITE_ROW_FAULTS else None
    sqlstate = error_code(exc)
    if sqlstate is None:
        return None
    if sqlstate in PG_OUTAGE_CODES or sqlstate.startswith(PG_OUTAGE_CLASSES):
        return Fault.OUTAGE
    return Fault.ROW if sqlstate.startswith(PG_ROW_CLASSES) else None


def _sqlite_code(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None)
    for source in (exc, orig, getattr(orig, "__cause__", None)):
        code = getattr(source, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code
    return None
