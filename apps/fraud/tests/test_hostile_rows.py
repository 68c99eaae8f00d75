"""Found by the file fuzzing of issue #21: a payment dated in the last week of year 9999
derives a label Python can still hold, and the summary reads past labels the labels stream
itself refuses."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

import streamsense as ss
from streamsense.testing import MemoryBroker

from ..app import LabelRows
from ..fraud_exports import labels


def test_a_label_a_week_after_year_9999_ends_is_held_at_its_last_instant() -> None:
    paid = pa.array([datetime(2018, 4, 1), datetime(9999, 12, 30), None], pa.timestamp("us"))
    batch = pa.RecordBatch.from_pydict(
        {
            "TRANSACTION_ID": [1, 2, 3],
            "CUSTOMER_ID": [4, 5, 6],
            "TERMINAL_ID": [7, 8, 9],
            "TX_DATETIME": paid,
            "TX_FRAUD": [0, 1, 0],
        }
    )
    known = LabelRows()(batch).column("LABEL_TIME").to_pylist()  # raised OverflowError
    assert known == [datetime(2018, 4, 8), datetime.max, None]


def test_labels_of_payments_in_nanoseconds_or_milliseconds_are_a_week_later() -> None:
    for unit in ("ns", "ms"):
        paid = pa.array([datetime(2018, 4, 1)], pa.timestamp(unit))
        batch = pa.RecordBatch.from_pydict(
            {
                "TRANSACTION_ID": [1],
                "CUSTOMER_ID": [4],
                "TERMINAL_ID": [7],
                "TX_DATETIME": paid,
                "TX_FRAUD": [0],
            }
        )
        known = LabelRows()(batch).column("LABEL_TIME").to_pylist()
        assert [t.replace(tzinfo=None) for t in known] == [datetime(2018, 4, 8)], unit


def test_the_summary_leaves_out_labels_the_labels_stream_refuses() -> None:
    broker = MemoryBroker()
    broker.create_topic("labels", ss.TopicConfig(1))
    good = b'{"TRANSACTION_ID":1,"CUSTOMER_ID":2,"TX_FRAUD":1,"LABEL_TIME":"2018-04-08T00:00:00"}'
    no_time = b'{"TRANSACTION_ID":3,"CUSTOMER_ID":4,"TX_FRAUD":0,"LABEL_TIME":null}'
    with broker.producer() as producer:
        for value in (good, no_time):
            producer.send("labels", value, b"k")
    known = labels(broker)  # raised ValidationError at the end of the replay
    assert known["TRANSACTION_ID"].tolist() == [1]
