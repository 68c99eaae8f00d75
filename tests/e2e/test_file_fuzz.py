"""File fuzzing (issue #21): payment files with hostile rows among clean ones, as CSV, JSON
lines and Parquet, through `streamsense replay apps/fraud` (embedded broker) and
`streamsense produce`. Never a traceback; every input row is decided or is a dead letter
with a reason, and the counts add up exactly; the good rows are decided exactly as they are
from the same file without its bad rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from apps.fraud.simulator import FraudSimulatorConfig, simulate_transactions
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from streamsense.brokers import EmbeddedBroker
from streamsense.cli.main import cli
from streamsense.runtime.config import WorkerConfig
from streamsense.runtime.loader import load_app
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.e2e.file_corruptions import FORMATS, Row, clean_rows, corrupted, written

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "apps" / "fraud")
CONFIG = FraudSimulatorConfig(n_customers=10, n_terminals=20, n_days=10, seed=1)
CLEAN = clean_rows(simulate_transactions(CONFIG))
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
runner = CliRunner()


def _replay(path: Path, state: Path) -> str:
    args = ["replay", APP, "--transactions", str(path), "--state-dir", str(state),
            "--max-dead-letters", "1"]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 0, result.output
    return result.output


def _topic(state: Path, name: str) -> list[Any]:
    broker = EmbeddedBroker(state / "broker.db")
    try:
        return drain_topic(broker, name)
    finally:
        broker.close()


def _topics(state: Path) -> set[str]:
    if not (state / "broker.db").exists():
        return set()
    broker = EmbeddedBroker(state / "broker.db")
    try:
        return set(broker.list_topics())
    finally:
        broker.close()


def _decided(state: Path) -> list[bytes]:
    """The decisions, as a sorted list, without what depends on offsets or on time."""
    out = []
    for record in _topic(state, "fraud.decisions"):
        decision = msgspec.json.decode(record.value or b"")
        for name in ("event_id", "latency_ms"):
            decision.pop(name)
        out.append(msgspec.json.encode(decision))
    return sorted(out)


def _late(state: Path) -> list[bytes]:
    """The late events (too far behind the watermark to be decided), as a sorted list."""
    return sorted(record.value or b"" for record in _topic(state, "transactions.late"))


def _check_replay(rows: list[Row], fmt: str, folder: Path) -> None:
    corrupt = written(rows, folder / f"corrupt.{fmt}", fmt)
    expected = written(rows, folder / f"expected.{fmt}", fmt, good_only=True)
    _replay(corrupt, folder / "corrupt")
    _replay(expected, folder / "expected")
    _check_outputs(rows, folder)


def _check_outputs(rows: list[Row], folder: Path) -> None:
    """Every row decided, late or a dead letter with a reason, as many dead letters as bad
    rows, and the good rows decided as they are without the bad ones."""
    letters = _topic(folder / "corrupt", "transactions.dead-letters")
    bad = sum(not row.good for row in rows)
    assert all(dict(letter.headers).get("reason") for letter in letters)
    reasons = [dict(letter.headers)["reason"] for letter in letters]
    assert len(letters) == bad, reasons
    decided, late = _decided(folder / "corrupt"), _late(folder / "corrupt")
    assert len(decided) + len(late) + len(letters) == len(rows)
    assert (decided, late) == (_decided(folder / "expected"), _late(folder / "expected"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupted_files_replay_as_their_good_rows(fmt: str) -> None:
    @FUZZ
    @given(rows=corrupted(CLEAN, fmt))
    def fuzz(rows: list[Row]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            _check_replay(rows, fmt, Path(folder))

    fuzz()


def _produce_and_run(path: Path, state: Path) -> None:
    """`streamsense produce` into the payments topic, then the fraud worker over it."""
    application = load_app(APP).application
    broker = EmbeddedBroker(state / "broker.db")
    try:
        for topic, config in application.app.topic_configs().items():
            broker.create_topic(topic, config)
        args = ["produce", "transactions", str(path), "--key", "CUSTOMER_ID",
                "--state-dir", str(state)]  # fmt: skip
        result = runner.invoke(cli, args)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        assert application.configure is not None
        application.configure(state)
        Worker(application.app, broker, WorkerConfig()).run(until_caught_up=True, own_all=True)
    finally:
        broker.close()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_corrupted_files_produced_are_processed_as_their_good_rows(fmt: str) -> None:
    @FUZZ
    @given(rows=corrupted(CLEAN, fmt))
    def fuzz(rows: list[Row]) -> None:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            corrupt = written(rows, folder / f"corrupt.{fmt}", fmt)
            expected = written(rows, folder / f"expected.{fmt}", fmt, good_only=True)
            _produce_and_run(corrupt, folder / "corrupt")
            _produce_and_run(expected, folder / "expected")
            _check_outputs(rows, folder)

    fuzz()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("keep", [0.3, 0.97])
def test_a_truncated_file_is_refused_or_replayed_row_by_row(
    fmt: str, keep: float, tmp_path: Path
) -> None:
    whole = written(CLEAN, tmp_path / f"whole.{fmt}", fmt).read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(whole[: int(len(whole) * keep)])
    args = ["replay", APP, "--transactions", str(cut), "--state-dir", str(tmp_path / "s"),
            "--max-dead-letters", "1"]  # fmt: skip
    result = runner.invoke(cli, args)
    assert "Traceback" not in result.output and result.exit_code in (0, 2), result.output
    if result.exit_code == 2:  # refused: one line, nothing ingested
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not _topics(tmp_path / "s") & {"transactions", "labels"}
        return
    letters = _topic(tmp_path / "s", "transactions.dead-letters")
    processed = len(_decided(tmp_path / "s")) + len(_late(tmp_path / "s"))
    lines = cut.read_bytes().rstrip(b"\n").count(b"\n") + (fmt == "jsonl")
    assert processed + len(letters) == lines


def test_produce_then_run_in_real_processes(tmp_path: Path) -> None:
    """`streamsense produce` and `streamsense run`, as a user runs them: one bad row among
    good ones is one dead letter; every other row is decided."""
    rows = list(CLEAN)
    rows.insert(3, Row({**CLEAN[3].cells, "TX_AMOUNT": b"abc"}, good=False))
    path = written(rows, tmp_path / "tx.csv", "csv")
    state = tmp_path / "s"
    broker = EmbeddedBroker(state / "broker.db")
    try:
        for topic, config in load_app(APP).app.topic_configs().items():
            broker.create_topic(topic, config)
    finally:
        broker.close()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    command = [sys.executable, "-m", "streamsense"]
    produce = [*command, "produce", "transactions", str(path), "--key", "CUSTOMER_ID",
               "--state-dir", str(state)]  # fmt: skip
    done = subprocess.run(produce, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"produced {len(rows)} records" in done.stdout
    run = [*command, "run", APP, "--state-dir", str(state)]
    worker = subprocess.Popen(run, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: len(_decided(state)) + len(_letters(state)) >= len(rows), worker)
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=60)[0].decode(errors="replace")
    assert "Traceback" not in output, output
    assert [dict(r.headers)["field"] for r in _letters(state)] == [b"TX_AMOUNT"]
    assert len(_decided(state)) == len(CLEAN)


def _letters(state: Path) -> list[Any]:
    return _topic(state, "transactions.dead-letters") if (state / "broker.db").exists() else []


def _wait_for(done: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not done():
        assert process.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "the worker never caught up"
        time.sleep(0.3)
