"""`streamsense serve apps/recs` (the generic command) after a replay: the model comes from
the replay's changelog, and the app's routes answer beside the platform's."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..simulator import SimulatorConfig, write_world
from .test_kill_replay import APP, ROOT, _finish, _replay


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "never ready"
        time.sleep(0.2)


def test_serve_apps_recs_answers_from_the_replayed_state(tmp_path: Path) -> None:
    files = write_world(SimulatorConfig(ratings=3000, seed=4), tmp_path / "world")
    state = tmp_path / "state"
    _finish(_replay(files, state, tmp_path / "served.parquet"))
    port = _free_port()
    command = [sys.executable, "-m", "streamsense", "serve", str(APP), "--port", str(port),
               "--state-dir", str(state)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _ready(base, server)
        answer = httpx.get(f"{base}/v1/recommend/1", params={"k": 10}, timeout=5)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["items"]) == 10 and not body["degraded"] and body["reason"] == ""
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'route="/v1/recommend/{user}"' in metrics
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()
