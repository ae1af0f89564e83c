"""Human durations (``90s``, ``5m``, ``1h``, ``1d``, ``1w``) as a pydantic type.

Stack files are read and edited by people, so durations are written the way
people write them and serialised back the same way (``timedelta`` would
round-trip as ``PT5M``, which nobody wants to review in a pull request).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = ["Duration", "format_duration", "parse_duration"]

_UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``"30m"`` into ``timedelta(minutes=30)``.

    Plain numbers are taken as seconds. A ``timedelta`` passes through.
    Raises ``ValueError`` with the accepted forms when the text is not a duration.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError(f"expected a duration such as 90s, 5m, 1h, 1d or 1w, got {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a duration cannot be negative, got {text!r}")
        return timedelta(seconds=float(text))
    match = _PATTERN.match(str(text))
    if not match:
        raise ValueError(f"expected a duration such as 90s, 5m, 1h, 1d or 1w, got {text!r}")
    value, unit = match.groups()
    return timedelta(seconds=float(value) * _UNITS[unit])


def format_duration(value: timedelta) -> str:
    """Write a ``timedelta`` in the largest unit that divides it exactly (``3600s`` -> ``1h``)."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds}s"


def _validate(value: Any) -> timedelta:
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_validate),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?[smhdw]$", "examples": ["30m"]}),
]
"""A ``timedelta`` written as ``<number><unit>`` with unit one of s, m, h, d, w."""
