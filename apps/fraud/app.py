"""Fraud detection on card payments: the flagship application.

transactions → the handbook's 15 features (computed live by the feature engine) → rules →
decisions. The rules stand in front of the models that later issues add.
"""

from __future__ import annotations

from datetime import datetime

from pathlib import Path

import serving as serving_setup
from features import handbook_features
from fraud_summary import summary

import streamsense as ss
from streamsense import features as F
from streamsense.serving.service import DECIDED_BY_API, Serving


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


def rules(enriched: F.Enriched, ctx: ss.Context) -> Decision | None:
    """First match wins: the card networks' style of ordered rules."""
    if DECIDED_BY_API in ctx.event.headers:
        return None  # decided when it was posted to /v1/decide; its features still count
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


FEATURE_STAGE = F.FeatureStage("features", FEATURES, allowed_lateness_ms=60_000)
app = ss.App("fraud")
app.flow(transactions).batch(FEATURE_STAGE).stage("rules", rules).sink(
    ss.TopicSink("fraud.decisions")
)

inputs = {"transactions": transactions}


def configure(state_dir: Path) -> None:
    """The pipeline keeps the online store in the state dir up to date."""
    serving_setup.attach(FEATURE_STAGE, state_dir)


def serving(broker: ss.Broker, state_dir: Path) -> Serving:
    return serving_setup.build_serving(broker, state_dir, FEATURES, transactions)


__all__ = ["app", "configure", "inputs", "serving", "summary"]
