"""Is this run the handbook's? Its published figures (fraud_metrics.HANDBOOK_RESULTS) were
measured on its own data with its own protocol, and say nothing about any other run:
`streamsense fraud evaluate` shows them only when both match.

The data is recognised by what the handbook's file holds (../shared/datasets/README.md):
its row count, fraud count and first and last payment times. The simulator shares its
columns and scenarios, never all four figures.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streamsense.events import to_epoch_ms

from .fraud_metrics import Protocol

HANDBOOK_ROWS = 1_754_155
HANDBOOK_FRAUDS = 14_681
HANDBOOK_SPAN = ("2018-04-01 00:00:31", "2018-09-30 23:59:57")


def _ms(text: str) -> int:
    return to_epoch_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))


# Train 2018-07-25..07-31, 7 days for the labels, test 2018-08-08..08-14.
HANDBOOK_PROTOCOL = Protocol(_ms("2018-07-25 00:00:00"), 7, 7, 7)


def is_handbook_protocol(protocol: Protocol) -> bool:
    """The handbook's weeks (how much history is replayed before them does not matter: the
    widest feature window is 37 days, and 40 are replayed by default)."""
    mine = (protocol.train_start_ms, protocol.train_days, protocol.delay_days, protocol.test_days)
    theirs = HANDBOOK_PROTOCOL
    return mine == (theirs.train_start_ms, theirs.train_days, theirs.delay_days, theirs.test_days)


def is_handbook_data(path: Path) -> bool:
    if path.suffix != ".parquet":
        return False
    file = pq.ParquetFile(path)
    if file.metadata.num_rows != HANDBOOK_ROWS:
        return False
    if not {"TX_DATETIME", "TX_FRAUD"} <= set(file.schema_arrow.names):
        return False
    table = file.read(columns=["TX_DATETIME", "TX_FRAUD"])
    times = table.column("TX_DATETIME").cast(pa.timestamp("ms")).cast(pa.int64())
    span = (pc.min(times).as_py(), pc.max(times).as_py())
    frauds = pc.sum(table.column("TX_FRAUD")).as_py()
    return frauds == HANDBOOK_FRAUDS and span == tuple(_ms(t) for t in HANDBOOK_SPAN)


def is_handbook_run(path: Path, protocol: Protocol) -> bool:
    return is_handbook_protocol(protocol) and is_handbook_data(path)
