"""The `streamsense` command."""

from __future__ import annotations

import typer

from streamsense.cli import apps, io
from streamsense.cli.topics import topics_app

cli = typer.Typer(
    name="streamsense",
    help="Event streams → features → decisions, in real time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.add_typer(topics_app, name="topics")
cli.command()(io.produce)
cli.command()(io.consume)
cli.command()(apps.run)
cli.command()(apps.replay)
cli.command()(apps.demo)


def main() -> None:
    cli()
