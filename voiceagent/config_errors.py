"""Every problem of a config file at once, each with its YAML path, file line and a hint.

`config.py` turns a pydantic ValidationError into these; `check-config` prints them all, as
text (`file:line: path: message`) or JSON. Lines come from the YAML node tree (PyYAML's
`compose`), so a problem points at the key or value the user has to change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from voiceagent.e164 import e164_problem
from voiceagent.errors import ConfigError

_SKIP = ("function-after", "tag:")  # validator and union-tag parts are not YAML keys


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a config file; `line` is 1-based, None when it cannot be placed."""

    path: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form `check-config --json` prints."""
        return asdict(self)


def problems_from(exc: ValidationError, text: str | None) -> list[ConfigProblem]:
    """All errors of `exc`, located in the YAML `text` (if given) and explained."""
    root = _compose(text)
    problems: list[ConfigProblem] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not str(p).startswith(_SKIP) and p != "[key]"]
        node, key_text = _find(root, loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        if loc and loc[0] == "numbers" and len(loc) >= 2 and isinstance(loc[1], int):
            shown = key_text or str(loc[1])
            msg = _unquoted_number_hint(shown)
            loc = ["numbers", shown]
        path = ".".join(str(p) for p in loc)
        line = node.start_mark.line + 1 if node is not None else None
        problems.append(ConfigProblem(path or "<root>", msg, line))
    return _dedupe(problems)


def _unquoted_number_hint(shown: str) -> str:
    """A number key YAML read as an int: quote it (and, without its +, it is not E.164)."""
    if shown.startswith("+"):
        return f'YAML reads the unquoted key {shown} as a number, not text: quote it, "{shown}":'
    return f"{e164_problem(shown)}; and quote it: YAML reads an unquoted number as a number"


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return list(dict.fromkeys(problems))


def _compose(text: str | None) -> yaml.Node | None:
    if text is None:
        return None
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def _find(node: yaml.Node | None, loc: list[int | str]) -> tuple[yaml.Node | None, str | None]:
    """The deepest node on `loc` (a key's node for mapping keys) and the last key's YAML text."""
    key_text: str | None = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if _same_key(k, part)), None)
            if match is None:
                return node, key_text
            key_text = str(match[0].value)
            # the last key, or a number YAML turned into an int: point at the key itself
            node = match[0] if part == loc[-1] or isinstance(part, int) else match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node, key_text
            node = node.value[part]
        else:
            return node, key_text
    return node, key_text


def _same_key(key: yaml.Node, part: int | str) -> bool:
    if not isinstance(key, yaml.ScalarNode):
        return False
    if str(key.value) == str(part):
        return True
    if isinstance(part, int):
        try:
            return int(str(key.value).replace("_", "")) == part
        except ValueError:
            return False
    return False


def yaml_syntax_problem(exc: yaml.YAMLError, source: str) -> ConfigProblem:
    """A YAML syntax error as a problem naming the file and the line, not `<unicode string>`."""
    mark = getattr(exc, "problem_mark", None)
    what = " ".join(
        str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p
    )
    line = mark.line + 1 if mark is not None else None
    column = f", column {mark.column + 1}" if mark is not None else ""
    return ConfigProblem("", f"invalid YAML{column}: {what or exc}", line)


class ConfigFileError(ConfigError):
    """A config file with one or more problems; `str()` lists them all, one per line.

    `path` and the first line are those of the first problem, as for any ConfigError.
    """

    def __init__(self, problems: list[ConfigProblem], source: str) -> None:
        self.problems = problems
        self.source = source
        first, rest = problems[0], problems[1:]
        more = "".join(f"\n  {p.path}: {p.message}{_at(source, p.line)}" for p in rest)
        super().__init__(f"{first.message}{_at(source, first.line)}{more}", path=first.path)

    def lines(self) -> list[str]:
        """`file:line: path: message`, one per problem (the form compilers use)."""
        return [
            f"{self.source}{f':{p.line}' if p.line else ''}: {f'{p.path}: ' if p.path else ''}"
            f"{p.message}"
            for p in self.problems
        ]


def _at(source: str, line: int | None) -> str:
    return f" (in {source}, line {line})" if line else f" (in {source})"
