"""A private Kafka broker for the chaos tests, run by scripts/kafka.sh on ports of its own.

The chaos tests stop and restart their broker; doing that to the session's shared broker
(tests/integration/kafka_server.py) would break every other test, and every other session,
using it. This one has its own ports and run directory and is stopped when the chaos tests
are done. If it cannot start, the tests fail (never skip), as for the shared broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.script_server import SCRIPTS

SCRIPT = SCRIPTS / "kafka.sh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class KafkaNode:
    run_dir: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "STREAMSENSE_KAFKA_RUN": str(self.run_dir),
        }

    def _script(self, command: str, timeout: float) -> str:
        try:
            result = subprocess.run(
                [SCRIPT, command], env=self._env(), capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"scripts/kafka.sh {command} took over {timeout}s", pytrace=False)
        if result.returncode != 0:
            pytest.fail(f"scripts/kafka.sh {command} failed:\n{result.stderr[-3000:]}", False)
        return result.stdout.strip()

    def start(self) -> None:
        # The first start on a machine downloads Kafka's jars (the shared broker's fixture
        # usually did that already).
        self._script("start", timeout=600)

    def stop(self) -> None:
        self._script("stop", timeout=60)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The broker process stopped (SIGSTOP) inside the block: connections stay open but
        nothing is answered, as with a broker hung in a long pause. SIGCONT at the end."""
        pid = int((self.run_dir / "kafka.pid").read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def restart(self) -> tuple[float, float]:
        """Stop the broker and start it on the same data. Returns (went down, ready again)
        as ``time.time()`` values."""
        down = time.time()
        self._script("restart", timeout=180)
        return down, time.time()
