"""`voiceagent report` over real records: SQLite and PostgreSQL, filters, the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.cli_process import run_cli
from tests.store.conftest import Database
from voiceagent.report import load_report
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.records.sink import RecordingSink

WALL = datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp()


def _record(
    sink: RecordingSink, sid: str, number: str, arm: str, mode: str, response_s: float,
    *, wall: float = WALL, failover_from: str | None = None,
) -> None:  # fmt: skip
    """One call of a greeting and two turns, each answered after `response_s`."""
    call = CallSession(sid, number, mode, arm=arm, experiment="x", started=0.0,
                       started_wall=wall, failover_from=failover_from)  # fmt: skip
    sink.call_started(call)
    for start in (0.0, 5.0, 10.0):
        turn = call.latency.start_turn(start, "greeting" if start == 0 else "turn")
        call.latency.audio_out(start + response_s)
        sink.turn_finished(call, turn)
    call.end(EndReason.CALLER_HANGUP, now=15.0)
    sink.call_ended(call)


async def _fill(sink: RecordingSink) -> None:
    await sink.start()
    for i in range(4):
        _record(sink, f"CAa{i}", "+18005550103", "A", "realtime-passthrough", 0.9)
        _record(
            sink,
            f"CAb{i}",
            "+18005550103",
            "B",
            "relay-router",
            0.7,
            failover_from="realtime-passthrough" if i == 0 else None,
        )
    _record(sink, "CAold", "+18005550101", "-", "relay-router", 0.5,
                  wall=WALL - 30 * 86400)  # fmt: skip
    await sink.stop()


async def test_report_reads_what_the_sink_wrote(database: Database) -> None:
    """The report over stored records counts calls, turns, failovers and response latency."""
    engine = database.engine()
    try:
        await _fill(RecordingSink(engine))
        report = await load_report(engine, number="+18005550103")
    finally:
        await engine.dispose()
    a, b = report.arms
    assert (a.arm, a.mode, a.calls, a.turns, a.failovers) == ("A", "realtime-passthrough", 4, 8, 0)
    assert (b.arm, b.mode, b.calls, b.failovers) == ("B", "realtime-passthrough,relay-router", 4, 1)
    assert a.latency["response_ms"].p50 == 900.0 and b.latency["greeting_ms"].p50 == 700.0
    assert report.comparisons[0].verdict.startswith("not enough data")


async def test_since_filters_old_calls(database: Database) -> None:
    """Calls started before --since are left out of the report."""
    engine = database.engine()
    try:
        await _fill(RecordingSink(engine))
        everything = await load_report(engine)
        recent = await load_report(engine, since=datetime(2026, 11, 1, tzinfo=UTC))
    finally:
        await engine.dispose()
    assert everything.calls == 9 and recent.calls == 8
    assert {a.number for a in recent.arms} == {"+18005550103"}


async def test_cli_prints_the_report_as_json(tmp_path: Path) -> None:
    """`voiceagent report --format json --number N --database-url U` prints that number's arms."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}"
    await _fill(RecordingSink(url))
    args = ["report", "--database-url", url, "--format", "json", "--number", "+18005550103"]
    code, out, _ = await run_cli(*args)
    assert code == 0
    assert [a["arm"] for a in json.loads(out)["arms"]] == ["A", "B"]


async def test_cli_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    """Reporting on a SQLite file that does not exist says so and creates nothing."""
    url = f"sqlite:///{tmp_path / 'nothing.sqlite3'}"
    code, _, err = await run_cli("report", "--database-url", url)
    assert code == 1 and "no records yet" in err
    assert not (tmp_path / "nothing.sqlite3").exists()
