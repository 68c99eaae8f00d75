"""The fraud app's first decision stage, rules alone, as a plain pipeline function: the app
before it had models. bench/kafka_bench.py runs it (and its Quix peer repeats it line for
line); the app itself now decides with the cascade (serving.py)."""

from __future__ import annotations

import streamsense as ss
from streamsense import features as F
from streamsense.serving import DECIDED_BY_API


class Decision(ss.Schema):
    transaction_id: int
    customer_id: int
    amount: float
    action: str
    rule: str
    features: dict[str, float | int]


def rules(enriched: F.Enriched, ctx: ss.Context) -> Decision | None:
    """First match wins: the card networks' style of ordered rules."""
    if DECIDED_BY_API in ctx.event.headers:
        return None  # decided when it was posted to /v1/decide; its features still count
    tx = enriched.payload
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
