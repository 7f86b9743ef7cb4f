"""The built-in tools a number gets from its agent settings, beside the ones its YAML lists:
`set_language` when it lists `languages`, `set_turn_taking` when it lists `turn_taking`
presets (unless a tool of that name is listed already)."""

from __future__ import annotations

from voiceagent.config_models import AgentConfig
from voiceagent.tools.declarations import AnyTool
from voiceagent.tools.language import SetLanguageSpec
from voiceagent.tools.turn_taking import SetTurnTakingSpec


def with_builtins(agent: AgentConfig) -> tuple[AnyTool, ...]:
    """The agent's tools, then its built-ins."""
    tools: tuple[AnyTool, ...] = agent.tools
    names = {tool.name for tool in tools}
    if agent.languages and "set_language" not in names:
        tools = (*tools, SetLanguageSpec(languages=agent.languages))
    if agent.turn_taking and "set_turn_taking" not in names:
        tools = (*tools, SetTurnTakingSpec(presets=agent.turn_taking))
    return tools
