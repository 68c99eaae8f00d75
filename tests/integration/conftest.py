"""Integration tests run against the real Kafka broker of scripts/kafka.sh."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from streamsense.brokers.kafka import KafkaBroker
from tests.integration.kafka_server import kafka_bootstrap  # noqa: F401  (fixture)

Names = Callable[[str], str]


@pytest.fixture
def unique() -> Names:
    """Names of their own: the broker is shared by every test of the session."""
    return lambda base: f"{base}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def kafka(kafka_bootstrap: str) -> Iterator[KafkaBroker]:  # noqa: F811
    broker = KafkaBroker(kafka_bootstrap)
    yield broker
    broker.close()
