"""Values of the key types, as the compiler reads them from literals and CSV cells.

date and datetime values are written as ISO strings (``"2013-11-02"``,
``"2013-11-02T10:00:00"``); in the IR they stay ISO strings.
"""

from __future__ import annotations

import datetime

from .model import Literal

__all__ = ["KEY_TYPES", "SCALES", "Value", "coerce_literal", "coerce_text", "to_ir"]

KEY_TYPES = ("int", "str", "float", "bool", "date", "datetime")
SCALES = ("tai", "utc")

Value = int | str | float | bool | datetime.date | datetime.datetime


class ValueProblem(ValueError):
    """A literal that does not fit a key type; the message says why."""


def coerce_literal(literal: Literal, key_type: str) -> Value:
    """The value of ``literal`` as ``key_type``, or :class:`ValueProblem`."""
    value, kind = literal.value, literal.kind
    if key_type == "int" and kind == "int":
        return value
    if key_type == "float" and kind in ("int", "float"):
        return float(value)
    if key_type == "str" and kind == "str":
        return value
    if key_type == "bool" and kind == "bool":
        return value
    if key_type in ("date", "datetime") and kind == "str":
        return coerce_text(str(value), key_type)
    shown = f'"{value}"' if kind == "str" else str(value).lower() if kind == "bool" else str(value)
    article = "an" if kind == "int" else "a"
    raise ValueProblem(f"{shown} is {article} {kind} literal, but the key is {key_type}")


def coerce_text(text: str, key_type: str) -> Value:
    """The value of CSV cell text as ``key_type``, or :class:`ValueProblem`."""
    try:
        if key_type == "int":
            return int(text.replace("_", ""))
        if key_type == "float":
            return float(text)
        if key_type == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            raise ValueError
        if key_type == "date":
            return datetime.date.fromisoformat(text)
        if key_type == "datetime":
            value = datetime.datetime.fromisoformat(text)
            if value.tzinfo is not None:
                raise ValueProblem(
                    f"'{text}' has a UTC offset; write datetimes in the key's own time scale"
                )
            return value
    except ValueProblem:
        raise
    except ValueError:
        raise ValueProblem(f"'{text}' is not a valid {key_type}") from None
    return text


def to_ir(value: Value) -> str | int | float | bool:
    """A value as the IR writes it (dates and datetimes as ISO strings)."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value
