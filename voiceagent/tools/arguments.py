"""Checking a model's arguments against the tool's JSON schema, before anything runs.

Pure: a JSON text in, a dict out or ``InvalidArguments`` with a short message the model can
act on (it goes back to the model as the call's error output).
"""

from __future__ import annotations

from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

MESSAGE_LIMIT = 300


class InvalidArguments(ValueError):
    """The arguments are not JSON, not an object, or do not meet the schema."""


def compile_schema(schema: dict[str, Any]) -> Draft202012Validator:
    """A reusable validator for an already checked schema (see ``spec.check_parameters_schema``)."""
    return Draft202012Validator(schema)


def parse_arguments(raw: str, validator: Draft202012Validator) -> dict[str, Any]:
    """The arguments as a dict; an empty text means ``{}`` (tools without parameters)."""
    try:
        value = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidArguments(_short(f"arguments are not valid JSON: {exc}")) from exc
    if not isinstance(value, dict):
        raise InvalidArguments("arguments must be a JSON object")
    error = best_match(validator.iter_errors(value))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise InvalidArguments(_short(f"{where}: {error.message}" if where else error.message))
    return value


def _short(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
