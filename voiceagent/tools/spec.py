"""Tool declarations as they appear in the YAML (`agent.tools`): validated, frozen, secret-free.

A list entry is one of three kinds, told apart by its ``name``:

- ``end_call`` (built-in): the agent ends the call after its goodbye.
- ``transfer_call`` (built-in): hands the caller to one of the number's ``destinations``
  (name → E.164 number and an optional announcement). The model only ever sees the names.
- anything else: an HTTP tool (``url``, ``method``, JSON-schema ``parameters``, ``headers``,
  ``timeout_s``). A header value is either a literal (refused for credential-like headers) or
  ``{env: NAME}``: the secret is read from the environment when the tool runs, never stored
  here. A missing variable fails validation, naming it, unless the header is ``optional``.

Environment lookups during validation use the pydantic context ``{"environ": mapping}``
(``parse_config(..., environ=...)``), defaulting to ``process_environ()``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from jsonschema import Draft202012Validator, SchemaError
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

END_CALL = "end_call"
TRANSFER_CALL = "transfer_call"
BUILTIN_NAMES = frozenset({END_CALL, TRANSFER_CALL})
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# Our own secrets: never sent to a third-party tool, whatever the YAML says.
RESERVED_ENV = frozenset(
    {"TWILIO_AUTH_TOKEN", "INWORLD_API_KEY", "ADMIN_TOKEN", "DATABASE_URL", "REDIS_URL"}
)
_CREDENTIAL_HEADER = re.compile(r"authorization|cookie|token|secret|api[-_]?key|password", re.I)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

ToolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


def process_environ(env_file: Path | None = Path(".env")) -> dict[str, str]:
    """The environment as settings see it: ``.env`` (if any) overlaid by the process env."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ)
    return merged


def _environ(info: ValidationInfo) -> Mapping[str, str]:
    context = info.context if isinstance(info.context, dict) else {}
    environ = context.get("environ")
    return environ if environ is not None else process_environ()


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnvValue(_Model):
    """A header value read from the environment when the tool runs: ``prefix`` + value."""

    env: EnvName
    prefix: str = ""
    optional: bool = False  # unset variable: send no header instead of failing at start

    @field_validator("env")
    @classmethod
    def _not_ours(cls, env: str) -> str:
        if env in RESERVED_ENV:
            raise ValueError(f"{env} is voiceagent's own secret and is never sent to a tool")
        return env

    @model_validator(mode="after")
    def _required_is_set(self, info: ValidationInfo) -> EnvValue:
        if not self.optional and not _environ(info).get(self.env):
            raise ValueError(
                f"environment variable {self.env} is not set (this tool header needs it; "
                "set it, or mark the header `optional: true`)"
            )
        return self

    def resolve(self, environ: Mapping[str, str]) -> str | None:
        """The header value, or None when an optional variable is unset."""
        value = environ.get(self.env)
        return f"{self.prefix}{value}" if value else None


def _header_kind(value: Any) -> str:
    return "tag:literal" if isinstance(value, str) else "tag:env"


HeaderValue = Annotated[
    Annotated[str, Tag("tag:literal")] | Annotated[EnvValue, Tag("tag:env")],
    Discriminator(_header_kind),
]
"""A literal header value, or ``{env: NAME}``. Tags start with ``tag:`` so that
``parse_config`` can leave them out of the YAML path of an error."""


class HttpToolSpec(_Model):
    """A tool answered by an HTTP endpoint; arguments are validated before any request.

    GET/DELETE send the arguments as the query, other methods as a JSON body; a ``{name}``
    placeholder in the URL path takes that argument (URL-quoted) instead.
    """

    type: Literal["http"] = "http"
    name: ToolName
    description: str = Field(min_length=1, max_length=1024)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    url: str = Field(pattern=r"^https?://[^\s]+$")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, HeaderValue] = {}
    timeout_s: float = Field(default=5.0, gt=0, le=30)
    max_response_bytes: int = Field(default=32_768, ge=256, le=1_048_576)

    @field_validator("name")
    @classmethod
    def _not_builtin(cls, name: str) -> str:
        if name in BUILTIN_NAMES:
            raise ValueError(f"{name!r} is a built-in tool name")
        return name

    @field_validator("parameters")
    @classmethod
    def _json_schema_object(cls, schema: dict[str, Any]) -> dict[str, Any]:
        return check_parameters_schema(schema)

    @field_validator("headers")
    @classmethod
    def _no_literal_secrets(cls, headers: dict[str, HeaderValue]) -> dict[str, HeaderValue]:
        for header, value in headers.items():
            if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", header):
                raise ValueError(f"{header!r} is not a valid header name")
            if isinstance(value, str) and _CREDENTIAL_HEADER.search(header):
                raise ValueError(
                    f"header {header!r} looks like a credential: give it as "
                    "{env: VARIABLE_NAME}, never as a literal in the YAML"
                )
        return headers

    @field_validator("url")
    @classmethod
    def _placeholders_in_place(cls, url: str) -> str:
        check_url_template(url)
        return url

    @model_validator(mode="after")
    def _placeholders_are_parameters(self) -> HttpToolSpec:
        properties = self.parameters.get("properties") or {}
        for placeholder in url_placeholders(self.url):
            if placeholder not in properties:
                raise ValueError(f"url placeholder {{{placeholder}}} is not a parameter")
        return self


class Destination(_Model):
    """Where ``transfer_call`` may send the caller."""

    number: str = Field(pattern=E164.pattern)
    announcement: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=200)  # helps the model choose


class EndCallSpec(_Model):
    """Built-in: end the call once the goodbye was heard."""

    name: Literal["end_call"]
    description: str = (
        "End the phone call. Use it only after you said goodbye and the caller has nothing "
        "more to ask, or when the caller asks to hang up."
    )


class TransferCallSpec(_Model):
    """Built-in: transfer the caller to one of ``destinations`` (names only reach the model)."""

    name: Literal["transfer_call"]
    description: str = (
        "Transfer the caller to a person. Use it when the caller asks for a human or when you "
        "cannot help. Pick the destination that fits the caller's request."
    )
    destinations: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")], Destination] = (
        Field(min_length=1)
    )


def _tool_kind(value: Any) -> str:
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return f"tag:{name}" if name in BUILTIN_NAMES else "tag:http"


ToolSpec = Annotated[
    Annotated[EndCallSpec, Tag(f"tag:{END_CALL}")]
    | Annotated[TransferCallSpec, Tag(f"tag:{TRANSFER_CALL}")]
    | Annotated[HttpToolSpec, Tag("tag:http")],
    Discriminator(_tool_kind),
]
"""One `agent.tools` entry; the built-in names select the built-in models."""


def check_tool_list(tools: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    """Tool names must be unique within one list (the model calls tools by name)."""
    if tools is None:
        return None
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate tool names: {', '.join(duplicates)}")
    return tools


def check_parameters_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's ``parameters``: a valid JSON schema (draft 2020-12) of ``type: object``."""
    if schema.get("type") != "object":
        raise ValueError("parameters must be a JSON schema with type: object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        message = f"parameters is not a valid JSON schema at {where}: {exc.message}"
        raise ValueError(message) from exc
    return schema


def check_dtmf_template(template: str) -> str:
    """A DTMF template may only use ``{digit}`` (e.g. "The caller pressed {digit}.")."""
    names = set(_PLACEHOLDER.findall(template))
    if names - {"digit"}:
        raise ValueError(f"unknown placeholder(s) {sorted(names - {'digit'})}; use {{digit}}")
    try:
        template.format(digit="1")
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(f"invalid template: {exc}") from exc
    return template


def check_url_template(url: str) -> None:
    """A ``{name}`` may only be a whole path segment or a whole query value: never in the
    scheme, host, port, user info or fragment, never part of a segment (so an argument can
    only ever fill its own segment or value)."""
    parts = urlsplit(url)
    for where, text in (("host", parts.netloc), ("fragment", parts.fragment)):
        if "{" in text or "}" in text:
            raise ValueError(f"a url placeholder may not be in the {where}")
    for segment in parts.path.split("/"):
        if ("{" in segment or "}" in segment) and not _PLACEHOLDER.fullmatch(segment):
            raise ValueError(
                f"url placeholder in path segment {segment!r}: a placeholder must be a whole "
                "path segment (/{name}/)"
            )
    for pair in parts.query.split("&") if parts.query else ():
        key, _, value = pair.partition("=")
        if "{" in key or "}" in key:
            raise ValueError(f"a url placeholder may not be a query key ({key!r})")
        if ("{" in value or "}" in value) and not _PLACEHOLDER.fullmatch(value):
            raise ValueError(
                f"url placeholder in query value {value!r}: a placeholder must be a whole "
                "query value (?key={name})"
            )


def url_placeholders(url: str) -> list[str]:
    """The ``{name}`` placeholders of a tool URL, in order."""
    return _PLACEHOLDER.findall(url)
