"""The `streamsense` command."""

from __future__ import annotations

import typer

from streamsense.cli import apps, io, model_server, run, status, store, ui
from streamsense.cli.app_command import DemoCommand, ReplayCommand
from streamsense.cli.app_groups import WithAppCommands
from streamsense.cli.monitor import monitor_app
from streamsense.cli.topics import topics_app

cli = typer.Typer(
    name="streamsense",
    help="Event streams → features → decisions, in real time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=WithAppCommands,  # and each app's own commands: streamsense NAME ...
)
cli.add_typer(topics_app, name="topics")
cli.command()(io.produce)
cli.command()(io.consume)
cli.command()(run.run)
cli.command(cls=ReplayCommand)(apps.replay)
cli.command(cls=DemoCommand)(apps.demo)
cli.command()(apps.serve)
cli.command("plan")(store.plan_command)
cli.command("apply")(store.apply_command)
cli.command("backfill")(store.backfill_command)
cli.command("materialize")(store.materialize_command)
cli.command("verify")(store.verify_command)
cli.add_typer(store.features_app, name="features")
cli.command()(status.status)
cli.command("model-server")(model_server.model_server)
cli.add_typer(monitor_app, name="monitor")
cli.command("ui")(ui.ui)


def main() -> None:
    cli()
