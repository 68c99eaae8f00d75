"""Ranking for one user now: candidates (neighbours of recent movies, trending, the user's
strongest genres), a score blending item-item similarity with short- and long-term genre
interest and popularity, the best K never holding a movie the user rated."""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import (
    EMPTY,
    GENRES,
    HORIZONS,
    I_GENRE_LIST,
    I_N_GENRES,
    I_NBR_ID,
    I_NBR_W,
    I_POP,
    I_TIMES_RATED,
    NEIGHBOURS,
    P_FOCUS,
    P_GENRE,
    P_KNN,
    P_LOOKBACK,
    P_MIN_CO,
    P_POP,
    P_RECENT_DECAY,
    P_SHORT,
    P_TREND,
    RECENT,
    S_BY_GENRE,
    S_PAIRS,
    S_TRENDING,
    U_LONG,
    U_RECENT,
    U_SEEN,
    U_SHORT,
    Arrays,
    cache_name,
)

# numba's cache pickles each kernel's globals by module name, and an app's modules get the
# name of however they were imported (the loader's, or pytest's): one fixed name, bound to
# this module, lets every importer reuse the cache instead of failing to load it.
__name__ = cache_name(__name__, "streamsense_apps_recs_ranking")


@njit(cache=True)
def slot(pairs: np.ndarray, key: np.int64) -> int:
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
    found: bool = shared[S_PAIRS][slot(shared[S_PAIRS], key)] == key
    return found


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
        score = params[P_KNN] * sim + genre_weight * _affinity(items, c, profile)
        # a zero weight adds exactly 0.0: its term (a division, a load) is skipped
        if params[P_TREND] != 0.0:
            score += params[P_TREND] * _popularity(items, c, 0, top[0])
        if params[P_POP] != 0.0:
            score += params[P_POP] * _popularity(items, c, 2, top[2])
        # the hash probe only for a candidate that would make the list
        if (filled < k or score > best_s[k - 1]) and not rated(shared, u, c):
            filled = _insert_top(best_id, best_s, filled, c, score)
    return filled


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
