"""Redis, the online feature store, stopped mid-stream and restarted after a while.

Two sides depend on it. The pipeline writes each batch's feature rows to it (a feature stage
before the decide stage): while Redis is down the writes fail retryably, so the worker rolls
the partitions back, pauses them and retries after a backoff; nothing is dropped, nothing is
decided twice. The decision API (a `streamsense serve` process) reads features from it
through a ``FeatureGuard``: it keeps answering, on each user's last known vector with a
confidence below 1 and marked degraded, its breaker opens, and once Redis is back a half-open
probe closes it. Redis runs as an online store's Redis must, with an append-only file: it
comes back with the windows it had, so no answer after the restart is computed on an emptied
window (without persistence, 1 to 66 answers per run were, unmarked)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.checks import (
    assert_one_decision_each,
    breaker_transitions,
    recovery,
    tally_figures,
)
from tests.chaos.harness import Scenario, payment_items
from tests.chaos.pipeline import ChaosPipeline
from tests.chaos.services import ApiServer, DecideClient, PrivateRedis, Reply

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.redis,
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.timeout(120),
]
EVENTS, RATE = 3000, 150.0  # a 20 s stream
API_RATE = 40.0  # decide requests/s: each of the 40 users once a second
DOWN_S = 4.0  # how long Redis stays down after the API's breaker opened
_PAUSED = re.compile(r"partitions \[[\d, ]+\] paused, retry in")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis", persist=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(scenario: Scenario, redis_server: PrivateRedis) -> Iterator[ApiServer]:
    env = {
        "STREAMSENSE_CHAOS_NAME": scenario.name,
        "STREAMSENSE_CHAOS_MODEL": str(scenario.model),
        "STREAMSENSE_CHAOS_REDIS_URL": redis_server.url,
    }
    server = ApiServer(scenario.tmp, env)
    server.start()
    yield server
    server.stop()


def test_a_stopped_redis_pauses_the_pipeline_and_degrades_the_api_then_both_recover(
    make_pipeline: Callable[..., ChaosPipeline],
    redis_server: PrivateRedis,
    api: ApiServer,
    figures: dict[str, Any],
) -> None:
    items = payment_items(EVENTS, seed=6)
    pipeline = make_pipeline(exactly_once=False)
    pipeline.env["STREAMSENSE_CHAOS_REDIS_URL"] = redis_server.url
    worker = pipeline.start_worker("w0")
    feeder = pipeline.feed(items, RATE)
    pipeline.wait_decided(EVENTS // 6)  # every user's rows are in Redis by now
    client = DecideClient(api.url, pipeline.source.topic, API_RATE)
    client.start()
    pipeline.wait(lambda: _fresh(client.snapshot()) >= 2 * client.users, "fresh API reads")

    def moved(to: str, since: float) -> list[float]:
        return [
            t.at
            for t in breaker_transitions([api.log])
            if t.breaker.startswith("features:") and t.current == to and t.at >= since
        ]

    def pauses() -> int:
        return len(_PAUSED.findall(worker.output()))

    assert not moved("open", 0.0) and not pauses(), "degraded before Redis was stopped"
    stopped = time.time()
    redis_server.stop()
    down = time.time()  # stop returns once the server is gone
    pipeline.wait(lambda: bool(moved("open", stopped)), "the API's breaker to open")
    pipeline.wait(lambda: pauses() > 0, "the worker to pause")
    time.sleep(DOWN_S)
    restarting = time.time()
    redis_server.start()  # returns once Redis answers PING
    back = time.time()
    pipeline.wait(lambda: bool(moved("closed", restarting)), "the API's breaker to close")
    pipeline.wait_drained(EVENTS, timeout=60)
    replies = client.stop()
    assert client.error is None, repr(client.error)
    result = pipeline.finish([i.event_id for i in items if i.event_id])

    assert_one_decision_each(result, exactly_once=False)
    # Rolled-back batches were redone from the stage's snapshot, not counted twice: payment
    # p{i} is user i % 40's (i // 40 + 1)-th, all within its 10-minute window.
    miscounted = [
        (d.event_id, d.features["n_10m"])
        for d in result.decisions.values()
        if d.features["n_10m"] != int(d.event_id[1:]) // 40 + 1
    ]
    assert not miscounted, f"windows miscounted after the rollbacks: {miscounted[:10]}"
    assert [r for r in replies if r.status != 200] == [], "the API failed requests"
    opened, closed = moved("open", stopped)[0], moved("closed", restarting)[0]
    # Every answer to a request sent while Redis was down is a degraded one, on the user's
    # last known features (every user was read before), trusted less than fresh ones.
    outage = [r for r in replies if down < r.sent and r.at < restarting]
    assert outage, "no request was answered while Redis was down"
    wrong = [r.body for r in outage if not _on_last_features(r)]
    assert not wrong, f"answers during the outage not on last known features: {wrong[:3]}"
    after = [r for r in replies if r.sent > closed + 0.1]
    assert after and not any(r.feature_degraded for r in after), "degraded after recovery"
    # Redis came back with its data: no answer counts only the request's own payment.
    empty = [r for r in replies if r.sent > restarting and r.body["features"]["n_10m"] <= 1]
    assert not empty, f"answers on emptied windows after the restart: {empty[:3]}"
    healthy = [
        r.at
        for r in replies
        if r.sent > restarting and not r.feature_degraded and r.body["features"]["n_10m"] > 1
    ]
    assert healthy, "the API never answered on the pipeline's windows again"
    figures.update(
        fault=f"Redis stopped, restarted {DOWN_S:.0f} s after the API's breaker opened",
        delivery="at least once",
        **tally_figures(result),
        worker_pauses=pauses(),
        api_requests=len(replies),
        api_degraded=sum(r.feature_degraded for r in replies),
        api_min_confidence=round(min(r.body["confidence"] for r in outage), 3),
        api_empty_windows_after_restart=len(empty),
        breaker_opened=len(moved("open", stopped)),
        breaker_open_after_kill_s=round(opened - stopped, 2),
        breaker_open_to_closed_s=round(closed - opened, 2),
        server_start_s=round(back - restarting, 2),
        breaker_closed_after_fast_s=round(closed - restarting, 2),
        healthy_after_fix_s=round(min(healthy) - restarting, 2),
        **recovery(result, feeder.sent_at, stopped, back),
    )


def _fresh(replies: list[Reply]) -> int:
    return sum(r.status == 200 and not r.feature_degraded for r in replies)


def _on_last_features(reply: Reply) -> bool:
    reasons = reply.body.get("degraded_reasons", [])
    return (
        reply.body.get("degraded") is True
        and "fallback:last_features" in reasons
        and 0 < reply.body["confidence"] < 1
    )
