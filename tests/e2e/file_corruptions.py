"""Corrupted payment files for the file fuzzing of issue #21: clean rows of the fraud
simulator with hostile rows among them, written as CSV, JSON lines or Parquet (every column
text, so a cell can hold anything a CSV cell can).

Each row is known to be bad (it must become a dead letter: wrong type, NaN, inf, a number
past any float or 64-bit integer, a time far in the future or no time at all, invalid
UTF-8, a ragged or cut line) or good (it must be processed: a clean row, a duplicated id, a
time far in the past, a huge but finite amount). ``written(..., good_only=True)`` writes the
same file without its bad rows: what the corrupted one must be processed as.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

COLUMNS = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT",
           "TX_TIME_SECONDS", "TX_TIME_DAYS", "TX_FRAUD", "TX_FRAUD_SCENARIO")  # fmt: skip
FORMATS = ("csv", "jsonl", "parquet")

# (column, raw cell) of bad rows: each must be dead-lettered.
BAD_CELLS: tuple[tuple[str, bytes], ...] = (
    ("TX_AMOUNT", b"abc"),
    ("TX_AMOUNT", b"NaN"),
    ("TX_AMOUNT", b"inf"),
    ("TX_AMOUNT", b"-Infinity"),
    ("TX_AMOUNT", b"1e400"),
    ("TX_AMOUNT", b""),
    ("CUSTOMER_ID", b"12.5"),
    ("CUSTOMER_ID", b"99999999999999999999999"),
    ("TERMINAL_ID", b"-9223372036854775809"),
    ("TRANSACTION_ID", b"\xff\xfe"),
    ("TX_DATETIME", b"9999-12-31T23:59:59"),
    ("TX_DATETIME", b"99999-01-01T00:00:00"),
    ("TX_DATETIME", b"yesterday"),
    ("TX_DATETIME", b""),
    ("TX_DATETIME", b"2018-04-01T\xc3("),
)
# (column, raw cell) of good rows: each must be processed like any clean row.
GOOD_CELLS: tuple[tuple[str, bytes], ...] = (
    ("TX_DATETIME", b"1900-01-01T00:00:00"),
    ("TX_DATETIME", b"0001-01-01T00:00:00"),
    ("TX_AMOUNT", b"1e300"),
    ("TX_AMOUNT", b"-0.0"),
    ("TX_FRAUD_SCENARIO", b"9223372036854775807"),
)
NUMERIC = {"TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_TIME_SECONDS",
           "TX_TIME_DAYS", "TX_FRAUD", "TX_FRAUD_SCENARIO"}  # fmt: skip


@dataclass(frozen=True)
class Row:
    cells: dict[str, bytes]
    good: bool
    ragged: bool = False  # a line cut short (CSV and JSON lines only)

    def __repr__(self) -> str:  # one line per row in a failing example
        kind = "ragged" if self.ragged else "good" if self.good else "bad"
        return f"{kind}:{b','.join(self.cells.values())!r}"


def clean_rows(table: pa.Table) -> list[Row]:
    rows = []
    for row in table.select(list(COLUMNS)).to_pylist():
        cells = {name: _text(value) for name, value in row.items()}
        rows.append(Row(cells, good=True))
    return rows


def _text(value: Any) -> bytes:
    if isinstance(value, datetime):
        return value.isoformat().encode()
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


@st.composite
def corrupted(draw: st.DrawFn, clean: list[Row], fmt: str) -> list[Row]:
    """``clean`` with 1 to 6 hostile rows put in at random places."""
    rows = list(clean)
    for _ in range(draw(st.integers(1, 6))):
        template = draw(st.sampled_from(clean))
        kinds = ["bad", "good", "duplicate"] + (["ragged"] if fmt != "parquet" else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "duplicate":
            row = template
        elif kind == "ragged":
            row = Row(template.cells, good=False, ragged=True)
        else:
            column, cell = draw(st.sampled_from(BAD_CELLS if kind == "bad" else GOOD_CELLS))
            row = Row({**template.cells, column: cell}, good=kind == "good")
        rows.insert(draw(st.integers(0, len(rows))), row)
    return rows


def written(rows: list[Row], path: Path, fmt: str, *, good_only: bool = False) -> Path:
    chosen = [row for row in rows if row.good or not good_only]
    if fmt == "parquet":
        columns = {name: [row.cells[name] for row in chosen] for name in COLUMNS}
        table = pa.table({name: pa.array(cells, pa.binary()) for name, cells in columns.items()})
        pq.write_table(table, path, row_group_size=7)
        return path
    lines = [",".join(COLUMNS).encode()] if fmt == "csv" else []
    lines += [_csv_line(row) if fmt == "csv" else _json_line(row) for row in chosen]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _csv_line(row: Row) -> bytes:
    line = b",".join(row.cells[name] for name in COLUMNS)
    return line[: line.rindex(b",")] if row.ragged else line


def _json_line(row: Row) -> bytes:
    parts = []
    for name in COLUMNS:
        cell = row.cells[name]
        numeric = name in NUMERIC and _is_json_number(cell)
        value = cell if numeric else b'"' + cell.replace(b'"', b'\\"') + b'"'
        parts.append(json.dumps(name).encode() + b":" + value)
    line = b"{" + b",".join(parts) + b"}"
    return line[: len(line) // 2] if row.ragged else line


def _is_json_number(cell: bytes) -> bool:
    try:
        json.loads(cell)
    except ValueError:
        return False
    return cell[:1] in b"-0123456789"
