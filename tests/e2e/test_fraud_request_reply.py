"""The card-authorisation path on the fraud pipeline: a caller publishes a payment and waits
for the pipeline's own decision of it (request/reply over the embedded broker)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from streamsense.brokers import EmbeddedBroker
from streamsense.runtime.loader import load_app
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.serving.request_reply import RequestReply
from streamsense.serving.rules import RuleSet

APP = str(Path(__file__).resolve().parents[2] / "apps" / "fraud")
# The app has no default rules (and no models in a fresh state dir): an operator's own rule,
# so the two payments get different decisions.
OPERATOR_RULES = RuleSet.from_dicts(
    [{"name": "operator_limit", "when": "TX_AMOUNT > 1000", "action": "block"}]
)


@pytest.fixture
def fraud_worker(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, ModuleType]]:
    loaded = load_app(APP)
    cascades = loaded.module.serving_setup
    loaded.module.DECIDE.cascade = cascades.FraudCascade(
        rules=OPERATOR_RULES, config=cascades.CONFIG, fallbacks=cascades.FALLBACKS
    )
    broker = EmbeddedBroker(tmp_path / "log.db")
    worker = Worker(loaded.app, broker, WorkerConfig(mode="realtime", poll_timeout_s=0.01))
    worker.ensure_topics()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield broker, loaded.module
    finally:
        worker.stop()
        thread.join(timeout=30)
        broker.close()


def payment(transaction_id: int, amount: float) -> dict[str, object]:
    paid = datetime(2018, 4, 1, 12, 0, transaction_id, tzinfo=UTC).isoformat()
    return {
        "TRANSACTION_ID": transaction_id,
        "TX_DATETIME": paid,
        "CUSTOMER_ID": 7,
        "TERMINAL_ID": 11,
        "TX_AMOUNT": amount,
    }


def test_a_caller_gets_the_fraud_pipelines_decision_of_its_payment(
    fraud_worker: tuple[EmbeddedBroker, ModuleType],
) -> None:
    broker, module = fraud_worker
    with RequestReply(broker, module.transactions, "fraud.decisions", timeout=20.0) as client:
        small = client.request(payment(1, 12.5))
        big = client.request(payment(2, 5_000.0))
    for decision in (small, big):
        assert decision.event_id.startswith("rr/") and "timeout" not in decision.degraded_reasons
    assert small.action == "allow" and big.action == "block"  # the operator's rule
    assert big.tier == "rules" and big.rule == "operator_limit"
    assert big.features["TX_AMOUNT"] == 5_000.0
    assert small.event_id != big.event_id
    assert client.stats.replies == 2 and client.stats.timeouts == 0
