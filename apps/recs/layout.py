"""The layout of the recommender's state, shared by its compiled kernels (kernels.py: one
call handles a whole micro-batch of ratings, in log order, each first ranked for — what the
user would have been served just before it — and then learned from).

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


def cache_name(current: str, fixed: str) -> str:
    """Registers the module ``current`` under ``fixed`` too and returns ``fixed`` (for a
    kernels module to take as its ``__name__``: see the modules that call it)."""
    sys.modules.setdefault(fixed, sys.modules[current])
    return fixed
