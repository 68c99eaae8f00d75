"""The real Kafka broker for tests: started once per session by scripts/kafka.sh, stopped at
the end only if this session started it. If it cannot start, the tests that need it fail
(they are never skipped): a green run always means Kafka was exercised."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka.sh"
# The first start downloads Kafka's jars through Maven; later starts take seconds.
START_TIMEOUT_S = 600
STOP_TIMEOUT_S = 60


class KafkaServer:
    """Shared by every conftest that needs Kafka, so one session starts it once."""

    def __init__(self) -> None:
        self.address: str | None = None
        self.started_here = False
        self.users = 0

    def acquire(self) -> str:
        if self.address is None:
            status = subprocess.run([SCRIPT, "status"], capture_output=True, timeout=30)
            self.address = self._start()
            self.started_here = status.returncode != 0
        self.users += 1
        return self.address

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.started_here:
            subprocess.run([SCRIPT, "stop"], capture_output=True, timeout=STOP_TIMEOUT_S)
            self.address, self.started_here = None, False

    @staticmethod
    def _start() -> str:
        try:
            result = subprocess.run(
                [SCRIPT, "start"], capture_output=True, text=True, timeout=START_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"scripts/kafka.sh start took over {START_TIMEOUT_S}s", pytrace=False)
        lines = result.stdout.strip().splitlines()
        if result.returncode != 0 or not lines:
            pytest.fail(f"scripts/kafka.sh start failed:\n{result.stderr[-3000:]}", pytrace=False)
        return lines[-1]


SERVER = KafkaServer()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of the test Kafka broker."""
    yield SERVER.acquire()
    SERVER.release()
