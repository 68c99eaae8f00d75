"""A real `streamsense serve apps/fraud` process on 127.0.0.1 (HTTP and gRPC on free ports,
an API key set), for the API fuzzing of issue #21: the test that starts it stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
FRAUD = str(ROOT / "apps" / "fraud")
API_KEY = "fuzz-key-21"
AUTH = {"authorization": f"Bearer {API_KEY}"}


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    grpc_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        """The server's resident set now (VmRSS of /proc/PID/status)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def live_server(state_dir: Path) -> Iterator[LiveServer]:
    """Start the server, wait until /healthz answers, and stop it (SIGTERM) on exit."""
    port, grpc_port = free_port(), free_port()
    log = state_dir / "serve.log"
    command = [sys.executable, "-m", "streamsense", "serve", FRAUD, "--port", str(port),
               "--grpc-port", str(grpc_port), "--state-dir", str(state_dir)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "STREAMSENSE_API_KEY": API_KEY}
    state_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    server = LiveServer(process, port, grpc_port, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.process.poll() is None, f"serve exited:\n{server.output()}"
        assert time.monotonic() < deadline, f"serve never answered:\n{server.output()}"
        time.sleep(0.2)
