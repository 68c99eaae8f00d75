"""Rolling statistics of each series from the platform's feature engine: mean, standard
deviation, min and max of the value over 1 hour, 6 hours and 1 day of event time. The
pipeline keeps them in the online store (when the state dir has one), so the HTTP API
reads them at request time, exact at that moment, and scores a reading against them."""

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

FEATURES = F.FeatureSet("iot", series.features)


def feature_stage() -> F.FeatureStage:
    return F.FeatureStage(
        "features", FEATURES, allowed_lateness_ms=ALLOWED_LATENESS_MS, feature_log=False
    )
