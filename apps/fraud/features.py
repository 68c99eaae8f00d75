"""The fraud handbook's 15 features, exactly as ../shared/datasets/README.md defines them.

Customer windows hold the customer's payments in (t − w, t], the current one included.
Terminal windows end 7 days before t, (t − 7d − w, t − 7d], because fraud labels are known
only 7 days after a payment; the risk is the share of fraud among those payments.
"""

from __future__ import annotations

from typing import Any

import streamsense as ss
from streamsense import features as F

WINDOWS_DAYS = (1, 7, 30)
LABEL_DELAY = "7d"


def handbook_features(transactions: ss.Stream[Any]) -> F.FeatureSet:
    customer = F.FeatureGroup(transactions, key="customer_id")
    terminal = F.FeatureGroup(transactions, key="terminal_id")
    for days in WINDOWS_DAYS:
        window = F.rolling(f"{days}d")
        customer.add(f"CUSTOMER_ID_NB_TX_{days}DAY_WINDOW", F.count(), window)
        customer.add(f"CUSTOMER_ID_AVG_AMOUNT_{days}DAY_WINDOW", F.mean("tx_amount"), window)
    for days in WINDOWS_DAYS:
        delayed = F.rolling(f"{days}d", offset=LABEL_DELAY)
        terminal.add(f"TERMINAL_ID_NB_TX_{days}DAY_WINDOW", F.count(), delayed)
        terminal.add(f"TERMINAL_ID_RISK_{days}DAY_WINDOW", F.mean("tx_fraud"), delayed)
    amount = F.Computed("TX_AMOUNT", transactions, _amount, ("tx_amount",))
    return F.FeatureSet(
        "handbook",
        [
            amount,
            F.weekend(transactions),
            F.night(transactions),
            *customer.features,
            *terminal.features,
        ],
    )


def _amount(_: Any, columns: F.Columns) -> Any:
    """The payment's own amount, the 15th model input next to the 14 window features."""
    return columns["tx_amount"]
