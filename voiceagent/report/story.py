"""One call's story as a text timeline (`voiceagent calls show`) and as an HTML page
(`/dashboard/calls/<CallSid>`): plan, context, turns (heard text where recorded; latencies
split into upstream and ours; barge-ins), tool calls, failover, transfer, end, recording,
webhook deliveries."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any


def _t(value: Any) -> str:
    return value.strftime("%H:%M:%S.%f")[:-3] if isinstance(value, datetime) else "-"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def story_lines(story: dict[str, Any]) -> list[str]:
    """The timeline, one line per milestone."""
    call, turns, events = story["call"], story["turns"], story["events"]
    started = call["started_at"]
    lines = [
        f"call {call['call_sid']} to {call['number']}"
        + (f" on {started:%Y-%m-%d} (UTC)" if isinstance(started, datetime) else ""),
        f"{_t(started)}  plan: mode {call['mode']}"
        + (f", experiment {call['experiment']} arm {call['arm']}" if call.get("arm") else ""),
    ]
    variables = next((e["variables"] for e in events if e["variables"]), None)
    if call.get("context"):
        lines.append(f"{'':12}  context: {call['context']}")
    elif variables:
        lines.append(f"{'':12}  context: variables {', '.join(sorted(variables))}")
    if call.get("failover_from"):
        lines.append(f"{'':12}  failover: from {call['failover_from']} to {call['mode']}")
    for turn in turns:
        lines.extend(_turn_lines(turn))
    for event in events:
        for tool in event["tool_calls"]:
            ok = "ok" if tool.get("ok") else "failed"
            lines.append(f"{'':12}  tool {tool.get('name')}: {ok}, {_ms(tool.get('ms'))}")
    if call.get("transfer"):
        lines.append(f"{'':12}  transfer: to {call['transfer']}")
    lines.append(
        f"{_t(call.get('ended_at'))}  end: {call.get('end_reason') or 'in progress'}"
        f" by {call.get('ended_by') or '-'}"
        + (f" ({call['end_detail']})" if call.get("end_detail") else "")
        + (f", {call['duration_s']:.1f} s" if call.get("duration_s") is not None else "")
    )
    recording = call.get("recording_url") or next(
        (e["recording_url"] for e in events if e["recording_url"]), None
    )
    if recording:
        seconds = call.get("recording_duration_s")
        length = f" ({seconds:.0f} s)" if seconds is not None else ""
        lines.append(f"{'':12}  recording: {recording}{length}")
    for event in events:
        done = event.get("delivered_at") if event["status"] == "delivered" else None
        lines.append(
            f"{_t(done or event['created_at'])}  webhook {event['type']} {event['event_id']}: "
            f"{event['status']} after {event['attempts']} attempt(s)"
            + (f", last {event['last_status'] or event['last_error']}"
               if event.get("last_status") or event.get("last_error") else "")
        )  # fmt: skip
    return lines


def _turn_lines(turn: dict[str, Any]) -> list[str]:
    at = _t(turn["at"])
    lines = []
    if turn.get("user_text"):
        lines.append(f"{at}  caller: {turn['user_text']}")
    upstream, ours = turn.get("upstream_ttfb_ms"), turn.get("overhead_ms")
    figures = (
        f"response {_ms(turn.get('response_ms'))} (upstream {_ms(upstream)}, ours {_ms(ours)})"
    )
    flags = []
    if turn.get("interrupted"):
        flags.append(f"barge-in after {_ms(turn.get('barge_in_ms'))}")
    if turn.get("failed"):
        flags.append(f"failed: {turn['failed']}")
    if turn.get("tool_calls"):
        flags.append(f"{turn['tool_calls']} tool call(s), {_ms(turn.get('tool_ms'))}")
    extra = f"; {'; '.join(flags)}" if flags else ""
    lines.append(f"{at}  agent {turn['kind']} #{turn['turn_index']}: {figures}{extra}")
    if turn.get("agent_text"):
        lines.append(f"{'':12}  heard: {turn['agent_text']}")
    return lines


def story_html(story: dict[str, Any]) -> str:
    """A small, self-contained page (no script) with the timeline."""
    sid = html.escape(story["call"]["call_sid"])
    body = html.escape("\n".join(story_lines(story)))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>call {sid}</title><style>body{{font:14px system-ui;margin:32px}}"
        "pre{font:13px ui-monospace,monospace;white-space:pre-wrap}</style></head>"
        f'<body><p><a href="/dashboard">dashboard</a></p><h1>call {sid}</h1>'
        f"<pre>{body}</pre></body></html>"
    )
