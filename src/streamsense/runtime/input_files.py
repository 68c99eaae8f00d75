"""Input files: which format a file is in, and its rows as Arrow batches.

Three formats: Parquet, CSV (a header line, then one row per line; commas, else the
semicolons, tabs or bars the header line uses) and JSON lines. The
format is the one asked for, else the file's extension says it, else its first bytes do
(Parquet starts with ``PAR1``, a JSON line with ``{``, anything else is taken as CSV).

Parquet and CSV are read as Arrow batches typed by the stream's schema (conform.py): a CSV
file's cells are read as text and cast exactly, so a CSV and the Parquet file it was
written from give the same rows. JSON lines go in as they are (ingest.py): a bad line
reaches the dead letters with its original bytes. Whatever Arrow cannot read ends in one
InputFileError naming the file and what is wrong, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

import pyarrow as pa
import pyarrow.parquet as pq

from streamsense.errors import InputFileError
from streamsense.runtime.conform import (
    REJECT_FIELD,
    FieldType,
    check_columns,
    conform,
    python_times,
)
from streamsense.runtime.csv_input import csv_batches, csv_reader, skip_ragged
from streamsense.runtime.json_lines import check_json_lines, json_sample

__all__ = [
    "FORMATS",
    "Format",
    "check_file",
    "check_json_lines",
    "columns_of",
    "count_rows",
    "file_format",
    "read_through",
    "typed_batches",
]

Format = Literal["parquet", "csv", "jsonl"]
FORMATS: tuple[Format, ...] = get_args(Format)
_EXTENSIONS: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


def file_format(path: Path, given: str | None = None) -> Format:
    """The format of ``path``: ``given`` (one of FORMATS), else by extension, else by
    its first bytes."""
    if given is not None:
        if given not in FORMATS:
            raise InputFileError(f"format {given!r} is not one of {', '.join(FORMATS)}")
        return given
    by_extension = _EXTENSIONS.get(path.suffix.lower())
    if by_extension is not None:
        return by_extension
    with _reading(path), path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    return "jsonl" if head.lstrip().startswith(b"{") else "csv"


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turns what Arrow or the OS says about an unreadable file into one line."""
    try:
        yield
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:
        what = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputFileError(f"{path}: cannot be read: {what}") from None


def columns_of(path: Path, fmt: Format | None = None) -> list[str]:
    """The column names of a Parquet or CSV file (the fields of the first JSON lines)."""
    chosen = fmt or file_format(path)
    with _reading(path):
        if chosen == "parquet":
            return list(pq.ParquetFile(path).schema_arrow.names)
        if chosen == "csv":
            return list(csv_reader(path, ragged=skip_ragged).schema.names)
    names: dict[str, None] = {}
    with _reading(path):
        sample = json_sample(path)
    for row in sample:
        names.update(dict.fromkeys(row))
    return list(names)


def count_rows(path: Path, fmt: Format | None = None) -> int:
    """Rows in the file (for progress bars)."""
    chosen = fmt or file_format(path)
    with _reading(path):
        if chosen == "parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        with path.open("rb") as handle:
            lines = sum(1 for line in handle if line.strip())
    return max(0, lines - 1) if chosen == "csv" else lines


def typed_batches(
    path: Path, fmt: Format, fields: Sequence[FieldType] | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The rows of a Parquet or CSV file, checked and typed by ``fields`` (as read, when
    None). The check runs before the first batch is yielded."""
    with _reading(path):
        if fmt == "parquet":
            source = pq.ParquetFile(path)
            schema = source.schema_arrow
            batches: Iterator[pa.RecordBatch] = source.iter_batches(batch_size=batch_rows)
        else:  # ragged rows become rejected rows (dead letters, or their line as read)
            schema, batches = csv_batches(path, fields, batch_rows)
        if fields is None:  # as read: CSV columns typed by what their cells spell
            yield from map(python_times, batches)
            return
        check_columns(path, schema, fields)
        for batch in batches:
            yield batch if REJECT_FIELD in batch.schema.names else conform(batch, fields)


def read_through(path: Path, fmt: Format) -> None:
    """Reads the whole of a Parquet or CSV file once, keeping nothing: what Arrow cannot
    read (a corrupt page, an unfinished quote) ends in InputFileError before the first row
    is ingested, not after some chunks have been (issue #21). JSON lines are read a line at
    a time, each line its own record or dead letter: nothing to find beforehand."""
    with _reading(path):
        if fmt == "parquet":
            for _ in pq.ParquetFile(path).iter_batches(batch_size=65_536):
                pass
        elif fmt == "csv":
            for _ in csv_reader(path, 65_536, ragged=skip_ragged):
                pass


def check_file(path: Path, fmt: Format, fields: Sequence[FieldType]) -> None:
    """Raises InputFileError when ``path`` cannot be read as ``fmt`` or lacks a column
    (a field) the schema requires, or has one of a type that can never hold its field."""
    if fmt == "jsonl":
        with _reading(path):
            check_json_lines(path, fields)
        return
    with _reading(path):  # column names are decoded on first use: invalid UTF-8 shows here
        if fmt == "parquet":
            schema = pq.ParquetFile(path).schema_arrow
        else:
            schema = csv_reader(path, ragged=skip_ragged).schema
        check_columns(path, schema, fields)
