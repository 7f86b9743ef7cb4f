"""Tools the agent can call, for both modes (issue 10), as pure pieces the call core wires in.

- ``spec``: the YAML models of ``agent.tools`` (HTTP tools, ``end_call``, ``transfer_call``).
- ``declarations``: the tools as Realtime ``session.tools`` and as Router ``tools``.
- ``toolbox``: ``Toolbox(specs, runner).run(call) -> ToolResult`` (validation, built-ins).
- ``http_runner``: the HTTP tool seam (aiohttp, timeout, bounded answer).
- ``realtime_calls`` / ``router_calls``: function calls tracked from Realtime events, and
  streamed Router ``tool_calls`` pieces joined.
- ``history``: tool calls and results as chat-completions messages; ``telemetry``: logs, labels.
- ``handoff``: a transfer's destination name in ConversationRelay ``handoffData``, and its
  number looked up in the call's plan.

Nothing is imported here: ``voiceagent.config`` imports ``spec``, which must stay light.
"""
