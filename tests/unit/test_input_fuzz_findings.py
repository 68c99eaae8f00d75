"""What the file fuzzing of issue #21 (tests/e2e/test_file_fuzz.py) found, each kept as the
example that failed: no file makes the ingest raise, none is ingested in part, and every
row is a record or a dead letter, the bad ones alone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamsense.brokers import MemoryBroker
from streamsense.brokers.base import Record
from streamsense.cli.time_range import RowsInTime
from streamsense.errors import InputFileError, InvalidEvent
from streamsense.runtime.conform import fields_of
from streamsense.runtime.ingest import CURSOR_TOPIC, Source, file_chunks, ingest_file
from streamsense.runtime.input_files import check_file, columns_of
from streamsense.testing import drain_topic
from tests.apps.counter import clicks

HEADER = "user,ts,amount\n"


def ingested(path: Path, chunk_rows: int = 20_000) -> tuple[list[bytes], list[bytes]]:
    """The values and the dead letters' reasons ``path`` gives the clicks stream."""
    broker = MemoryBroker()
    ingest_file(broker, clicks, path, chunk_rows=chunk_rows)
    values = [r.value or b"" for r in drain_topic(broker, clicks.topic)]
    reasons = [dict(r.headers)["reason"] for r in drain_topic(broker, clicks.dead_letter_topic)]
    return values, reasons


def test_a_ragged_row_in_the_first_block_does_not_fail_the_column_check(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(HEADER + "a,1000\nb,2000,2.5\n")
    check_file(path, "csv", fields_of(clicks.schema))  # raised "Expected 3 columns, got 2"
    assert columns_of(path) == ["user", "ts", "amount"]


def test_integers_past_64_bits_are_dead_letters_not_an_overflow(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(HEADER + "a,99999999999999999999999,1\nb,2000,2\n")
    values, reasons = ingested(path)  # raised OverflowError
    assert len(values) == 1 and reasons == [
        b"'99999999999999999999999' is outside the 64-bit integer range"
    ]
    with pytest.raises(InvalidEvent) as refused:
        clicks.parse(b'{"user": "a", "ts": -9223372036854775809, "amount": 1}')
    assert refused.value.field == "ts"
    # The worker's path, a batch at a time: the one event alone (was decided, from JSON).
    values = [b'{"user": "a", "ts": 1, "amount": 1}', b'{"user": "b", "ts": 2, "amount": 1}']
    values.insert(1, b'{"user": "c", "ts": 99999999999999999999, "amount": 1}')
    records = [Record(clicks.topic, 0, i, 10, b"k", v) for i, v in enumerate(values)]
    decoded = clicks.decode_batch(records)
    assert [type(d).__name__ for d in decoded] == ["Event", "InvalidEvent", "Event"]


def test_non_finite_numbers_are_named_by_their_field_on_the_wire() -> None:
    class Renamed(msgspec.Struct, rename="upper"):
        tx_amount: float
        ts: int

    from streamsense.events import Stream

    stream = Stream("renamed", Renamed, key="ts", time="ts")
    with pytest.raises(InvalidEvent) as refused:
        stream.parse({"TX_AMOUNT": float("nan"), "TS": 1})
    assert refused.value.field == "TX_AMOUNT"  # was the attribute name, tx_amount


def test_times_python_cannot_hold_are_dead_letters_not_an_overflow(tmp_path: Path) -> None:
    ts = pa.array([1_000, 253_402_300_800_000], pa.timestamp("ms"))
    table = pa.table({"user": ["a", "b"], "ts": ts, "amount": [1.0, 2.0]})

    class Timed(msgspec.Struct):
        user: str
        ts: datetime
        amount: float

    from streamsense.events import Stream

    stream = Stream("timed", Timed, key="user", time="ts")
    pq.write_table(table, tmp_path / "far.parquet")
    broker = MemoryBroker()
    ingest_file(broker, stream, tmp_path / "far.parquet")  # raised OverflowError
    assert len(drain_topic(broker, stream.topic)) == 1
    letters = drain_topic(broker, stream.dead_letter_topic)
    assert b"outside the times Python can hold" in dict(letters[0].headers)["reason"]


def test_a_time_python_cannot_hold_in_a_column_the_schema_ignores(tmp_path: Path) -> None:
    seen = pa.array([1_000, 253_402_300_800_000], pa.timestamp("ms"))
    table = pa.table({"user": ["a", "b"], "ts": [1, 2], "amount": [1.0, 2.0], "seen": seen})
    pq.write_table(table, tmp_path / "seen.parquet")
    values, reasons = ingested(tmp_path / "seen.parquet")  # raised OverflowError
    assert len(values) == 1 and b"outside the times Python can hold" in reasons[0]
    as_read = file_chunks(Source(tmp_path / "seen.parquet", "parquet"), "t", "user")
    rows = [msgspec.json.decode(r.value or b"") for chunk in as_read for r in chunk]
    assert [row["seen"] for row in rows] == ["1970-01-01T00:00:01", None]  # produce: null


def test_an_empty_cell_where_the_schema_needs_a_value_is_refused_at_ingest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(HEADER + "a,1000,\nb,2000,2\n")
    values, reasons = ingested(path)  # went in as null, refused later by the worker
    assert len(values) == 1 and reasons == [b"no value"]


def test_a_bad_cell_in_a_column_the_schema_ignores_fails_no_later_chunk(tmp_path: Path) -> None:
    pad = "x" * 60  # 20,000 rows over Arrow's first 1 MiB block
    rows = [f"u{i}{pad},{i},1.5,{i}" for i in range(20_000)] + ["z,9,1.5,not a number"]
    path = tmp_path / "extra.csv"
    path.write_text("user,ts,amount,extra\n" + "\n".join(rows) + "\n")
    values, reasons = ingested(path, chunk_rows=1_000)  # failed halfway, some chunks in
    assert (len(values), reasons) == (20_001, [])
    extras = {row["user"]: row["extra"] for row in map(msgspec.json.decode, values)}
    assert (extras[f"u0{pad}"], extras["z"]) == (0, "not a number")


def test_a_file_corrupt_halfway_ingests_nothing(tmp_path: Path) -> None:
    table = pa.table({"user": [f"u{i}" for i in range(60)], "ts": list(range(60)),
                      "amount": [float(i) for i in range(60)]})  # fmt: skip
    path = tmp_path / "half.parquet"
    pq.write_table(table, path, row_group_size=10, compression="none")
    whole = bytearray(path.read_bytes())
    last_group = pq.ParquetFile(path).metadata.row_group(5).column(0).data_page_offset
    whole[last_group : last_group + 16] = b"\xff" * 16  # its page header: unreadable
    path.write_bytes(bytes(whole))
    broker = MemoryBroker()
    with pytest.raises(InputFileError, match="cannot be read"):
        ingest_file(broker, clicks, path, chunk_rows=10)  # five chunks went in first
    assert clicks.topic not in broker.list_topics() or not drain_topic(broker, clicks.topic)
    assert CURSOR_TOPIC not in broker.list_topics()


def test_rows_whose_time_cannot_be_read_pass_the_time_range_to_the_dead_letters() -> None:
    batch = pa.RecordBatch.from_pydict({"ts": pa.array([5, None, 50], pa.int64())})
    kept = RowsInTime("ts", 0, 10)(batch)
    assert kept.column("ts").to_pylist() == [5, None]  # the null was dropped unseen


def test_produce_reads_a_csv_cell_by_cell_as_what_it_spells(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(HEADER + "a,1000,1.5\nb,2000,abc\nc,3000,3\nd,4000,5,6\n")
    chunks = file_chunks(Source(path, "csv"), clicks.topic, "user")
    values = {r.value for chunk in chunks for r in chunk}
    # Each row alone: one "abc" made the whole column text, and the stream refused all;
    # a ragged line goes as its text (it failed the file).
    assert values == {
        b'{"user":"a","ts":1000,"amount":1.5}',
        b'{"user":"b","ts":2000,"amount":"abc"}',
        b'{"user":"c","ts":3000,"amount":3}',
        b"d,4000,5,6",
    }
    assert clicks.parse(b'{"user":"c","ts":3000,"amount":3}').amount == 3.0
