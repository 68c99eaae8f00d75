"""The real Pulsar broker for tests: started once per session by scripts/pulsar.sh, stopped at
the end only if this session started it. If it cannot start, the tests that need it fail
(they are never skipped): a green run always means Pulsar was exercised."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.script_server import ScriptServer

# The first start downloads Pulsar's jars (~250 MB) through Maven; later starts take ~25 s.
SERVER = ScriptServer("pulsar.sh", start_timeout_s=900, stop_timeout_s=60)


@pytest.fixture(scope="session")
def pulsar_url() -> Iterator[str]:
    """``pulsar://host:port?admin=http://host:port`` of the test Pulsar broker."""
    yield SERVER.acquire()
    SERVER.release()
