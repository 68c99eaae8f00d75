"""Reading CSV files for ingest: the delimiter the header uses, every column as bytes
(the schema's typed exactly by conform.py, UTF-8 included; the others by what all their
cells in a batch spell, infer_column), and rows whose column count is not the header's.

Every column is read as bytes because Arrow's own inference types a column by the file's
first block: a cell further on that does not fit ("abc" in a column of integers, or bytes
that are not UTF-8) failed the whole file halfway through an ingest (issue #21).

Arrow's CSV reader would fail the whole file on one ragged row, halfway through an ingest.
Read for a stream, such a row becomes a rejected row of its own (all columns null, the
reason, the line's text), which the ingest turns into a dead letter like any row that
cannot be typed: every line of the file is either produced or a dead letter.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from streamsense.runtime.cell_parsers import PARSERS
from streamsense.runtime.conform import (
    REJECT_FIELD,
    REJECT_REASON,
    REJECT_TEXT,
    FieldType,
    conform,
)

__all__ = ["csv_batches", "csv_reader", "infer_column", "skip_ragged", "spelled"]


class _Ragged:
    """Collects the rows the parser skipped, to be yielded as rejected rows."""

    def __init__(self) -> None:
        self.rows: list[pcsv.InvalidRow] = []

    def __call__(self, row: pcsv.InvalidRow) -> str:
        self.rows.append(row)
        return "skip"

    def take(self, schema: pa.Schema) -> pa.RecordBatch | None:
        """The rows collected since the last take, as a rejected batch of ``schema``."""
        if not self.rows:
            return None
        rows, self.rows = self.rows, []
        where = [f" (line {r.number})" if r.number is not None else "" for r in rows]
        columns = [pa.nulls(len(rows), field.type) for field in schema]
        reasons = [
            f"{r.actual_columns} columns where the header has {r.expected_columns}{at}"
            for r, at in zip(rows, where, strict=True)
        ]
        extra = {
            REJECT_FIELD: pa.array([""] * len(rows)),
            REJECT_REASON: pa.array(reasons),
            REJECT_TEXT: pa.array([r.text for r in rows]),
        }
        return pa.RecordBatch.from_arrays(
            [*columns, *extra.values()], names=[*schema.names, *extra]
        )


def skip_ragged(_: pcsv.InvalidRow) -> str:
    """For reads that only want the header: a ragged row in the first block must not fail
    them (the ingest makes it a dead letter later)."""
    return "skip"


def csv_reader(
    path: Path,
    batch_rows: int = 20_000,
    ragged: Callable[[pcsv.InvalidRow], str] | None = None,
) -> pcsv.CSVStreamingReader:
    """Every column as bytes (see the module), an empty cell as null."""
    block = max(1 << 20, batch_rows * 128)
    delimiter = _delimiter(path)
    return pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=block, use_threads=False),
        parse_options=pcsv.ParseOptions(delimiter=delimiter, invalid_row_handler=ragged),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.binary() for name in _header(path, delimiter)},
            strings_can_be_null=True,
        ),
    )


_INFERRED = (
    pa.int64(),
    pa.float64(),
    pa.bool_(),
    pa.timestamp("us"),
    pa.timestamp("us", "UTC"),
)
# Read with no schema, a column of integers and decimals stays text (and spelled() cell by
# cell): as floats, its integers would be refused by a stream's integer fields.
_NOT_FLOATS = tuple(t for t in _INFERRED if t != pa.float64())


def infer_column(values: pa.Array, floats: bool = True) -> pa.Array:
    """A column of bytes as integers, else finite floats, booleans or ISO times (without a
    zone, else in UTC), when every cell spells one (what Arrow infers, decided by the
    whole batch); else text, a cell that is not UTF-8 with U+FFFD for its bad bytes."""
    try:
        text = pc.cast(values, pa.string())
    except pa.ArrowInvalid:
        text = pa.array(
            [None if v is None else v.decode(errors="replace") for v in values.to_pylist()],
            pa.string(),
        )
    for target in _INFERRED if floats else _NOT_FLOATS:
        try:
            typed = pc.cast(text, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if target != pa.float64() or pc.all(pc.is_finite(typed)).as_py() is not False:
            return typed
    return text


def spelled(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row read with no schema, each text cell as what it spells: an integer, a
    finite decimal or a boolean, else the text. A column infer_column left as text (one
    "abc" among numbers) keeps its numbers numbers, so the row with "abc" is the only one a
    stream refuses (issue #21)."""
    return {
        name: _spelled(value) if isinstance(value, str) else value for name, value in row.items()
    }


def _spelled(text: str) -> Any:
    """An integer (within 64 bits: past them the text stays, for the stream to refuse),
    a finite decimal, a boolean, else the text."""
    parsers: tuple[Callable[[Any], Any], ...] = (PARSERS["float"], PARSERS["bool"])
    if text.strip().lstrip("+-").isdigit():
        parsers = (PARSERS["int"],)
    for parse in parsers:
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def infer_batch(
    batch: pa.RecordBatch, keep: Sequence[str] = (), floats: bool = True
) -> pa.RecordBatch:
    """``batch`` with its columns typed by infer_column, except those in ``keep``."""
    columns = [
        column if name in keep else infer_column(column, floats)
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def csv_batches(
    path: Path, fields: Sequence[FieldType] | None, batch_rows: int
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The file's schema as read, and its batches as read, with each ragged row as a
    rejected row typed by ``fields`` (before the rows of the block it was found in). With
    no fields (no schema), columns of decimals stay text (see infer_column)."""
    floats = fields is not None
    fields = fields or []
    ragged = _Ragged()
    reader = csv_reader(path, batch_rows, ragged)
    names = [f.column for f in fields]
    empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
    typed = conform(infer_batch(empty, names, floats), fields).schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            rejected = ragged.take(typed)
            if rejected is not None:
                yield rejected
            yield infer_batch(batch, names, floats)  # the schema's: by the caller, after its check
        rejected = ragged.take(typed)
        if rejected is not None:
            yield rejected

    return reader.schema, batches()


def _header(path: Path, delimiter: str) -> list[str]:
    """The column names of the header line (as Arrow reads them: quotes removed)."""
    with path.open("rb") as handle:
        line = handle.readline().decode(errors="replace")
    return next(csv.reader([line], delimiter=delimiter), [])


def _delimiter(path: Path) -> str:
    """The delimiter the header line uses most: a comma, else a semicolon (spreadsheets
    in locales whose decimal mark is a comma), a tab or a bar."""
    with path.open("rb") as handle:
        header = handle.readline()
    counts = {mark: header.count(mark.encode()) for mark in (",", ";", "\t", "|")}
    best = max(counts, key=lambda mark: counts[mark])
    return best if counts[best] > counts[","] else ","
