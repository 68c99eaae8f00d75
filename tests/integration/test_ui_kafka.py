"""The operator UI's reads on real Kafka: a topic's newest records by offsets, the group's
lag, the decisions followed by the sampler, every page rendered (the embedded broker's
case is tests/unit/test_ui_pages.py and the browser test)."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest
from fastapi.testclient import TestClient

import streamsense as ss
from streamsense.brokers.kafka import KafkaBroker
from streamsense.ui import ui_context
from streamsense.ui.pages import streams
from streamsense.ui.sampler import Sampler
from streamsense.ui.tail import tail
from streamsense.ui.web import create_ui
from tests.apps.counter import Click, count

pytestmark = pytest.mark.kafka
Names = Callable[[str], str]


def test_the_ui_reads_a_kafka_deployment(kafka: KafkaBroker, unique: Names) -> None:
    clicks = ss.Stream(unique("clicks"), Click, key="user", time="ts", partitions=2)
    app = ss.App(unique("ui"))
    decisions = f"{app.name}.decisions"
    app.flow(clicks).stage("count", count).sink(ss.TopicSink(decisions))
    for topic, config in app.topic_configs().items():
        kafka.create_topic(topic, config, exist_ok=True)
    record = {"event_id": "e", "key": "k", "score": 0.9, "action": "block", "tier": "light"}
    with kafka.producer() as producer:
        for i in range(30):
            producer.send(clicks.topic, b'{"user": "u", "ts": 1}', f"u{i}".encode())
            producer.send(decisions, msgspec.json.encode({**record, "n": i}), f"u{i}".encode())
    newest = tail(kafka, decisions, 5)
    assert len(newest) == 5 and all(r.topic == decisions for r in newest)
    context = ui_context(kafka, name=app.name, app=app)
    assert context.decision_topics() == [decisions]
    lag = streams.lag_now(context)
    assert lag is not None and lag.total == 30  # nothing consumed yet
    sampler = Sampler(context)
    sampler.sample_once()
    assert sampler.decisions.seen == 30
    ui = create_ui(context, root="/", sampler=sampler)
    client = TestClient(ui)
    for page in ("overview", "streams", "decisions", "features", "models"):
        assert client.get(f"/{page}").status_code == 200, page
    assert "block" in client.get("/decisions/live").text
    sampler.close()
