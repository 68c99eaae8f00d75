"""The chaos app's decision API (`streamsense serve tests.apps.chaos_app:application`): payments
decided on the per-user features the pipeline writes to Redis, read through a
``FeatureGuard`` whose breaker is as tight as the cascade's (so the Redis scenario is short),
scored by the same ONNX model.

Its broker is the serve process's own (``--broker memory://`` in the chaos tests): the events
and decisions the API publishes stay out of the pipeline under test, whose tally counts only
the payments the test produced. The store's URL is ``$STREAMSENSE_CHAOS_REDIS_URL``, the
model ``$STREAMSENSE_CHAOS_MODEL``.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamsense as ss
from streamsense.brokers.base import TopicConfig
from streamsense.errors import ConfigError
from streamsense.resilience import BreakerConfig
from streamsense.serving import Serving
from streamsense.serving.cascade import Cascade
from streamsense.serving.feature_fallback import FeatureFallbackConfig, FeatureGuard
from streamsense.store.views import OnlineFeatures
from tests.apps.chaos_app import (
    CONFIG,
    RULES,
    Payment,
    SlowSwitch,
    SwitchedModel,
    online_store,
    user_features,
)

# Half of the last 10 reads failing opens the breaker; after 1 s open, 3 probes decide
# whether it closes. Only the fault opens it: a read is "slow" past 2 s, beyond the Redis
# client's 1 s socket timeout (a hung read fails first), so no read on a loaded machine
# counts as slow by its wall-clock time alone.
READ_BREAKER = BreakerConfig(
    failure_rate_threshold=50.0,
    slow_call_rate_threshold=50.0,
    slow_call_duration=2.0,
    window_size=10,
    minimum_calls=10,
    wait_in_open=1.0,
    permitted_calls_in_half_open=3,
)
FEATURE_FALLBACK = FeatureFallbackConfig(breaker=READ_BREAKER)


def build_serving(broker: ss.Broker, name: str, payments: ss.Stream[Payment]) -> Serving:
    url = os.environ.get("STREAMSENSE_CHAOS_REDIS_URL")
    model = os.environ.get("STREAMSENSE_CHAOS_MODEL")
    if not url or not model:
        raise ConfigError("serving the chaos app needs $STREAMSENSE_CHAOS_REDIS_URL and _MODEL")
    decisions = f"{name}.api-decisions"
    for topic, partitions in ((payments.topic, payments.partitions), (decisions, 1)):
        broker.create_topic(topic, TopicConfig(partitions), exist_ok=True)
    online = OnlineFeatures(user_features(payments), online_store(name, url))
    light = SwitchedModel(Path(model).read_bytes(), SlowSwitch(None))
    cascade = Cascade(rules=RULES, light=light, config=CONFIG)
    guard = FeatureGuard(
        f"features:{payments.topic}", online, FEATURE_FALLBACK, registry=cascade.registry
    )
    return Serving(
        name=name,
        streams={payments.topic: payments},
        features={payments.topic: online},
        cascade=cascade,
        broker=broker,
        decisions_topic=decisions,
        views=online.views_by_name(),
        feature_guards={payments.topic: guard},
    )
