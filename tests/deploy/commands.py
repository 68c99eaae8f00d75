"""A deployment's command lines, put to the real `streamsense` CLI (issue #20): a renamed
or mistyped option, a value of the wrong type or a command that is gone fails here, not
in a cluster at 3 a.m."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer.main
from typer.testing import CliRunner

from streamsense.cli.main import cli

from .files import ROOT


@contextmanager
def _in_root() -> Iterator[None]:
    # `apps/fraud` and the app command groups (./apps/NAME) resolve from the working
    # directory, the image's WORKDIR holding apps/ as the repository root does.
    before = os.getcwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(before)


def command_problems(args: Sequence[str]) -> list[str]:
    """What the CLI refuses in ``args`` (``streamsense`` left out): empty when it accepts
    them. Two passes: with ``--help`` appended (unknown options and commands fail even in
    app command groups), then a full parse with every value converted, short of running."""
    with _in_root():
        helped = CliRunner().invoke(cli, [*args, "--help"])
        if helped.exit_code != 0:
            return [f"streamsense {' '.join(args)} --help: {helped.output.strip()[-400:]}"]
        return _parse_problems(list(args))


def _parse_problems(args: list[str]) -> list[str]:
    command: Any = typer.main.get_command(cli)
    try:
        context = command.make_context("streamsense", args)
        while hasattr(command, "resolve_command"):  # a group: descend to its command
            name, command, rest = command.resolve_command(
                context, [*context._protected_args, *context.args]
            )
            context = command.make_context(name, rest, parent=context)
    except Exception as error:
        if "does not exist" in str(error):
            return []  # a file inside the container (a mounted volume), not on this host
        return [f"streamsense {' '.join(args)}: {error}"]
    return []
