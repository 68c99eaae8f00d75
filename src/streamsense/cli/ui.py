"""`streamsense ui [APP] --state-dir D [--broker URL]`: the operator UI alone, for a
deployment whose workers and API run elsewhere (``streamsense serve`` mounts the same UI at
/ui). With APP, its flows, decisions, features and monitoring; without, the broker's topics
and the state dir's model registry. The API key comes from $STREAMSENSE_API_KEY."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from streamsense.cli.common import (
    DEFAULT_STATE_DIR,
    BrokerOption,
    StateDirOption,
    VerboseOption,
    connect,
    console,
    fail,
    setup_logging,
)
from streamsense.cli.session import load_spec
from streamsense.errors import MissingExtra
from streamsense.extras import require


def ui(
    app: Annotated[
        str | None, typer.Argument(help="App folder, file.py or module[:attr] (optional).")
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    served: Annotated[
        bool,
        typer.Option(
            "--serving/--no-serving",
            help="Build the app's serving too (its feature views for lookups, its registry).",
        ),
    ] = True,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    verbose: VerboseOption = False,
) -> None:
    """Serve the operator UI of a running deployment at http://HOST:PORT/ui."""
    try:
        uvicorn = require("uvicorn", "serving")
        require("jinja2", "serving")
    except MissingExtra as error:
        fail(str(error))
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route

    from streamsense.ui import ui_context
    from streamsense.ui.web import create_ui

    setup_logging(verbose)
    target = connect(broker, state_dir)
    application = load_spec(app, state_dir) if app is not None else None
    serving = None
    if application is not None and served and application.serving is not None:
        serving = application.serving(target, state_dir)
    context = ui_context(
        target,
        name=application.name if application is not None else target.url,
        app=application.app if application is not None else None,
        serving=serving,
        state_dir=state_dir,
        api_key=os.environ.get("STREAMSENSE_API_KEY") or None,
    )
    site = Starlette(
        routes=[
            Route("/", lambda request: RedirectResponse("/ui/overview", 303)),
            Mount("/ui", create_ui(context)),
        ]
    )
    console.print(f"operator UI of {context.name} on http://{host}:{port}/ui (broker {target.url})")
    try:
        uvicorn.run(site, host=host, port=port, log_level="warning", access_log=False)
    finally:
        target.close()
