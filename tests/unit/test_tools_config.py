"""Unit tests of the `agent.tools` YAML: kinds, secrets from the environment, validation paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from voiceagent.config import load_config, parse_config
from voiceagent.errors import ConfigError
from voiceagent.tools.spec import EndCallSpec, EnvValue, HttpToolSpec, TransferCallSpec

SAMPLE = Path(__file__).parents[2] / "config" / "voiceagent.yaml"
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "url": "https://weather.example/v1/now",
    "method": "GET",
    "headers": {"Authorization": {"env": "WEATHER_API_TOKEN", "prefix": "Bearer "}},
    "timeout_s": 3,
}
TRANSFER = {
    "name": "transfer_call",
    "destinations": {"front_desk": {"number": "+18005550199", "announcement": "One moment."}},
}


def _config(tools: list[Any], environ: dict[str, str] | None = None) -> Any:
    number = {"mode": "realtime-passthrough", "agent": {"tools": tools}}
    data = {"numbers": {"+18005550101": number}}
    return parse_config(data, environ={} if environ is None else environ)


def _error(tools: list[Any], environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        _config(tools, environ)
    return err.value


def test_three_kinds_are_told_apart_by_name() -> None:
    """`end_call` and `transfer_call` are the built-ins; any other name is an HTTP tool."""
    config = _config([{"name": "end_call"}, TRANSFER, WEATHER], {"WEATHER_API_TOKEN": "t"})
    plan = config.plan_for("+18005550101", "CA1")
    assert plan is not None
    end, transfer, weather = plan.agent.tools
    assert isinstance(end, EndCallSpec) and isinstance(transfer, TransferCallSpec)
    assert isinstance(weather, HttpToolSpec) and weather.method == "GET"
    assert transfer.destinations["front_desk"].number == "+18005550199"


def test_missing_env_var_fails_naming_it_and_its_yaml_path() -> None:
    """A required header whose variable is unset fails at load, naming the variable."""
    err = _error([WEATHER])
    assert "WEATHER_API_TOKEN" in str(err)
    assert err.path == "numbers.+18005550101.agent.tools.0.headers.Authorization"


def test_optional_header_loads_without_its_variable() -> None:
    """`optional: true` lets the config load with the variable unset (the header is left out)."""
    header = {"env": "WEATHER_API_TOKEN", "optional": True}
    config = _config([{**WEATHER, "headers": {"Authorization": header}}])
    assert config.numbers["+18005550101"].agent.tools is not None


def test_secret_is_not_kept_in_the_config() -> None:
    """The config holds the variable's name, never its value."""
    config = _config([WEATHER], {"WEATHER_API_TOKEN": "s3cret-value"})
    assert "s3cret-value" not in config.model_dump_json()
    tool = config.numbers["+18005550101"].agent.tools[0]
    header = tool.headers["Authorization"]
    assert isinstance(header, EnvValue) and header.env == "WEATHER_API_TOKEN"


@pytest.mark.parametrize(
    ("tools", "path", "words"),
    [
        ([{"name": "end_call"}, {"name": "end_call"}], "tools", "duplicate tool names: end_call"),
        ([{**WEATHER, "headers": {"Authorization": "Bearer abc"}}], "tools.0.headers",
         "looks like a credential"),
        ([{**WEATHER, "headers": {"X-Api-Key": {"env": "INWORLD_API_KEY"}}}],
         "tools.0.headers.X-Api-Key.env", "voiceagent's own secret"),
        ([{**WEATHER, "parameters": {"type": "object", "properties": {"a": {"type": "strin"}}}}],
         "tools.0.parameters", "not a valid JSON schema"),
        ([{**WEATHER, "parameters": {"type": "array"}}], "tools.0.parameters", "type: object"),
        ([{**WEATHER, "url": "https://x.example/orders/{order_id}"}], "tools.0",
         "{order_id} is not a parameter"),
        ([{"name": "transfer_call", "destinations": {}}], "tools.0.destinations", "at least 1"),
        ([{"name": "transfer_call", "destinations": {"x": {"number": "5550199"}}}],
         "tools.0.destinations.x.number", "is not an E.164 number"),
        ([{"name": "end_call", "parameters": {}}], "tools.0.parameters", "unknown key"),
        ([{**WEATHER, "name": "has space"}], "tools.0.name", "pattern"),
    ],
)  # fmt: skip
def test_bad_tools_fail_with_their_yaml_path(tools: list[Any], path: str, words: str) -> None:
    """Each kind of mistake is refused at load with the YAML path of the offending value."""
    err = _error(tools, {"WEATHER_API_TOKEN": "t"})
    assert err.path == f"numbers.+18005550101.agent.{path}"
    assert words in str(err)


def test_number_and_arm_lists_replace_the_inherited_list() -> None:
    """Defaults apply unless a number or an arm sets its own `tools` (`[]` means none)."""
    arms = [
        {"name": "a", "mode": "realtime-passthrough", "weight": 1},
        {"name": "b", "mode": "relay-router", "weight": 1, "agent": {"tools": [TRANSFER]}},
    ]
    config = parse_config({
        "defaults": {"agent": {"tools": [{"name": "end_call"}]}},
        "numbers": {
            "+18005550101": {"mode": "relay-router"},
            "+18005550102": {"mode": "relay-router", "agent": {"tools": []}},
            "+18005550103": {"experiment": {"name": "e", "arms": arms}},
        },
    }, environ={})  # fmt: skip
    names = {}
    for number in ("+18005550101", "+18005550102"):
        plan = config.plan_for(number, "CA1")
        assert plan is not None
        names[number] = [t.name for t in plan.agent.tools]
    assert names == {"+18005550101": ["end_call"], "+18005550102": []}
    by_arm = {}
    for sid in (f"CA{i}" for i in range(40)):
        plan = config.plan_for("+18005550103", sid)
        assert plan is not None and plan.arm is not None
        by_arm[plan.arm] = [t.name for t in plan.agent.tools]
    assert by_arm == {"a": ["end_call"], "b": ["transfer_call"]}


def test_dtmf_template_for_realtime_and_checked_placeholders() -> None:
    """Realtime has a per-number DTMF template too; only `{digit}` may be used."""
    config = parse_config({"numbers": {"+18005550101": {
        "mode": "realtime-passthrough", "realtime": {"dtmf_template": "Key {digit} pressed."},
    }}})  # fmt: skip
    plan = config.plan_for("+18005550101", "CA1")
    assert plan is not None and plan.realtime.dtmf_template == "Key {digit} pressed."
    with pytest.raises(ConfigError) as err:
        parse_config({"defaults": {"relay": {"dtmf_template": "Key {key}"}}})
    assert err.value.path == "defaults.relay.dtmf_template"


def test_sample_config_declares_tools_on_both_sample_numbers() -> None:
    """The committed sample loads without any tool variable set, and both of its sample
    numbers can end and transfer the call; one also has an HTTP tool."""
    config = load_config(SAMPLE, environ={})
    names = {
        number: {t.name for t in (entry.agent.tools or ())}
        for number, entry in config.numbers.items()
    }
    for number, entry in config.numbers.items():
        if entry.mode in ("realtime-passthrough", "relay-router"):
            assert {"end_call", "transfer_call"} <= names[number], number
    assert any(len(n - {"end_call", "transfer_call"}) >= 1 for n in names.values())
