"""Jinja filters: numbers, times and durations as operators read them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def ms_time(value: int | None) -> str:
    if not value:
        return "–"
    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def value(x: object) -> str:
    """A feature value: floats to 6 significant digits (no float noise), the rest as is."""
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def iso_ms(value: int) -> str:
    """Epoch milliseconds as the ISO time a form field takes back."""
    return datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="milliseconds")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


FILTERS: dict[str, Callable[..., Any]] = {
    "number": number, "ms_time": ms_time, "iso_ms": iso_ms, "age": age, "value": value,
}  # fmt: skip
