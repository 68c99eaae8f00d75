"""Reading JSON-lines files for ingest.

Lines go in as they are, so a bad one reaches the dead letters through the pipeline with
its original bytes. One exception, the same exact casts as for Parquet and CSV (conform.py):
a line the schema refuses only because numbers, booleans or ids came as text (``"12.5"``
for a float) is decoded, those cells cast, and encoded again. A line still refused after
that goes in unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from streamsense.brokers.base import OutRecord
from streamsense.errors import InputFileError
from streamsense.runtime.cell_parsers import PARSERS
from streamsense.runtime.conform import FieldType, fields_of

__all__ = ["LineCaster", "check_json_lines", "json_line_chunks", "json_sample"]

_SAMPLE_LINES = 100  # lines looked at to check a file's fields
_Refused = (msgspec.ValidationError, msgspec.DecodeError)


class LineCaster:
    """Casts the text cells of the lines ``schema`` refuses, exactly (see the module)."""

    def __init__(self, schema: type[msgspec.Struct]) -> None:
        self._one = msgspec.json.Decoder(schema)
        self._many = msgspec.json.Decoder(list[schema])  # type: ignore[valid-type]
        fields = fields_of(schema)
        # Numbers and booleans given as text, ids given as integers.
        self._from_text = {
            f.column: PARSERS[f.kind] for f in fields if f.kind in ("int", "float", "bool")
        }
        self._ids = [f.column for f in fields if f.kind == "str"]

    def __call__(self, lines: list[bytes]) -> list[bytes]:
        try:  # one parse for the whole chunk: nothing to cast, the common case
            self._many.decode(b"[" + b",".join(lines) + b"]")
            return lines
        except _Refused:
            return [self._line(line) for line in lines]

    def _line(self, line: bytes) -> bytes:
        try:
            self._one.decode(line)
            return line
        except _Refused:
            pass
        try:
            row = msgspec.json.decode(line)
        except msgspec.DecodeError:
            return line
        if not isinstance(row, dict) or not self._cast(row):
            return line
        cast = msgspec.json.encode(row)
        try:
            self._one.decode(cast)
        except _Refused:
            return line  # refused for another reason: the dead letter shows the original
        return cast

    def _cast(self, row: dict[str, Any]) -> bool:
        """Casts ``row``'s cells in place; False when there is none or one fails."""
        changed = False
        for column, parse in self._from_text.items():
            if isinstance(row.get(column), str):
                try:
                    row[column] = parse(row[column])
                except ValueError:
                    return False
                changed = True
        for column in self._ids:
            value = row.get(column)
            if isinstance(value, int) and not isinstance(value, bool):
                row[column], changed = str(value), True
        return changed


def json_line_chunks(
    path: Path,
    topic: str,
    key_name: str | None,
    chunk_rows: int,
    skip: int,
    cast: LineCaster | None = None,
) -> Iterator[list[OutRecord]]:
    """Records for the non-blank lines of ``path`` after the first ``skip``."""
    lines: list[bytes] = []
    index = 0
    with path.open("rb") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            index += 1
            if index <= skip:
                continue
            lines.append(line)
            if len(lines) >= chunk_rows:
                yield _records(lines, topic, key_name, cast)
                lines = []
    if lines:
        yield _records(lines, topic, key_name, cast)


def _records(
    lines: list[bytes], topic: str, key_name: str | None, cast: LineCaster | None
) -> list[OutRecord]:
    chosen = lines if cast is None else cast(lines)
    if key_name is None:
        return [OutRecord(topic, line) for line in chosen]
    return [OutRecord(topic, line, _key_of_line(line, key_name)) for line in chosen]


def _key_of_line(line: bytes, key_name: str) -> bytes | None:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    if isinstance(value, dict) and key_name in value:
        return str(value[key_name]).encode()
    return None


def check_json_lines(path: Path, fields: Sequence[FieldType]) -> None:
    """Raises InputFileError when none of the first lines is a JSON object, or a required
    field is in none of them: then every line would be a dead letter."""
    sample = json_sample(path)
    if not sample:
        with path.open("rb") as handle:
            if any(line.strip() for line in handle):
                raise InputFileError(f"{path}: no JSON object in its first lines (not JSON lines?)")
        return
    missing = [f.column for f in fields if f.required and all(f.column not in r for r in sample)]
    if missing:
        raise InputFileError(
            f"{path}: missing field{'s' * (len(missing) > 1)} {', '.join(missing)}"
        )


def json_sample(path: Path) -> list[dict[str, object]]:
    """The JSON objects among the first lines of ``path``."""
    rows = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle):
            if number >= _SAMPLE_LINES:
                break
            try:
                value = msgspec.json.decode(line) if line.strip() else None
            except msgspec.DecodeError:
                continue
            if isinstance(value, dict):
                rows.append(value)
    return rows
