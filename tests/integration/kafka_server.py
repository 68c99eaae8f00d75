"""The real Kafka broker for tests: started once per session by scripts/kafka.sh, stopped at
the end only if this session started it. If it cannot start, the tests that need it fail
(they are never skipped): a green run always means Kafka was exercised."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.script_server import ScriptServer

# The first start downloads Kafka's jars through Maven; later starts take seconds.
SERVER = ScriptServer("kafka.sh", start_timeout_s=600, stop_timeout_s=60)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of the test Kafka broker."""
    yield SERVER.acquire()
    SERVER.release()
