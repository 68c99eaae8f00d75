"""A model tier in a real `streamsense model-server` process on 127.0.0.1, killed and
restarted: its breaker opens, decisions fall back and say so, and once the server is back the
breaker closes and its scores return."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from streamsense.errors import RetryableError
from streamsense.resilience.breaker import BreakerConfig
from streamsense.runtime.loader import load_app
from streamsense.serving.cascade import Cascade, CascadeConfig
from streamsense.serving.fallbacks import FallbackConfig
from streamsense.serving.models import ConstantModel
from streamsense.serving.registry import ModelRegistry
from streamsense.serving.remote_model import RemoteModel
from streamsense.testing import ManualClock
from tests.conftest import ROOT

FEATURES = ["a", "b", "c"]
# Small windows: the breaker opens after 4 failed calls; it waits on a manual clock.
BREAKER = BreakerConfig(
    window_size=4, minimum_calls=4, wait_in_open=30.0, permitted_calls_in_half_open=2
)
START_TIMEOUT_S = 120  # a cold start imports onnxruntime and uvicorn on a busy machine


class ModelServer:
    """`streamsense model-server` as a child process, on a port it keeps across restarts."""

    def __init__(self, registry: Path, port: int, log: Path) -> None:
        self.registry, self.port, self.log = registry, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "streamsense", "model-server", "--registry"]
        command += [str(self.registry), "--model", "heavy", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=out, cwd=ROOT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"model server did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return conn.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=400) > 0).astype(np.int64)
    onnx = to_onnx(LogisticRegression().fit(X, y), X[:1], options={"zipmap": False})
    root = tmp_path_factory.mktemp("models")
    artifact = root / "heavy.onnx"
    artifact.write_bytes(onnx.SerializeToString())
    models = ModelRegistry(root / "registry")
    models.set_alias("heavy", "production", models.register("heavy", artifact, "onnx", FEATURES))
    return root / "registry"


@pytest.fixture
def server(registry: Path, tmp_path: Path) -> Iterator[ModelServer]:
    running = ModelServer(registry, free_port(), tmp_path / "model-server.log")
    running.start()
    yield running
    running.kill()


def values(a: float) -> dict[str, float]:
    return {"a": a, "b": 0.25, "c": -1.0}


def test_a_killed_model_server_opens_the_breaker_and_a_restarted_one_closes_it(
    server: ModelServer, registry: Path
) -> None:
    clock = ManualClock()  # the breakers' waits; the server and its failures are real
    local = ModelRegistry(registry).load("heavy", "production")
    heavy = RemoteModel(server.url)
    assert (heavy.name, heavy.version, heavy.features) == ("heavy", 1, FEATURES)
    # A: the remote model is the heavy tier (every light score is in its band).
    tiers = CascadeConfig(heavy_band=(0.0, 1.01), breaker=BREAKER)
    light = ConstantModel(0.3, FEATURES, name="light")
    heavy_tier = Cascade(light=light, heavy=heavy, config=tiers, clock=clock)
    # B: the remote model is the light tier, with the last prediction as its fallback.
    chain = FallbackConfig(chain=("last_prediction", "default"))
    light_tier = Cascade(
        light=RemoteModel(server.url),
        config=CascadeConfig(breaker=BREAKER),
        fallbacks=chain,
        clock=clock,
    )

    live = heavy_tier.decide("e1", "k", values(1.5))
    expected = float(local.predict_proba(np.array([[1.5, 0.25, -1.0]], np.float32))[0])
    assert (live.tier, live.score, live.model_version) == ("heavy", expected, "heavy@1")
    remembered = light_tier.decide("e1", "k", values(1.5))
    assert (remembered.tier, remembered.score) == ("light", expected)

    server.kill()
    for i in range(4):
        down = heavy_tier.decide(f"d{i}", "k", values(1.5))
        assert (down.tier, down.score) == ("light", 0.3)
        assert down.degraded_reasons == ["heavy_unavailable"]
        cached = light_tier.decide(f"d{i}", "k", values(-2.0))
        assert (cached.tier, cached.score) == ("fallback", expected)
        assert cached.degraded_reasons == ["light_unavailable", "fallback:last_prediction"]
    unknown = light_tier.decide("d9", "never seen", values(0.0))
    assert unknown.degraded_reasons[-1] == "fallback:default"
    for cascade, tier in ((heavy_tier, "heavy"), (light_tier, "light")):
        breaker = cascade.breakers[tier]
        assert breaker.state == "open"
        rejected = breaker.metrics().not_permitted
        cascade.decide("d10", "k", values(1.5))  # not even tried while open
        assert breaker.metrics().not_permitted == rejected + 1

    server.start()
    clock.advance(BREAKER.wait_in_open * 1000)
    for cascade, tier in ((heavy_tier, "heavy"), (light_tier, "light")):
        probes = [cascade.decide(f"p{i}", "k", values(1.5)) for i in range(2)]
        assert [(p.tier, p.score, p.degraded) for p in probes] == [(tier, expected, False)] * 2
        assert cascade.breakers[tier].state == "closed"
        for before, after in [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]:
            labels = {"breaker": f"{tier}-model", "from_state": before, "to_state": after}
            transitions = "streamsense_circuit_breaker_transitions_total"
            assert cascade.registry.get_sample_value(transitions, labels) == 1


def test_the_client_raises_retryable_errors_fast_when_nothing_listens() -> None:
    with pytest.raises(RetryableError, match="unavailable"):
        RemoteModel(f"http://127.0.0.1:{free_port()}")
    # Told its features, a client starts without the server, and each call fails retryably.
    offline = RemoteModel(f"http://127.0.0.1:{free_port()}", name="heavy", features=["a", "b"])
    assert (offline.name, offline.features, offline.version) == ("heavy", ["a", "b"], 0)
    with pytest.raises(RetryableError, match="unavailable"):
        offline.predict_proba(np.zeros((1, 2), np.float32))


def test_the_fraud_app_takes_its_heavy_model_from_a_server(
    server: ModelServer, registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fraud = load_app(str(ROOT / "apps" / "fraud")).module
    cascade = fraud.serving_setup.load_cascade(tmp_path, heavy_url=server.url)
    assert isinstance(cascade.heavy, RemoteModel) and cascade.heavy.url == server.url
    monkeypatch.setenv("STREAMSENSE_HEAVY_MODEL_URL", server.url)
    from_env = fraud.serving_setup.load_cascade(tmp_path)
    assert isinstance(from_env.heavy, RemoteModel) and from_env.heavy.name == "heavy"
    monkeypatch.delenv("STREAMSENSE_HEAVY_MODEL_URL")
    assert fraud.serving_setup.load_cascade(tmp_path).heavy is None  # none trained there
    # With the heavy model in the state dir's registry, a worker starts while its server is
    # down: the features come from the registry.
    models = ModelRegistry(tmp_path / "models")
    version = models.register("fraud-heavy", registry.parent / "heavy.onnx", "onnx", FEATURES)
    models.set_alias("fraud-heavy", "production", version)
    down = f"http://127.0.0.1:{free_port()}"
    offline = fraud.serving_setup.load_cascade(tmp_path, heavy_url=down).heavy
    assert isinstance(offline, RemoteModel) and offline.features == FEATURES
