"""Hypothesis strategies from the JSON Schema subset an OpenAPI document of FastAPI and
msgspec uses (object, array, anyOf, enum, string with date-time, integer, number, boolean,
null, and ``{}`` for any JSON). Small and ours: hypothesis-jsonschema 0.23 breaks on the
Hypothesis internals of 6.170 (its object strategy calls a removed ``many.more``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import strategies as st

__all__ = ["any_json", "from_schema"]

# Integers past int64 and floats past anything a feature can sum: the edges bugs live on.
_INTEGERS = st.one_of(st.integers(), st.integers(-(2**70), 2**70))
_NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), _INTEGERS)
_TIMES = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))


def any_json() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), _INTEGERS, _NUMBERS, st.text(max_size=20))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=12,
    )


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under ``schema`` (references already inlined)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(option) for option in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        return _object(schema)
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=5)
    if kind == "string":
        if schema.get("format") == "date-time":
            return _TIMES.map(datetime.isoformat)
        return st.text(max_size=30)
    if kind == "integer":
        return _INTEGERS.filter(lambda n: n >= schema.get("minimum", n))
    if kind == "number":
        return _NUMBERS
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return any_json()


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {name: from_schema(properties[name]) for name in properties if name in required},
        optional={
            name: from_schema(value) for name, value in properties.items() if name not in required
        },
    )
