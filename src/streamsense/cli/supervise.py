"""`streamsense run <app> --workers auto|N`: the supervisor's command-line glue.

The options are declared here and used by ``run.run``; with ``--workers 1`` (the default)
``run`` is one worker in the current process, otherwise it becomes a supervisor that runs
``streamsense run <app> --workers 1`` children (runtime/supervisor.py).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from streamsense.brokers import Broker
from streamsense.cli.common import connect, fail, setup_logging
from streamsense.clock import SYSTEM_CLOCK
from streamsense.errors import StreamsenseError
from streamsense.runtime.app import App
from streamsense.runtime.lag import GroupLag, group_lag
from streamsense.runtime.loader import load_app
from streamsense.runtime.scale_policy import (
    RestartBackoff,
    RestartConfig,
    ScaleConfig,
    ScalePolicy,
)
from streamsense.runtime.supervisor import (
    Supervisor,
    SupervisorMetrics,
    SupervisorStatus,
    command_launcher,
)

WorkersOption = Annotated[
    str,
    typer.Option(
        help="Worker processes: a number, or auto (scale by lag between --min-workers and "
        "--max-workers). 1 runs the worker in this process."
    ),
]
MinWorkersOption = Annotated[int, typer.Option(min=1, help="auto: never fewer workers.")]
MaxWorkersOption = Annotated[
    int | None,
    typer.Option(min=1, help="auto: never more workers (default and cap: the partition count)."),
]
ScaleUpLagOption = Annotated[
    int, typer.Option(min=1, help="auto: add a worker when the group's lag stays above this.")
]
ScaleUpSecondsOption = Annotated[
    float, typer.Option(min=0, help="auto: ...for this long (or keeps growing for this long).")
]
IdleSecondsOption = Annotated[
    float, typer.Option(min=0, help="auto: remove a worker after this long without lag.")
]
IdleLagOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="auto: lag that still counts as none (default: one per source partition, "
        "for the transaction markers Kafka counts as offsets).",
    ),
]
CooldownOption = Annotated[
    float, typer.Option(min=0, help="Supervisor: seconds between two worker-count changes.")
]
CheckSecondsOption = Annotated[
    float, typer.Option(min=0.01, help="Supervisor: seconds between lag checks.")
]
StatusFileOption = Annotated[
    Path | None,
    typer.Option(dir_okay=False, help="Supervisor: write its status here (JSON) every check."),
]
MetricsFileOption = Annotated[
    Path | None,
    typer.Option(dir_okay=False, help="Supervisor: write Prometheus metrics here every check."),
]
ParentPidOption = Annotated[int | None, typer.Option(hidden=True)]


@dataclass(frozen=True)
class WorkerOptions:
    """What each child worker is started with (``streamsense run`` options)."""

    mode: str
    batch_size: int
    broker_url: str
    state_dir: Path
    batch_ms: int
    session_timeout_ms: int
    verbose: bool
    shed_above: int | None = None
    restore_below: int | None = None
    state_every_s: float = 30.0
    order: str = "auto"
    order_wait_ms: int = 10_000

    def argv(self, app: str, broker_url: str) -> list[str]:
        command = [sys.executable, "-m", "streamsense", "run", app, "--workers", "1"]
        command += ["--mode", self.mode, "--batch-size", str(self.batch_size)]
        command += ["--broker", broker_url, "--state-dir", str(self.state_dir)]
        command += ["--batch-ms", str(self.batch_ms)]
        command += ["--session-timeout-ms", str(self.session_timeout_ms)]
        command += ["--state-every-s", str(self.state_every_s)]
        command += ["--order", self.order, "--order-wait-ms", str(self.order_wait_ms)]
        command += ["--parent-pid", str(os.getpid())]
        if self.shed_above is not None:
            command += ["--shed-above", str(self.shed_above)]
        if self.restore_below is not None:
            command += ["--restore-below", str(self.restore_below)]
        return command + (["--verbose"] if self.verbose else [])


@dataclass(frozen=True)
class ScaleOptions:
    workers: str
    min_workers: int
    max_workers: int | None
    scale_up_lag: int
    scale_up_seconds: float
    idle_seconds: float
    idle_lag: int | None
    cooldown_seconds: float
    check_seconds: float
    status_file: Path | None
    metrics_file: Path | None

    def config(self, partitions: int, sources: int) -> ScaleConfig:
        """Bounds from ``--workers``: fixed N, or auto between min and max (≤ partitions)."""
        if self.workers == "auto":
            low, high = self.min_workers, min(self.max_workers or partitions, partitions)
        elif self.workers.isdigit() and int(self.workers) >= 1:
            low = high = min(int(self.workers), partitions)
        else:
            fail(f"--workers must be a number or auto, not {self.workers!r}")
        if low > high:
            fail(f"--min-workers {low} is above the maximum {high} (the partition count)")
        return ScaleConfig(
            min_workers=low,
            max_workers=high,
            scale_up_lag=self.scale_up_lag,
            scale_up_after_s=self.scale_up_seconds,
            idle_lag=sources if self.idle_lag is None else self.idle_lag,
            idle_after_s=self.idle_seconds,
            cooldown_s=self.cooldown_seconds,
        )


def supervise(app_spec: str, worker: WorkerOptions, scale: ScaleOptions) -> None:
    """Run the supervisor until SIGTERM or Ctrl-C, then stop every worker cleanly."""
    setup_logging(worker.verbose)
    try:
        app = load_app(app_spec).app
    except StreamsenseError as error:
        fail(str(error))
    broker = connect(worker.broker_url, worker.state_dir)
    try:
        supervisor = _build(app, app_spec, broker, worker, scale)
        _stop_on_signals(supervisor)
        status = supervisor.run()
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        broker.close()
    _say(
        f"stopped: {status.scale_ups} scale-ups, {status.scale_downs} scale-downs, "
        f"{status.restarts} restarts, at most {status.most_workers} workers"
    )


def _build(
    app: App, spec: str, broker: Broker, worker: WorkerOptions, scale: ScaleOptions
) -> Supervisor:
    for name, topic in app.topic_configs().items():  # the lag needs the source topics
        broker.create_topic(name, topic, exist_ok=True)
    sources = list(app.sources())
    counts = [broker.describe_topic(topic).config.partitions for topic in sources]
    config = scale.config(max(counts), sum(counts))
    _say(
        f"supervising {app.name} on {broker.url}: {config.min_workers} to "
        f"{config.max_workers} workers ({sum(counts)} source partitions)"
    )
    metrics = SupervisorMetrics()

    def report(status: SupervisorStatus, lag: GroupLag | None) -> None:
        metrics.observe(status, lag)
        if scale.status_file is not None:
            _write(scale.status_file, msgspec.json.encode({"pid": os.getpid(), **asdict(status)}))
        if scale.metrics_file is not None:
            _write(scale.metrics_file, metrics.render())

    return Supervisor(
        command_launcher(
            lambda slot: worker.argv(spec, _worker_url(worker.broker_url, app.group, slot))
        ),
        lambda: group_lag(broker, app.group, sources),
        ScalePolicy(config, SYSTEM_CLOCK),
        RestartBackoff(RestartConfig(), SYSTEM_CLOCK),
        check_every_s=scale.check_seconds,
        stop_timeout_s=max(30.0, worker.session_timeout_ms / 1000),
        report=report,
        announce=_say,
    )


def _write(path: Path, body: bytes) -> None:
    """Atomically, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(body)
    os.replace(partial, path)


def _say(message: str) -> None:
    typer.echo(f"[supervisor] {message}")


def _stop_on_signals(supervisor: Supervisor) -> None:
    def handler(signum: int, frame: object) -> None:
        _say(f"{signal.Signals(signum).name}: stopping every worker")
        supervisor.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def exit_with_parent(parent_pid: int | None, stop: Callable[[], None]) -> None:
    """A supervised worker stops (commits, leaves) if its supervisor dies without stopping
    it: the workers run in sessions of their own, so nothing else would tell them."""
    if parent_pid is None:
        return

    def watch() -> None:
        while os.getppid() == parent_pid:
            threading.Event().wait(0.5)
        stop()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_url(url: str, group: str, slot: int) -> str:
    if not url.startswith("kafka://"):
        return url
    from streamsense.brokers.kafka import worker_url  # the [kafka] extra, only when used

    return worker_url(url, group, slot)
