"""Where each detector keeps what it learned: one float64 row per series plus a context
table per series (counts and the reading number they were last touched at).

Everything a detector knows about a series lives in these two arrays, so a series' state
is one changelog entry (its row and table as bytes) and a batch of readings is one
compiled pass over them.
"""

from __future__ import annotations

import sys
from typing import Final

# Global options, frozen before any look at the labels (BENCHMARKS.md keeps the log of
# which were tuned on the 18 NAB files).
# An ensemble of quantisations of a value inside the series' own range (bins each).
BIN_COUNTS: Final = (16,)
ORDERS: Final = 3  # contexts: the last 1..ORDERS quantised values before the current one
TABLE: Final = 2048  # context slots per series (hashed)
DECAY: Final = 0.9995  # per reading: a context seen long ago is novel again
GAUSS_ALPHA: Final = 1.0 / 256.0  # windowed Gaussian: exponential window of ~256 readings
SHORT: Final = 8  # likelihood: the short average of raw scores
LONG_ALPHA: Final = 1.0 / 1024.0  # likelihood: the long distribution of short averages
WARMUP: Final = 64  # readings before a detector may score above 0
MARGIN: Final = 0.02  # a value this far (in ranges) past the seen extremes is new
SUPPRESS: Final = 128  # readings a high score dampens the next ones for (alert expiry)
HIGH: Final = 0.5  # what counts as a high score for the expiry
RARITY: Final = 1000  # a novel event scores min(1, readings since the last one / RARITY)

# Row fields.
N, LO, HI, G_MEAN, G_VAR, L_MEAN, L_VAR, SHORT_SUM, SHORT_POS, LAST_HIGH, LAST_ALERT = range(11)
# Per resolution: the current bin, how many readings it has lasted, when the last novel
# context came, and the ORDERS distinct bins before the current one (most recent first).
RES0: Final = 11
RES_WIDTH: Final = 3 + ORDERS
SHORT0: Final = RES0 + RES_WIDTH * len(BIN_COUNTS)  # ring of the SHORT last raw scores
ROW: Final = SHORT0 + SHORT


def cache_name(current: str, fixed: str) -> str:
    """Registers the module ``current`` under ``fixed`` too and returns ``fixed``, for a
    kernels module to take as its ``__name__``: numba's cache pickles a kernel's globals by
    module name, and an app's modules get the name of however they were imported (the
    loader's, pytest's, the bench's), so under a fixed name every importer reuses the
    compiled kernels instead of compiling them again (apps/recs does the same).

    The cache is keyed on the kernels module's own file: after changing an option above,
    the kernels recompile only once their module changes too (``touch apps/iot/*kernels.py``).
    """
    sys.modules.setdefault(fixed, sys.modules[current])
    return fixed
