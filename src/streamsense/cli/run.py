"""`streamsense run`: one worker in this process, or a supervisor of worker processes
(``--workers N`` or ``auto``, scaled by lag: cli/supervise.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from streamsense.cli import supervise
from streamsense.cli.common import (
    DEFAULT_STATE_DIR,
    AppArgument,
    BatchOption,
    BrokerOption,
    ModeOption,
    StateDirOption,
    VerboseOption,
    broker_url,
    connect,
    console,
    fail,
    setup_logging,
)
from streamsense.cli.session import load_spec, print_stats, stop_on_signals, worker_config
from streamsense.errors import StreamsenseError
from streamsense.runtime.config import OrderMode
from streamsense.runtime.gc_tuning import tune_for_streaming
from streamsense.runtime.load import SheddingConfig
from streamsense.runtime.worker import Worker, WorkerConfig


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
    state_every_s: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Write feature-stage state (the keys changed since the last write) at "
            "least this often (s): a restart replays at most this much.",
        ),
    ] = WorkerConfig.snapshot_every_s,
    order: Annotated[
        OrderMode,
        typer.Option(
            help="Repartition targets in event-time order: auto (replays and catch-ups), "
            "always, never.",
        ),
    ] = "auto",
    order_wait_ms: Annotated[
        int,
        typer.Option(min=0, help="Longest wait for a quiet upstream partition (ordering)."),
    ] = WorkerConfig.order_wait_ms,
    verbose: VerboseOption = False,
    shed_above: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Above this lag (records) stages see ctx.load.shed_heavy: the cascade "
            "skips its heavy tier and marks those decisions. Off by default.",
        ),
    ] = None,
    restore_below: Annotated[
        int | None,
        typer.Option(min=0, help="Shedding stops below this lag (default: half --shed-above)."),
    ] = None,
    workers: supervise.WorkersOption = "1",
    min_workers: supervise.MinWorkersOption = 1,
    max_workers: supervise.MaxWorkersOption = None,
    scale_up_lag: supervise.ScaleUpLagOption = 1000,
    scale_up_seconds: supervise.ScaleUpSecondsOption = 10.0,
    idle_seconds: supervise.IdleSecondsOption = 60.0,
    idle_lag: supervise.IdleLagOption = None,
    cooldown_seconds: supervise.CooldownOption = 30.0,
    check_seconds: supervise.CheckSecondsOption = 2.0,
    status_file: supervise.StatusFileOption = None,
    metrics_file: supervise.MetricsFileOption = None,
    parent_pid: supervise.ParentPidOption = None,
) -> None:
    """Run an application's worker until SIGTERM or Ctrl-C (restarts resume from commits);
    with --workers N or auto, supervise that many worker processes (auto: scaled by lag)."""
    base = worker_config(mode, batch_size)  # checks options before any child starts
    shedding = _shedding(shed_above, restore_below)
    if workers != "1":
        url = broker_url(broker, state_dir)
        options = supervise.WorkerOptions(
            mode, batch_size, url, state_dir, batch_ms, session_timeout_ms, verbose,
            shed_above, restore_below, state_every_s, order, order_wait_ms,
        )  # fmt: skip
        scale = supervise.ScaleOptions(
            workers, min_workers, max_workers, scale_up_lag, scale_up_seconds, idle_seconds,
            idle_lag, cooldown_seconds, check_seconds, status_file, metrics_file,
        )  # fmt: skip
        return supervise.supervise(app, options, scale)
    setup_logging(verbose)
    loaded = load_spec(app, state_dir)  # its models, online store, monitoring live there
    target = connect(broker, state_dir)
    config = replace(
        base,
        batch_ms=batch_ms,
        session_timeout_ms=session_timeout_ms,
        shedding=shedding,
        snapshot_every_s=state_every_s,
        order=order,
        order_wait_ms=order_wait_ms,
    )
    worker = Worker(loaded.app, target, config)
    stop_on_signals(worker)
    supervise.exit_with_parent(parent_pid, worker.stop)
    console.print(f"running {loaded.app.name} on {target.url} ({mode}); Ctrl-C stops")
    tune_for_streaming()
    try:
        stats = worker.run()
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        target.close()
    print_stats(stats)


def _shedding(shed_above: int | None, restore_below: int | None) -> SheddingConfig | None:
    if shed_above is None:
        if restore_below is not None:
            fail("--restore-below needs --shed-above")
        return None
    below = shed_above // 2 if restore_below is None else restore_below
    if below >= shed_above:
        fail("--restore-below must be lower than --shed-above")
    return SheddingConfig(shed_above, below)
