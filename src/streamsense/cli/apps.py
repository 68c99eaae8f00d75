"""`streamsense run`, `streamsense replay` and `streamsense demo`."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import typer
from rich.progress import Progress

from streamsense.brokers import Broker
from streamsense.cli.common import (
    DEFAULT_STATE_DIR,
    BrokerOption,
    StateDirOption,
    connect,
    console,
    fail,
    setup_logging,
)
from streamsense.errors import StreamsenseError
from streamsense.events import Stream, to_epoch_ms
from streamsense.runtime.ingest import RowFilter, count_rows, ingest_file
from streamsense.runtime.loader import LoadedApp, load_app
from streamsense.runtime.worker import Mode, Worker, WorkerConfig, WorkerStats

AppArgument = Annotated[
    str, typer.Argument(help="App folder (apps/fraud), file.py or module[:attr].")
]
ModeOption = Annotated[str, typer.Option("--mode", help="realtime or microbatch.")]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Events per microbatch.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v")]


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


def replay(
    app: AppArgument,
    transactions: Annotated[
        Path | None, typer.Option(exists=True, help="File for the app's `transactions` stream.")
    ] = None,
    input_files: Annotated[
        list[str] | None, typer.Option("--input", help="STREAM=FILE (or FILE for the only stream).")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="Only rows whose event time is at or after this (ISO date or time, UTC)."
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Only rows whose event time is before this (ISO, UTC).")
    ] = None,
    mode: ModeOption = "microbatch",
    batch_size: BatchOption = 1000,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    export_features: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Write each event's features here (Parquet)."),
    ] = None,
    export_decisions: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Write each event's decision here (Parquet)."),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Feed files (the rows with event time in [--start, --end), in file order) through an
    application's pipeline to the end, then summarise and export.

    Rerun the same command with the same --state-dir after a crash: it resumes where the
    last commit left off, every output exists exactly once, and so does every row of the
    exports (written from the outputs once the pipeline is done)."""
    setup_logging(verbose)
    window = TimeRange.parse(start, end)
    loaded = load_spec(app, state_dir)
    files = _input_files(loaded, transactions, input_files or [])
    exports = _exports(loaded, {"features": export_features, "decisions": export_decisions})
    target = connect(broker, state_dir)
    try:
        stats, elapsed = replay_files(
            loaded, target, files, window, worker_config(mode, batch_size)
        )
        print_stats(stats, elapsed)
        summary = loaded.hook("summary")
        if summary is not None:
            summary(target, console, {name: path for name, (_, path) in files.items()})
        for what, (export, path) in exports.items():
            rows = export(target, path, window.start_ms, window.end_ms)
            console.print(f"exported {rows:,} rows of {what} → {path}")
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        target.close()


@dataclass(frozen=True)
class TimeRange:
    """Event times in [start, end), epoch milliseconds (None: unbounded)."""

    start_ms: int | None = None
    end_ms: int | None = None

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> TimeRange:
        chosen = cls(_epoch_ms(start, "--start"), _epoch_ms(end, "--end"))
        bounded = chosen.start_ms is not None and chosen.end_ms is not None
        if bounded and chosen.start_ms >= chosen.end_ms:  # type: ignore[operator]
            fail(f"--start {start} is not before --end {end}")
        return chosen

    def row_filter(self, stream: Stream[Any], path: Path) -> RowFilter | None:
        if self.start_ms is None and self.end_ms is None:
            return None
        if path.suffix != ".parquet":
            fail(f"--start/--end need a Parquet file, not {path}")
        return RowsInTime(stream.encoded_name(stream.time), self.start_ms, self.end_ms)


@dataclass(frozen=True)
class RowsInTime:
    """Keeps the rows whose ``column`` (a timestamp, or epoch ms) is in [start, end). Its
    repr names the ingest's resumable cursor, so it must stay the same from run to run."""

    column: str
    start_ms: int | None
    end_ms: int | None

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        values = batch.column(self.column)
        scale = 1
        if pa.types.is_timestamp(values.type):  # compared in microseconds, exactly
            values = pc.cast(pc.cast(values, pa.timestamp("us", values.type.tz)), pa.int64())
            scale = 1000
        keep = pa.array(np.ones(batch.num_rows, np.bool_))
        if self.start_ms is not None:
            keep = pc.and_(keep, pc.greater_equal(values, self.start_ms * scale))
        if self.end_ms is not None:
            keep = pc.and_(keep, pc.less(values, self.end_ms * scale))
        return batch.filter(keep)


def _epoch_ms(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not an ISO date or time (e.g. 2018-08-08)")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return to_epoch_ms(when)


def _exports(
    loaded: LoadedApp, wanted: dict[str, Path | None]
) -> dict[str, tuple[Callable[..., int], Path]]:
    """The app's ``export_<what>(broker, path, start_ms, end_ms)`` hook for each export asked."""
    chosen = {}
    for what, path in wanted.items():
        if path is None:
            continue
        hook = loaded.hook(f"export_{what}")
        if hook is None:
            fail(f"{loaded.app.name} has no export_{what}(broker, path, start_ms, end_ms) hook")
        chosen[what] = (hook, path)
    return chosen


def replay_files(
    loaded: LoadedApp,
    broker: Broker,
    files: dict[str, tuple[Stream[Any], Path]],
    window: TimeRange,
    config: WorkerConfig | None = None,
) -> tuple[WorkerStats, float]:
    """Ingest the rows of ``files`` in ``window`` (and, with the app's optional
    ``derived_inputs(name, path, row_filter)`` hook, the streams it derives from them, such
    as delayed labels), then run the pipeline until it has processed everything. Both steps
    resume after a crash. Returns the worker's stats and the seconds it all took."""
    worker = Worker(loaded.app, broker, config or WorkerConfig())
    stop_on_signals(worker)
    worker.ensure_topics()
    started = time.perf_counter()
    derive = loaded.hook("derived_inputs")
    for name, (stream, path) in files.items():
        row_filter = window.row_filter(stream, path)
        _ingest_with_progress(broker, stream, path, row_filter)
        for extra, extra_path, extra_filter in derive(name, path, row_filter) if derive else []:
            _ingest_with_progress(broker, extra, extra_path, extra_filter)
    stats = _run_with_progress(worker)
    return stats, time.perf_counter() - started


def demo(
    app: AppArgument = "apps/fraud",
    days: Annotated[int, typer.Option(min=1)] = 56,
    customers: Annotated[int, typer.Option(min=1)] = 1000,
    terminals: Annotated[int, typer.Option(min=1)] = 2000,
    seed: int = 7,
    state_dir: StateDirOption = Path(".demo"),
) -> None:
    """Simulate card payments and run them through the fraud application, from scratch.

    With 28 days or more, and an app that can train (``train_models``), it follows the
    handbook's protocol on the last three weeks: the rules decide alone until the test week,
    the models are trained on the week three weeks before the end with the labels known
    then, and the last week is decided by the cascade and scored."""
    from streamsense.simulators import FraudSimulatorConfig, simulate_transactions, write_parquet

    shutil.rmtree(state_dir, ignore_errors=True)
    config = FraudSimulatorConfig(
        n_customers=customers, n_terminals=terminals, n_days=days, seed=seed
    )
    with console.status("simulating transactions"):
        table = simulate_transactions(config)
        path = state_dir / "transactions.parquet"
        write_parquet(table, path)
    console.print(f"simulated {table.num_rows:,} transactions over {days} days → {path}")
    loaded = load_spec(app, state_dir)
    if days < 28 or loaded.hook("train_models") is None:
        replay(app, transactions=path, state_dir=state_dir)
        return
    from streamsense.cli import fraud

    first_day = TimeRange.parse(config.start_date, None).start_ms or 0
    train_start = first_day + (days - 21) * 86_400_000
    protocol = loaded.hook("Protocol")(train_start, 7, 7, 7)
    target = connect(None, state_dir)
    try:
        fraud.train_on_replay(loaded, target, path, state_dir, protocol, history_days=0)
        test = TimeRange(protocol.test_start_ms, protocol.test_end_ms)
        evaluation = fraud.score_live(loaded, target, path, state_dir, protocol, test)
        loaded.hook("summary")(target, console, {"transactions": path})
        fraud.print_evaluation(evaluation, loaded.module, handbook_data=False)
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        target.close()


def load_spec(spec: str, state_dir: Path | None = None) -> LoadedApp:
    """Load an app; its optional ``configure(state_dir)`` hook opens what lives there (the
    online store, the model registry)."""
    try:
        loaded = load_app(spec)
        configure = loaded.hook("configure")
        if configure is not None and state_dir is not None:
            configure(state_dir)
        return loaded
    except StreamsenseError as error:
        fail(str(error))


def _input_files(
    loaded: LoadedApp, transactions: Path | None, specs: list[str]
) -> dict[str, tuple[Stream[Any], Path]]:
    streams: dict[str, Stream[Any]] = loaded.hook("inputs") or {
        flow.source.name: flow.source for flow in loaded.app.flows.values()
    }
    named = {"transactions": transactions} if transactions is not None else {}
    for spec in specs:
        name, _, file = spec.rpartition("=")
        if not name:
            if len(streams) != 1:
                fail("name the stream: --input STREAM=FILE")
            name = next(iter(streams))
        named[name] = Path(file)
    if not named:
        fail("nothing to replay: give --input STREAM=FILE (or --transactions FILE)")
    chosen = {}
    for name, path in named.items():
        if name not in streams:
            fail(f"{loaded.app.name} has no input stream {name!r} (it has {sorted(streams)})")
        if not path.exists():
            fail(f"{path} does not exist")
        chosen[name] = (streams[name], path)
    return chosen


def _ingest_with_progress(
    broker: Broker, stream: Stream[Any], path: Path, row_filter: RowFilter | None = None
) -> None:
    total = count_rows(path) if row_filter is None else _count_rows(path, row_filter)
    with Progress(console=console) as progress:
        task = progress.add_task(f"ingesting {path.name} → {stream.topic}", total=total)
        ingest_file(
            broker,
            stream,
            path,
            row_filter=row_filter,
            progress=lambda n: progress.advance(task, n),
        )


def _count_rows(path: Path, row_filter: RowFilter) -> int:
    return sum(row_filter(b).num_rows for b in pq.ParquetFile(path).iter_batches(100_000))


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


def print_stats(stats: WorkerStats, elapsed: float | None = None) -> None:
    rate = f" in {elapsed:.1f} s ({stats.events / elapsed:,.0f} events/s)" if elapsed else ""
    console.print(
        f"processed {stats.events:,} events{rate}: {stats.outputs:,} outputs, "
        f"{stats.dead_letters:,} dead letters, {stats.commits:,} commits"
    )
    if stats.dead_letter_reasons:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(stats.dead_letter_reasons.items()))
        console.print(f"dead letters by field/reason: {reasons}")


def serve(
    app: AppArgument,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    grpc_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Also serve gRPC (streamsense.v1.Decisions)."),
    ] = None,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    verbose: VerboseOption = False,
) -> None:
    """Serve an app's decisions over HTTP (`POST /v1/decide/{stream}`, see the docs at /docs)
    and, with --grpc-port, gRPC. The API key comes from $STREAMSENSE_API_KEY."""
    import uvicorn

    from streamsense.serving.gc_tuning import freeze_after_startup
    from streamsense.serving.service import create_api

    setup_logging(verbose)
    loaded = load_spec(app, state_dir)
    build = loaded.hook("serving")
    if build is None:
        fail(f"{app} has no serving(broker, state_dir) hook")
    target = connect(broker, state_dir)
    serving = build(target, state_dir)
    serving.api_key = serving.api_key or os.environ.get("STREAMSENSE_API_KEY")
    console.print(f"serving {loaded.app.name} on http://{host}:{port} (broker {target.url})")
    api = freeze_after_startup(create_api(serving))  # no full GCs over the startup heap
    if grpc_port is not None:
        from streamsense.serving.grpc_service import with_grpc

        api = with_grpc(api, serving, host=host, port=grpc_port)
        console.print(f"serving gRPC streamsense.v1.Decisions on {host}:{grpc_port}")
    try:
        uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)
    finally:
        target.close()
