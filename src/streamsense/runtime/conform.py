"""Typing a file's columns by a stream's schema, before anything is ingested.

A file (Parquet, or CSV whose cells are all text) is checked against the schema once:
a required field with no column, or a column whose type can never hold the field (a
timestamp where a number belongs), stops the ingest with one line naming the file and the
columns. Columns that can hold the field are cast exactly: integers to text, integral
floats to integers, and text that spells a number, a boolean or an ISO time to that value.
A cell that cannot be cast exactly ("abc" for a float, 12.5 for an integer) does not
stop the file: its row is marked rejected, with the field and the reason, and becomes a
dead letter at ingest.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from streamsense.errors import InputFileError
from streamsense.runtime.cell_parsers import PARSERS, Kind

__all__ = [
    "PARSERS",
    "REJECT_FIELD",
    "REJECT_REASON",
    "REJECT_TEXT",
    "FieldType",
    "check_columns",
    "conform",
    "fields_of",
    "python_times",
]

REJECT_FIELD = "__streamsense_reject_field"
REJECT_REASON = "__streamsense_reject_reason"
REJECT_TEXT = "__streamsense_reject_text"  # a row the parser could not split: its line

_KINDS: dict[Any, Kind] = {
    int: "int",
    float: "float",
    bool: "bool",
    str: "str",
    datetime: "datetime",
}
_TARGET: dict[Kind, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "str": pa.string(),
    "datetime": pa.timestamp("us"),
}
# Python's datetimes in whole epoch seconds (year 1 to 9999), and ticks per second by unit:
# nanoseconds in 64 bits never leave that range.
_PYTHON_SECONDS = (-62_135_596_800, 253_402_300_799)
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000}


@dataclass(frozen=True)
class FieldType:
    """A schema field as a file's column: its name on the wire, kind, and whether a row
    must have it."""

    column: str
    kind: Kind
    required: bool
    nullable: bool = True  # False: an empty cell is refused (the schema has no None)


def fields_of(schema: type[msgspec.Struct]) -> list[FieldType]:
    fields = []
    for info in msgspec.structs.fields(schema):
        union = (
            isinstance(info.type, types.UnionType) or typing.get_origin(info.type) is typing.Union
        )
        kinds = [
            k
            for k in (typing.get_args(info.type) if union else (info.type,))
            if k is not type(None)
        ]
        kind = _KINDS.get(kinds[0], "other") if len(kinds) == 1 else "other"
        nullable = union and type(None) in typing.get_args(info.type)
        fields.append(FieldType(info.encode_name, kind, info.required, nullable))
    return fields


def _holds(source: pa.DataType, kind: Kind) -> bool:
    """Whether a column of type ``source`` can hold the field, exactly, for some values."""
    if pa.types.is_null(source) or _textual(source):
        return True
    integer = pa.types.is_integer(source)
    holds: dict[Kind, bool] = {
        "int": integer or pa.types.is_floating(source),
        "float": integer or pa.types.is_floating(source),
        "bool": pa.types.is_boolean(source),
        "str": integer,
        "datetime": pa.types.is_timestamp(source),
        "other": True,
    }
    return holds[kind]


def check_columns(path: Path, schema: pa.Schema, fields: Sequence[FieldType]) -> None:
    """Raises InputFileError naming the missing and the mistyped columns of ``path``."""
    missing = [f.column for f in fields if f.required and f.column not in schema.names]
    wrong = [
        f"{f.column} ({schema.field(f.column).type}, not {f.kind})"
        for f in fields
        if f.column in schema.names and not _holds(schema.field(f.column).type, f.kind)
    ]
    problems = []
    if missing:
        problems.append(f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}")
    if wrong:
        problems.append(f"wrong type in {', '.join(wrong)}")
    if problems:
        raise InputFileError(f"{path}: {'; '.join(problems)}")


def conform(batch: pa.RecordBatch, fields: Sequence[FieldType]) -> pa.RecordBatch:
    """``batch`` with the schema's columns cast to their kinds; rows with a cell that
    cannot be cast exactly, or a time Python cannot hold in any column, get the
    REJECT_FIELD and REJECT_REASON columns set."""
    columns = dict(zip(batch.schema.names, batch.columns, strict=True))
    reject_field: list[str | None] = [None] * batch.num_rows
    reject_reason: list[str | None] = [None] * batch.num_rows
    typed = {f.column: f for f in fields if f.column in columns and f.kind != "other"}
    others = [name for name in columns if name not in typed]
    for name in [*typed, *others]:  # a column the schema ignores: only its times checked
        field = typed.get(name)
        if field is not None:
            cast, failures = _typed(columns[name], field)
        else:
            cast, failures = _within_python_times(columns[name])
        columns[name] = cast
        for row, reason in failures:
            if reject_field[row] is None:
                reject_field[row], reject_reason[row] = name, reason
    if any(f is not None for f in reject_field):
        columns[REJECT_FIELD] = pa.array(reject_field, pa.string())
        columns[REJECT_REASON] = pa.array(reject_reason, pa.string())
    return pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))


def _typed(values: pa.Array, field: FieldType) -> tuple[pa.Array, list[tuple[int, str]]]:
    """One column cast to its field's kind, and the (row, reason) of each refused cell."""
    cast, failures = _cast(values, field.kind)
    if not field.nullable:  # after the cells that could not be cast (null now too)
        failed = {row for row, _ in failures}
        failures += [(row, why) for row, why in _empty(cast) if row not in failed]
    if field.kind == "datetime":
        cast, far = _within_python_times(cast)
        failures += far
    return cast, failures


def _empty(values: pa.Array) -> list[tuple[int, str]]:
    """The rows with no value in a field the schema says must have one: refused here, so
    what the file derives from the row (a label from a payment) is left out with it."""
    if values.null_count == 0:
        return []
    rows = pc.indices_nonzero(pc.is_null(values)).to_pylist()
    return [(row, "no value") for row in rows]


def python_times(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with every time Python cannot hold made null: a file read with no schema
    (``produce``) has no dead letters, and one such cell must not fail the file."""
    columns = [_within_python_times(column)[0] for column in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _within_python_times(values: pa.Array) -> tuple[pa.Array, list[tuple[int, str]]]:
    """Times Python cannot hold (before year 1 or after 9999: an Arrow timestamp in
    seconds or milliseconds can be) made null, and the (row, reason) of each: turning the
    batch into rows would raise OverflowError for the whole file (issue #21)."""
    per_second = _PER_SECOND.get(values.type.unit) if pa.types.is_timestamp(values.type) else None
    if per_second is None or len(values) == 0:
        return values, []
    low, high = _PYTHON_SECONDS[0] * per_second, (_PYTHON_SECONDS[1] + 1) * per_second - 1
    ticks = pc.cast(values, pa.int64())
    outside = pc.or_(pc.less(ticks, low), pc.greater(ticks, high))
    rows = pc.indices_nonzero(pc.fill_null(outside, False)).to_pylist()
    if not rows:
        return values, []
    reason = "is outside the times Python can hold (years 1 to 9999)"
    failures = [(row, f"{ticks[row].as_py()} {values.type.unit} {reason}") for row in rows]
    return pc.if_else(outside, pa.scalar(None, values.type), values), failures


def _textual(source: pa.DataType) -> bool:
    """Text, or bytes that should be (CSV cells are read as bytes: see csv_input.py)."""
    return any(
        check(source)
        for check in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_binary,
            pa.types.is_large_binary,
        )
    )


def _cast(values: pa.Array, kind: Kind) -> tuple[pa.Array, list[tuple[int, str]]]:
    """The column as ``kind``, and the (row, reason) of each cell that cannot be."""
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        text, not_text = _utf8(values)
        typed, failures = _cast(text, kind)
        return typed, sorted(not_text + failures)
    if _already(values.type, kind):
        return values, []
    # The whole column at once; a safe cast refuses any loss (12.5 to an integer). Times
    # with a zone offset stay aware (in UTC), as they would decoded from a JSON line.
    targets = [_TARGET[kind]] + ([pa.timestamp("us", "UTC")] if kind == "datetime" else [])
    for target in targets:
        try:
            return pc.cast(values, target, safe=True), []
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # some cell cannot be cast: find which, one by one
    parse = PARSERS[kind]
    cast: list[Any] = []
    failures = []
    for row, value in enumerate(values.to_pylist()):
        try:
            cast.append(None if value is None else parse(value))
        except ValueError as error:
            cast.append(None)
            failures.append((row, str(error)))
    if kind == "datetime" and any(v is not None and v.tzinfo is not None for v in cast):
        naive_as_utc = [v if v is None or v.tzinfo else v.replace(tzinfo=UTC) for v in cast]
        return pa.array(naive_as_utc, targets[1]), failures
    return pa.array(cast, _TARGET[kind]), failures


def _utf8(values: pa.Array) -> tuple[pa.Array, list[tuple[int, str]]]:
    """Bytes as text; a cell that is not UTF-8 becomes null, and its (row, reason)."""
    try:
        return pc.cast(values, pa.string()), []
    except pa.ArrowInvalid:
        pass
    text: list[str | None] = []
    failures = []
    for row, value in enumerate(values.to_pylist()):
        try:
            text.append(None if value is None else value.decode("utf-8"))
        except UnicodeDecodeError:
            text.append(None)
            failures.append((row, f"{value!r} is not UTF-8 text"))
    return pa.array(text, pa.string()), failures


def _already(source: pa.DataType, kind: Kind) -> bool:
    integer = pa.types.is_integer(source)
    already: dict[Kind, bool] = {
        "int": integer,
        "float": integer or pa.types.is_floating(source),  # an integer is a float exactly
        "bool": pa.types.is_boolean(source),
        "str": pa.types.is_string(source) or pa.types.is_large_string(source),
        "datetime": pa.types.is_timestamp(source),
        "other": True,
    }
    return already[kind] or bool(pa.types.is_null(source))
