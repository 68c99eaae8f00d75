"""The recommender's compiled entry point: ``process`` handles a whole micro-batch of
ratings in log order, each first ranked for (what the user would have been served just
before it: ranking.py) and then learned from (learning.py), on the arrays laid out in
layout.py. The functions model.py calls are exported here."""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import (
    C_SEQ,
    EMPTY,
    I_POP,
    I_TIMES_RATED,
    REFRESH,
    S_COUNTERS,
    S_PAIRS,
    S_T0,
    Arrays,
    cache_name,
)
from .learning import add_pair, learn, rebuild_pairs, refresh_trending, rescale
from .ranking import rated, recommend, top_up

# numba's cache pickles each kernel's globals by module name, and an app's modules get the
# name of however they were imported (the loader's, or pytest's): one fixed name, bound to
# this module, lets every importer reuse the cache instead of failing to load it.
__name__ = cache_name(__name__, "streamsense_apps_recs_kernels")

__all__ = ["add_pair", "learn", "process", "rated", "rebuild_pairs", "recommend", "top_up"]


@njit(cache=True)
def process(
    items: Arrays,
    users: Arrays,
    shared: Arrays,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    times: np.ndarray,
    params: np.ndarray,
    n_items: int,
    out: np.ndarray,
) -> None:
    """For each rating in order: the ranking served just before it into ``out`` (item
    indices, EMPTY where fewer were found), then learn from it."""
    knn = np.zeros(len(items[I_TIMES_RATED]), np.float64)
    touched = np.empty(len(items[I_TIMES_RATED]), np.int64)
    best_s = np.empty(out.shape[1], np.float64)
    # Single arrays taken out of the tuples once: a call given a tuple counts a reference
    # to each of its arrays up and down (atomically), which was a quarter of this kernel.
    pop, t0, pairs, counters = items[I_POP], shared[S_T0], shared[S_PAIRS], shared[S_COUNTERS]
    for e in range(len(user_idx)):
        u, i, t = user_idx[e], item_idx[e], float(times[e])
        rescale(pop, t0, t, params)
        out[e, :] = EMPTY
        filled = recommend(items, users, shared, u, params, knn, touched, out[e], best_s)
        top_up(pairs, u, out[e], filled, n_items)
        learn(items, users, shared, u, i, t, params)
        counters[C_SEQ] += 1
        seq = counters[C_SEQ]
        # early on, at every power of two: a new catalogue has trending items soon
        if seq % REFRESH == 0 or (seq < REFRESH and seq & (seq - 1) == 0):
            refresh_trending(items, shared, n_items)
