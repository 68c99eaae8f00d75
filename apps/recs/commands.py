"""`streamsense recs serve`: the recommendations API over the broker of a state dir (the
one `streamsense replay apps/recs` or `run apps/recs` fill)."""

from __future__ import annotations

from typing import Annotated

import typer

from streamsense.cli.common import (
    DEFAULT_STATE_DIR,
    BrokerOption,
    StateDirOption,
    connect,
    console,
)

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
    """GET /v1/recommend/{user}?k=20 and POST /v1/events/interactions."""
    import uvicorn

    from .api import create_api
    from .serving import RecsService
    from .streams import interactions, items

    target = connect(broker, state_dir)
    for stream in (interactions, items):
        for topic, config in stream.topic_configs().items():
            target.create_topic(topic, config, exist_ok=True)
    service = RecsService(target, interactions, items)
    service.start()
    console.print(f"serving recs on http://{host}:{port} (broker {target.url})")
    try:
        uvicorn.run(create_api(service), host=host, port=port, log_level="warning")
    finally:
        service.stop()
        target.close()
