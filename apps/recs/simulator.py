"""A MovieLens-shaped world for running the app without the dataset: movies with genres and
popularity, users whose interests sit in a genre or two and shift now and then (the
behaviour the app exists to follow). Deterministic by seed.

Files have the columns the replay's streams read (``Rating``, ``Movie``), ratings in time
order, timestamps in epoch seconds as MovieLens gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

GENRES = ["Drama", "Comedy", "Action", "Horror", "Animation", "Documentary", "Romance", "Sci-Fi"]
START_S = 1_420_070_400  # 2015-01-01


@dataclass(frozen=True)
class SimulatorConfig:
    movies: int = 400
    users: int = 200
    ratings: int = 20_000
    shift_probability: float = 0.01  # per rating: the user takes up another genre
    explore: float = 0.1  # a rating outside the user's genres
    seed: int = 7


def movies_table(config: SimulatorConfig) -> pa.Table:
    rng = np.random.default_rng(config.seed)
    first = rng.integers(0, len(GENRES), config.movies)
    second = rng.integers(0, len(GENRES), config.movies)
    two = rng.random(config.movies) < 0.3
    genres = [
        GENRES[a] + (f"|{GENRES[b]}" if t and b != a else "")
        for a, b, t in zip(first.tolist(), second.tolist(), two.tolist(), strict=True)
    ]
    return pa.table(
        {
            "movieId": np.arange(1, config.movies + 1, dtype=np.int64),
            "title": [f"Movie {m} ({g})" for m, g in enumerate(genres, 1)],
            "genres": genres,
            "time_ms": np.zeros(config.movies, np.int64),
        }
    )


def ratings_table(config: SimulatorConfig, movies: pa.Table) -> pa.Table:
    rng = np.random.default_rng(config.seed + 1)
    by_genre: list[list[int]] = [[] for _ in GENRES]
    for m, genres in zip(
        movies.column("movieId").to_pylist(), movies.column("genres").to_pylist(), strict=True
    ):
        for g in genres.split("|"):
            by_genre[GENRES.index(g)].append(m)
    appeal = rng.pareto(1.5, config.movies + 1) + 1  # a few movies everyone watches
    taste = [list(rng.choice(len(GENRES), 2, replace=False)) for _ in range(config.users)]
    rated: list[set[int]] = [set() for _ in range(config.users)]
    users, chosen, times = [], [], []
    t = START_S
    for _ in range(config.ratings):
        u = int(rng.integers(config.users))
        if rng.random() < config.shift_probability:
            taste[u][int(rng.integers(2))] = int(rng.integers(len(GENRES)))
        g = (
            int(rng.integers(len(GENRES)))
            if rng.random() < config.explore
            else int(rng.choice(taste[u]))
        )
        pool = [m for m in by_genre[g] if m not in rated[u]]
        if not pool:
            continue
        weights = appeal[pool] / appeal[pool].sum()
        movie = int(rng.choice(pool, p=weights))
        rated[u].add(movie)
        t += int(rng.integers(1, 120))
        users.append(u + 1)
        chosen.append(movie)
        times.append(t)
    n = len(users)
    return pa.table(
        {
            "userId": np.asarray(users, np.int64),
            "movieId": np.asarray(chosen, np.int64),
            "rating": rng.integers(6, 11, n) / 2.0,
            "timestamp": np.asarray(times, np.int64),
            "time_ms": np.asarray(times, np.int64) * 1000,
        }
    )


def write_world(config: SimulatorConfig, folder: Path) -> dict[str, Path]:
    """movies.parquet and ratings.parquet in ``folder``, by the stream each feeds."""
    folder.mkdir(parents=True, exist_ok=True)
    movies = movies_table(config)
    paths = {"items": folder / "movies.parquet", "interactions": folder / "ratings.parquet"}
    pq.write_table(movies, paths["items"])
    pq.write_table(ratings_table(config, movies), paths["interactions"])
    return paths
