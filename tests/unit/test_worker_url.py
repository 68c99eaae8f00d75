"""Supervised workers under exactly once each get a transactional id of their own, stable
per slot: two live workers with one id would fence each other, and a restarted slot must
abort its crashed predecessor's transaction."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from streamsense.brokers.kafka import worker_url
from streamsense.cli.supervise import WorkerOptions


def options_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_each_slot_has_its_own_stable_transactional_id() -> None:
    url = "kafka://127.0.0.1:9092,127.0.0.1:9093?exactly_once=true&transaction_timeout_ms=10000"
    first, second = worker_url(url, "fraud", 0), worker_url(url, "fraud", 1)
    assert options_of(first) == {
        "exactly_once": ["true"],
        "transaction_timeout_ms": ["10000"],
        "transactional_id": ["fraud-0"],
    }
    assert options_of(second)["transactional_id"] == ["fraud-1"]
    assert worker_url(url, "fraud", 1) == second  # a restart of slot 1 keeps its id
    assert first.startswith("kafka://127.0.0.1:9092,127.0.0.1:9093?")


def test_a_given_transactional_id_becomes_the_base() -> None:
    url = "kafka://127.0.0.1:9092?exactly_once=true&transactional_id=payments"
    assert options_of(worker_url(url, "fraud", 2))["transactional_id"] == ["payments-2"]


def test_other_urls_are_unchanged() -> None:
    for url in (
        "kafka://127.0.0.1:9092",
        "kafka://127.0.0.1:9092?exactly_once=false&transactional_id=x",
        "embedded:///tmp/state/broker.db",
    ):
        assert worker_url(url, "fraud", 3) == url


def test_the_child_command_uses_the_slots_url(tmp_path: Path) -> None:
    worker = WorkerOptions("microbatch", 100, "kafka://h:1", tmp_path, 100, 6000, False)
    argv = worker.argv("apps/fraud", "kafka://h:1?exactly_once=true&transactional_id=g-4")
    assert argv[argv.index("--broker") + 1] == "kafka://h:1?exactly_once=true&transactional_id=g-4"
