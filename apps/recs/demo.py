"""`streamsense demo apps/recs`: a simulated catalogue and ratings replayed through the
pipeline, then one user's list before and after a burst of three ratings in a genre they
never watched (the seed's "three cooking videos in a row"), posted as events and processed
by the same pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import msgspec
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streamsense.application import Option, OptionValue, Session
from streamsense.errors import ConfigError

from .model import RecsModel
from .simulator import GENRES, SimulatorConfig, write_world
from .stage import Rating, RecsStage

OPTIONS = [
    Option("ratings", 20_000, "Simulated ratings."),
    Option("seed", 7, "The simulation's seed: the same seed, the same ratings."),
]
BURST = 3


def recs_stage(session: Session) -> RecsStage:
    stage = session.application.app.batch_stages().get("recs")
    if not isinstance(stage, RecsStage):
        raise ConfigError("the demo needs the recs app's stage")
    return stage


def _new_genre(model: RecsModel, user: int) -> str:
    """A genre the user never rated a movie of (the first of the list)."""
    watched = {g for m in model.recent_movies(user, 10**6) for g in model.genres_of(m)}
    u = model.user_index[user]
    watched |= {
        model.genre_names[g] for g in range(len(model.genre_names)) if model.users.long[u, g] > 0
    }
    fresh = [g for g in GENRES if g not in watched]
    return fresh[0] if fresh else GENRES[0]


def _popular_of_genre(model: RecsModel, genre: str) -> list[int]:
    """Movies of that genre alone, most rated first (unrated ones last)."""
    alone = [m for m in model.item_ids if model.genres_of(m) == [genre]]
    return sorted(alone, key=lambda m: -model.items.times_rated[model.item_index[m]])


def _show(session: Session, model: RecsModel, user: int, title: str, genre: str) -> int:
    movies, _ = model.recommend(user, 10)
    matching = 0
    session.console.print(f"[bold]{title}[/bold]")
    for rank, movie in enumerate(movies.tolist(), 1):
        genres = model.genres_of(movie)
        matching += genre in genres
        session.console.print(f"  {rank:2}. movie {movie:<5} {'|'.join(genres)}")
    session.console.print(f"  → {matching} of 10 in {genre}")
    return matching


def run(session: Session, options: Mapping[str, OptionValue]) -> Mapping[str, Path] | None:
    config = SimulatorConfig(ratings=int(str(options["ratings"])), seed=int(str(options["seed"])))
    files = write_world(config, session.state_dir / "world")
    replayed = session.replay(files)
    session.console.print(
        f"replayed {replayed.stats.events:,} events in {replayed.seconds:.1f} s "
        f"({replayed.stats.events / replayed.seconds:,.0f} events/s)"
    )
    model = recs_stage(session).model()
    user = max(model.user_index, key=lambda u: int(model.users.seen[model.user_index[u]]))
    genre = _new_genre(model, user)
    _show(session, model, user, f"user {user}: top 10 now", genre)
    burst = _popular_of_genre(model, genre)[:BURST]
    last = pc.max(pq.read_table(files["interactions"]).column("timestamp")).as_py()
    path = session.state_dir / "burst.jsonl"
    encode = msgspec.json.Encoder().encode
    with path.open("wb") as out:
        for n, movie in enumerate(burst, 1):
            t = last + 60 * n
            out.write(encode(Rating(user, movie, 4.5, t, t * 1000)) + b"\n")
    session.console.print(f"user {user} rates {BURST} {genre} movies: {burst}")
    session.replay({"interactions": path})
    # a new worker ran the burst: the stage's model is the one it restored and updated
    after = recs_stage(session).model()
    _show(session, after, user, f"user {user}: top 10 after", genre)
    return None
