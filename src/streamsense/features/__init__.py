"""Windowed features over event streams.

from streamsense import features as F

customer = F.FeatureGroup(payments, key="customer_id")
customer.add("nb_tx_1d", F.count(), F.rolling("1d"))
customer.add("avg_amount_7d", F.mean("amount"), F.rolling("7d"))
stage = F.FeatureStage("features", F.FeatureSet("payments", customer.features))
app.flow(payments).batch(stage).stage("decide", decide)
"""

from __future__ import annotations

from streamsense.features.aggregations import (
    Aggregation,
    Aggregator,
    approx_distinct_count,
    count,
    custom,
    distinct_count,
    first,
    last,
    max,
    mean,
    min,
    quantile,
    rate,
    std,
    sum,
    var,
)
from streamsense.features.definitions import (
    Columns,
    Computed,
    Feature,
    FeatureGroup,
    FeatureSet,
    hour_of_day,
    night,
    weekday,
    weekend,
)
from streamsense.features.engine import BatchResult, FeatureEngine
from streamsense.features.stage import Enriched, FeatureStage
from streamsense.features.windows import Window, hopping, last_n, rolling, session, tumbling

__all__ = [
    "Aggregation",
    "Aggregator",
    "BatchResult",
    "Columns",
    "Computed",
    "Enriched",
    "Feature",
    "FeatureEngine",
    "FeatureGroup",
    "FeatureSet",
    "FeatureStage",
    "Window",
    "approx_distinct_count",
    "count",
    "custom",
    "distinct_count",
    "first",
    "hopping",
    "hour_of_day",
    "last",
    "last_n",
    "max",
    "mean",
    "min",
    "night",
    "quantile",
    "rate",
    "rolling",
    "session",
    "std",
    "sum",
    "tumbling",
    "var",
    "weekday",
    "weekend",
]
