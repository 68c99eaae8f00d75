"""Recommendations that follow a user's shifting interests (issue #16).

    items ──────────┐
                    ├─→ recs (batch stage: rank, then learn) ─→ recs.served
    interactions ───┘

Two streams, one partition each: a movie's popularity and neighbours are global, so the
ratings of every user meet one model. For each rating the stage writes the list the app
would have served that user just before it (never a movie they rated: served.py), then
learns from the rating: the replay's export is a prequential evaluation as it runs. The
catalogue reaches the same stage through its own flow.
"""

from __future__ import annotations

from pathlib import Path

import typer

import streamsense as ss
from streamsense.application import InputOption
from streamsense.serving import Serving

from . import demo
from .exports import export_recommendations
from .inputs import CsvInputs
from .served import SERVED_TOPIC, ServedBatch
from .stage import Movie, Rating, RecsStage
from .streams import interactions, items

STAGE = RecsStage()
INPUTS = CsvInputs()

app = ss.App("recs")
app.flow(items).batch(STAGE)
app.flow(interactions).batch(STAGE)  # the stage writes SERVED_TOPIC (served.py)


def configure(state_dir: Path) -> None:
    """Converted input files live in the state dir (a rerun finds the same ones)."""
    INPUTS.state_dir = state_dir


def serving(broker: ss.Broker, state_dir: Path) -> Serving:
    """`streamsense serve apps/recs`: a model of its own, loaded from the stage's
    changelog, following the topics (serving.py); the routes are in api.py."""
    from .api import build_serving  # the serving modules load only when serving
    from .serving import RecsService

    service = RecsService(broker, interactions, items, state_topic=app.state_topic(STAGE.name))
    return build_serving(service, broker)


def _commands() -> typer.Typer:
    from .commands import commands  # imported only when `streamsense recs` runs

    return commands


application = ss.Application(
    app=app,
    inputs={"items": items, "interactions": interactions},
    input_options=[
        InputOption("movies", "MovieLens movies.csv (or Parquet).", files=INPUTS.movies),
        InputOption(
            "ratings", "MovieLens ratings.csv, replayed in time order.", files=INPUTS.ratings
        ),
    ],
    configure=configure,
    exports={"recommendations": export_recommendations},
    serving=serving,
    demo=demo.run,
    demo_options=demo.OPTIONS,
    commands=_commands,
)

__all__ = [
    "SERVED_TOPIC",
    "Movie",
    "Rating",
    "ServedBatch",
    "app",
    "application",
    "interactions",
    "items",
]
