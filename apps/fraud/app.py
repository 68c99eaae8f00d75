"""Fraud detection on card payments: the flagship application.

For now a small real pipeline: each customer's spending profile is kept as keyed state
(count, mean and variance of past amounts, updated per event), and rules turn the amount and
its z-score against that profile into allow / review / block.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import streamsense as ss


class Transaction(ss.Schema, rename="upper"):
    """One card payment; field names on the wire are the handbook's (TX_AMOUNT, ...)."""

    transaction_id: int
    tx_datetime: datetime
    customer_id: int
    terminal_id: int
    tx_amount: float


class Decision(ss.Schema):
    transaction_id: int
    customer_id: int
    amount: float
    customer_tx_count: int
    amount_zscore: float
    action: str
    rule: str


transactions = ss.Stream(
    "transactions", Transaction, key="customer_id", time="tx_datetime", partitions=4
)


def spending_profile(tx: Transaction, ctx: ss.Context) -> dict[str, Any]:
    """Score the amount against the customer's history, then add it (Welford's update)."""
    count, mean, m2 = ctx.state.get((0, 0.0, 0.0))
    std = math.sqrt(m2 / (count - 1)) if count > 1 else 0.0
    zscore = (tx.tx_amount - mean) / std if std > 0 else 0.0
    count += 1
    delta = tx.tx_amount - mean
    mean += delta / count
    m2 += delta * (tx.tx_amount - mean)
    ctx.state.set((count, mean, m2))
    return {"tx": tx, "count": count - 1, "zscore": zscore}


def rules(scored: dict[str, Any], ctx: ss.Context) -> Decision:
    tx: Transaction = scored["tx"]
    if tx.tx_amount > 220:
        action, rule = "block", "amount_over_220"
    elif scored["count"] >= 5 and scored["zscore"] > 4:
        action, rule = "review", "amount_zscore_over_4"
    else:
        action, rule = "allow", "default"
    return Decision(
        tx.transaction_id,
        tx.customer_id,
        tx.tx_amount,
        scored["count"],
        round(scored["zscore"], 6),
        action,
        rule,
    )


app = ss.App("fraud")
app.flow(transactions).stage("profile", spending_profile).stage("rules", rules).sink(
    ss.TopicSink("fraud.decisions")
)

inputs = {"transactions": transactions}

from fraud_summary import summary  # noqa: E402  (the replay command prints it)

__all__ = ["app", "inputs", "summary"]
