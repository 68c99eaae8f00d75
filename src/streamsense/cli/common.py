"""What every command shares: which broker to open and how to print."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from streamsense.brokers import Broker, open_broker
from streamsense.errors import StreamsenseError
from streamsense.runtime.input_files import Format, file_format

console = Console()
err_console = Console(stderr=True)

BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        help="Broker URL: embedded://PATH (default), kafka://HOST:PORT, "
        "pulsar://HOST:PORT[?admin=http://HOST:PORT] or memory://. "
        "Default: $STREAMSENSE_BROKER, else the state dir's embedded log.",
    ),
]
StateDirOption = Annotated[
    Path,
    typer.Option("--state-dir", help="Where the embedded broker and local state live."),
]
DEFAULT_STATE_DIR = Path(".streamsense")
AppArgument = Annotated[
    str, typer.Argument(help="App package folder (apps/NAME), file.py or module[:attr].")
]
ModeOption = Annotated[str, typer.Option("--mode", help="realtime or microbatch.")]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Events per microbatch.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v")]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Input format: parquet, csv or jsonl. Default: by extension, else by content.",
    ),
]


def broker_url(broker: str | None, state_dir: Path) -> str:
    return broker or os.environ.get("STREAMSENSE_BROKER") or f"embedded://{state_dir / 'broker.db'}"


def connect(broker: str | None, state_dir: Path) -> Broker:
    try:
        return open_broker(broker_url(broker, state_dir))
    except StreamsenseError as error:
        fail(str(error))


def fail(message: str, code: int = 2) -> NoReturn:
    # One line however long (a path and a reason): soft_wrap leaves wrapping to the terminal.
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)  # [kafka]: no markup
    raise typer.Exit(code)


def chosen_format(path: Path, given: str | None) -> Format:
    """The format to read ``path`` in (``--format``, else guessed), or a one-line exit."""
    try:
        return file_format(path, given)
    except StreamsenseError as error:
        fail(str(error))


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
