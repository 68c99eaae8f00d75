"""Fraud detection on card payments: the flagship application.

transactions → the handbook's 15 features (computed live by the feature engine) → rules →
decisions. The rules stand in front of the models that later issues add.
"""

from __future__ import annotations

from datetime import datetime

from features import handbook_features
from fraud_summary import summary

import streamsense as ss
from streamsense import features as F


class Transaction(ss.Schema, rename="upper"):
    """One card payment; field names on the wire are the handbook's (TX_AMOUNT, ...)."""

    transaction_id: int
    tx_datetime: datetime
    customer_id: int
    terminal_id: int
    tx_amount: float
    # The handbook file carries the label; it reaches the features only through the
    # terminal windows that end 7 days back, when labels are known.
    tx_fraud: int = 0


class Decision(ss.Schema):
    transaction_id: int
    customer_id: int
    amount: float
    action: str
    rule: str
    features: dict[str, float | int]


# One partition: the terminal features need every payment of a terminal, and payments are
# keyed by customer. Scaling out means repartitioning by terminal (a later step).
transactions = ss.Stream(
    "transactions", Transaction, key="customer_id", time="tx_datetime", partitions=1
)
FEATURES = handbook_features(transactions)


def rules(enriched: F.Enriched, ctx: ss.Context) -> Decision:
    """First match wins: the card networks' style of ordered rules."""
    tx: Transaction = enriched.payload
    f = enriched.features
    usual = float(f["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"])
    if tx.tx_amount > 220:
        action, rule = "block", "amount_over_220"
    elif float(f["TERMINAL_ID_RISK_7DAY_WINDOW"]) >= 0.3:
        action, rule = "block", "terminal_risk_7d"
    elif int(f["CUSTOMER_ID_NB_TX_30DAY_WINDOW"]) >= 10 and tx.tx_amount > 4 * usual:
        action, rule = "review", "amount_4x_customer_mean"
    else:
        action, rule = "allow", "default"
    return Decision(tx.transaction_id, tx.customer_id, tx.tx_amount, action, rule, f)


app = ss.App("fraud")
app.flow(transactions).batch(
    F.FeatureStage("features", FEATURES, allowed_lateness_ms=60_000)
).stage("rules", rules).sink(ss.TopicSink("fraud.decisions"))

inputs = {"transactions": transactions}

__all__ = ["app", "inputs", "summary"]
