"""`streamsense replay apps/recs` SIGKILLed mid-way and rerun exports exactly what an
uninterrupted replay exports: every rating once, every list the same."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from streamsense.brokers import EmbeddedBroker

from ..exports import served_rows
from ..simulator import SimulatorConfig, write_world

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "apps" / "recs"


def _replay(files: dict[str, Path], state_dir: Path, out: Path) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).parent / "streamsense"),
        "replay",
        str(APP),
        "--ratings",
        str(files["interactions"]),
        "--movies",
        str(files["items"]),
        "--state-dir",
        str(state_dir),
        "--batch-size",
        "200",
        "--export-recommendations",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _served(state_dir: Path) -> int:
    """Ratings served (and committed) so far."""
    db = state_dir / "broker.db"
    if not db.exists():
        return 0
    broker = EmbeddedBroker(db)
    try:
        return len(served_rows(broker).users)
    finally:
        broker.close()


def _finish(process: subprocess.Popen[bytes]) -> None:
    _, err = process.communicate(timeout=240)
    assert process.returncode == 0, err.decode()


@pytest.mark.slow
def test_a_killed_replay_rerun_exports_what_an_uninterrupted_one_does(tmp_path: Path) -> None:
    files = write_world(SimulatorConfig(ratings=12_000, seed=5), tmp_path / "world")
    _finish(_replay(files, tmp_path / "whole", tmp_path / "whole.parquet"))
    crashed = tmp_path / "crashed"
    for served_at_least in (3_000, 7_000):  # two crashes, at different points
        process = _replay(files, crashed, tmp_path / "crashed.parquet")
        deadline = time.monotonic() + 120
        while _served(crashed) < served_at_least:
            assert process.poll() is None, "the replay ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    _finish(_replay(files, crashed, tmp_path / "crashed.parquet"))
    whole = pq.read_table(tmp_path / "whole.parquet")
    again = pq.read_table(tmp_path / "crashed.parquet")
    assert whole.num_rows == again.num_rows > 10_000
    assert whole.equals(again)
