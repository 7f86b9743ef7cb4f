"""`voiceagent call` against a running app: a batch stopped and resumed, and one call followed
to its end by the real CLI process, all through `POST /calls` and the fake Twilio."""

from __future__ import annotations

import asyncio
import csv
import signal
import sys
from pathlib import Path
from typing import Any

from tests.e2e.test_outbound import BLOCKED, BUSY, CALLEES, NOBODY, OUT_RT, PERSON, outbound_config
from tests.rig import ADMIN, StartRig, running_outbound
from voiceagent.outbound.batch import BatchRun, read_rows
from voiceagent.outbound.client import CallsClient


def results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


async def test_a_stopped_batch_resumes_where_it_stopped(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """Stopping after the first dial lets that call finish and writes it; the rerun with the
    same results file dials only the rows not done, and every row ends up once."""
    people = tmp_path / "people.csv"
    people.write_text(f"to,name\n{NOBODY},Ann\n{BUSY},Bob\n{BLOCKED},Cy\n{NOBODY},Di\n")
    out_file = tmp_path / "results.csv"
    config = outbound_config(tmp_path)
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        client = CallsClient(out.rig.http, out.rig.base_url, ADMIN)

        def stop_after_first(run: BatchRun) -> None:
            if run.dialled >= 1:
                run.stop()

        first = BatchRun(client, OUT_RT, out_file, rate=50, max_concurrent=1, poll_s=0.1,
                         on_progress=stop_after_first)  # fmt: skip
        await first.run(read_rows(people))
        assert [(r["row"], r["status"]) for r in results(out_file)] == [("1", "no-answer")]
        second = BatchRun(client, OUT_RT, out_file, rate=50, max_concurrent=2, poll_s=0.1)
        counts = await second.run(read_rows(people))
        assert second.skipped == 1 and sum(counts.values()) == 3
        rows = {r["row"]: r for r in results(out_file)}
        assert sorted(rows) == ["1", "2", "3", "4"] and len(results(out_file)) == 4
        assert (rows["2"]["status"], rows["3"]["error"], rows["4"]["status"]) == (
            "busy",
            "do_not_call",
            "no-answer",
        )
        creates = [r for r in out.twilio.received if r.path.endswith("/Calls.json")]
        assert len(creates) == 3  # the do-not-call row never reached Twilio
        assert {c.param("To") for c in creates} == {NOBODY, BUSY}


async def test_the_cli_follows_one_call_to_its_end(start_rig: StartRig, tmp_path: Path) -> None:
    """`voiceagent call --wait` prints the CallSid, the status changes with AMD's verdict, and
    the outcome, then exits 0 for a completed call."""
    config: Any = outbound_config(tmp_path)
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voiceagent", "call", "--from", OUT_RT, "--to", PERSON,
            "--var", "name=Ana", "--wait", "--url", out.rig.base_url, "--token", ADMIN,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        lines = stdout.decode().splitlines()
        assert process.returncode == 0, stderr.decode()
        assert lines[0].startswith("CA") and lines[0] in out.twilio.calls
        assert any("answered by human" in line for line in lines)
        assert lines[-1].startswith("outcome: completed")


async def test_ctrl_c_stops_dialling_and_lets_calls_finish(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """SIGINT to `voiceagent call --csv` stops dialling: the calls in progress end and are
    written, the rest are not dialled, and the process exits 0 with the summary."""
    people = tmp_path / "people.csv"
    people.write_text("to\n" + "".join(f"{NOBODY}\n" for _ in range(8)))
    out_file = tmp_path / "results.csv"
    config: Any = outbound_config(tmp_path)
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voiceagent", "call", "--from", OUT_RT, "--csv", str(people),
            "--rate", "4/s", "--max-concurrent", "2", "-o", str(out_file),
            "--url", out.rig.base_url, "--token", ADMIN,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        )  # fmt: skip
        await out.twilio.callbacks.wait_for(lambda _: len(out.twilio.calls) >= 2, within=30)
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()
        dialled = len(out.twilio.calls)
        rows = results(out_file)
        assert 2 <= dialled < 8 and len(rows) == dialled
        assert {r["status"] for r in rows} == {"no-answer"}
        assert "stopping: letting calls finish" in stderr.decode()
        assert f"{dialled} calls (no-answer {dialled})" in stdout.decode()


async def test_the_cli_names_a_refusal(start_rig: StartRig, tmp_path: Path) -> None:
    """A call to a do-not-call number: `voiceagent call` says why on stderr and exits 1."""
    config: Any = outbound_config(tmp_path)
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voiceagent", "call", "--from", OUT_RT, "--to", BLOCKED,
            "--url", out.rig.base_url, "--token", ADMIN,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 1 and stdout == b""
        assert "refused (do_not_call): 'to' is on a do-not-call list" in stderr.decode()
