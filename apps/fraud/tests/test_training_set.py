"""The point-in-time training set: the vectors the pipeline decided on, with only the labels
the bank knew at the cut-off. A label that arrives later must never reach training."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from streamsense.brokers import TopicConfig
from streamsense.testing import MemoryBroker

from ..features import LABEL_DELAY_MS
from ..fraud_exports import DECISIONS_TOPIC, LABELS_TOPIC
from ..fraud_training import training_set

DAY = 86_400_000
DAY0 = 1_532_476_800_000  # 2018-07-25 00:00 UTC
NAMES = ["A", "B"]
# Payment i: day i at noon, customer 100 + i % 3, fraud when i is 1 or 4.
PAID = [DAY0 + i * DAY + DAY // 2 for i in range(8)]
FRAUD = [int(i in (1, 4)) for i in range(8)]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


@pytest.fixture
def broker() -> MemoryBroker:
    broker = MemoryBroker()
    for topic in (DECISIONS_TOPIC, LABELS_TOPIC):
        broker.create_topic(topic, TopicConfig(partitions=1))
    producer = broker.producer()
    for i, paid in enumerate(PAID):
        decision = {
            "transaction_id": i, "key": str(100 + i % 3), "event_time": paid, "score": 0.0,
            "action": "allow", "tier": "rules", "features": {"A": float(i), "B": 10.0 * i},
        }  # fmt: skip
        producer.send(DECISIONS_TOPIC, msgspec.json.encode(decision))
    # Labels arrive in their own order (the label stream), 7 days after each payment.
    for i in reversed(range(len(PAID))):
        label = {
            "TRANSACTION_ID": i, "CUSTOMER_ID": 100 + i % 3, "TX_FRAUD": FRAUD[i],
            "LABEL_TIME": _iso(PAID[i] + LABEL_DELAY_MS),
        }  # fmt: skip
        producer.send(LABELS_TOPIC, msgspec.json.encode(label))
    producer.flush()
    return broker


def test_the_window_payments_with_the_labels_known_at_the_cut_off(broker: MemoryBroker) -> None:
    # Payments of days 0..5; the cut-off is when day 3's label arrives.
    as_of = PAID[3] + LABEL_DELAY_MS
    data = training_set(broker, NAMES, DAY0, DAY0 + 6 * DAY, as_of)
    assert data.transaction_ids.tolist() == [0, 1, 2, 3]
    assert data.y.tolist() == [0, 1, 0, 0]
    assert data.X.tolist() == [[0.0, 0.0], [1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]
    assert data.event_time.tolist() == PAID[:4]
    assert data.customers.tolist() == [100, 101, 102, 100]
    assert data.unlabelled == 2  # days 4 and 5: paid in the window, labels not known yet
    assert data.names == NAMES


@pytest.mark.parametrize("hours", [0, 1, 30, 24 * 7 + 11, 24 * 7 + 12, 24 * 9 + 13, 24 * 30])
def test_no_label_known_after_the_cut_off_reaches_training(
    broker: MemoryBroker, hours: int
) -> None:
    as_of = DAY0 + hours * 3_600_000
    data = training_set(broker, NAMES, DAY0, DAY0 + 8 * DAY, as_of)
    known = [i for i, paid in enumerate(PAID) if paid + LABEL_DELAY_MS <= as_of]
    assert data.transaction_ids.tolist() == known
    assert (data.label_time <= as_of).all()
    assert data.y.tolist() == [FRAUD[i] for i in known]
    assert data.unlabelled == len(PAID) - len(known)


def test_payments_outside_the_window_stay_out_even_when_labelled(broker: MemoryBroker) -> None:
    data = training_set(broker, NAMES, DAY0 + 2 * DAY, DAY0 + 4 * DAY, DAY0 + 100 * DAY)
    assert data.transaction_ids.tolist() == [2, 3]
    assert data.unlabelled == 0
