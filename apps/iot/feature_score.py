"""The ``features`` detector's view of a reading: how far it lies from what the feature
engine says about its series (features.py), as a tail probability on HTM's log scale.

Three standardised distances, each in units of the day's standard deviation:
- level: the reading against the day's mean;
- shift: the last hour's median against the day's mean (a sustained move that no single
  reading shows);
- rate: the last hour's rate of change per hour (a ramp steeper than the day's spread).

The largest one is scored as a two-sided Gaussian tail: 1 at one in 10^10 (|z| ≈ 6.4).
The choices were fixed before the detector was run on NAB (BENCHMARKS.md).
"""

from __future__ import annotations

import math
from typing import Final

import numba
import numpy as np
import numpy.typing as npt

from .layout import cache_name

# Compiled once and cached under a fixed module name (layout.cache_name says why).
__name__ = cache_name(__name__, "streamsense_apps_iot_feature_score")

# The engine's features the detector reads, in this order (a column each).
INPUTS: Final = ("mean_1d", "std_1d", "median_1h", "rate_1h")
_MEAN, _STD, _MEDIAN, _RATE = range(4)
_LOG_FLOOR = math.log(1e-10)

F64 = npt.NDArray[np.float64]


@numba.njit(nogil=True, cache=True)
def feature_score(value: float, features: F64) -> float:
    """The reading's score in [0, 1] from its features (0 while the day's spread is 0)."""
    std = features[_STD]
    if not std > 0.0:  # one reading so far, or a flat day: nothing to measure against
        return 0.0
    level = abs(value - features[_MEAN]) / std
    shift = abs(features[_MEDIAN] - features[_MEAN]) / std
    rate = abs(features[_RATE]) * 3600.0 / std
    z = max(level, shift, rate)
    tail = math.erfc(z / math.sqrt(2.0))
    return min(math.log(max(tail, 1e-300)) / _LOG_FLOOR, 1.0)
