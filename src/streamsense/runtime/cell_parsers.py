"""Exact casts of one cell (issue #21): text, or a Python value read from a file, to the
kind of a schema field. Each raises ValueError, saying why, for a value it cannot cast
without loss: the row becomes a dead letter with that reason (conform.py, json_lines.py,
csv_input.py)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["PARSERS", "Kind"]

Kind = Literal["int", "float", "bool", "str", "datetime", "other"]

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BOOLEANS = {"true": True, "false": False}
_INT64 = (-(2**63), 2**63 - 1)


def _to_int(value: object) -> int:
    number = None
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value)
    if number is None:
        raise ValueError(f"{value!r} is not an integer")
    if not _INT64[0] <= number <= _INT64[1]:  # Arrow's int64 would raise OverflowError
        raise ValueError(f"{value!r} is outside the 64-bit integer range")
    return number


def _to_float(value: object) -> float:
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = float(value)  # the double nearest the decimal, as JSON or Parquet holds it
        if math.isfinite(number):
            return number
    raise ValueError(f"{value!r} is not a finite decimal number")


def _to_bool(value: object) -> bool:
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    raise ValueError(f"{value!r} is not true or false")


def _to_str(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{value!r} is not text")


def _to_datetime(value: object) -> datetime:
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return when if when.tzinfo is None else when.astimezone(UTC)
    raise ValueError(f"{value!r} is not an ISO 8601 time")


PARSERS: dict[Kind, Callable[[Any], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
    "datetime": _to_datetime,
}
