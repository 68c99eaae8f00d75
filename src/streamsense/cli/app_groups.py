"""Applications' own commands: ``streamsense NAME ...`` where NAME is an app that declares
``commands`` in its ``Application``.

Apps are found two ways, neither imported until its commands are asked for (or listed by
``streamsense --help``):

- an installed package's entry point in the ``streamsense.apps`` group, ``NAME = "module"``
  (``module[:attribute]``, as ``streamsense run`` takes it);
- a package folder ``apps/NAME`` (with ``app.py``) under the working directory, as in the
  project's repository."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import typer
from typer import _click as click  # typer vendors click: its commands are these classes
from typer.core import TyperGroup

from streamsense.errors import StreamsenseError
from streamsense.runtime.loader import load_app

ENTRY_POINT_GROUP = "streamsense.apps"


def discovered_apps() -> dict[str, str]:
    """App name → what ``load_app`` takes; a folder under ./apps wins over an entry point."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for app_py in sorted(Path("apps").glob("*/app.py")):
        if (app_py.parent / "__init__.py").exists():
            found[app_py.parent.name] = str(app_py.parent)
    return found


class WithAppCommands(TyperGroup):
    """The ``streamsense`` group: its own commands, then one group per discovered app."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        own = super().list_commands(ctx)
        return [*own, *sorted(name for name in discovered_apps() if name not in own)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        spec = discovered_apps().get(cmd_name)
        return None if spec is None else _app_group(cmd_name, spec)


def _app_group(name: str, spec: str) -> click.Command | None:
    try:
        application = load_app(spec).application
    except (StreamsenseError, ImportError) as error:
        return _unavailable(name, f"{spec} cannot be loaded: {error}")
    if application.commands is None:
        return None
    group = typer.main.get_command(application.commands())
    group.name = name
    return group


def _unavailable(name: str, reason: str) -> click.Command:
    unavailable = typer.Typer(add_completion=False)

    @unavailable.command(name=name, help=f"(unavailable: {reason})")
    def refuse() -> None:
        raise click.ClickException(reason)

    return typer.main.get_command(unavailable)
