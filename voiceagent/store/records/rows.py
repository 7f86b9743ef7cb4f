"""What a record is and how it is written: row snapshots, boundary checks, the SQL.

Rows: the call row is inserted at start (an upsert: a failover leg of the same CallSid takes
over its mode), each turn is inserted when it finishes, and the call row is updated at the end
(counters are added, so a call served by two legs keeps both legs' counts). Outbox rows go with
their record: an event is written once, except that a final event replaces a provisional one
and placeholders move a provisional one's due time, while nobody has tried to deliver it
(`_insert_event`; webhooks/events.py says when each is written).

`fit()` is the boundary: every value is made to fit its column before it reaches the database
(strings truncated to the column's length, NUL and unencodable characters removed, integers
clamped), so one call's odd values cannot make a batch of other calls' rows fail.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from voiceagent.session.call import CallSession
from voiceagent.session.latency import TurnTiming
from voiceagent.store.records.schema import (
    COUNTERS,
    NOTED,
    calls,
    outbound_calls,
    turns,
    webhook_events,
)
from voiceagent.webhooks.events import PENDING, PLACEHOLDER, PROVISIONAL

Op = Literal["start", "turn", "end", "recording", "outbound", "event"]
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Record:
    """One milestone of one call, as queued for the writer."""

    op: Op
    row: dict[str, Any]
    end: dict[str, Any] | None = None
    events: tuple[dict[str, Any], ...] = ()
    """Outbox rows written in the same transaction as this record (webhooks/events.py)."""

    @property
    def call_sid(self) -> str:
        return str(self.row.get("call_sid", ""))[:64]


def _wall(call: CallSession, monotonic: float) -> datetime:
    return datetime.fromtimestamp(call.started_wall + (monotonic - call.started), UTC)


def call_row(call: CallSession) -> dict[str, Any]:
    """The `calls` row of a call as it starts."""
    return {
        "call_sid": call.call_sid,
        "number": call.number,
        "experiment": call.experiment,
        "arm": call.arm,
        "mode": call.mode,
        "failover_from": call.failover_from,
        "context": call.context,
        "started_at": datetime.fromtimestamp(call.started_wall, UTC),
    }


def end_values(call: CallSession) -> dict[str, Any]:
    """What the end of a call (or of one leg of it) adds to its row."""
    ended = call.ended if call.ended is not None else call.started + call.duration_s
    values: dict[str, Any] = {name: getattr(call.counters, name) for name in COUNTERS}
    values.update(
        ended_at=_wall(call, ended),
        end_reason=call.end_reason.value if call.end_reason else "internal_error",
        end_detail=call.end_detail,
        upstream_failure=call.upstream_failure,
        duration_s=call.duration_s,
        ended_by=call.ended_by,
        transfer=call.transfer,
        languages=",".join(call.languages)[:100] or None,
        providers=",".join(call.providers)[:100] or None,
    )
    return values


def turn_row(call: CallSession, turn: TurnTiming) -> dict[str, Any]:
    """The `turns` row of a finished turn; texts only when the call's plan allows them."""
    row: dict[str, Any] = {
        "call_sid": call.call_sid,
        "mode": call.mode,
        "turn_index": turn.index,
        "kind": turn.kind,
        "at": _wall(call, turn.started),
        "interrupted": turn.interrupted,
        "failed": turn.failed,
        "tool_calls": turn.tool_calls,
        "user_text": turn.user_text if call.record_transcripts else None,
        "agent_text": turn.agent_text if call.record_transcripts else None,
    }
    row.update(turn.figures())
    return row


def _fit_value(column: Any, value: Any) -> Any:
    kind = column.type
    if isinstance(kind, String | Text):
        if value is None:
            return None if column.nullable else ""
        clean = str(value).replace("\x00", "")
        clean = clean.encode("utf-8", "replace").decode("utf-8")
        length = getattr(kind, "length", None)
        return clean[:length] if length else clean
    if isinstance(kind, Integer) and isinstance(value, int) and not isinstance(value, bool):
        bound = _INT64 if isinstance(kind, BigInteger) else _INT32
        return max(-bound, min(bound, value))
    return value


def fit(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """`values` made to fit `table`'s columns (unknown keys are dropped)."""
    return {
        name: _fit_value(table.c[name], value) for name, value in values.items() if name in table.c
    }


def fitted(record: Record) -> Record:
    """The record with every value fitted to its table."""
    table = {"turn": turns, "outbound": outbound_calls}.get(record.op, calls)
    end = fit(calls, record.end) if record.end is not None else None
    events = tuple(fit(webhook_events, event) for event in record.events)
    return Record(record.op, fit(table, record.row), end, events)


async def write(conn: AsyncConnection, records: list[Record]) -> None:
    """Starts and ends in queue order, then all turns in one executemany: the same result
    as writing everything in queue order, since a turn row never touches a call row."""
    for record in records:
        if record.op == "start":
            await conn.execute(_upsert_start(conn.dialect.name), record.row)
        elif record.op == "recording":
            sid = calls.c.call_sid == record.row["call_sid"]
            values = {k: v for k, v in record.row.items() if k.startswith("recording_")}
            await conn.execute(update(calls).where(sid).values(values))
        elif record.op == "outbound":  # an outbound call's outcome: the latest one wins
            await conn.execute(_upsert_outbound(conn.dialect.name), record.row)
        elif record.end is not None:
            await _write_end(conn, record.row, record.end)
        for event in record.events:  # the outbox: with the call's record, or not at all
            placing = event.get("status") == PLACEHOLDER
            await conn.execute(_insert_event(conn.dialect.name, placing), event)
    rows = [record.row for record in records if record.op == "turn"]
    if rows:
        await conn.execute(insert(turns), rows)


# Both statements are built once, with bound parameters, so SQLAlchemy compiles them once.
_END_SET = ("ended_at", "end_reason", "end_detail", "ended_by", "transfer")


@functools.cache
def _upsert_start(dialect_name: str) -> Any:
    """Insert the call; if its CallSid exists (a failover leg), the new leg takes over."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    inserting = dialect.insert(calls)
    return inserting.on_conflict_do_update(
        index_elements=[calls.c.call_sid],
        set_={
            "mode": inserting.excluded.mode,
            "failover_from": func.coalesce(inserting.excluded.failover_from, calls.c.failover_from),
            "ended_at": None,
            "end_reason": None,
        },
    )


@functools.cache
def _insert_event(dialect_name: str, placing: bool = False) -> Any:
    """Insert an outbox row (one statement on PostgreSQL and SQLite: an upsert on the event
    id, which also orders two instances writing one event). A row already there is kept as it
    is once anyone has tried to deliver it (an attempt made, or a lease taken). Until then:

    - a final event replaces a provisional event or a placeholder, due when it says (now);
    - a provisional event fills in a placeholder, due when the placeholder says;
    - a placeholder (`placing`) moves a provisional event's (or placeholder's) due time;
    - anything else is kept as it is: the same event written again (a reconnect leg's), a
      provisional event after a final one, a placeholder after a final one.
    """
    t = webhook_events
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    inserting = dialect.insert(t)
    new = inserting.excluded
    untried = and_(t.c.attempts == 0, t.c.lease_until.is_(None))
    if placing:
        return inserting.on_conflict_do_update(
            index_elements=[t.c.event_id],
            set_={"next_attempt_at": new.next_attempt_at},
            where=and_(untried, t.c.status.in_((PROVISIONAL, PLACEHOLDER))),
        )
    replaceable = or_(
        t.c.status == PLACEHOLDER, and_(t.c.status == PROVISIONAL, new.status == PENDING)
    )
    due = case((new.status == PENDING, new.next_attempt_at), else_=t.c.next_attempt_at)
    replaced = ("call_sid", "type", "url", "body", "status", "created_at")
    return inserting.on_conflict_do_update(
        index_elements=[t.c.event_id],
        set_={**{name: new[name] for name in replaced}, "next_attempt_at": due},
        where=and_(untried, replaceable),
    )


def _upsert_outbound(dialect_name: str) -> Any:
    """Insert an outbound call's outcome; a later one for the same CallSid replaces it."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    inserting = dialect.insert(outbound_calls)
    kept = ("status", "answered_by", "ended_at", "duration_s", "arm", "mode")
    return inserting.on_conflict_do_update(
        index_elements=[outbound_calls.c.call_sid],
        set_={name: inserting.excluded[name] for name in kept},
    )


@functools.cache
def _end_statement() -> Any:
    """The call row's update at the end: counters and duration added, the rest set."""
    c = calls.c
    values: dict[str, Any] = {
        name: c[name] + bindparam(f"add_{name}", type_=c[name].type) for name in COUNTERS
    }
    values["duration_s"] = func.coalesce(c.duration_s, 0.0) + bindparam(
        "add_duration_s", type_=c.duration_s.type
    )
    values["upstream_failure"] = func.coalesce(
        bindparam("new_upstream_failure", type_=c.upstream_failure.type), c.upstream_failure
    )
    for name in NOTED:
        values[name] = func.coalesce(bindparam(f"new_{name}", type_=c[name].type), c[name])
    for name in _END_SET:
        values[name] = bindparam(f"new_{name}", type_=c[name].type)
    where = c.call_sid == bindparam("sid", type_=c.call_sid.type)
    return update(calls).where(where).values(values)


async def _write_end(conn: AsyncConnection, row: dict[str, Any], end: dict[str, Any]) -> None:
    params: dict[str, Any] = {f"add_{name}": end[name] for name in COUNTERS}
    params.update({f"new_{name}": end[name] for name in (*_END_SET, *NOTED)})
    params.update(
        sid=row["call_sid"],
        add_duration_s=end["duration_s"],
        new_upstream_failure=end["upstream_failure"],
    )
    result = await conn.execute(_end_statement(), params)
    if result.rowcount == 0:  # the start row never made it: keep the call anyway
        await conn.execute(insert(calls).values({**row, **end}))


def error_code(exc: BaseException) -> str | None:
    """The database's error code (e.g. PostgreSQL SQLSTATE), never its message: a message can
    quote the values of the row (transcripts, numbers)."""
    orig = getattr(exc, "orig", None)
    for source in (orig, getattr(orig, "__cause__", None)):
        code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        if isinstance(code, str):
            return code
    return None
