"""Drift to inject into a payments table (the simulator's or a copy of the handbook's), for
monitoring's tests and acceptance (issue #17).

* ``shift_amounts``: from a given day on, the amounts at a fifth of the terminals (those
  whose id is a multiple of 5) are multiplied by a factor (2.5 by default): a price change,
  a currency mix-up, a merchant category moving upmarket. Labels are left as they are: the
  payments are the same ones, only dearer, so a model that learnt "large amounts are
  fraud" now raises false alarms.

    python -m apps.fraud.drift_scenarios IN.parquet OUT.parquet --from 2018-08-20
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SHIFT_FACTOR = 2.5
TERMINAL_SHARE = 5  # one terminal in 5


def shift_amounts(table: pa.Table, start: datetime, factor: float = SHIFT_FACTOR) -> pa.Table:
    """``table`` with TX_AMOUNT x ``factor`` at every fifth terminal from ``start`` on."""
    since = pc.greater_equal(table["TX_DATETIME"], pa.scalar(start, table["TX_DATETIME"].type))
    terminals = table["TERMINAL_ID"].to_numpy()
    shifted = since.to_numpy(zero_copy_only=False) & (terminals % TERMINAL_SHARE == 0)
    dearer = pc.round(pc.multiply(table["TX_AMOUNT"], factor), 2)
    amounts = pc.if_else(pa.array(shifted), dearer, table["TX_AMOUNT"])
    return table.set_column(table.schema.get_field_index("TX_AMOUNT"), "TX_AMOUNT", amounts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--from", dest="start", required=True, help="First shifted day (UTC).")
    parser.add_argument("--factor", type=float, default=SHIFT_FACTOR)
    args = parser.parse_args()
    table = shift_amounts(
        pq.read_table(args.source), datetime.fromisoformat(args.start), args.factor
    )
    pq.write_table(table, args.target)


if __name__ == "__main__":
    main()
