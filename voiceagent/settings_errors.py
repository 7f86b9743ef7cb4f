"""Settings errors that name the environment variable and the form its value must take."""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, MaxLen
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from voiceagent.errors import ConfigError

_SECRET_HINTS = ("TOKEN", "KEY", "SECRET", "PASSWORD")


def expected_form(field: FieldInfo) -> str:
    """A human description of the values `field` accepts, e.g. "an integer from 1024"."""
    annotation = field.annotation
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(members) < len(get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
    if get_origin(annotation) is Literal:
        form = "one of " + ", ".join(str(v) for v in get_args(annotation))
    elif annotation is bool:
        form = "true or false"
    elif annotation in (int, float):
        form = ("an integer" if annotation is int else "a number") + _bounds(field)
    elif annotation is Path:
        form = "a file path"
    else:
        form = "text" + "".join(
            f" of at most {m.max_length} characters"
            for m in field.metadata
            if isinstance(m, MaxLen)
        )
    return form + (" (or empty for none)" if optional else "")


def _bounds(field: FieldInfo) -> str:
    low = next((f"{m.ge}" for m in field.metadata if isinstance(m, Ge)), None)
    above = next((f"{m.gt}" for m in field.metadata if isinstance(m, Gt)), None)
    high = next((f"{m.le}" for m in field.metadata if isinstance(m, Le)), None)
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" of at least {low}"
    if above is not None:
        return f" greater than {above}"
    return ""


def settings_error(
    model: type[BaseModel], exc: ValidationError, env_name: Callable[[str], str]
) -> ConfigError:
    """One ConfigError naming every invalid variable, why, and the form it expects.

    The value itself is quoted only for variables that are not secrets.
    """
    lines: list[tuple[str, str]] = []
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else ""
        field_name = next(
            (n for n, f in model.model_fields.items() if key in (n, f.validation_alias)), None
        )
        if field_name is None:
            lines.append((key.upper(), f"{err['msg']} (not a setting; see .env.example)"))
            continue
        env = env_name(field_name)
        got = "" if any(h in env for h in _SECRET_HINTS) else f" (got {err['input']!r})"
        form = expected_form(model.model_fields[field_name])
        lines.append((env, f"{err['msg']}{got}; expected {form}"))
    first_env, first_msg = lines[0]
    rest = "".join(f"\n  {env}: {msg}" for env, msg in lines[1:])
    return ConfigError(first_msg + rest, path=first_env)
