"""Time limits enforced around client calls that may never return (brokers/kafka_calls)."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamsense.brokers.kafka_calls import StuckCall, abandon, call_within


def test_a_call_that_returns_gives_its_result_and_its_own_errors() -> None:
    assert call_within(lambda: 42, 5.0, "answering") == 42

    def fail() -> None:
        raise KafkaException(KafkaError(KafkaError._FENCED))

    with pytest.raises(KafkaException) as raised:
        call_within(fail, 5.0, "failing")
    assert raised.value.args[0].code() == KafkaError._FENCED


def test_a_call_that_does_not_return_is_given_up_retryably() -> None:
    release = threading.Event()
    with pytest.raises(StuckCall) as raised:
        call_within(lambda: release.wait(30), 0.0, "waiting")
    assert raised.value.retryable
    assert "waiting" in str(raised.value)
    stuck = raised.value.thread
    assert stuck is not None and stuck.daemon and stuck.is_alive()
    release.set()
    stuck.join(10)
    assert not stuck.is_alive()


def test_an_abandoned_client_is_destroyed_only_after_its_stuck_call_returns() -> None:
    release, destroyed = threading.Event(), threading.Event()
    events: list[str] = []

    def stuck_call() -> None:
        release.wait(30)
        events.append("call returned")

    with pytest.raises(StuckCall) as raised:
        call_within(stuck_call, 0.0, "stuck")

    def destroy() -> None:
        events.append("destroyed")
        destroyed.set()

    abandon(object(), destroy, raised.value)
    assert not destroyed.wait(0.2)  # still inside the client: not destroyed under it
    release.set()
    assert destroyed.wait(10)
    assert events == ["call returned", "destroyed"]


def test_abandoning_a_client_that_fails_to_destroy_raises_nothing() -> None:
    done = threading.Event()

    def destroy() -> None:
        done.set()
        raise KafkaException(KafkaError(KafkaError._STATE))

    abandon(object(), destroy)
    assert done.wait(10)
