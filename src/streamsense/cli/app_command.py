"""Commands whose options depend on the app they name (``replay APP --transactions F``).

The app is the command's first argument: it is loaded before the rest is parsed, and the
options it declares join the command's own, so they are type-checked, refused when
unknown and listed by ``streamsense replay APP --help`` like any other option. The command
reads their values with ``app_options(ctx)``, keyed ``in:NAME``, ``export:NAME`` or
``demo:NAME``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from typer import _click as click  # typer vendors click: its commands are these classes
from typer.core import TyperCommand

from streamsense.application import Application, InputOption, Option
from streamsense.cli.common import fail
from streamsense.errors import StreamsenseError
from streamsense.runtime.loader import load_app

_KEYS = "streamsense.app_option_keys"
_VALUES = "streamsense.app_option_values"
_PREFIX = "app_option_"

# (key such as "in:transactions", default, Annotated type with its typer.Option)
Declared = tuple[str, Any, Any]


class AppCommand(TyperCommand):
    """Adds the options ``declare(application)`` lists once the APP argument is known."""

    declare: ClassVar[Any] = staticmethod(lambda application: [])

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        self.params = [p for p in self.params if not (p.name or "").startswith(_PREFIX)]
        spec = args[0] if args and not args[0].startswith("-") else None
        if spec is not None:
            try:
                application = load_app(spec).application
            except StreamsenseError as error:
                fail(str(error))
            declared: list[Declared] = type(self).declare(application)
            ctx.meta[_KEYS] = {f"{_PREFIX}{i}": key for i, (key, _, _) in enumerate(declared)}
            self.params = [*self.params, *_typer_params(declared)]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        keys: dict[str, str] = ctx.meta.get(_KEYS, {})
        ctx.meta[_VALUES] = {key: ctx.params.pop(name) for name, key in keys.items()}
        return super().invoke(ctx)


def app_options(ctx: typer.Context) -> dict[str, Any]:
    """The values of the app's own options by key; None for a path not given."""
    values: dict[str, Any] = ctx.meta.get(_VALUES, {})
    return values


def _typer_params(declared: list[Declared]) -> list[click.Parameter]:
    """The options as typer itself builds them: from the signature of a function it turns
    into a command (its option classes are typer's own business)."""
    signature = inspect.Signature(
        [
            inspect.Parameter(
                f"{_PREFIX}{i}", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind
            )
            for i, (_, default, kind) in enumerate(declared)
        ]
    )

    def holder(**options: Any) -> None:
        """Never called: typer reads its signature."""

    holder.__signature__ = signature  # type: ignore[attr-defined]
    commands = typer.Typer(add_completion=False)
    commands.command()(holder)
    return list(typer.main.get_command(commands).params)


def replay_options(application: Application) -> list[Declared]:
    """``--NAME PATH`` for each input option, ``--export-NAME FILE`` for each export."""
    declared = [_input_option(option) for option in application.input_options]
    for name in application.exports:
        help = f"Write the app's {name} here (same as --export {name}=FILE)."
        flag = typer.Option(f"--export-{name}", dir_okay=False, help=help)
        declared.append((f"export:{name}", None, Annotated[Path | None, flag]))
    return declared


def _input_option(option: InputOption) -> Declared:
    flag = typer.Option(
        f"--{option.name}",
        exists=True,
        file_okay=option.kind == "file",
        dir_okay=option.kind == "dir",
        help=option.help or f"File for the app's {option.name!r} input.",
    )
    return (f"in:{option.name}", None, Annotated[Path | None, flag])


def demo_options(application: Application) -> list[Declared]:
    return [_demo_option(option) for option in application.demo_options]


def _demo_option(option: Option) -> Declared:
    flag = typer.Option(f"--{option.name}", help=option.help, show_default=True)
    return (f"demo:{option.name}", option.default, Annotated[type(option.default), flag])


class ReplayCommand(AppCommand):
    declare = staticmethod(replay_options)


class DemoCommand(AppCommand):
    declare = staticmethod(demo_options)
