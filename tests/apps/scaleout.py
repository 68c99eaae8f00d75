"""Windowed features on 6 partitions, for scale-out and crash tests on real Kafka.

The feature engine's state (batch stage: a changelog entry per key + silent replay) and a
function stage's per-key sequence number (changelog) both follow partitions across rebalances: a
lost or repeated state change shows as a gap or a repeat in a user's ``n`` = 1, 2, 3...,
and a wrong window as a feature vector that differs from a single worker's.

Topic and group names start with $STREAMSENSE_SCALEOUT_NAME (default "scaleout"), so each
test gets its own on the shared broker.
"""

from __future__ import annotations

import os
from typing import Any

import streamsense as ss
from streamsense import features as F
from tests.apps.counter import Click

PARTITIONS = 6


def emit(value: F.Enriched, ctx: ss.Context) -> dict[str, Any]:
    n = ctx.state.get(0) + 1
    ctx.state.set(n)
    return {"source": ctx.event.id, "user": ctx.key, "n": n, **value.features}


def build(name: str) -> tuple[ss.App, ss.Stream[Click]]:
    clicks = ss.Stream(f"{name}.clicks", Click, key="user", time="ts", partitions=PARTITIONS)
    user = F.FeatureGroup(clicks, key="user")
    user.add("n_10s", F.count(), F.rolling("10s"))
    user.add("sum_10s", F.sum("amount"), F.rolling("10s"))
    user.add("mean_1m", F.mean("amount"), F.rolling("1m"))
    user.add("max_5", F.max("amount"), F.last_n(5))
    user.add("n_tumbling_30s", F.count(), F.tumbling("30s"))
    # An hour of every user's events: with the test's backlog of many users the stage's
    # state is megabytes per partition (tests/integration/test_kafka_scaleout.py).
    user.add("n_1h", F.count(), F.rolling("1h"))
    stage = F.FeatureStage(
        f"{name}-features",  # the stage names its own topics (windows, late...)
        F.FeatureSet(name, user.features),
        allowed_lateness_ms=2000,
        idle_timeout_ms=None,
    )
    app = ss.App(name)
    app.flow(clicks).batch(stage).stage("emit", emit).sink(ss.TopicSink(f"{name}.features"))
    return app, clicks


app, clicks = build(os.environ.get("STREAMSENSE_SCALEOUT_NAME", "scaleout"))
