"""`streamsense run`, `streamsense replay` and `streamsense demo`."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

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
from streamsense.events import Stream
from streamsense.runtime.ingest import count_rows, ingest_file
from streamsense.runtime.loader import LoadedApp, load_app
from streamsense.runtime.worker import Mode, Worker, WorkerConfig, WorkerStats

AppArgument = Annotated[
    str, typer.Argument(help="App folder (apps/fraud), file.py or module[:attr].")
]
ModeOption = Annotated[str, typer.Option("--mode", help="realtime or microbatch.")]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Events per microbatch.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v")]


def _worker_config(mode: str, batch_size: int) -> WorkerConfig:
    if mode not in ("realtime", "microbatch"):
        fail(f"--mode must be realtime or microbatch, not {mode!r}")
    chosen: Mode = "realtime" if mode == "realtime" else "microbatch"
    return WorkerConfig(mode=chosen, batch_size=batch_size)


def _stop_on_signals(worker: Worker) -> None:
    """SIGTERM and the first Ctrl-C finish the current batch, commit, and leave cleanly."""

    def handler(signum: int, frame: object) -> None:
        console.print(
            f"[yellow]{signal.Signals(signum).name}: finishing the current batch[/yellow]"
        )
        worker.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run(
    app: AppArgument,
    mode: ModeOption = "microbatch",
    batch_size: BatchOption = 1000,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    batch_ms: Annotated[
        int, typer.Option(min=1, help="Microbatch: commit at least this often (ms).")
    ] = WorkerConfig.batch_ms,
    session_timeout_ms: Annotated[
        int,
        typer.Option(
            min=1,
            help="A worker that stops heartbeating loses its partitions after this "
            "(Kafka accepts 6000 to 300000 by default).",
        ),
    ] = WorkerConfig.session_timeout_ms,
    verbose: VerboseOption = False,
) -> None:
    """Run an application's worker until SIGTERM or Ctrl-C (restarts resume from commits)."""
    setup_logging(verbose)
    loaded = _load(app)
    target = connect(broker, state_dir)
    config = replace(
        _worker_config(mode, batch_size),
        batch_ms=batch_ms,
        session_timeout_ms=session_timeout_ms,
    )
    worker = Worker(loaded.app, target, config)
    _stop_on_signals(worker)
    console.print(f"running {loaded.app.name} on {target.url} ({mode}); Ctrl-C stops")
    try:
        stats = worker.run()
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        target.close()
    _print_stats(stats)


def replay(
    app: AppArgument,
    transactions: Annotated[
        Path | None, typer.Option(exists=True, help="File for the app's `transactions` stream.")
    ] = None,
    input_files: Annotated[
        list[str] | None, typer.Option("--input", help="STREAM=FILE (or FILE for the only stream).")
    ] = None,
    mode: ModeOption = "microbatch",
    batch_size: BatchOption = 1000,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    verbose: VerboseOption = False,
) -> None:
    """Feed files through an application's pipeline to the end, then summarise.

    Rerun the same command with the same --state-dir after a crash: it resumes where the
    last commit left off, and every output exists exactly once."""
    setup_logging(verbose)
    loaded = _load(app, state_dir)
    files = _input_files(loaded, transactions, input_files or [])
    target = connect(broker, state_dir)
    worker = Worker(loaded.app, target, _worker_config(mode, batch_size))
    _stop_on_signals(worker)
    try:
        worker.ensure_topics()
        started = time.perf_counter()
        for stream, path in files.values():
            _ingest_with_progress(target, stream, path)
        stats = _run_with_progress(worker)
        elapsed = time.perf_counter() - started
        _print_stats(stats, elapsed)
        summary = loaded.hook("summary")
        if summary is not None:
            summary(target, console, {name: path for name, (_, path) in files.items()})
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        target.close()


def demo(
    app: AppArgument = "apps/fraud",
    days: Annotated[int, typer.Option(min=1)] = 30,
    customers: Annotated[int, typer.Option(min=1)] = 500,
    terminals: Annotated[int, typer.Option(min=1)] = 1000,
    seed: int = 7,
    state_dir: StateDirOption = Path(".demo"),
) -> None:
    """Simulate card payments and replay them through the fraud application, from scratch."""
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
    replay(app, transactions=path, state_dir=state_dir)


def _load(spec: str, state_dir: Path | None = None) -> LoadedApp:
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


def _ingest_with_progress(broker: Broker, stream: Stream[Any], path: Path) -> None:
    with Progress(console=console) as progress:
        task = progress.add_task(f"ingesting {path.name} → {stream.topic}", total=count_rows(path))
        ingest_file(broker, stream, path, progress=lambda n: progress.advance(task, n))


def _run_with_progress(worker: Worker) -> WorkerStats:
    total = sum(worker.broker.describe_topic(topic).messages for topic in worker.app.flows)
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


def _print_stats(stats: WorkerStats, elapsed: float | None = None) -> None:
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

    from streamsense.serving.service import create_api

    setup_logging(verbose)
    loaded = _load(app, state_dir)
    build = loaded.hook("serving")
    if build is None:
        fail(f"{app} has no serving(broker, state_dir) hook")
    target = connect(broker, state_dir)
    serving = build(target, state_dir)
    serving.api_key = serving.api_key or os.environ.get("STREAMSENSE_API_KEY")
    console.print(f"serving {loaded.app.name} on http://{host}:{port} (broker {target.url})")
    api = create_api(serving)
    if grpc_port is not None:
        from streamsense.serving.grpc_service import with_grpc

        api = with_grpc(api, serving, host=host, port=grpc_port)
        console.print(f"serving gRPC streamsense.v1.Decisions on {host}:{grpc_port}")
    try:
        uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)
    finally:
        target.close()
