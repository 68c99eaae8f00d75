"""The public API is small on purpose: this test is where adding a name is decided."""

from __future__ import annotations

import streamsense

EXPECTED = {
    "App",
    "Application",
    "Broker",
    "Context",
    "Event",
    "Flow",
    "InvalidEvent",
    "Repartition",
    "Schema",
    "Stream",
    "StreamsenseError",
    "TopicConfig",
    "TopicPartition",
    "TopicSink",
    "Worker",
    "WorkerConfig",
    "open_broker",
}


def test_all_lists_exactly_the_curated_names() -> None:
    assert set(streamsense.__all__) == EXPECTED


def test_every_listed_name_exists_and_is_documented() -> None:
    for name in streamsense.__all__:
        obj = getattr(streamsense, name)
        assert obj.__doc__, f"{name} has no docstring"


def test_every_error_says_whether_a_retry_helps() -> None:
    from streamsense import errors

    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, streamsense.StreamsenseError)
            assert isinstance(obj.retryable, bool)
