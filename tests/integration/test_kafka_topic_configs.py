"""Topics streamsense creates on Kafka hold what it writes (record size, compaction and how
long compaction leaves older values), and topics it finds already made are checked on start:
one that cannot hold them is refused with the setting to change, not found out at the first
large record or the first restore."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

import streamsense as ss
from streamsense.brokers import TopicConfig
from streamsense.brokers.base import RECORD_LIMIT_BYTES
from streamsense.brokers.kafka import KafkaBroker
from streamsense.errors import ConfigError
from streamsense.runtime.worker import Worker
from tests.apps.counter import Click, count

Names = Callable[[str], str]
pytestmark = pytest.mark.kafka


def _app(name: str) -> ss.App:
    clicks = ss.Stream(f"{name}.clicks", Click, key="user", time="ts", partitions=2)
    app = ss.App(name)
    app.flow(clicks).stage("count", count).sink(ss.TopicSink(f"{name}.counts"))
    return app


def _settings(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in entries.items()}


def test_topics_are_created_to_hold_what_streamsense_writes(
    kafka: KafkaBroker, kafka_bootstrap: str, unique: Names
) -> None:
    app = _app(unique("configs"))
    Worker(app, kafka).ensure_topics()
    changelog = _settings(kafka_bootstrap, app.changelog_topic("count"))
    assert changelog["cleanup.policy"] == "compact"
    assert int(changelog["min.compaction.lag.ms"]) >= 3_600_000
    assert int(changelog["max.message.bytes"]) > RECORD_LIMIT_BYTES
    output = _settings(kafka_bootstrap, f"{app.name}.counts")
    assert output["cleanup.policy"] == "delete"
    assert int(output["max.message.bytes"]) > RECORD_LIMIT_BYTES


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"cleanup.policy": "delete"}, "cleanup.policy=delete, not compact"),
        ({"cleanup.policy": "compact", "max.message.bytes": "100000"}, "max.message.bytes=100000"),
    ],
    ids=["not-compacted", "records-too-small"],
)
def test_an_existing_changelog_that_cannot_hold_the_state_is_refused(
    kafka: KafkaBroker,
    kafka_bootstrap: str,
    unique: Names,
    config: dict[str, str],
    problem: str,
) -> None:
    app = _app(unique("made-elsewhere"))
    topic = app.changelog_topic("count")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1, config=config)])[topic].result(timeout=30)
    with pytest.raises(ConfigError, match=problem) as refused:
        Worker(app, kafka).ensure_topics()
    assert not refused.value.retryable
    assert topic in str(refused.value)


def test_an_existing_topic_that_holds_the_records_is_accepted(
    kafka: KafkaBroker, unique: Names
) -> None:
    name = unique("made-before")
    kafka.create_topic(f"{name}.counts", TopicConfig(2), exist_ok=False)
    Worker(_app(name), kafka).ensure_topics()  # no error: created as streamsense would


def test_workers_starting_at_once_both_find_their_topics(
    kafka: KafkaBroker, kafka_bootstrap: str, unique: Names
) -> None:
    # Two workers of one group start together: one creates each topic, the other learns it
    # already exists and checks its settings, possibly before the topic is known to the
    # broker that answers. Both must come up (one died on UNKNOWN_TOPIC_OR_PART before).
    for attempt in range(5):
        app = _app(unique(f"together{attempt}"))
        second = KafkaBroker(kafka_bootstrap)
        errors: list[BaseException] = []

        def start(
            broker: KafkaBroker, app: ss.App = app, errors: list[BaseException] = errors
        ) -> None:
            try:
                Worker(app, broker).ensure_topics()
            except BaseException as error:  # reported below, with the attempt
                errors.append(error)

        threads = [threading.Thread(target=start, args=(b,)) for b in (kafka, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        second.close()
        assert errors == [], f"attempt {attempt}: {errors}"
