"""`streamsense replay`, `streamsense demo` and `streamsense serve`, for any application:
they ask it only what its ``Application`` contract declares."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from streamsense.application import Application, Export
from streamsense.cli.app_command import app_options
from streamsense.cli.common import (
    DEFAULT_STATE_DIR,
    AppArgument,
    BatchOption,
    BrokerOption,
    FormatOption,
    ModeOption,
    StateDirOption,
    VerboseOption,
    chosen_format,
    connect,
    console,
    fail,
    setup_logging,
)
from streamsense.cli.session import (
    CliSession,
    load_spec,
    open_session,
    print_stats,
    replay_files,
    worker_config,
)
from streamsense.cli.time_range import TimeRange
from streamsense.disk_faults import disk_faults
from streamsense.errors import MissingExtra
from streamsense.extras import Extra, require
from streamsense.runtime.worker import WorkerStats

if TYPE_CHECKING:  # serving is imported when `serve` runs
    from streamsense.serving.exposure import Exposure, MetricsAccess

InputsOption = Annotated[
    list[str] | None, typer.Option("--input", help="STREAM=FILE (or FILE for the only stream).")
]
ExportsOption = Annotated[
    list[str] | None, typer.Option("--export", help="NAME=FILE: write one of the app's exports.")
]


def replay(
    ctx: typer.Context,
    app: AppArgument,
    input_files: InputsOption = None,
    export: ExportsOption = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="Only rows whose event time is at or after this (ISO date or time, UTC)."
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Only rows whose event time is before this (ISO, UTC).")
    ] = None,
    file_format: FormatOption = None,
    max_dead_letters: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Exit 1 when more than this share of the input went to dead letters.",
        ),
    ] = 0.01,
    mode: ModeOption = "microbatch",
    batch_size: BatchOption = 1000,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    verbose: VerboseOption = False,
) -> None:
    """Feed files (the rows with event time in [--start, --end), in file order) through an
    application's pipeline to the end, then summarise and export. The app may add its own
    options (see `streamsense replay APP --help`).

    Rerun the same command with the same --state-dir after a crash: it resumes where the
    last commit left off, every output exists exactly once, and so does every row of the
    exports (written from the outputs once the pipeline is done)."""
    setup_logging(verbose)
    window = TimeRange.parse(start, end)
    options = app_options(ctx)
    with open_session(app, state_dir, broker) as session:
        files = _input_files(session.application, input_files or [], options)
        exports = _exports(session.application, export or [], options)
        streams = session.application.input_streams()
        chosen = {name: (streams[name], path) for name, path in files.items()}
        config = worker_config(mode, batch_size)
        fmt = None if file_format is None else chosen_format(Path(), file_format)
        stats, elapsed = replay_files(
            session.application, session.broker, chosen, window, config, fmt
        )
        print_stats(stats, elapsed)
        _summarise(session, files)
        for name, (write, path) in exports.items():
            with disk_faults(str(path)):  # a full disk: one line naming the file
                rows = write(session.broker, path, window.start_ms, window.end_ms)
            console.print(f"exported {rows:,} rows of {name} → {path}")
    if not dead_letters_within(stats, max_dead_letters, sorted(files)):
        raise typer.Exit(1)


def dead_letters_within(stats: WorkerStats, limit: float, streams: list[str]) -> bool:
    """Says in red how much of the input went to dead letters (if any); False when that
    share is over ``limit``."""
    if not stats.dead_letters:
        return True
    # Rows of the files given, else (a resumed replay that ingested nothing) the events.
    total, what = (stats.input_rows, "input rows") if stats.input_rows else (stats.events, "events")
    share = stats.dead_letters / max(1, total)
    topics = ", ".join(f"{name}.dead-letters" for name in streams)
    console.print(
        f"[red]{stats.dead_letters:,} of {total:,} {what} ({share:.2%}) went to dead "
        f"letters[/red] (streamsense consume {topics} shows why)"
    )
    if share > limit:
        console.print(f"[red]over the --max-dead-letters share of {limit:.2%}[/red]")
        return False
    return True


def _summarise(session: CliSession, files: Mapping[str, Path]) -> None:
    if session.application.summary is not None:
        session.application.summary(session.broker, console, files)


def _input_files(
    application: Application, specs: list[str], options: Mapping[str, Any]
) -> dict[str, Path]:
    """The files by stream: the app's own input options first, then each ``--input``."""
    streams = application.input_streams()
    named: dict[str, Path] = {}
    for option in application.input_options:
        given = options.get(f"in:{option.name}")
        if given is not None:
            named.update(option.streams_for(given))
    for spec in specs:
        name, _, file = spec.rpartition("=")
        if not name:
            if len(streams) != 1:
                fail("name the stream: --input STREAM=FILE")
            name = next(iter(streams))
        named[name] = Path(file)
    if not named:
        friendly = "".join(f" (or --{o.name} PATH)" for o in application.input_options)
        fail(f"nothing to replay: give --input STREAM=FILE{friendly}")
    for name, path in named.items():
        if name not in streams:
            fail(f"{application.name} has no input stream {name!r} (it has {sorted(streams)})")
        if not path.exists():
            fail(f"{path} does not exist")
    return named


def _exports(
    application: Application, specs: list[str], options: Mapping[str, Any]
) -> dict[str, tuple[Export, Path]]:
    """The app's export for each one asked (``--export NAME=FILE`` or ``--export-NAME``)."""
    wanted = {
        name[len("export:") :]: path
        for name, path in options.items()
        if name.startswith("export:") and path is not None
    }
    for spec in specs:
        name, _, file = spec.partition("=")
        if not file:
            fail(f"--export {spec!r}: give NAME=FILE")
        wanted[name] = Path(file)
    chosen = {}
    for name, path in wanted.items():
        if name not in application.exports:
            offered = sorted(application.exports) or "none"
            fail(f"{application.name} has no export {name!r} (it has {offered})")
        chosen[name] = (application.exports[name], path)
    return chosen


def demo(
    ctx: typer.Context,
    app: Annotated[
        str | None,
        typer.Argument(help="The app (default: the only one in ./apps). See `demo APP --help`."),
    ] = None,
    state_dir: StateDirOption = Path(".demo"),
    verbose: VerboseOption = False,
) -> None:
    """Run an application's demo from scratch in the state dir: it makes its own input
    (a simulation, say), replays it through the pipeline and prints what happened."""
    setup_logging(verbose)
    spec = app or _only_app_folder()
    application = load_spec(spec)
    if application.demo is None:
        fail(f"{application.name} has no demo")
    given = {
        name[len("demo:") :]: value
        for name, value in app_options(ctx).items()
        if name.startswith("demo:")
    }
    options = {
        option.name: given.get(option.name, option.default) for option in application.demo_options
    }
    shutil.rmtree(state_dir, ignore_errors=True)
    with open_session(application, state_dir) as session:
        files = application.demo(session, options)
        if files is not None:
            replayed = session.replay(files)
            print_stats(replayed.stats, replayed.seconds)
            _summarise(session, files)


def _only_app_folder() -> str:
    found = sorted(str(p.parent) for p in Path("apps").glob("*/app.py"))
    if len(found) != 1:
        fail(f"name the app: streamsense demo APP (found {found or 'no apps/*/app.py'})")
    return found[0]


def serve(
    app: AppArgument,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    grpc_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Also serve gRPC (streamsense.v1.Decisions; the app's endpoints: v1.Endpoints).",
        ),
    ] = None,
    production: Annotated[
        bool, typer.Option("--production", help="No /docs, /redoc or /openapi.json.")
    ] = False,
    metrics: Annotated[
        str,
        typer.Option(
            help="Who sees /metrics on the API port: key (needs the API key, if one is "
            "set), public or off."
        ),
    ] = "key",
    metrics_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Serve /metrics on this port instead (no key asked)."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Interface the --metrics-port listens on.")
    ] = "127.0.0.1",
    ui: Annotated[
        bool, typer.Option("--ui/--no-ui", help="Serve the operator UI at /ui (same key).")
    ] = True,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    verbose: VerboseOption = False,
) -> None:
    """Serve an app over HTTP: its decisions (`POST /v1/decide/{stream}`, see the docs at
    /docs) and its own endpoints, if it has them; with --grpc-port, decisions over gRPC too;
    the operator UI at /ui. The API key comes from $STREAMSENSE_API_KEY."""
    exposure = exposure_of(production, metrics, metrics_port)
    uvicorn = _required("uvicorn", "serving")
    _required("fastapi", "serving")
    from streamsense.serving.gc_tuning import freeze_after_startup
    from streamsense.serving.service import create_api

    setup_logging(verbose)
    application = load_spec(app, state_dir)
    if application.serving is None:
        fail(f"{app} declares no serving")
    target = connect(broker, state_dir)
    for topic, config in application.app.topic_configs().items():  # the API publishes to them
        target.create_topic(topic, config, exist_ok=True)
    serving = application.serving(target, state_dir)
    serving.api_key = serving.api_key or os.environ.get("STREAMSENSE_API_KEY")
    console.print(f"serving {application.name} on http://{host}:{port} (broker {target.url})")
    if metrics_port is not None and serving.metrics_registry is not None:
        from streamsense.serving.exposure import serve_metrics

        side = serve_metrics(serving.metrics_registry, metrics_host, metrics_port)
        console.print(f"serving /metrics on http://{side.host}:{side.port}/metrics")
    api = create_api(serving, exposure)
    if ui:
        _required("jinja2", "serving")
        from streamsense.ui import ui_context
        from streamsense.ui.web import create_ui

        context = ui_context(
            target, name=application.name, app=application.app, serving=serving, state_dir=state_dir
        )
        api.mount("/ui", create_ui(context))
        console.print(f"serving the operator UI on http://{host}:{port}/ui")
    api = freeze_after_startup(api)  # no full GCs over start-up
    if grpc_port is not None:
        _required("grpc", "serving")
        from streamsense.serving.grpc_service import with_grpc

        api = with_grpc(api, serving, host=host, port=grpc_port)
        also = " and streamsense.v1.Endpoints" if serving.endpoints else ""
        console.print(f"serving gRPC streamsense.v1.Decisions{also} on {host}:{grpc_port}")
    try:
        uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)
    finally:
        target.close()


def exposure_of(production: bool, metrics: str, metrics_port: int | None) -> Exposure:
    """What ``serve`` shows besides /v1 (serving/exposure.py)."""
    from streamsense.serving.exposure import Exposure

    choices: dict[str, MetricsAccess] = {"key": "key", "public": "public", "off": "off"}
    if metrics not in choices:
        fail(f"--metrics must be key, public or off, not {metrics!r}")
    access = "off" if metrics_port is not None else choices[metrics]  # own bind address
    return Exposure.production(access) if production else Exposure(metrics=access)


def _required(module: str, extra: Extra) -> ModuleType:
    try:
        return require(module, extra)
    except MissingExtra as error:
        fail(str(error))
