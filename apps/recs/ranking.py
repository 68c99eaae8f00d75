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

MARK = 1e-12  # the scratch value of an item made a candidate (removed when scored)


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
def has_pair(pairs: np.ndarray, user: int, item: int) -> bool:
    key = (np.int64(user) << 32) | item
    found: bool = pairs[slot(pairs, key)] == key
    return found


@njit(cache=True)
def rated(shared: Arrays, user: int, item: int) -> bool:
    return has_pair(shared[S_PAIRS], user, item)


@njit(cache=True)
def _popularity(pop: np.ndarray, c: int, h: int, top: float) -> float:
    return float(pop[c, h] / top) if top > 0 else 0.0


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
def _profile(short: np.ndarray, long: np.ndarray, u: int, params: np.ndarray) -> np.ndarray:
    """The user's genre interest: short-term and long-term profiles, each normalised."""
    out = np.zeros(GENRES, np.float32)
    s_sum = short[u].sum()
    l_sum = long[u].sum()
    w = params[P_SHORT]
    if s_sum > 0:
        out += w * short[u] / s_sum
    if l_sum > 0:
        out += (1.0 - w) * long[u] / l_sum
    return out


@njit(cache=True)
def _focus(short_profiles: np.ndarray, u: int) -> float:
    """How much the short-term profile keeps to one genre beyond half of it (0 to 1): a
    burst in one genre is a short-term intent (the seed's three cooking videos), a mixed
    sitting is not, and a flat genre weight either misses the first or costs Hit@10."""
    short = short_profiles[u]
    total = short.sum()
    if total <= 0:
        return 0.0
    return max(0.0, 2.0 * float(short.max() / total) - 1.0)


@njit(cache=True)
def _affinity(genre_list: np.ndarray, n_genres: np.ndarray, c: int, profile: np.ndarray) -> float:
    if n_genres[c] == 0:
        return 0.0
    total = 0.0
    for k in range(int(n_genres[c])):  # the movie's genres (a handful)
        total += profile[genre_list[c, k]]
    return total / float(np.sqrt(n_genres[c]))


@njit(cache=True)
def _touch(c: int, knn: np.ndarray, touched: np.ndarray, n: int) -> int:
    if knn[c] == 0.0:
        knn[c] = MARK
        touched[n] = c
        n += 1
    return n


@njit(cache=True)
def _candidates(
    recent: np.ndarray,
    seen: int,
    times_rated: np.ndarray,
    nbr_id: np.ndarray,
    nbr_w: np.ndarray,
    trending: np.ndarray,
    by_genre: np.ndarray,
    profile: np.ndarray,
    params: np.ndarray,
    knn: np.ndarray,
    touched: np.ndarray,
) -> int:
    """Fill ``knn`` (item-item similarity to the recent items) over the candidates:
    neighbours of recent items (``recent``: the user's ring, ``seen`` rated so far),
    trending items and the top items of the user's three strongest genres; returns how
    many ``touched`` holds. Single arrays, not the state's tuples: a call given a tuple
    counts a reference to each of its arrays up and down, atomically, and that was a
    quarter of the kernels' time (issue #16)."""
    n = 0
    look = min(seen, int(params[P_LOOKBACK]), RECENT)
    decay = params[P_RECENT_DECAY]
    min_co = params[P_MIN_CO]
    w = 1.0
    for r in range(look):
        j = recent[(seen - 1 - r) % RECENT]
        # co-occurrence / count of j: how often c followed or preceded j (P(c | j)),
        # which beat cosine on the ratings before 2015 (BENCHMARKS.md)
        scale = w / max(times_rated[j], 1.0)
        for m in range(NEIGHBOURS):
            c = nbr_id[j, m]
            if c == EMPTY:
                break
            if nbr_w[j, m] < min_co:
                continue  # a chance pairing: not worth scoring
            if knn[c] == 0.0:  # (written out: a call per neighbour cost more than this)
                knn[c] = MARK
                touched[n] = c
                n += 1
            knn[c] += scale * nbr_w[j, m]
        w *= decay
    for m in range(len(trending)):
        if trending[m] != EMPTY:
            n = _touch(trending[m], knn, touched, n)
    for g in np.argsort(-profile)[:3]:
        if profile[g] <= 0:
            break
        for m in range(by_genre.shape[1]):
            if by_genre[g, m] != EMPTY:
                n = _touch(by_genre[g, m], knn, touched, n)
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
    profile = _profile(users[U_SHORT], users[U_LONG], u, params)
    n = _candidates(
        users[U_RECENT][u],
        users[U_SEEN][u],
        items[I_TIMES_RATED],
        items[I_NBR_ID],
        items[I_NBR_W],
        shared[S_TRENDING],
        shared[S_BY_GENRE],
        profile,
        params,
        knn,
        touched,
    )
    genre_weight = params[P_GENRE] + params[P_FOCUS] * _focus(users[U_SHORT], u)
    pop, genre_list, n_genres = items[I_POP], items[I_GENRE_LIST], items[I_N_GENRES]
    pairs, first = shared[S_PAIRS], shared[S_TRENDING][0]
    top = np.empty(HORIZONS)
    for h in range(HORIZONS):
        top[h] = pop[first, h] if first != EMPTY else 0.0
    filled = 0
    k = len(best_id)
    for t in range(n):
        c = touched[t]
        sim = knn[c] - MARK
        knn[c] = 0.0  # leave the scratch array clean for the next ranking
        score = params[P_KNN] * sim + genre_weight * _affinity(genre_list, n_genres, c, profile)
        # a zero weight adds exactly 0.0: its term (a division, a load) is skipped
        if params[P_TREND] != 0.0:
            score += params[P_TREND] * _popularity(pop, c, 0, top[0])
        if params[P_POP] != 0.0:
            score += params[P_POP] * _popularity(pop, c, 2, top[2])
        # the hash probe only for a candidate that would make the list
        if (filled < k or score > best_s[k - 1]) and not has_pair(pairs, u, c):
            filled = _insert_top(best_id, best_s, filled, c, score)
    return filled


@njit(cache=True)
def top_up(pairs: np.ndarray, u: int, best_id: np.ndarray, filled: int, n_items: int) -> None:
    """Complete a short list (a new catalogue, few candidates) with unrated items in
    catalogue order (``pairs``: the rated set), so every answer has its full length while
    the catalogue allows."""
    c = 0
    while filled < len(best_id) and c < n_items:
        taken = has_pair(pairs, u, c)
        for k in range(filled):
            if best_id[k] == c:
                taken = True
                break
        if not taken:
            best_id[filled] = c
            filled += 1
        c += 1
