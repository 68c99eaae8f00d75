"""`streamsense run --workers auto` as a real process on the embedded broker: a backlog on
4 partitions makes it add workers, every output exists exactly once, the lag returns to 0,
the idle group shrinks back to one worker, a killed worker is restarted, and SIGTERM stops
everything cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from streamsense.brokers import EmbeddedBroker
from streamsense.runtime.lag import group_lag
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.apps import slow
from tests.apps.counter import make_clicks

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "tests" / "apps" / "slow.py")
EVENTS = 3000


def _feed(db: Path, events: list[Any]) -> None:
    broker = EmbeddedBroker(db)
    Worker(slow.app, broker).ensure_topics()
    with broker.producer() as producer:
        for click in events:
            out = slow.clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    broker.close()


def _start(state_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "STREAMSENSE_SLOW_MS": "3"}
    command = [sys.executable, "-m", "streamsense", "run", APP, "--workers", "auto"]
    command += ["--state-dir", str(state_dir), "--batch-size", "50", "--batch-ms", "50"]
    command += ["--session-timeout-ms", "3000", "--check-seconds", "0.2"]
    command += ["--scale-up-lag", "100", "--scale-up-seconds", "0.5"]
    command += ["--idle-seconds", "2", "--cooldown-seconds", "1.5"]
    command += ["--status-file", str(state_dir / "status.json"), *extra]
    log = (state_dir / "supervisor.log").open("wb")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def _status(state_dir: Path) -> dict[str, Any]:
    path = state_dir / "status.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _lag(db: Path) -> int:
    broker = EmbeddedBroker(db)
    try:
        return group_lag(broker, slow.app.group, [slow.clicks.topic]).total
    finally:
        broker.close()


def _wait_until(
    condition: Callable[[], bool], supervisor: subprocess.Popen[bytes], what: str
) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert supervisor.poll() is None, f"the supervisor exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _children(supervisor_pid: int) -> list[int]:
    """Worker processes started by that supervisor (they name it in --parent-pid)."""
    marker = f"--parent-pid\0{supervisor_pid}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # exited meanwhile
                continue
    return found


def test_scales_up_on_a_backlog_and_down_when_idle_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "broker.db"
    clicks = make_clicks(EVENTS, users=40)
    _feed(db, clicks)
    supervisor = _start(tmp_path)
    try:
        _wait_until(lambda: _status(tmp_path).get("workers", 0) > 1, supervisor, "a scale-up")
        _wait_until(lambda: _lag(db) == 0, supervisor, "the backlog to drain")
        status = _status(tmp_path)
        assert status["scale_ups"] >= 1 and status["most_workers"] > 1
        assert status["most_workers"] <= slow.PARTITIONS

        # Idle now: back down to one worker, the others left the group cleanly.
        def one_left() -> bool:
            now = _status(tmp_path)
            return now["workers"] == 1 and now["stopping"] == 0 and now["running"] == 1

        _wait_until(one_left, supervisor, "the scale-down")
        assert _status(tmp_path)["scale_downs"] >= 1
        assert len(_children(supervisor.pid)) == 1

        # A worker killed behind the supervisor's back is restarted and processes new events.
        (victim,) = _children(supervisor.pid)
        os.kill(victim, signal.SIGKILL)
        _wait_until(lambda: _status(tmp_path).get("restarts", 0) >= 1, supervisor, "a restart")
        more = make_clicks(200, users=40, start_ms=1_700_000_000_000)
        _feed(db, more)
        _wait_until(lambda: _lag(db) == 0, supervisor, "the new events")
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(timeout=60)
    log = (tmp_path / "supervisor.log").read_text()
    assert code == 0, log
    assert "scale up: 1 → 2 workers" in log and "scale down" in log, log
    assert "every worker stopped" in log
    assert _children(supervisor.pid) == []

    broker = EmbeddedBroker(db)
    outputs = drain_topic(broker, "slow.out")
    broker.close()
    total = EVENTS + 200
    assert len(outputs) == total
    assert len({dict(r.headers)["source"] for r in outputs}) == total
    by_user: dict[str, list[int]] = {}
    for record in outputs:
        value = msgspec.json.decode(record.value or b"")
        by_user.setdefault(value["user"], []).append(value["n"])
    for ns in by_user.values():
        assert ns == list(range(1, len(ns) + 1))  # state followed every move, in order


def test_fixed_workers_and_a_bad_workers_value(tmp_path: Path) -> None:
    db = tmp_path / "broker.db"
    _feed(db, make_clicks(400, users=10))
    supervisor = _start(tmp_path, "--workers", "2")  # the last --workers wins: fixed 2
    try:
        _wait_until(lambda: _lag(db) == 0, supervisor, "the backlog to drain")
        status = _status(tmp_path)
        assert status["workers"] == 2 and status["scale_ups"] == 1 and status["scale_downs"] == 0
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
    bad = subprocess.run(
        [sys.executable, "-m", "streamsense", "run", APP, "--workers", "many"],
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"},
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert b"--workers must be a number or auto" in bad.stderr
