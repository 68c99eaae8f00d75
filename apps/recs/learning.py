"""Learning from one rating: the rated set and the user's log chain, co-occurrence with the
user's recent movies, decayed popularity, genre profiles; and the periodic upkeep
(popularity scale, trending lists)."""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import (
    C_LOG,
    C_PAIRS,
    EMPTY,
    GENRES,
    HORIZONS,
    I_DIRTY,
    I_GENRE_LIST,
    I_GENRES,
    I_N_GENRES,
    I_NBR_ID,
    I_NBR_W,
    I_POP,
    I_TIMES_RATED,
    NEIGHBOURS,
    P_CO_DECAY,
    P_SHORT_DECAY,
    P_TAU0,
    P_WINDOW,
    PER_GENRE,
    RECENT,
    S_BY_GENRE,
    S_COUNTERS,
    S_LOG_ITEM,
    S_LOG_PREV,
    S_PAIRS,
    S_T0,
    S_TRENDING,
    TRENDING,
    U_DIRTY,
    U_LAST_LOG,
    U_LONG,
    U_RECENT,
    U_SEEN,
    U_SHORT,
    Arrays,
    cache_name,
)
from .ranking import _insert_top, slot

# numba's cache pickles each kernel's globals by module name, and an app's modules get the
# name of however they were imported (the loader's, or pytest's): one fixed name, bound to
# this module, lets every importer reuse the cache instead of failing to load it.
__name__ = cache_name(__name__, "streamsense_apps_recs_learning")


# The kernels take arrays out of their tuples once, outside loops: taken inside one, each
# access counts a reference up and down atomically (a quarter of the kernel, issue #16).


@njit(cache=True)
def _add(pairs: np.ndarray, counters: np.ndarray, user: int, item: int) -> bool:
    key = (np.int64(user) << 32) | item
    h = slot(pairs, key)
    if pairs[h] == key:
        return False
    pairs[h] = key
    counters[C_PAIRS] += 1
    return True


@njit(cache=True)
def add_pair(shared: Arrays, user: int, item: int) -> bool:
    """True when the pair is new (the caller keeps the table at most half full)."""
    return _add(shared[S_PAIRS], shared[S_COUNTERS], user, item)


@njit(cache=True)
def rebuild_pairs(shared: Arrays, users: Arrays) -> None:
    """Fill an empty table from every user's chain of ratings (restore, growth)."""
    pairs, counters, last_log = shared[S_PAIRS], shared[S_COUNTERS], users[U_LAST_LOG]
    log_item, log_prev = shared[S_LOG_ITEM], shared[S_LOG_PREV]
    for u in range(len(last_log)):
        k = last_log[u]
        while k != EMPTY:
            _add(pairs, counters, u, log_item[k])
            k = log_prev[k]


@njit(cache=True)
def _link(nbr_id: np.ndarray, nbr_w: np.ndarray, i: int, j: int, w: float) -> None:
    """Add ``w`` to the co-occurrence of j in i's neighbours, then of i in j's; a full list
    replaces its weakest with the newcomer when the weakest is no stronger than ``w``.
    (Space-saving, where the newcomer inherits the weakest's weight, filled the lists with
    recent chance pairs: Hit@10 0.029 against 0.076 this way, bench/recs_bench.py.) Both
    directions in one call: each call counts references to its arrays (see above)."""
    for side in range(2):
        a, b = (i, j) if side == 0 else (j, i)
        found = False
        for m in range(NEIGHBOURS):  # ids only: most links find b, or a free slot, early
            c = nbr_id[a, m]
            if c == b:
                nbr_w[a, m] += w
                found = True
                break
            if c == EMPTY:
                nbr_id[a, m] = b
                nbr_w[a, m] = w
                found = True
                break
        if found:
            continue
        weakest = 0  # a full list: its first weakest
        for m in range(1, NEIGHBOURS):
            if nbr_w[a, m] < nbr_w[a, weakest]:
                weakest = m
        if nbr_w[a, weakest] <= w:  # a new pair starts afresh: only the weakest churn
            nbr_id[a, weakest] = b
            nbr_w[a, weakest] = w


@njit(cache=True)
def learn(
    items: Arrays, users: Arrays, shared: Arrays, u: int, i: int, t: float, params: np.ndarray
) -> None:
    """Take the rating (user u, item i at t seconds) into the state."""
    seen = users[U_SEEN][u]
    recent, nbr_id, nbr_w, dirty = users[U_RECENT], items[I_NBR_ID], items[I_NBR_W], items[I_DIRTY]
    if _add(shared[S_PAIRS], shared[S_COUNTERS], u, i):
        k = shared[S_COUNTERS][C_LOG]
        shared[S_LOG_ITEM][k] = i
        shared[S_LOG_PREV][k] = users[U_LAST_LOG][u]
        users[U_LAST_LOG][u] = k
        shared[S_COUNTERS][C_LOG] = k + 1
        w = 1.0
        for r in range(min(seen, int(params[P_WINDOW]), RECENT)):
            j = recent[u, (seen - 1 - r) % RECENT]
            if j != i:
                _link(nbr_id, nbr_w, i, j, w)
                dirty[j] = True
            w *= params[P_CO_DECAY]
        items[I_TIMES_RATED][i] += 1.0
        for h in range(HORIZONS):
            items[I_POP][i, h] += np.exp((t - shared[S_T0][h]) / params[P_TAU0 + h])
        users[U_LONG][u] += items[I_GENRES][i]
    users[U_SHORT][u] = users[U_SHORT][u] * params[P_SHORT_DECAY] + items[I_GENRES][i]
    users[U_RECENT][u, seen % RECENT] = i
    users[U_SEEN][u] = seen + 1
    items[I_DIRTY][i] = True
    users[U_DIRTY][u] = True


@njit(cache=True)
def rescale(pop: np.ndarray, t0: np.ndarray, t: float, params: np.ndarray) -> None:
    """Move a popularity scale's reference time ``t0`` forward before exp() overflows."""
    for h in range(HORIZONS):
        tau = params[P_TAU0 + h]
        if (t - t0[h]) / tau > 50.0:
            factor = np.exp(-(t - t0[h]) / tau)
            for c in range(len(pop)):
                pop[c, h] *= factor
            t0[h] = t


@njit(cache=True)
def refresh_trending(items: Arrays, shared: Arrays, n_items: int) -> None:
    """The most popular items over the shortest horizon (popularity above 0), overall and
    per genre, best first, ties in catalogue order. One pass keeping each list's best
    (items in index order, a newcomer placed after its equals): the lists a stable sort of
    the whole catalogue gives, without the sort, which cost ~1 ms a refresh (issue #16)."""
    shared[S_TRENDING][:] = EMPTY
    shared[S_BY_GENRE][:] = EMPTY
    top_s = np.empty(TRENDING, np.float64)
    genre_s = np.empty((GENRES, PER_GENRE), np.float64)
    top_n = 0
    genre_n = np.zeros(GENRES, np.int64)
    for c in range(n_items):
        p = items[I_POP][c, 0]
        if p <= 0:
            continue
        top_n = _insert_top(shared[S_TRENDING], top_s, top_n, c, p)
        for k in range(int(items[I_N_GENRES][c])):  # the movie's genres, not all slots
            g = items[I_GENRE_LIST][c, k]
            genre_n[g] = _insert_top(shared[S_BY_GENRE][g], genre_s[g], genre_n[g], c, p)
