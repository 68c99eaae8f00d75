"""`streamsense produce` and `streamsense consume`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from streamsense.brokers import TopicPartition
from streamsense.brokers.base import Record
from streamsense.cli.common import (
    DEFAULT_STATE_DIR,
    BrokerOption,
    FormatOption,
    StateDirOption,
    chosen_format,
    connect,
    console,
    fail,
)
from streamsense.errors import StreamsenseError
from streamsense.runtime.ingest import Source, count_rows, file_chunks
from streamsense.runtime.input_files import read_through


def produce(
    topic: str,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Parquet, CSV or JSON lines.")
    ],
    key: Annotated[
        str | None, typer.Option(help="Field whose value keys (partitions) each row.")
    ] = None,
    file_format: FormatOption = None,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Produce every row of FILE into TOPIC, in file order, as JSON (a CSV cell as what it
    spells: a number, a boolean, a time, else text). A file that cannot be read is refused
    before anything is produced."""
    target = connect(broker, state_dir)
    sent = 0
    try:
        source = Source(file, chosen_format(file, file_format))
        read_through(file, source.fmt)  # all or nothing: a file corrupt halfway sends no row
        total = count_rows(file, source.fmt)
        producer = target.producer(batch_size=20_000)
        with Progress(console=console, transient=False) as progress:
            task = progress.add_task(f"producing to {topic}", total=total)
            for chunk in file_chunks(source, topic, key):
                for record in chunk:
                    producer.send(topic, record.value, record.key)
                sent += len(chunk)
                progress.advance(task, len(chunk))
        producer.close()
    except StreamsenseError as error:
        fail(str(error))
    finally:
        target.close()
    console.print(f"produced {sent:,} records to {topic}")


def consume(
    topic: str,
    group: Annotated[str | None, typer.Option(help="Consumer group (commits offsets).")] = None,
    max_records: Annotated[int | None, typer.Option("--max", help="Stop after this many.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep waiting for new records.")
    ] = False,
    from_end: Annotated[
        bool, typer.Option("--from-end", help="Start at the end of the topic.")
    ] = False,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Print a topic's records as `partition offset key value` lines (tail with --follow);
    a dead letter's line goes on with its reason=, field= and source= (topic/partition/
    offset, or file#row=N for a file row that could not be typed)."""
    source = connect(broker, state_dir)
    try:
        info = source.describe_topic(topic)
        consumer = source.consumer(group, auto_offset_reset="latest" if from_end else "earliest")
        consumer.assign([TopicPartition(topic, p.partition) for p in info.partitions])
        shown = 0
        while max_records is None or shown < max_records:
            limit = 1000 if max_records is None else min(1000, max_records - shown)
            records = consumer.poll(limit, timeout=1.0 if follow else 0.2)
            if not records and not follow:
                break
            for record in records:
                typer.echo(_line(record))
            shown += len(records)
            if group is not None and records:
                consumer.commit()
        consumer.close()
    except StreamsenseError as error:
        fail(str(error))
    except KeyboardInterrupt:
        pass
    finally:
        source.close()


# What a dead letter says about itself (events.py, ingest.py): shown after its value.
_WHY = ("reason", "field", "source", "truncated-from")


def _line(record: Record) -> str:
    """``partition offset key value``, and a dead letter's reason, field and source."""
    key = (record.key or b"").decode(errors="replace")
    value = (record.value or b"").decode(errors="replace")
    line = f"{record.partition}\t{record.offset}\t{key}\t{value}"
    headers = dict(record.headers)
    if "reason" in headers:
        why = (
            f"{name}={headers[name].decode(errors='replace')}" for name in _WHY if name in headers
        )
        line += "\t" + "\t".join(why)
    return line
