"""The seed's example on a simulated world: after three ratings of movies of one genre the
user never watched, at least half of their top 10 is in that genre."""

from __future__ import annotations

import pyarrow.compute as pc

from ..demo import _new_genre, _popular_of_genre
from ..model import RecsModel
from ..simulator import SimulatorConfig, movies_table, ratings_table


def test_three_ratings_in_a_new_genre_fill_half_the_top_10() -> None:
    config = SimulatorConfig(ratings=8000, seed=11)
    movies = movies_table(config)
    ratings = ratings_table(config, movies)
    model = RecsModel()
    for movie, genres in zip(
        movies.column("movieId").to_pylist(), movies.column("genres").to_pylist(), strict=True
    ):
        model.catalogue(movie, genres.split("|"))
    model.rate(
        ratings.column("userId").to_numpy(),
        ratings.column("movieId").to_numpy(),
        ratings.column("timestamp").to_numpy(),
    )
    last = pc.max(ratings.column("timestamp")).as_py()
    checked = 0
    for user in sorted(model.user_index)[:20]:
        genre = _new_genre(model, user)
        if genre in {g for m in model.recent_movies(user, 10**6) for g in model.genres_of(m)}:
            continue  # this user has watched every genre
        before, _ = model.recommend(user, 10)
        burst = _popular_of_genre(model, genre)[:3]
        model.rate([user] * 3, burst, [last + 60, last + 120, last + 180])
        after, _ = model.recommend(user, 10)
        in_genre = sum(genre in model.genres_of(m) for m in after.tolist())
        assert in_genre >= 5, (user, genre, in_genre)
        assert in_genre > sum(genre in model.genres_of(m) for m in before.tolist())
        assert not set(after.tolist()) & set(burst)
        checked += 1
    assert checked >= 5
