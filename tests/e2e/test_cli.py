"""The `streamsense` command, run as users run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from typer.testing import CliRunner

from streamsense.brokers import EmbeddedBroker, TopicPartition
from streamsense.cli.main import cli
from streamsense.errors import StreamsenseError
from streamsense.testing import drain_topic
from tests.apps.counter import app as counter_app
from tests.apps.counter import clicks, make_clicks

ROOT = Path(__file__).resolve().parents[2]
COUNTER = str(ROOT / "tests" / "apps" / "counter.py")
runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def said(*args: str) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(invoke(*args).split())


def write_clicks(path: Path, n: int, bad: int = 0) -> None:
    with path.open("wb") as out:
        for i, click in enumerate(make_clicks(n)):
            out.write(msgspec.json.encode(click) + b"\n")
            if bad and i % (n // bad) == 0:
                out.write(b'{"user": "x", "ts": "not a time", "amount": 1}\n')


def test_topics_produce_and_consume(tmp_path: Path) -> None:
    state = str(tmp_path)
    invoke("topics", "create", "events", "--partitions", "3", "--state-dir", state)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "user": f"u{i % 4}"}) + "\n" for i in range(50)))
    assert "produced 50" in invoke(
        "produce", "events", str(source), "--key", "user", "--state-dir", state
    )
    listing = invoke("topics", "list", "--state-dir", state)
    assert "events" in listing and "50" in listing
    described = invoke("topics", "describe", "events", "--state-dir", state)
    assert "partitions=3" in described
    lines = invoke("consume", "events", "--state-dir", state).strip().splitlines()
    assert len(lines) == 50
    assert {json.loads(line.split("\t")[3])["id"] for line in lines} == set(range(50))
    assert len(invoke("consume", "events", "--max", "5", "--state-dir", state).splitlines()) == 5


def test_errors_are_clear_and_exit_non_zero(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["topics", "describe", "missing", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    app = "tests.apps.counter:app"
    for options, said in (
        (["--restore-below", "5"], "--restore-below needs --shed-above"),
        (["--shed-above", "10", "--restore-below", "10"], "must be lower than --shed-above"),
    ):
        refused = runner.invoke(cli, ["run", app, "--state-dir", str(tmp_path), *options])
        assert refused.exit_code == 2 and said in refused.output


def test_replay_runs_an_app_to_the_end(tmp_path: Path) -> None:
    source = tmp_path / "clicks.jsonl"
    write_clicks(source, 2000, bad=20)
    output = said("replay", COUNTER, "--input", str(source), "--state-dir", str(tmp_path))
    assert "processed 2,020 events" in output
    assert "20 dead letters" in output
    again = said("replay", COUNTER, "--input", str(source), "--state-dir", str(tmp_path))
    assert "processed 0 events" in again  # nothing new: the rerun neither reingests nor redoes


def test_replay_killed_mid_way_resumes_exactly_once(tmp_path: Path) -> None:
    """Killed once during the ingest and once during the processing, each time after it made
    committed progress (not after a fixed sleep), the replay still ends exactly once."""
    source = tmp_path / "clicks.jsonl"
    write_clicks(source, 60_000)
    command = [
        sys.executable,
        "-m",
        "streamsense",
        "replay",
        COUNTER,
        "--input",
        str(source),
        "--state-dir",
        str(tmp_path),
        "--batch-size",
        "200",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    db = tmp_path / "broker.db"
    # The ingest commits 20,000-row chunks; a kill after the first leaves some to resume.
    ingested = kill_when(command, env, lambda: ingested_rows(db) > 0, lambda: ingested_rows(db))
    assert 0 < ingested < 60_000, ingested
    processed = kill_when(command, env, lambda: committed(db) > 0, lambda: committed(db))
    assert 0 < processed < 60_000, processed
    finished = subprocess.run(command, env=env, capture_output=True, timeout=300, check=True)
    assert b"processed" in finished.stdout
    broker = EmbeddedBroker(db)
    counts = [msgspec.json.decode(r.value or b"") for r in drain_topic(broker, "counter.counts")]
    inputs = broker.describe_topic("clicks").messages
    broker.close()
    assert inputs == 60_000  # the file went in once, despite the kill during ingest
    assert len(counts) == 60_000
    assert len({c["source"] for c in counts}) == 60_000


def kill_when(
    command: list[str],
    env: dict[str, str],
    progressed: Callable[[], bool],
    progress: Callable[[], int],
) -> int:
    """Run ``command`` until ``progressed()``, SIGKILL it, and return ``progress()`` once it
    is dead (what its successor has to continue from)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not progressed():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the replay made no progress"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return progress()


def ingested_rows(db: Path) -> int:
    """Rows of the input file committed to the clicks topic so far."""
    return on_broker(db, lambda broker: broker.describe_topic(clicks.topic).messages)


def committed(db: Path) -> int:
    """Offsets the counter app's group committed so far, over every partition."""
    tps = [TopicPartition(clicks.topic, p) for p in range(clicks.partitions)]
    return on_broker(
        db, lambda broker: sum(v or 0 for v in broker.committed(counter_app.group, tps).values())
    )


def on_broker(db: Path, read: Callable[[EmbeddedBroker], int]) -> int:
    """``read`` on the replay's broker; 0 while the replay has not created it or the topic."""
    if not db.exists():
        return 0
    broker = EmbeddedBroker(db)
    try:
        return read(broker)
    except StreamsenseError:  # the topic or the group's table does not exist yet
        return 0
    finally:
        broker.close()
