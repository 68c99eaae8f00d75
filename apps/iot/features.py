"""Each series' features from the platform's feature engine (issue #15), over event time:

- mean, standard deviation, min and max of the value over 1 hour, 6 hours and 1 day;
- the 10 %, 50 % and 90 % quantiles over 1 hour and the median over 6 hours (quantiles
  sort their window's values for every reading, so the long horizons keep to the moments);
- the rate of change (per second, across the window) over 1 hour and 6 hours;
- the time-of-day (UTC hours with their fraction) and the weekday of the reading.

The ``features`` detector scores readings against them (kernels.py). The pipeline also
keeps them in the online store (when the state dir has one), so the HTTP API reads them at
request time, exact at that moment, and scores a reading against them."""

from __future__ import annotations

from streamsense import features as F

from .readings import READINGS

HORIZONS = ("1h", "6h", "1d")
# Readings may lag the partition's newest by this much (sensors report late, series of a
# corpus start at different times) before they count as late and go to the late topic.
ALLOWED_LATENESS_MS = 86_400_000

series = F.FeatureGroup(READINGS, key="series")
for horizon in HORIZONS:
    series.add(f"mean_{horizon}", F.mean("value"), F.rolling(horizon))
    series.add(f"std_{horizon}", F.std("value"), F.rolling(horizon))
    series.add(f"min_{horizon}", F.min("value"), F.rolling(horizon))
    series.add(f"max_{horizon}", F.max("value"), F.rolling(horizon))
for name, q in (("q10", 0.1), ("median", 0.5), ("q90", 0.9)):
    series.add(f"{name}_1h", F.quantile("value", q), F.rolling("1h"))
series.add("median_6h", F.quantile("value", 0.5), F.rolling("6h"))
series.add("rate_1h", F.rate("value"), F.rolling("1h"))
series.add("rate_6h", F.rate("value"), F.rolling("6h"))

CONTEXT = [F.hour_of_day(READINGS), F.weekday(READINGS)]
FEATURES = F.FeatureSet("iot", [*series.features, *CONTEXT])


def feature_stage() -> F.FeatureStage:
    """The stage, keeping each batch's features by column for the detector stage (a dict
    of 22 values per reading cost more than the whole rest of the pipeline: BENCHMARKS.md)."""
    return F.FeatureStage(
        "features",
        FEATURES,
        allowed_lateness_ms=ALLOWED_LATENESS_MS,
        feature_log=False,
        vectors=False,
    )
