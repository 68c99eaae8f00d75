"""The out-of-process dependencies of the model-server and Redis scenarios, and the decision
API: a model registry holding the chaos model, a `streamsense serve` process of the chaos app,
and a paced client of its /v1/decide that keeps every reply with the time it came.

The model server and the private Redis are the integration tests' own helpers (a
`streamsense model-server` child process on a port it keeps across restarts; scripts/redis.sh
on a run directory and port of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from streamsense.serving.registry import ModelRegistry
from tests.apps.chaos_app import FEATURES
from tests.chaos.harness import APP, ROOT
from tests.integration.test_redis_feature_fallback import PrivateRedis
from tests.integration.test_remote_model import ModelServer, free_port

__all__ = ["ApiServer", "DecideClient", "ModelServer", "PrivateRedis", "Reply", "free_port"]

START_TIMEOUT_S = 60.0


def model_registry(model: Path, root: Path) -> Path:
    """A registry whose ``heavy`` model at alias production is the chaos app's ONNX model
    (what ModelServer serves)."""
    models = ModelRegistry(root)
    models.set_alias("heavy", "production", models.register("heavy", model, "onnx", FEATURES))
    return root


class ApiServer:
    """`streamsense serve tests.apps.chaos_app:application` on 127.0.0.1, with its own memory broker
    (the API's published events stay out of the pipeline under test) and INFO logs."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "api.log"
        self.env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", **env}
        self.state_dir = tmp / "api"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "streamsense", "serve", APP, "--port", str(self.port)]
        command += ["--broker", "memory://", "--state-dir", str(self.state_dir), "--verbose"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the API did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


@dataclass(frozen=True)
class Reply:
    sent: float  # time.time() when the request went out
    at: float  # ... and when its answer came
    status: int
    body: dict[str, Any]

    @property
    def feature_degraded(self) -> bool:
        return "features_unavailable" in self.body.get("degraded_reasons", [])


@dataclass(eq=False)  # a thread: hashed by identity
class DecideClient(threading.Thread):
    """POSTs one payment a request to /v1/decide/``topic`` at ``rate``/s, cycling through
    ``users`` (so each user's vector is read, and cached, every ``users / rate`` seconds)."""

    url: str
    topic: str
    rate: float
    users: int = 40
    replies: list[Reply] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        super().__init__(daemon=True, name="chaos-decide-client")
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=5.0) as client:
                i = 0
                while not self._stop_event.wait(1 / self.rate):
                    self._decide(client, i)
                    i += 1
        except BaseException as error:  # reported by the test
            self.error = error

    def _decide(self, client: httpx.Client, i: int) -> None:
        now = int(time.time() * 1000)
        payment = {"id": f"api{i}", "user": f"user-{i % self.users}", "ts": now}
        payment |= {"amount": 10.0 + i % 500, "risk": (i % 97) / 97}
        sent = time.time()
        response = client.post(f"/v1/decide/{self.topic}", json=payment)
        reply = Reply(sent, time.time(), response.status_code, response.json())
        with self._lock:
            self.replies.append(reply)

    def snapshot(self) -> list[Reply]:
        with self._lock:
            return list(self.replies)

    def stop(self) -> list[Reply]:
        self._stop_event.set()
        self.join(timeout=10)
        return self.snapshot()
