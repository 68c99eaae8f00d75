"""`streamsense model-server`: one registry model over HTTP, in a process of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamsense.cli.common import console, fail, setup_logging
from streamsense.errors import StreamsenseError


def model_server(
    registry: Annotated[
        Path, typer.Option("--registry", help="The model registry directory.", exists=True)
    ],
    model: Annotated[str, typer.Option("--model", help="The model's name in the registry.")],
    alias: Annotated[str, typer.Option(help="The alias (or version number) to serve.")] = (
        "production"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8100,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve a registry model (`POST /v1/score`, `GET /healthz`) for a remote model tier:
    the API's cascade reaches it with `RemoteModel(url)` (an app may read the URL from
    its environment, as the reference app reads $STREAMSENSE_HEAVY_MODEL_URL)."""
    from streamsense.serving.model_server import serve_model

    setup_logging(verbose)
    console.print(f"serving model {model}@{alias} from {registry} on http://{host}:{port}")
    try:
        serve_model(str(registry), model, alias, host=host, port=port)
    except StreamsenseError as error:
        fail(str(error))
