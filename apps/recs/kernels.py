"""Compiled kernels of the recommender: one call handles a whole micro-batch of ratings,
in log order, each first ranked for (what the user would have been served just before it)
and then learned from.

State is plain numpy arrays grouped in named tuples (``Items``, ``Users``, ``Shared``:
model.py builds and grows them), so the whole batch runs without returning to Python:
- items: genre vectors, decayed popularity over several horizons (kept in a scaled
  exponential space: adding exp((t - t0) / tau) per rating, so no item is touched when
  time passes; t0 moves forward now and then to keep the numbers finite), and a bounded
  list of item-item co-occurrence neighbours (a new pair replaces the weakest only when
  at least as strong, so the heavy pairs stay while the tail churns);
- users: a ring of their recent items, a short-horizon genre profile (decays per
  interaction: a sitting) and a long-term one (all history), and a chain through the rating
  log of every item they rated (what an entry of the state changelog holds);
- shared: an open-addressing hash set of (user, item) pairs (already rated, never
  recommended), the trending lists (refreshed every ``REFRESH`` ratings: a function of the
  log, so batch boundaries never change a list) and the counters.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
from numba import njit

# numba's cache pickles each kernel's globals by module name, and an app's modules get the
# name of however they were imported (the loader's, or pytest's): one fixed name, bound
# to this module, lets every importer reuse the cache instead of failing to load it.
_CACHE_NAME = "streamsense_apps_recs_kernels"
sys.modules.setdefault(_CACHE_NAME, sys.modules[__name__])
__name__ = _CACHE_NAME

K_OUT = 20  # recommendations produced per rating (the export keeps them all, best first)
RECENT = 32  # ring of recent items per user
NEIGHBOURS = 128  # bounded co-occurrence neighbours per item
GENRES = 32  # genre slots (a bit each in the catalogue's mask)
HORIZONS = 3  # popularity half-lives (params TAU_*)
TRENDING = 50  # global trending list length
PER_GENRE = 20  # trending list length per genre
REFRESH = 256  # ratings between refreshes of the trending lists
EMPTY = -1

# Parameters (``params`` array): the ranker's weights and the learning rates.
P_KNN, P_GENRE, P_TREND, P_POP = 0, 1, 2, 3  # score weights
P_SHORT = 4  # share of the short-term genre profile in the blend (rest: long-term)
P_RECENT_DECAY = 5  # weight of the r-th most recent item in the kNN sum: decay ** r
P_CO_DECAY = 6  # co-occurrence weight of the r-th most recent item when learning
P_SHORT_DECAY = 7  # short-term genre profile kept per new interaction
P_LOOKBACK = 8  # recent items used for candidates
P_WINDOW = 9  # recent items that co-occur with a new one
P_TAU0, P_TAU1, P_TAU2 = 10, 11, 12  # popularity time constants (seconds)
P_FOCUS = 13  # extra genre weight when the recent sitting keeps to one genre
P_MIN_CO = 14  # weakest co-occurrence a candidate is drawn from
N_PARAMS = 15

# Counters (``Shared.counters``).
C_SEQ, C_LOG, C_PAIRS = 0, 1, 2


# Fields of the items tuple: the kernels take plain tuples (numba's cache cannot
# pickle a named tuple class of a module imported under another name).
I_GENRES = 0
I_N_GENRES = 1
I_GENRE_LIST = 2
I_POP = 3
I_TIMES_RATED = 4
I_NBR_ID = 5
I_NBR_W = 6
I_DIRTY = 7
U_RECENT = 0
U_SEEN = 1
U_SHORT = 2
U_LONG = 3
U_LAST_LOG = 4
U_DIRTY = 5
S_LOG_ITEM = 0
S_LOG_PREV = 1
S_PAIRS = 2
S_T0 = 3
S_TRENDING = 4
S_BY_GENRE = 5
S_COUNTERS = 6


Arrays = tuple[np.ndarray, ...]  # one of the named tuples below, as a plain tuple


class Items(NamedTuple):
    genres: np.ndarray  # float32 [n, GENRES]: 1 per genre of the movie
    n_genres: np.ndarray  # float32 [n]
    genre_list: np.ndarray  # int8 [n, GENRES]: the movie's genre slots, n_genres of them
    pop: np.ndarray  # float64 [n, HORIZONS], scaled by exp(-t0 / tau)
    times_rated: np.ndarray  # float64 [n]: ratings ever
    nbr_id: np.ndarray  # int32 [n, NEIGHBOURS], EMPTY-padded
    nbr_w: np.ndarray  # float32 [n, NEIGHBOURS]
    dirty: np.ndarray  # bool [n]: changed since the last state write


class Users(NamedTuple):
    recent: np.ndarray  # int32 [n, RECENT]: ring of item indices
    seen: np.ndarray  # int64 [n]: interactions ever (ring position = seen % RECENT)
    short: np.ndarray  # float32 [n, GENRES]
    long: np.ndarray  # float32 [n, GENRES]
    last_log: np.ndarray  # int64 [n]: the user's latest rating in the log, EMPTY if none
    dirty: np.ndarray  # bool [n]


class Shared(NamedTuple):
    log_item: np.ndarray  # int32 [capacity]: item of each rating, in log order
    log_prev: np.ndarray  # int64 [capacity]: the same user's previous rating, EMPTY
    pairs: np.ndarray  # int64 [capacity]: hash set of user << 32 | item, EMPTY slots
    t0: np.ndarray  # float64 [HORIZONS]: reference times of the popularity scale
    trending: np.ndarray  # int32 [TRENDING]
    by_genre: np.ndarray  # int32 [GENRES, PER_GENRE]
    counters: np.ndarray  # int64 [3]: sequence, log length, pairs held


@njit(cache=True)
def _slot(pairs: np.ndarray, key: np.int64) -> int:
    """The slot holding ``key``, or the empty slot where it would go (linear probing)."""
    mask = len(pairs) - 1
    h = key ^ (key >> 29)  # murmur3's finaliser mixes user and item bits into the low ones
    h = h * np.int64(-49064778989728563)  # 0xff51afd7ed558ccd as a signed 64-bit number
    h = (h ^ (h >> 32)) & mask
    while pairs[h] != EMPTY and pairs[h] != key:
        h = (h + 1) & mask
    return int(h)


@njit(cache=True)
def rated(shared: Arrays, user: int, item: int) -> bool:
    key = (np.int64(user) << 32) | item
    found: bool = shared[S_PAIRS][_slot(shared[S_PAIRS], key)] == key
    return found


@njit(cache=True)
def add_pair(shared: Arrays, user: int, item: int) -> bool:
    """True when the pair is new (the caller keeps the table at most half full)."""
    key = (np.int64(user) << 32) | item
    h = _slot(shared[S_PAIRS], key)
    if shared[S_PAIRS][h] == key:
        return False
    shared[S_PAIRS][h] = key
    shared[S_COUNTERS][C_PAIRS] += 1
    return True


@njit(cache=True)
def rebuild_pairs(shared: Arrays, users: Arrays) -> None:
    """Fill an empty table from every user's chain of ratings (restore, growth)."""
    for u in range(len(users[U_LAST_LOG])):
        k = users[U_LAST_LOG][u]
        while k != EMPTY:
            add_pair(shared, u, shared[S_LOG_ITEM][k])
            k = shared[S_LOG_PREV][k]


@njit(cache=True)
def _popularity(items: Arrays, c: int, h: int, top: float) -> float:
    return float(items[I_POP][c, h] / top) if top > 0 else 0.0


@njit(cache=True)
def _insert_top(best_id: np.ndarray, best_s: np.ndarray, filled: int, c: int, s: float) -> int:
    """Keep the best ``len(best_id)`` candidates sorted (insertion: K is small)."""
    k = len(best_id)
    if filled == k and s <= best_s[k - 1]:
        return filled
    pos = filled if filled < k else k - 1
    while pos > 0 and best_s[pos - 1] < s:
        if pos < k:
            best_id[pos] = best_id[pos - 1]
            best_s[pos] = best_s[pos - 1]
        pos -= 1
    best_id[pos] = c
    best_s[pos] = s
    return min(filled + 1, k)


@njit(cache=True)
def _profile(users: Arrays, u: int, params: np.ndarray) -> np.ndarray:
    """The user's genre interest: short-term and long-term profiles, each normalised."""
    out = np.zeros(GENRES, np.float32)
    s_sum = users[U_SHORT][u].sum()
    l_sum = users[U_LONG][u].sum()
    w = params[P_SHORT]
    if s_sum > 0:
        out += w * users[U_SHORT][u] / s_sum
    if l_sum > 0:
        out += (1.0 - w) * users[U_LONG][u] / l_sum
    return out


@njit(cache=True)
def _focus(users: Arrays, u: int) -> float:
    """How much the short-term profile keeps to one genre beyond half of it (0 to 1): a
    burst in one genre is a short-term intent (the seed's three cooking videos), a mixed
    sitting is not, and a flat genre weight either misses the first or costs Hit@10."""
    short = users[U_SHORT][u]
    total = short.sum()
    if total <= 0:
        return 0.0
    return max(0.0, 2.0 * float(short.max() / total) - 1.0)


@njit(cache=True)
def _affinity(items: Arrays, c: int, profile: np.ndarray) -> float:
    if items[I_N_GENRES][c] == 0:
        return 0.0
    total = 0.0
    for k in range(int(items[I_N_GENRES][c])):  # the movie's genres (a handful)
        total += profile[items[I_GENRE_LIST][c, k]]
    return total / float(np.sqrt(items[I_N_GENRES][c]))


@njit(cache=True)
def _touch(c: int, knn: np.ndarray, touched: np.ndarray, n: int) -> int:
    if knn[c] == 0.0:
        knn[c] = 1e-12  # marks the item as a candidate
        touched[n] = c
        n += 1
    return n


@njit(cache=True)
def _candidates(
    items: Arrays,
    users: Arrays,
    shared: Arrays,
    u: int,
    profile: np.ndarray,
    params: np.ndarray,
    knn: np.ndarray,
    touched: np.ndarray,
) -> int:
    """Fill ``knn`` (item-item similarity to the recent items) over the candidates:
    neighbours of recent items, trending items and the top items of the user's three
    strongest genres; returns how many ``touched`` holds."""
    n = 0
    seen = users[U_SEEN][u]
    look = min(seen, int(params[P_LOOKBACK]), RECENT)
    decay = params[P_RECENT_DECAY]
    min_co = params[P_MIN_CO]
    w = 1.0
    for r in range(look):
        j = users[U_RECENT][u, (seen - 1 - r) % RECENT]
        # co-occurrence / count of j: how often c followed or preceded j (P(c | j)),
        # which beat cosine on the ratings before 2015 (BENCHMARKS.md)
        scale = w / max(items[I_TIMES_RATED][j], 1.0)
        for m in range(NEIGHBOURS):
            c = items[I_NBR_ID][j, m]
            if c == EMPTY:
                break
            if items[I_NBR_W][j, m] < min_co:
                continue  # a chance pairing: not worth scoring
            n = _touch(c, knn, touched, n)
            knn[c] += scale * items[I_NBR_W][j, m]
        w *= decay
    for c in shared[S_TRENDING]:
        if c != EMPTY:
            n = _touch(c, knn, touched, n)
    for g in np.argsort(-profile)[:3]:
        if profile[g] <= 0:
            break
        for c in shared[S_BY_GENRE][g]:
            if c != EMPTY:
                n = _touch(c, knn, touched, n)
    return n


@njit(cache=True)
def recommend(
    items: Arrays,
    users: Arrays,
    shared: Arrays,
    u: int,
    params: np.ndarray,
    knn: np.ndarray,
    touched: np.ndarray,
    best_id: np.ndarray,
    best_s: np.ndarray,
) -> int:
    """Rank for user ``u`` now into ``best_id``/``best_s`` (best first); never an item the
    user rated. Returns how many were found (the caller tops up from popularity)."""
    profile = _profile(users, u, params)
    n = _candidates(items, users, shared, u, profile, params, knn, touched)
    genre_weight = params[P_GENRE] + params[P_FOCUS] * _focus(users, u)
    top = np.empty(HORIZONS)
    for h in range(HORIZONS):
        top[h] = items[I_POP][shared[S_TRENDING][0], h] if shared[S_TRENDING][0] != EMPTY else 0.0
    filled = 0
    k = len(best_id)
    for t in range(n):
        c = touched[t]
        sim = knn[c] - 1e-12
        knn[c] = 0.0  # leave the scratch array clean for the next ranking
        score = (
            params[P_KNN] * sim
            + genre_weight * _affinity(items, c, profile)
            + params[P_TREND] * _popularity(items, c, 0, top[0])
            + params[P_POP] * _popularity(items, c, 2, top[2])
        )
        # the hash probe only for a candidate that would make the list
        if (filled < k or score > best_s[k - 1]) and not rated(shared, u, c):
            filled = _insert_top(best_id, best_s, filled, c, score)
    return filled


@njit(cache=True)
def _link(items: Arrays, a: int, b: int, w: float) -> None:
    """Add ``w`` to the co-occurrence of b in a's neighbours; a full list replaces its
    weakest with b when the weakest is no stronger than ``w``. (Space-saving, where the
    newcomer inherits the weakest's weight, filled the lists with recent chance pairs:
    Hit@10 0.029 against 0.076 this way, bench/recs_bench.py.)"""
    row_id = items[I_NBR_ID][a]
    row_w = items[I_NBR_W][a]
    weakest = 0
    for m in range(NEIGHBOURS):
        c = row_id[m]
        if c == b:
            row_w[m] += w
            return
        if c == EMPTY:
            row_id[m] = b
            row_w[m] = w
            return
        if row_w[m] < row_w[weakest]:
            weakest = m
    if row_w[weakest] <= w:  # a new pair starts afresh: only the weakest churn
        row_id[weakest] = b
        row_w[weakest] = w


@njit(cache=True)
def learn(
    items: Arrays, users: Arrays, shared: Arrays, u: int, i: int, t: float, params: np.ndarray
) -> None:
    """Take the rating (user u, item i at t seconds) into the state."""
    seen = users[U_SEEN][u]
    if add_pair(shared, u, i):
        k = shared[S_COUNTERS][C_LOG]
        shared[S_LOG_ITEM][k] = i
        shared[S_LOG_PREV][k] = users[U_LAST_LOG][u]
        users[U_LAST_LOG][u] = k
        shared[S_COUNTERS][C_LOG] = k + 1
        w = 1.0
        for r in range(min(seen, int(params[P_WINDOW]), RECENT)):
            j = users[U_RECENT][u, (seen - 1 - r) % RECENT]
            if j != i:
                _link(items, i, j, w)
                _link(items, j, i, w)
                items[I_DIRTY][j] = True
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
def _rescale(items: Arrays, shared: Arrays, t: float, params: np.ndarray) -> None:
    """Move a popularity scale's reference time forward before exp() overflows."""
    for h in range(HORIZONS):
        tau = params[P_TAU0 + h]
        if (t - shared[S_T0][h]) / tau > 50.0:
            factor = np.exp(-(t - shared[S_T0][h]) / tau)
            for c in range(len(items[I_TIMES_RATED])):
                items[I_POP][c, h] *= factor
            shared[S_T0][h] = t


@njit(cache=True)
def refresh_trending(items: Arrays, shared: Arrays, n_items: int) -> None:
    """The most popular items over the shortest horizon, overall and per genre."""
    order = np.argsort(-items[I_POP][:n_items, 0], kind="mergesort")
    shared[S_TRENDING][:] = EMPTY
    shared[S_BY_GENRE][:] = EMPTY
    filled = np.zeros(GENRES, np.int64)
    for rank in range(n_items):
        c = order[rank]
        if items[I_POP][c, 0] <= 0:
            break
        if rank < TRENDING:
            shared[S_TRENDING][rank] = c
        for g in range(GENRES):
            if items[I_GENRES][c, g] > 0 and filled[g] < PER_GENRE:
                shared[S_BY_GENRE][g, filled[g]] = c
                filled[g] += 1


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
    for e in range(len(user_idx)):
        u, i, t = user_idx[e], item_idx[e], float(times[e])
        _rescale(items, shared, t, params)
        out[e, :] = EMPTY
        filled = recommend(items, users, shared, u, params, knn, touched, out[e], best_s)
        top_up(shared, u, out[e], filled, n_items)
        learn(items, users, shared, u, i, t, params)
        shared[S_COUNTERS][C_SEQ] += 1
        seq = shared[S_COUNTERS][C_SEQ]
        # early on, at every power of two: a new catalogue has trending items soon
        if seq % REFRESH == 0 or (seq < REFRESH and seq & (seq - 1) == 0):
            refresh_trending(items, shared, n_items)


@njit(cache=True)
def top_up(shared: Arrays, u: int, best_id: np.ndarray, filled: int, n_items: int) -> None:
    """Complete a short list (a new catalogue, few candidates) with unrated items in
    catalogue order, so every answer has its full length while the catalogue allows."""
    c = 0
    while filled < len(best_id) and c < n_items:
        taken = rated(shared, u, c)
        for k in range(filled):
            if best_id[k] == c:
                taken = True
                break
        if not taken:
            best_id[filled] = c
            filled += 1
        c += 1
