"""A second application (tests/apps/shop: two streams joined by key, no training) goes
through `replay`, `run`, `serve` and `demo` with the command line as it is: everything it
offers, it declares in its ``Application``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from streamsense.brokers import EmbeddedBroker
from streamsense.cli.main import cli
from streamsense.runtime.loader import load_app
from streamsense.testing import drain_topic

ROOT = Path(__file__).resolve().parents[2]
SHOP = str(ROOT / "tests" / "apps" / "shop")
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
runner = CliRunner()


def said(*args: str) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def shop_files(folder: Path, customers: int = 4, orders: int = 12) -> dict[str, Path]:
    module = load_app(SHOP).module
    files: dict[str, Path] = module.write_demo_files(folder, customers, orders)
    return files


def joined_ids(path: Path) -> list[int]:
    return sorted(json.loads(line)["order_id"] for line in path.read_text().splitlines())


def test_replay_with_generic_and_friendly_options(tmp_path: Path) -> None:
    files = shop_files(tmp_path / "in")
    out = tmp_path / "joined.jsonl"
    output = said("replay", SHOP, "--input", f"orders={files['orders']}",
                  "--customers", str(files["customers"]), "--export", f"joined={out}",
                  "--state-dir", str(tmp_path / "state"))  # fmt: skip
    assert "shop: 12 orders joined" in output and "exported 12 rows of joined" in output
    assert joined_ids(out) == list(range(12))
    again = tmp_path / "again.jsonl"
    said("replay", SHOP, "--orders", str(files["orders"]), "--export-joined", str(again),
         "--state-dir", str(tmp_path / "state"))  # fmt: skip
    assert joined_ids(again) == list(range(12))  # the rerun adds nothing


def test_unknown_inputs_and_exports_are_refused(tmp_path: Path) -> None:
    files = shop_files(tmp_path)
    for args, message in (
        (["--input", f"payments={files['orders']}"], "no input stream 'payments'"),
        (["--orders", str(files["orders"]), "--export", "x=y"], "no export 'x'"),
        (["--transactions", str(files["orders"])], "No such option"),
    ):
        result = runner.invoke(cli, ["replay", SHOP, *args, "--state-dir", str(tmp_path)])
        assert result.exit_code == 2 and message in result.output, result.output


def test_demo_runs_the_apps_own_demo(tmp_path: Path) -> None:
    output = said("demo", SHOP, "--orders", "30", "--state-dir", str(tmp_path))
    assert "shop: 30 orders joined" in output


def test_run_joins_what_is_produced_then_stops_on_sigterm(tmp_path: Path) -> None:
    files = shop_files(tmp_path / "in")
    state = tmp_path / "state"
    command = [sys.executable, "-m", "streamsense", "run", SHOP, "--state-dir", str(state),
               "--mode", "realtime"]  # fmt: skip
    worker = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for stream, name in (("shop.customers", "customers"), ("shop.orders", "orders")):
            _wait_for_topic(state, stream, worker)
            produce = ["produce", stream, str(files[name]), "--key", "user"]
            said(*produce, "--state-dir", str(state))
        deadline = time.monotonic() + 60
        while _joined(state) < 12:
            assert worker.poll() is None and time.monotonic() < deadline, "nothing joined"
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors.decode()
    assert _joined(state) == 12


def _wait_for_topic(state: Path, topic: str, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while topic not in _topics(state):
        assert worker.poll() is None and time.monotonic() < deadline, "no topics created"
        time.sleep(0.1)


def _topics(state: Path) -> set[str]:
    if not (state / "broker.db").exists():
        return set()
    broker = EmbeddedBroker(state / "broker.db")
    try:
        return set(broker.list_topics())
    finally:
        broker.close()


def _joined(state: Path) -> int:
    broker = EmbeddedBroker(state / "broker.db")
    try:
        return sum(len(json.loads(r.value or b"[]")) for r in drain_topic(broker, "shop.joined"))
    finally:
        broker.close()


def test_serve_decides_an_order_over_http(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "streamsense", "serve", SHOP, "--port", str(port),
               "--state-dir", str(tmp_path)]  # fmt: skip
    server = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        order = {"order_id": 1, "user": "u1", "ts": 1_600_000_000_000, "amount": 500.0}
        url = f"http://127.0.0.1:{port}/v1/decide/shop.orders"
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.post(url, json=order, timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "never served"
                time.sleep(0.2)
        assert response.status_code == 200, response.text
        assert response.json()["action"] == "review"
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
