"""A small live deployment for the UI's browser tests: `streamsense serve tests/apps/shop`
(API key set, the UI at /ui) and `streamsense run tests/apps/shop` on one state dir, fed by
a producer thread that posts orders to the API (each is decided, then processed by the
worker). The worker can be paused (SIGSTOP) to build a backlog and resumed to drain it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.live_serve import free_port

ROOT = Path(__file__).resolve().parents[2]
SHOP = str(ROOT / "tests" / "apps" / "shop")
API_KEY = "ui-key-18"
AUTH = {"authorization": f"Bearer {API_KEY}"}
START_S = 150  # both processes import numba-compiled code: slow on a loaded machine


@dataclass
class Producer:
    """Posts an order every ``every_s`` while running; counts what the API accepted."""

    url: str
    every_s: float = 0.05
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers=AUTH, timeout=5) as client:
            while not self._stop.is_set():
                order = {
                    "order_id": self.sent, "user": f"u{self.sent % 7}",
                    "ts": int(time.time() * 1000), "amount": float(self.sent % 250),
                }  # fmt: skip
                if client.post("/v1/decide/shop.orders", json=order).status_code == 200:
                    self.sent += 1
                self._stop.wait(self.every_s)


@dataclass
class Deployment:
    url: str
    state_dir: Path
    serve: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    producer: Producer

    def pause_worker(self) -> None:
        self.worker.send_signal(signal.SIGSTOP)

    def resume_worker(self) -> None:
        self.worker.send_signal(signal.SIGCONT)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.state_dir.glob("*.log"))
        )


@contextmanager
def ui_deployment(
    state_dir: Path, app: str = SHOP, env: dict[str, str] | None = None, feed: bool = True
) -> Iterator[Deployment]:
    """Serve and run ``app`` on ``state_dir``; with ``feed``, orders of the shop app are
    posted all along (the deployment's ``producer``)."""
    port = free_port()
    env = {
        **os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "STREAMSENSE_API_KEY": API_KEY,
        **(env or {}),
    }  # fmt: skip
    state_dir.mkdir(parents=True, exist_ok=True)
    common = ["--state-dir", str(state_dir)]
    serve = _start(["serve", app, "--port", str(port), *common], env, state_dir / "serve.log")
    worker = _start(["run", app, *common], env, state_dir / "worker.log")
    url = f"http://127.0.0.1:{port}"
    deployment = Deployment(url, state_dir, serve, worker, Producer(url))
    try:
        _wait_ready(deployment)
        if feed:
            deployment.producer.start()
        yield deployment
    finally:
        deployment.producer.stop()
        deployment.resume_worker()  # a stopped process ignores SIGTERM until continued
        for process in (worker, serve):
            process.send_signal(signal.SIGTERM)
        for process in (worker, serve):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "streamsense", *args], env=env, stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_ready(deployment: Deployment) -> None:
    deadline = time.monotonic() + START_S
    while True:
        try:
            if httpx.get(f"{deployment.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        for process in (deployment.serve, deployment.worker):
            assert process.poll() is None, f"a process exited:\n{deployment.logs()}"
        assert time.monotonic() < deadline, f"serve never got ready:\n{deployment.logs()}"
        time.sleep(0.3)
