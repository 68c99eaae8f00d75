"""bench/kafka_bench.py's fixed workload rule, not the fraud app's: a plain pipeline
function of ordered rules that the Kafka bench runs on streamsense (its Quix peer repeats it
line for line), so both peers do the same work per payment.

Its first rule, amount over 220, is the handbook data generator's own labelling rule: a bank
could not know it, so the app does not use it (its cascade has no default rules, serving.py).
It stays here only as the bench's workload, fixed so that bench runs stay comparable."""

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


def kafka_bench_rules(enriched: F.Enriched, ctx: ss.Context) -> Decision | None:
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
