"""`streamsense recs serve`: an alias of `streamsense serve apps/recs` (issue #16), kept
for the scripts that used it before the generic command served this app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamsense.cli.common import DEFAULT_STATE_DIR, BrokerOption, StateDirOption

commands = typer.Typer(help="The recommendations app (issue #16).", no_args_is_help=True)


@commands.callback()
def recs() -> None:
    """The recommendations app (issue #16): `streamsense recs serve`."""


@commands.command()
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """GET /v1/recommend/{user}?k=20 and POST /v1/events/interactions: the same as
    `streamsense serve apps/recs` (see its --help for the other options)."""
    from streamsense.cli.apps import serve as generic_serve

    generic_serve(
        str(Path(__file__).resolve().parent),
        port=port,
        host=host,
        broker=broker,
        state_dir=state_dir,
    )
