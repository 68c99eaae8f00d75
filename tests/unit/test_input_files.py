"""Input files (issue #21): CSV, Parquet and JSON lines ingest the same records; columns
are checked before anything is ingested; exact casts; bad cells become dead letters; an
unreadable file is one InputFileError naming it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import streamsense as ss
from streamsense.brokers import MemoryBroker
from streamsense.brokers.base import OutRecord, Record, TopicConfig, Transaction
from streamsense.errors import InputFileError
from streamsense.runtime.conform import REJECT_REASON, FieldType, conform, fields_of
from streamsense.runtime.ingest import CURSOR_TOPIC, ingest_file
from streamsense.runtime.input_files import check_file, file_format
from streamsense.testing import drain_topic
from tests.apps.counter import clicks, make_clicks


def table(n: int = 40) -> pa.Table:
    return pa.Table.from_pylist([msgspec.structs.asdict(c) for c in make_clicks(n)])


def ingested(path: Path, fmt: str | None = None) -> tuple[list[Record], list[Record]]:
    """The records and the dead letters ``path`` gives the clicks stream."""
    broker = MemoryBroker()
    ingest_file(broker, clicks, path, fmt=fmt)  # type: ignore[arg-type]
    return drain_topic(broker, clicks.topic), drain_topic(broker, clicks.dead_letter_topic)


def as_sent(records: list[Record]) -> list[tuple[bytes | None, bytes | None]]:
    return sorted(((r.key, r.value) for r in records), key=lambda kv: (kv[0] or b"", kv[1]))


def test_csv_parquet_and_json_lines_give_the_same_records(tmp_path: Path) -> None:
    rows = table()
    pq.write_table(rows, tmp_path / "clicks.parquet")
    pcsv.write_csv(rows, tmp_path / "clicks.csv")
    lines = b"\n".join(msgspec.json.encode(c) for c in make_clicks(40))
    (tmp_path / "clicks.jsonl").write_bytes(lines + b"\n")
    parquet, _ = ingested(tmp_path / "clicks.parquet")
    assert len(parquet) == 40
    assert as_sent(ingested(tmp_path / "clicks.csv")[0]) == as_sent(parquet)
    assert as_sent(ingested(tmp_path / "clicks.jsonl")[0]) == as_sent(parquet)


def test_the_format_is_the_one_asked_else_the_extension_else_the_content(
    tmp_path: Path,
) -> None:
    pq.write_table(table(3), tmp_path / "a.bin")
    (tmp_path / "b.txt").write_text('{"user": "u", "ts": 1, "amount": 1}\n')
    pcsv.write_csv(table(3), tmp_path / "c.txt")
    assert file_format(tmp_path / "a.bin") == "parquet"
    assert file_format(tmp_path / "b.txt") == "jsonl"
    assert file_format(tmp_path / "c.txt") == "csv"
    assert file_format(tmp_path / "x.jsonl") == "jsonl" and file_format(tmp_path / "x.CSV") == "csv"
    assert file_format(tmp_path / "b.txt", "csv") == "csv"
    with pytest.raises(InputFileError, match="'xml' is not one of parquet, csv, jsonl"):
        file_format(tmp_path / "b.txt", "xml")
    assert len(ingested(tmp_path / "c.txt")[0]) == 3


def test_a_missing_or_mistyped_column_stops_the_file_before_anything_is_ingested(
    tmp_path: Path,
) -> None:
    pcsv.write_csv(table().drop_columns(["amount"]), tmp_path / "no_amount.csv")
    broker = MemoryBroker()
    with pytest.raises(InputFileError, match=r"no_amount.csv: missing column amount$"):
        ingest_file(broker, clicks, tmp_path / "no_amount.csv")
    timed = table().set_column(1, "ts", pa.array([0] * 40, pa.timestamp("ms")))
    pq.write_table(timed, tmp_path / "timed.parquet")
    with pytest.raises(InputFileError, match=r"timed.parquet: wrong type in ts \(timestamp"):
        ingest_file(broker, clicks, tmp_path / "timed.parquet")
    (tmp_path / "lines.jsonl").write_text('{"user": "u", "ts": 1}\n' * 3)
    with pytest.raises(InputFileError, match=r"lines.jsonl: missing field amount"):
        ingest_file(broker, clicks, tmp_path / "lines.jsonl")
    assert all(broker.describe_topic(t).messages == 0 for t in clicks.topic_configs())


def test_text_and_float_cells_are_cast_exactly_and_the_rest_become_dead_letters(
    tmp_path: Path,
) -> None:
    rows = pa.table(
        {
            "user": pa.array([1, 2, 3, 4]),  # integers are text exactly
            "ts": pa.array([1000.0, 2000.0, 3000.5, 4000.0]),  # 3000.5 is no integer
            "amount": pa.array(["12.5", " 7 ", "1e3", "abc"]),
        }
    )
    pq.write_table(rows, tmp_path / "mixed.parquet")
    records, letters = ingested(tmp_path / "mixed.parquet")
    values = [msgspec.json.decode(r.value or b"") for r in records]
    assert values == [
        {"user": "1", "ts": 1000, "amount": 12.5},
        {"user": "2", "ts": 2000, "amount": 7.0},
    ]
    source = str(tmp_path / "mixed.parquet").encode()
    assert [dict(r.headers) for r in letters] == [
        {"reason": b"3000.5 is not an integer", "field": b"ts", "source": source + b"#row=3"},
        {
            "reason": b"'abc' is not a finite decimal number",
            "field": b"amount",
            "source": source + b"#row=4",
        },
    ]
    assert msgspec.json.decode(letters[1].value or b"") == {"user": "4", "ts": 4000, "amount": None}


def test_an_unreadable_file_is_one_error_naming_it(tmp_path: Path) -> None:
    pq.write_table(table(), tmp_path / "good.parquet")
    whole = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "noise.parquet").write_bytes(b"PAR1" + b"\x07" * 300)
    for name in ("cut.parquet", "noise.parquet"):
        with pytest.raises(InputFileError) as raised:
            ingested(tmp_path / name)
        message = str(raised.value)
        assert message.startswith(f"{tmp_path / name}: cannot be read: ") and "\n" not in message


def test_a_csv_whose_header_is_not_utf8_is_one_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes(b"user,ts,am\xf6unt\nu,1,2\n")
    with pytest.raises(InputFileError, match=r"latin.csv: cannot be read: 'utf-8' codec"):
        check_file(tmp_path / "latin.csv", "csv", fields_of(clicks.schema))  # replay's check
    with pytest.raises(InputFileError, match=r"latin.csv: cannot be read: 'utf-8' codec"):
        ingested(tmp_path / "latin.csv")


def test_an_ingest_begun_before_formats_were_chosen_resumes_where_it_was(
    tmp_path: Path,
) -> None:
    """A cursor names its file as it did when every file not named .parquet was JSON
    lines: a replay resumed across the upgrade must not produce its rows again."""
    path = tmp_path / "clicks.jsonl"
    path.write_bytes(b"\n".join(msgspec.json.encode(c) for c in make_clicks(30)) + b"\n")
    stat = path.stat()
    identity = f"{clicks.topic}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|None"
    broker = MemoryBroker()
    broker.create_topic(CURSOR_TOPIC, TopicConfig(1, compacted=True))
    key = hashlib.sha1(identity.encode()).hexdigest().encode()
    broker.commit_transaction(Transaction("old", records=[OutRecord(CURSOR_TOPIC, b"20", key, 0)]))
    assert ingest_file(broker, clicks, path) == 10


def test_times_in_text_keep_their_instant_and_zone(tmp_path: Path) -> None:
    """Naive times stay naive (UTC, as everywhere); times with an offset stay aware, in
    UTC, like the same text decoded from a JSON line."""
    naive = ["2018-04-01 08:07:09", "2018-04-01T08:07:09.5"]
    aware = ["2018-04-01T08:07:09Z", "2018-04-01 10:07:09+02:00", "2018-04-01 08:07:09"]
    bad = ["2018-04-01 08:07:09", "yesterday"]
    columns = {"naive": naive, "aware": aware, "bad": bad}
    fields = [FieldType(name, "datetime", True) for name in columns]
    typed = {
        name: conform(pa.record_batch({name: pa.array(values)}), fields)
        for name, values in columns.items()
    }
    assert typed["naive"].column(0).to_pylist() == [
        datetime(2018, 4, 1, 8, 7, 9),
        datetime(2018, 4, 1, 8, 7, 9, 500_000),
    ]
    assert typed["aware"].column(0).to_pylist() == [datetime(2018, 4, 1, 8, 7, 9, tzinfo=UTC)] * 3
    assert typed["bad"].column(0).to_pylist() == [datetime(2018, 4, 1, 8, 7, 9), None]
    assert typed["bad"].column(REJECT_REASON).to_pylist() == [
        None,
        "'yesterday' is not an ISO 8601 time",
    ]


class Bonus(ss.Schema):
    user: str
    ts: int
    bonus: float | None = None


def test_a_row_that_cannot_be_typed_stays_a_dead_letter_on_a_stream_with_lanes(
    tmp_path: Path,
) -> None:
    bonuses = ss.Stream("bonuses", Bonus, key="user", time="ts", priority=lambda b: True)
    rows = pa.table({"user": ["a", "b"], "ts": [1, 2], "bonus": ["1.5", "lots"]})
    pq.write_table(rows, tmp_path / "bonuses.parquet")
    broker = MemoryBroker()
    assert ingest_file(broker, bonuses, tmp_path / "bonuses.parquet") == 2
    [lane] = drain_topic(broker, bonuses.priority_topic)
    assert msgspec.json.decode(lane.value or b"") == {"user": "a", "ts": 1, "bonus": 1.5}
    [letter] = drain_topic(broker, bonuses.dead_letter_topic)
    assert dict(letter.headers)["field"] == b"bonus"


def test_csv_with_semicolons_or_tabs_is_read_by_its_header(tmp_path: Path) -> None:
    pq.write_table(table(), tmp_path / "clicks.parquet")
    parquet, _ = ingested(tmp_path / "clicks.parquet")
    text = (tmp_path / "clicks.parquet").with_suffix(".csv")
    pcsv.write_csv(table(), text)
    for mark, name in ((";", "semi.csv"), ("\t", "tabs.tsv")):
        (tmp_path / name).write_text(text.read_text().replace(",", mark))
        assert as_sent(ingested(tmp_path / name)[0]) == as_sent(parquet)


def test_a_csv_row_with_too_few_or_too_many_cells_is_a_dead_letter_of_its_own(
    tmp_path: Path,
) -> None:
    lines = ["user,ts,amount", "a,1000,1.5", "b,2000", "c,3000,2.5", "d,4000,3.5,extra", "e,5000,4"]
    (tmp_path / "ragged.csv").write_text("\n".join(lines) + "\n")
    records, letters = ingested(tmp_path / "ragged.csv")
    assert [msgspec.json.decode(r.value or b"")["user"] for r in records] == ["a", "c", "e"]
    assert [letter.value for letter in letters] == [b"b,2000", b"d,4000,3.5,extra"]
    reasons = [dict(letter.headers)["reason"] for letter in letters]
    assert reasons == [
        b"2 columns where the header has 3 (line 3)",
        b"4 columns where the header has 3 (line 5)",
    ]


def test_json_lines_with_numbers_as_text_are_cast_exactly_the_rest_go_in_unchanged(
    tmp_path: Path,
) -> None:
    lines = [
        b'{"user": "a", "ts": 1000, "amount": 1.5}',
        b'{"user": 7, "ts": "2000", "amount": "12.5", "note": "kept"}',
        b'{"user": "c", "ts": 3000, "amount": "a lot"}',
        b"not json",
    ]
    (tmp_path / "text.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    records, _ = ingested(tmp_path / "text.jsonl")
    assert as_sent(records) == sorted(
        [
            (b"a", lines[0]),
            (b"7", b'{"user":"7","ts":2000,"amount":12.5,"note":"kept"}'),
            (b"c", lines[2]),
            (None, lines[3]),
        ],
        key=lambda kv: (kv[0] or b"", kv[1]),
    )


def test_a_csv_cell_that_is_not_utf8_rejects_its_row_only(tmp_path: Path) -> None:
    (tmp_path / "bytes.csv").write_bytes(b"user,ts,amount\na,1000,1.5\nb\xff,2000,2\nc,3000,3\n")
    records, letters = ingested(tmp_path / "bytes.csv")
    assert sorted(r.key or b"" for r in records) == [b"a", b"c"]
    assert [dict(letter.headers)["reason"] for letter in letters] == [
        b"b'b\\xff' is not UTF-8 text"
    ]
