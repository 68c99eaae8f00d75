"""The decide path on a real Redis online store that is stopped and restarted mid-test: reads
fail fast, decisions fall back to the last known features (or the default) and say so, the
breaker opens, and after the restart the same store reconnects by itself and the breaker
closes.

The server is scripts/redis.sh's, as for every Redis test, but a private one (its own run
directory and port): stopping the session's shared server would pull it from under other
tests."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.resilience.breaker import BreakerConfig
from streamsense.serving import Serving
from streamsense.serving.cascade import Cascade
from streamsense.serving.decide import decide_event
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.feature_fallback import FeatureFallbackConfig, FeatureGuard
from streamsense.serving.models import FunctionModel
from streamsense.store.redis_online import RedisOnlineStore
from streamsense.store.views import OnlineFeatures
from streamsense.testing import ManualClock
from tests.apps.windowed import FEATURES, clicks
from tests.script_server import SCRIPTS

pytestmark = pytest.mark.redis

BREAKER = BreakerConfig(
    window_size=4, minimum_calls=4, wait_in_open=5.0, permitted_calls_in_half_open=2
)


class PrivateRedis:
    """scripts/redis.sh on a run directory and port of its own."""

    def __init__(self, run_dir: Path, *, persist: bool = False) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.env = {**os.environ, "STREAMSENSE_REDIS_RUN": str(run_dir), "REDIS_PORT": str(port)}
        self.env["REDIS_PERSIST"] = "1" if persist else "0"
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        self._run("start", 600)  # the first start on a fresh machine installs redis-server

    def stop(self) -> None:
        self._run("stop", 60)

    def _run(self, command: str, timeout: float) -> None:
        done = subprocess.run(
            [SCRIPTS / "redis.sh", command], env=self.env, capture_output=True, timeout=timeout
        )
        if done.returncode != 0:
            pytest.fail(f"redis.sh {command} failed: {done.stderr.decode()[-2000:]}")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def decide(serving: Serving, broker: MemoryBroker, user: str, ts: int) -> DecisionRecord:
    body = f'{{"user": "{user}", "ts": {ts}, "amount": 5.0}}'.encode()
    return decide_event(serving, broker.producer(), clicks.topic, body)


def test_a_stopped_redis_means_last_known_features_and_a_restarted_one_is_used_again(
    redis_server: PrivateRedis,
) -> None:
    clock = ManualClock()
    store = RedisOnlineStore(redis_server.url, prefix="fallback-test:")
    online = OnlineFeatures(FEATURES, store)
    broker = MemoryBroker()
    broker.create_topic(clicks.topic, TopicConfig(clicks.partitions))
    broker.create_topic("decisions", TopicConfig(1))
    light = FunctionModel(lambda X: X[:, 0] / 10, ["n_10s"], name="light", version=1)
    cascade = Cascade(light=light, clock=clock)
    config = FeatureFallbackConfig(breaker=BREAKER, half_life_ms=60_000)
    guard = FeatureGuard("features:wclicks", online, config, clock=clock)
    serving = Serving(
        "t",
        broker,
        {clicks.topic: clicks},
        {clicks.topic: online},
        cascade,
        "decisions",
        feature_guards={clicks.topic: guard},
    )
    try:
        fresh = decide(serving, broker, "u1", 1_000)
        assert (fresh.degraded, fresh.features["n_10s"], fresh.action) == (False, 1.0, "allow")

        redis_server.stop()
        clock.advance(60_000)
        stale = decide(serving, broker, "u1", 2_000)
        assert stale.degraded_reasons == [
            "features_unavailable",
            "features_error:RetryableError",
            "fallback:last_features",
        ]
        assert stale.features == fresh.features and stale.score == fresh.score
        assert stale.confidence == pytest.approx(0.5) and stale.feature_age_ms == 60_000
        unknown = decide(serving, broker, "u2", 2_000)
        assert (unknown.tier, unknown.action, unknown.degraded_reasons[-1]) == (
            "fallback",
            "review",
            "fallback:default",
        )
        for ts in (3_000, 4_000):
            decide(serving, broker, "u1", ts)
        assert guard.breaker.state == "open"
        bypassed = decide(serving, broker, "u1", 5_000)
        assert "features_circuit_open" in bypassed.degraded_reasons

        redis_server.start()
        clock.advance(BREAKER.wait_in_open * 1000)
        probes = [decide(serving, broker, "u1", 6_000 + i) for i in range(2)]
        assert [p.degraded for p in probes] == [False, False]
        assert probes[0].confidence == 1.0 and guard.breaker.state == "closed"
    finally:
        store.close()
