"""A feature-engine app for runtime tests: per-user windows over clicks."""

from __future__ import annotations

from typing import Any

import streamsense as ss
from streamsense import features as F
from tests.apps.counter import Click

clicks = ss.Stream("wclicks", Click, key="user", time="ts", partitions=3)

user = F.FeatureGroup(clicks, key="user")
user.add("n_10s", F.count(), F.rolling("10s"))
user.add("sum_10s", F.sum("amount"), F.rolling("10s"))
user.add("mean_1m", F.mean("amount"), F.rolling("1m"))
user.add("max_5", F.max("amount"), F.last_n(5))
user.add("n_tumbling_30s", F.count(), F.tumbling("30s"))
FEATURES = F.FeatureSet("windowed", user.features)


def emit(value: F.Enriched, ctx: ss.Context) -> dict[str, Any]:
    return {"source": ctx.event.id, "user": ctx.key, **value.features}


def build(stage_name: str = "features", **options: Any) -> ss.App:
    app = ss.App("windowed")
    stage = F.FeatureStage(stage_name, FEATURES, **options)
    app.flow(clicks).batch(stage).stage("emit", emit).sink(ss.TopicSink("windowed.features"))
    return app


app = build(allowed_lateness_ms=2000, idle_timeout_ms=None)
