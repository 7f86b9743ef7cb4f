"""E.164 phone numbers: the one pattern and the one message every check uses."""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def e164_problem(value: object) -> str:
    """Why `value` is not an E.164 number, in the words every command and config error uses."""
    return (
        f"{str(value)!r} is not an E.164 number: '+', the country code, then the number, "
        "digits only (like +14155550100)"
    )


def check_e164(value: str) -> str:
    """`value` if it is E.164, else ValueError with `e164_problem` (a pydantic validator)."""
    if not E164.match(value):
        raise ValueError(e164_problem(value))
    return value
