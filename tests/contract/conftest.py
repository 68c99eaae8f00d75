"""Broker implementations under the one contract suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamsense.brokers import EmbeddedBroker, MemoryBroker
from streamsense.brokers.log import LogBroker
from streamsense.clock import Clock
from streamsense.testing import ManualClock

BrokerFactory = Callable[..., LogBroker]


@pytest.fixture(params=["memory", "embedded"])
def make_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerFactory]:
    opened: list[LogBroker] = []

    def factory(clock: Clock | None = None) -> LogBroker:
        kwargs = {} if clock is None else {"clock": clock}
        if request.param == "memory":
            broker: LogBroker = MemoryBroker(**kwargs)
            # A second handle on the same memory broker shares its storage.
            if opened:
                broker.store = opened[0].store
        else:
            broker = EmbeddedBroker(tmp_path / "log.db", **kwargs)
        opened.append(broker)
        return broker

    yield factory
    for broker in opened:
        broker.close()


@pytest.fixture
def broker(make_broker: BrokerFactory) -> LogBroker:
    return make_broker()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
