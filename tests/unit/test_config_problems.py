"""Unit tests of config problems: every error at once, its file line, and the hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from voiceagent.config import load_config
from voiceagent.config_errors import ConfigFileError


def _problems(tmp_path: Path, text: str) -> list[tuple[int | None, str, str]]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError) as err:
        load_config(path)
    return [(p.line, p.path, p.message) for p in err.value.problems]


def test_unquoted_number_keys_get_the_quote_hint_or_the_e164_message(tmp_path: Path) -> None:
    """`+1...:` unquoted is told to quote it; `415...:` unquoted is also not E.164, said once."""
    problems = _problems(
        tmp_path,
        "numbers:\n  +14155550123:\n    mode: relay-router\n"
        "  4155550123:\n    mode: relay-router\n",
    )
    assert problems == [
        (2, "numbers.+14155550123",
         'YAML reads the unquoted key +14155550123 as a number, not text: quote it, '
         '"+14155550123":'),
        (4, "numbers.4155550123",
         "'4155550123' is not an E.164 number: '+', the country code, then the number, digits "
         "only (like +14155550100); and quote it: YAML reads an unquoted number as a number"),
    ]  # fmt: skip


def test_every_problem_is_listed_with_its_line(tmp_path: Path) -> None:
    """A bad value, an unknown key and a bad quoted number key come together, in file order."""
    problems = _problems(
        tmp_path,
        'defaults:\n  agent:\n    temperature: 9\n    colour: red\nnumbers:\n  "555":\n'
        "    mode: relay-router\n",
    )
    assert [(line, path) for line, path, _ in problems] == [
        (3, "defaults.agent.temperature"),
        (4, "defaults.agent.colour"),
        (6, "numbers.555"),
    ]
    assert problems[1][2] == "unknown key" and "is not an E.164 number" in problems[2][2]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """Broken YAML is one problem naming the file and the line, never `<unicode string>`."""
    path = tmp_path / "broken.yaml"
    path.write_text('numbers:\n  "+18005550101": {mode: relay-router\n')
    with pytest.raises(ConfigFileError) as err:
        load_config(path)
    assert err.value.lines()[0].startswith(f"{path}:3: invalid YAML, column 1:")
    assert "<unicode string>" not in str(err.value)
