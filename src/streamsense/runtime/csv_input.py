"""Reading CSV files for ingest: the delimiter the header uses, the schema's columns as
bytes (typed exactly by conform.py, UTF-8 included), and rows whose column count is not
the header's.

Arrow's CSV reader would fail the whole file on one ragged row, halfway through an ingest.
Read for a stream, such a row becomes a rejected row of its own (all columns null, the
reason, the line's text), which the ingest turns into a dead letter like any row that
cannot be typed: every line of the file is either produced or a dead letter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from streamsense.runtime.conform import (
    REJECT_FIELD,
    REJECT_REASON,
    REJECT_TEXT,
    FieldType,
    conform,
)

__all__ = ["csv_batches", "csv_reader"]


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


def csv_reader(
    path: Path,
    text_columns: Sequence[str],
    batch_rows: int = 20_000,
    ragged: _Ragged | None = None,
) -> pcsv.CSVStreamingReader:
    """The schema's columns are read as bytes and typed by conform(): Arrow's own
    inference would guess per block, and a bad cell (even one that is not UTF-8) would
    fail the whole file."""
    block = max(1 << 20, batch_rows * 128)
    return pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=block, use_threads=False),
        parse_options=pcsv.ParseOptions(delimiter=_delimiter(path), invalid_row_handler=ragged),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.binary() for name in text_columns},
            strings_can_be_null=True,
        ),
    )


def csv_batches(
    path: Path, fields: Sequence[FieldType], batch_rows: int
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The file's schema as read, and its batches as read, with each ragged row as a
    rejected row typed by ``fields`` (before the rows of the block it was found in)."""
    ragged = _Ragged()
    reader = csv_reader(path, [f.column for f in fields], batch_rows, ragged)
    typed = conform(pa.RecordBatch.from_pylist([], schema=reader.schema), fields).schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            rejected = ragged.take(typed)
            if rejected is not None:
                yield rejected
            yield batch  # typed by the caller, after its column check
        rejected = ragged.take(typed)
        if rejected is not None:
            yield rejected

    return reader.schema, batches()


def _delimiter(path: Path) -> str:
    """The delimiter the header line uses most: a comma, else a semicolon (spreadsheets
    in locales whose decimal mark is a comma), a tab or a bar."""
    with path.open("rb") as handle:
        header = handle.readline()
    counts = {mark: header.count(mark.encode()) for mark in (",", ";", "\t", "|")}
    best = max(counts, key=lambda mark: counts[mark])
    return best if counts[best] > counts[","] else ","
