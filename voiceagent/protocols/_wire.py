"""Shared plumbing of the codecs: base models, JSON object loading, base64, error mapping.

Private to ``voiceagent.protocols``; other packages import the codec modules instead.
"""

from __future__ import annotations

import binascii
from typing import Annotated, Any, ClassVar, TypeVar, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer
from pydantic_core.core_schema import SerializerFunctionWrapHandler

from voiceagent.errors import ProtocolError

M = TypeVar("M", bound=BaseModel)

MAX_WIRE_MS = 86_400_000
"""The longest duration or offset (ms) a peer may send: a day; more is not plausible."""
MAX_WIRE_INDEX = 10_000
MAX_WIRE_TIMESTAMP = 2**53
"""The largest timestamp a peer may send (exact in a double, fits every JSON encoder)."""
WireMs = Annotated[int, Field(ge=0, le=MAX_WIRE_MS)]
WireIndex = Annotated[int, Field(ge=0, le=MAX_WIRE_INDEX)]
WireTimestamp = Annotated[int, Field(ge=0, le=MAX_WIRE_TIMESTAMP)]


class WireModel(BaseModel):
    """A lenient wire message: unknown fields are ignored, Python names or wire aliases build it.

    Parsing always goes by wire alias (``by_name=False``), so a peer that sends the snake_case
    Python name instead of the wire name is treated as having left the field out.
    Fields listed in ``_nullable`` keep an explicit ``null`` when dumped with ``exclude_none``
    (e.g. ``turn_detection: null`` means manual turn-taking, which is not the same as unset).
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    _nullable: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _keep_explicit_nulls(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self._nullable and isinstance(data, dict):
            for name in self._nullable & self.model_fields_set:
                if getattr(self, name) is None:
                    field = type(self).model_fields[name]
                    data[field.serialization_alias or field.alias or name] = None
        return data


class StrictWireModel(WireModel):
    """A message checked the way the real service checks it: no extra fields, no coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


def tag_map(union: Any, tag: str) -> dict[str, type[WireModel]]:
    """Map every value of the ``Literal`` discriminator ``tag`` to its model, for O(1) dispatch.

    ``union`` is a (possibly ``Annotated``) union of models; a model whose tag is
    ``Literal["a", "b"]`` (GA and beta names of one event) appears under both keys.
    """
    members = get_args(union)
    if members and not isinstance(members[0], type):  # Annotated[A | B, Field(...)]
        members = get_args(members[0])
    return {
        value: model for model in members for value in get_args(model.model_fields[tag].annotation)
    }


def loads_object(raw: str | bytes, protocol: str) -> dict[str, Any]:
    """Decode one JSON text frame that must be an object, or raise ProtocolError."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"{protocol}: invalid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"{protocol}: expected a JSON object, got {type(obj).__name__}")
    return obj


def validate(model: type[M], obj: dict[str, Any], protocol: str) -> M:
    """Validate ``obj`` by wire aliases into ``model``; a ValidationError becomes ProtocolError."""
    try:
        return model.model_validate(obj, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise ProtocolError(f"{protocol}: invalid {model.__name__}: {describe(exc)}") from exc


def describe(exc: ValidationError, limit: int = 3) -> str:
    """A short one-line summary of a ValidationError, without echoing (possibly huge) inputs."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_url=False)[:limit]
    ]
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def b64decode(data: str, what: str = "payload") -> bytes:
    """Strictly decode base64 (alphabet and padding checked), raising ProtocolError."""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except ValueError as exc:  # binascii.Error is a ValueError; so is non-ASCII input
        raise ProtocolError(f"invalid base64 in {what}: {exc}") from exc


def b64encode(data: bytes | bytearray) -> str:
    """Base64 without a trailing newline, as every protocol here expects."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def dumps(model: BaseModel) -> str:
    """Serialize a wire model by alias, leaving out None fields (except explicit nullables)."""
    return model.model_dump_json(by_alias=True, exclude_none=True)
