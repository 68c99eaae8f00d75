"""Running an application from the command line: loading and configuring it, feeding files
through its pipeline with progress bars, and the ``Session`` its demo, training and own
commands receive (``open_session``)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from streamsense.application import Application, Replayed
from streamsense.brokers import Broker
from streamsense.cli.common import connect, console, fail
from streamsense.cli.time_range import TimeRange
from streamsense.errors import InputFileError, StreamsenseError
from streamsense.events import Schema, Stream
from streamsense.runtime.conform import fields_of
from streamsense.runtime.ingest import RowFilter, ingest_file
from streamsense.runtime.input_files import (
    Format,
    check_file,
    count_rows,
    file_format,
    typed_batches,
)
from streamsense.runtime.loader import load_app
from streamsense.runtime.worker import Mode, Worker, WorkerConfig, WorkerStats


def load_spec(spec: str, state_dir: Path | None = None) -> Application:
    """Load an app; its optional ``configure(state_dir)`` opens what lives there (the
    online store, the model registry)."""
    try:
        application = load_app(spec).application
        if application.configure is not None and state_dir is not None:
            application.configure(state_dir)
        return application
    except StreamsenseError as error:
        fail(str(error))


@dataclass
class CliSession:
    """The ``streamsense.application.Session`` of a command: an open broker, a configured
    state dir, replays with progress bars."""

    application: Application
    broker: Broker
    state_dir: Path
    console: Console = console

    def replay(
        self, files: Mapping[str, Path], start_ms: int | None = None, end_ms: int | None = None
    ) -> Replayed:
        streams = self.application.input_streams()
        chosen = {name: (streams[name], path) for name, path in files.items()}
        stats, seconds = replay_files(
            self.application, self.broker, chosen, TimeRange(start_ms, end_ms)
        )
        return Replayed(stats, seconds)

    def configure(self) -> None:
        if self.application.configure is not None:
            self.application.configure(self.state_dir)


@contextmanager
def open_session(
    application: Application | str, state_dir: Path, broker: str | None = None
) -> Iterator[CliSession]:
    """Loads (when named) and configures the app, opens the broker; a StreamsenseError
    inside ends the command with its one-line message."""
    if isinstance(application, str):
        application = load_spec(application, state_dir)
    elif application.configure is not None:
        application.configure(state_dir)
    target = connect(broker, state_dir)
    try:
        yield CliSession(application, target, state_dir)
    except InputFileError as error:  # the user's file: nothing of it was ingested
        fail(str(error))
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        target.close()


def worker_config(mode: str, batch_size: int) -> WorkerConfig:
    if mode not in ("realtime", "microbatch"):
        fail(f"--mode must be realtime or microbatch, not {mode!r}")
    chosen: Mode = "realtime" if mode == "realtime" else "microbatch"
    return WorkerConfig(mode=chosen, batch_size=batch_size)


def stop_on_signals(worker: Worker) -> None:
    """SIGTERM and the first Ctrl-C finish the current batch, commit, and leave cleanly."""

    def handler(signum: int, frame: object) -> None:
        console.print(
            f"[yellow]{signal.Signals(signum).name}: finishing the current batch[/yellow]"
        )
        worker.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def replay_files(
    application: Application,
    broker: Broker,
    files: Mapping[str, tuple[Stream[Any], Path]],
    window: TimeRange,
    config: WorkerConfig | None = None,
    fmt: Format | None = None,
) -> tuple[WorkerStats, float]:
    """Ingest the rows of ``files`` in ``window`` (and the streams the app derives from
    them, such as delayed labels), then run the pipeline until it has processed
    everything. Both steps resume after a crash. Returns the worker's stats, rows that
    went to dead letters at ingest counted in, and the seconds it all took."""
    for stream, path in files.values():  # every file, before anything is touched
        check_file(path, file_format(path, fmt), fields_of(stream.schema))
    worker = Worker(application.app, broker, config or WorkerConfig())
    stop_on_signals(worker)
    worker.ensure_topics()
    started = time.perf_counter()
    derive = application.derived_inputs
    at_ingest: dict[str, int] = {}
    rows = 0
    for name, (stream, path) in files.items():
        row_filter = window.row_filter(stream, path, fmt)
        read = _Read(stream.schema, fmt)
        rows += _ingest_with_progress(broker, stream, path, row_filter, read, at_ingest)
        for extra, extra_path, extra_filter in derive(name, path, row_filter) if derive else []:
            _ingest_with_progress(broker, extra, extra_path, extra_filter, read, at_ingest)
    stats = _run_with_progress(worker)
    stats.input_rows = rows
    _count_in(stats, at_ingest)
    return stats, time.perf_counter() - started


def _count_in(stats: WorkerStats, at_ingest: Mapping[str, int]) -> None:
    """Rows that went to dead letters at ingest, by field, as events and dead letters of
    the replay (the worker never saw them)."""
    for field_name, count in at_ingest.items():
        stats.events += count
        stats.dead_letters += count
        reasons = stats.dead_letter_reasons
        reasons[field_name] = reasons.get(field_name, 0) + count


def print_stats(stats: WorkerStats, elapsed: float | None = None) -> None:
    rate = f" in {elapsed:.1f} s ({stats.events / elapsed:,.0f} events/s)" if elapsed else ""
    console.print(
        f"processed {stats.events:,} events{rate}: {stats.outputs:,} outputs, "
        f"{stats.dead_letters:,} dead letters, {stats.commits:,} commits"
    )
    if stats.dead_letter_reasons:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(stats.dead_letter_reasons.items()))
        console.print(f"dead letters by field/reason: {reasons}")


@dataclass(frozen=True)
class _Read:
    """How a replay reads its input files: the schema of the stream they were given for
    (derived streams read the same file) and the format asked for (None: guessed)."""

    schema: type[Schema]
    fmt: Format | None


def _ingest_with_progress(
    broker: Broker,
    stream: Stream[Any],
    path: Path,
    row_filter: RowFilter | None,
    read: _Read,
    dead_letters: dict[str, int],
) -> int:
    def count(field_name: str) -> None:
        dead_letters[field_name] = dead_letters.get(field_name, 0) + 1

    chosen = file_format(path, read.fmt)
    if row_filter is None:
        total = count_rows(path, chosen)
    else:
        total = _count_rows(path, chosen, read.schema, row_filter)
    with Progress(console=console) as progress:
        task = progress.add_task(f"ingesting {path.name} → {stream.topic}", total=total)
        return ingest_file(
            broker,
            stream,
            path,
            row_filter=row_filter,
            progress=lambda n: progress.advance(task, n),
            fmt=chosen,
            file_schema=read.schema,
            dead_letter=count,
        )


def _count_rows(path: Path, fmt: Format, schema: type[Schema], row_filter: RowFilter) -> int:
    batches = typed_batches(path, fmt, fields_of(schema), 100_000)
    return sum(row_filter(b).num_rows for b in batches)


def _run_with_progress(worker: Worker) -> WorkerStats:
    total = sum(worker.broker.describe_topic(topic).messages for topic in worker.app.sources())
    done = threading.Event()
    with Progress(console=console) as progress:
        task = progress.add_task(f"processing {worker.app.name}", total=total)

        def refresh() -> None:
            while not done.wait(0.2):
                progress.update(task, completed=worker.stats.events)

        updater = threading.Thread(target=refresh, daemon=True)
        updater.start()
        try:
            stats = worker.run(until_caught_up=True, own_all=True)
        finally:
            done.set()
            updater.join()
        progress.update(task, completed=stats.events)
    return stats
