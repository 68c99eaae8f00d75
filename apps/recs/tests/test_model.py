"""The recommender's model: lists never hold a rated movie, follow recent interests, and
survive a restart through the state entries exactly."""

from __future__ import annotations

import numpy as np

from ..model import RecsModel
from ..state import changed_entries, pair_capacity, restored

GENRES = ["Drama", "Comedy", "Horror", "Animation"]


def catalogue(model: RecsModel, movies: int = 200) -> None:
    for m in range(movies):
        model.catalogue(m, [GENRES[m % len(GENRES)]])


def ratings(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 30, n)
    # each user mostly sticks to one genre: movies m with m % 4 == user % 4
    movies = (rng.integers(0, 50, n) * 4 + users % 4) % 200
    times = 1_000_000 + np.arange(n) * 60
    return users, movies, times


def test_lists_are_full_and_never_hold_a_rated_movie() -> None:
    model = RecsModel()
    catalogue(model)
    users, movies, times = ratings(3000)
    served = np.concatenate(
        [
            model.rate(users[s : s + 250], movies[s : s + 250], times[s : s + 250])
            for s in range(0, 3000, 250)
        ]
    )
    rated: dict[int, set[int]] = {}
    for u, m, listed in zip(users.tolist(), movies.tolist(), served.tolist(), strict=True):
        assert len([x for x in listed if x >= 0]) >= 10
        assert not rated.get(u, set()) & set(listed)
        rated.setdefault(u, set()).add(m)


def test_batch_boundaries_do_not_change_the_lists() -> None:
    users, movies, times = ratings(1500)
    one, many = RecsModel(), RecsModel()
    catalogue(one)
    catalogue(many)
    whole = one.rate(users, movies, times)
    parts = np.concatenate(
        [
            many.rate(users[s : s + 7], movies[s : s + 7], times[s : s + 7])
            for s in range(0, 1500, 7)
        ]
    )
    assert np.array_equal(whole, parts)


def test_restored_state_ranks_like_the_model_that_never_stopped() -> None:
    users, movies, times = ratings(2000)
    kept, stopped = RecsModel(), RecsModel()
    catalogue(kept)
    catalogue(stopped)
    kept.rate(users[:1200], movies[:1200], times[:1200])
    stopped.rate(users[:700], movies[:700], times[:700])
    _, first = changed_entries(stopped)  # an earlier write
    stopped.rate(users[700:1200], movies[700:1200], times[700:1200])
    meta, later = changed_entries(stopped)  # only what changed since
    assert len(later) < len(first) + 30
    # the compacted changelog keeps each key's latest entry
    latest = {key: value for key, value in [*first, *later] if value is not None}
    again = restored(stopped.params, meta, list(latest.items()))
    tail = slice(1200, 2000)
    assert np.array_equal(
        kept.rate(users[tail], movies[tail], times[tail]),
        again.rate(users[tail], movies[tail], times[tail]),
    )


def test_a_restored_pair_table_is_a_power_of_two_with_room() -> None:
    for pairs in (0, 1, 2047, 2048, 2049, 86_220, 10**6):
        size = pair_capacity(pairs)
        assert size & (size - 1) == 0 and size >= 4 * pairs


def test_a_large_restored_state_ranks_like_the_model_that_never_stopped() -> None:
    rng = np.random.default_rng(8)
    users, movies = rng.integers(0, 400, 9000), rng.integers(0, 600, 9000)
    times = 1_000_000 + np.arange(9000) * 60
    kept, stopped = RecsModel(), RecsModel()
    catalogue(kept, 600)
    catalogue(stopped, 600)
    kept.rate(users[:8000], movies[:8000], times[:8000])
    stopped.rate(users[:8000], movies[:8000], times[:8000])
    meta, entries = changed_entries(stopped)
    again = restored(stopped.params, meta, [(k, v) for k, v in entries if v is not None])
    assert len(again.shared.pairs) == pair_capacity(int(again.shared.counters[2]))
    tail = slice(8000, 9000)
    assert np.array_equal(
        kept.rate(users[tail], movies[tail], times[tail]),
        again.rate(users[tail], movies[tail], times[tail]),
    )
