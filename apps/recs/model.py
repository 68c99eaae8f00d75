"""The recommender's state in one object: id maps, the arrays the kernels work on (grown by
doubling), the catalogue, and the ranking parameters.

``RecsModel.rate`` takes a batch of ratings (in log order) and returns, for each, the movie
ids the app would have served that user just before it; ``recommend`` answers a request
now; ``catalogue`` takes a movie's genres. Persistence is per key (state.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import kernels as K
from . import layout as L
from .layout import EMPTY, GENRES, HORIZONS, Items, Shared, Users

DAY_S = 86_400.0
Ids = Sequence[int] | np.ndarray
NO_GENRE = "(no genres listed)"


def default_params() -> np.ndarray:
    """The ranker's weights and learning rates, chosen among a few settings on the split
    of bench/recs_bench.py (scoring 2015-16); BENCHMARKS.md shows how they hold on 2013-14."""
    p = np.zeros(L.N_PARAMS)
    p[L.P_KNN] = 1.0
    p[L.P_GENRE] = 0.2
    p[L.P_TREND] = 0.005
    p[L.P_POP] = 0.0
    p[L.P_SHORT] = 0.9
    p[L.P_RECENT_DECAY] = 0.7
    p[L.P_CO_DECAY] = 0.8
    p[L.P_SHORT_DECAY] = 0.8
    p[L.P_LOOKBACK] = 5
    p[L.P_WINDOW] = 15
    p[L.P_FOCUS] = 1.0
    p[L.P_MIN_CO] = 1.5
    p[L.P_TAU0] = 7 * DAY_S
    p[L.P_TAU1] = 90 * DAY_S
    p[L.P_TAU2] = 3650 * DAY_S
    return p


def new_items(n: int) -> Items:
    return Items(
        genres=np.zeros((n, GENRES), np.float32),
        n_genres=np.zeros(n, np.float32),
        genre_list=np.zeros((n, GENRES), np.int8),
        pop=np.zeros((n, HORIZONS), np.float64),
        times_rated=np.zeros(n, np.float64),
        nbr_id=np.full((n, L.NEIGHBOURS), EMPTY, np.int32),
        nbr_w=np.zeros((n, L.NEIGHBOURS), np.float32),
        dirty=np.zeros(n, np.bool_),
    )


def new_users(n: int) -> Users:
    return Users(
        recent=np.full((n, L.RECENT), EMPTY, np.int32),
        seen=np.zeros(n, np.int64),
        short=np.zeros((n, GENRES), np.float32),
        long=np.zeros((n, GENRES), np.float32),
        last_log=np.full(n, EMPTY, np.int64),
        dirty=np.zeros(n, np.bool_),
    )


def new_shared(log_capacity: int, pairs_capacity: int) -> Shared:
    return Shared(
        log_item=np.zeros(log_capacity, np.int32),
        log_prev=np.full(log_capacity, EMPTY, np.int64),
        pairs=np.full(pairs_capacity, EMPTY, np.int64),
        t0=np.zeros(HORIZONS, np.float64),
        trending=np.full(L.TRENDING, EMPTY, np.int32),
        by_genre=np.full((GENRES, L.PER_GENRE), EMPTY, np.int32),
        counters=np.zeros(3, np.int64),
    )


ITEM_FILLS = (0, 0, 0, 0, 0, EMPTY, 0, 0)  # Items fields' values for a new row
USER_FILLS = (EMPTY, 0, 0, 0, EMPTY, 0)


def _grown(arrays: tuple[np.ndarray, ...], n: int, fills: tuple[int, ...]) -> list[np.ndarray]:
    """Each array with room for ``n`` rows, new rows as a fresh array's."""
    out = []
    for a, fill in zip(arrays, fills, strict=True):
        bigger = np.full((n, *a.shape[1:]), fill, a.dtype)
        bigger[: len(a)] = a
        out.append(bigger)
    return out


@dataclass
class RecsModel:
    params: np.ndarray = field(default_factory=default_params)
    items: Items = field(default_factory=lambda: new_items(1024))
    users: Users = field(default_factory=lambda: new_users(256))
    shared: Shared = field(default_factory=lambda: new_shared(4096, 8192))
    item_index: dict[int, int] = field(default_factory=dict)
    user_index: dict[int, int] = field(default_factory=dict)
    item_ids: list[int] = field(default_factory=list)  # dense index -> movieId
    user_ids: list[int] = field(default_factory=list)
    genre_names: list[str] = field(default_factory=list)  # bit g -> genre name
    _ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # item_ids, -1

    # -- ids and capacity ---------------------------------------------------------------
    def item(self, movie: int) -> int:
        index = self.item_index.get(movie)
        if index is None:
            index = self.item_index[movie] = len(self.item_ids)
            self.item_ids.append(movie)
            if index >= len(self.items.times_rated):
                self.items = Items(*_grown(tuple(self.items), 2 * index, ITEM_FILLS))
        return index

    def user(self, user: int) -> int:
        index = self.user_index.get(user)
        if index is None:
            index = self.user_index[user] = len(self.user_ids)
            self.user_ids.append(user)
            if index >= len(self.users.seen):
                self.users = Users(*_grown(tuple(self.users), 2 * index, USER_FILLS))
        return index

    def _room_for(self, n: int) -> None:
        """Log and pair table large enough for ``n`` more ratings (table at most half
        full, so probes stay short)."""
        shared = self.shared
        logged = int(shared.counters[L.C_LOG])
        log_cap = len(shared.log_item)
        pairs_cap = len(shared.pairs)
        if logged + n <= log_cap and 2 * (int(shared.counters[L.C_PAIRS]) + n) <= pairs_cap:
            return
        while logged + n > log_cap:
            log_cap *= 2
        while 2 * (logged + n) > pairs_cap:
            pairs_cap *= 2
        fresh = new_shared(log_cap, pairs_cap)
        fresh.log_item[:logged] = shared.log_item[:logged]
        fresh.log_prev[:logged] = shared.log_prev[:logged]
        for name in ("t0", "trending", "by_genre"):
            getattr(fresh, name)[:] = getattr(shared, name)
        fresh.counters[L.C_SEQ] = shared.counters[L.C_SEQ]
        fresh.counters[L.C_LOG] = logged
        self.shared = fresh
        K.rebuild_pairs(tuple(fresh), tuple(self.users))

    # -- the catalogue ----------------------------------------------------------------------
    def catalogue(self, movie: int, genres: Sequence[str]) -> None:
        i = self.item(movie)
        vector = np.zeros(GENRES, np.float32)
        for name in genres:
            if not name or name == NO_GENRE:
                continue
            if name not in self.genre_names:
                if len(self.genre_names) == GENRES:
                    continue  # more genres than slots: the rest are not profiled
                self.genre_names.append(name)
            vector[self.genre_names.index(name)] = 1.0
        self.items.genres[i] = vector
        slots = np.flatnonzero(vector)
        self.items.n_genres[i] = len(slots)
        self.items.genre_list[i, : len(slots)] = slots
        self.items.dirty[i] = True

    def genres_of(self, movie: int) -> list[str]:
        i = self.item_index.get(movie)
        if i is None:
            return []
        return [self.genre_names[g] for g in np.flatnonzero(self.items.genres[i])]

    # -- ratings and requests ---------------------------------------------------------------
    def rate(self, users: Ids, movies: Ids, times_s: Ids) -> np.ndarray:
        """Each rating ranked for before it, then learned: movie ids [n, K_OUT], best first
        (-1 where the catalogue had fewer unrated movies)."""
        # plain ints first: a numpy scalar per id cost more than the lookup
        ids = np.asarray(users, np.int64).tolist(), np.asarray(movies, np.int64).tolist()
        user_idx = np.fromiter(map(self.user, ids[0]), np.int64, len(users))
        item_idx = np.fromiter(map(self.item, ids[1]), np.int64, len(movies))
        times = np.asarray(times_s, np.float64)
        self._room_for(len(user_idx))
        out = np.empty((len(user_idx), L.K_OUT), np.int32)
        K.process(
            tuple(self.items),
            tuple(self.users),
            tuple(self.shared),
            user_idx,
            item_idx,
            times,
            self.params,
            len(self.item_ids),
            out,
        )
        return self.to_movie_ids(out)

    def to_movie_ids(self, indices: np.ndarray) -> np.ndarray:
        if len(self._ids) != len(self.item_ids) + 1:  # new movies since the last call
            self._ids = np.asarray([*self.item_ids, -1], np.int64)  # EMPTY maps to the -1
        found: np.ndarray = self._ids[indices]
        return found

    def recommend(self, user: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The user's top ``k`` movie ids now and their scores (a known user; see
        serving for the unknown ones)."""
        u = self.user_index[user]
        n = len(self.items.times_rated)
        best_id = np.full(k, EMPTY, np.int32)
        best_s = np.zeros(k, np.float64)
        knn = np.zeros(n, np.float64)
        touched = np.empty(n, np.int64)
        arrays = tuple(self.items), tuple(self.users), tuple(self.shared)
        filled = K.recommend(*arrays, u, self.params, knn, touched, best_id, best_s)
        K.top_up(self.shared.pairs, u, best_id, filled, len(self.item_ids))
        return self.to_movie_ids(best_id), best_s

    def recent_movies(self, user: int, n: int) -> list[int]:
        u = self.user_index.get(user)
        if u is None:
            return []
        seen = int(self.users.seen[u])
        ring = self.users.recent[u]
        return [
            self.item_ids[ring[(seen - 1 - r) % L.RECENT]] for r in range(min(n, seen, L.RECENT))
        ]

    def trending_movies(self, genres: Sequence[int] = ()) -> list[int]:
        """Trending movie ids, overall or within the given genre slots (best first)."""
        lists = [self.shared.by_genre[g] for g in genres] or [self.shared.trending]
        order: dict[int, None] = {}
        for rank in range(max(len(x) for x in lists)):
            for x in lists:
                if rank < len(x) and x[rank] != EMPTY:
                    order[self.item_ids[x[rank]]] = None
        return list(order)

    def long_term_genres(self, user: int, n: int = 3) -> list[int]:
        u = self.user_index.get(user)
        if u is None:
            return []
        profile = self.users.long[u]
        return [int(g) for g in np.argsort(-profile, kind="stable")[:n] if profile[g] > 0]
