"""The fraud application's features.

* The handbook's 15, exactly as ../shared/datasets/README.md defines them
  (``handbook_features``). Customer windows hold the customer's payments in (t − w, t], the
  current one included. Terminal windows end 7 days before t, (t − 7d − w, t − 7d], because
  fraud labels are known only 7 days after a payment; the risk is the share of fraud among
  those payments.
* Velocity and habits: the customer's payments in the last hour and at how many terminals,
  the terminal's payments in the last hour, the customer's amount spread and today's
  largest amount, and the customer's habits *before today*, (t − 31d, t − 1d], so that a
  burst of stolen-card payments does not hide in the average it inflates.
* Label history of the terminal: known frauds and the last known label over the delayed
  windows, the fraud share week by week further back (so a model can tell a terminal still
  being abused from one whose compromise is over), and the amounts of its known frauds.
* Derived at decision time from the vector (``derived``): the amount against the
  customer's habits (z-scores and ratios), the known frauds' average amount. Plain
  arithmetic on the window values, the same in the pipeline, the HTTP API and training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import streamsense as ss
from streamsense import features as F

WINDOWS_DAYS = (1, 7, 30)
LABEL_DELAY = "7d"
LABEL_DELAY_MS = 7 * 86_400_000

HANDBOOK_NAMES = [
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *[f"CUSTOMER_ID_{k}_{w}DAY_WINDOW" for w in WINDOWS_DAYS for k in ("NB_TX", "AVG_AMOUNT")],
    *[f"TERMINAL_ID_{k}_{w}DAY_WINDOW" for w in WINDOWS_DAYS for k in ("NB_TX", "RISK")],
]


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
            F.weekend(transactions, "TX_DURING_WEEKEND"),
            F.night(transactions, "TX_DURING_NIGHT"),
            *customer.features,
            *terminal.features,
        ],
    )


def fraud_features(transactions: ss.Stream[Any]) -> F.FeatureSet:
    """What the pipeline computes: the handbook's 15, then velocity, habits, label history."""
    customer = F.FeatureGroup(transactions, key="customer_id")
    terminal = F.FeatureGroup(transactions, key="terminal_id")
    # Velocity (item 2 of the issue).
    customer.add("CUSTOMER_ID_NB_TX_1HOUR_WINDOW", F.count(), F.rolling("1h"))
    customer.add(
        "CUSTOMER_ID_NB_TERMINALS_1HOUR_WINDOW", F.distinct_count("terminal_id"), F.rolling("1h")
    )
    terminal.add("TERMINAL_ID_NB_TX_1HOUR_WINDOW", F.count(), F.rolling("1h"))
    # The customer's amounts: spread, today's largest, and the habits before today.
    customer.add("CUSTOMER_ID_STD_AMOUNT_30DAY_WINDOW", F.std("tx_amount"), F.rolling("30d"))
    customer.add("CUSTOMER_ID_MAX_AMOUNT_1DAY_WINDOW", F.max("tx_amount"), F.rolling("1d"))
    before_today = F.rolling("30d", offset="1d")
    customer.add("CUSTOMER_ID_HIST_NB_TX_30DAY_WINDOW", F.count(), before_today)
    customer.add("CUSTOMER_ID_HIST_AVG_AMOUNT_30DAY_WINDOW", F.mean("tx_amount"), before_today)
    customer.add("CUSTOMER_ID_HIST_STD_AMOUNT_30DAY_WINDOW", F.std("tx_amount"), before_today)
    # What the labels (known 7 days late) say about the terminal.
    for days in (7, 30):
        delayed = F.rolling(f"{days}d", offset=LABEL_DELAY)
        terminal.add(f"TERMINAL_ID_NB_FRAUD_{days}DAY_WINDOW", F.sum("tx_fraud"), delayed)
    terminal.add(
        "TERMINAL_ID_LAST_KNOWN_FRAUD", F.last("tx_fraud"), F.rolling("30d", offset=LABEL_DELAY)
    )
    terminal.add(
        "TERMINAL_ID_RISK_14DAY_WINDOW", F.mean("tx_fraud"), F.rolling("14d", offset=LABEL_DELAY)
    )
    # The amounts of the known frauds, against the terminal's usual amounts: a stolen card's
    # frauds are large for its owner, a compromised terminal's are everyday payments.
    month = F.rolling("30d", offset=LABEL_DELAY)
    terminal.add("TERMINAL_ID_AVG_AMOUNT_30DAY_WINDOW", F.mean("tx_amount"), month)
    terminal.add("TERMINAL_ID_FRAUD_AMOUNT_30DAY_WINDOW", F.sum("tx_fraud_amount"), month)
    terminal.add("TERMINAL_ID_MAX_FRAUD_AMOUNT_30DAY_WINDOW", F.max("tx_fraud_amount"), month)
    for back in (14, 21, 28):
        terminal.add(
            f"TERMINAL_ID_RISK_7DAY_WINDOW_{back}DAYS_BACK",
            F.mean("tx_fraud"),
            F.rolling("7d", offset=f"{back}d"),
        )
    handbook = handbook_features(transactions)
    return F.FeatureSet("fraud", [*handbook.features, *customer.features, *terminal.features])


DERIVED_NAMES = [
    "TX_AMOUNT_ZSCORE_30DAY_WINDOW",
    "TX_AMOUNT_RATIO_30DAY_WINDOW",
    "TX_AMOUNT_ZSCORE_HIST_30DAY_WINDOW",
    "TX_AMOUNT_RATIO_HIST_30DAY_WINDOW",
    "MAX_AMOUNT_1DAY_RATIO_HIST_30DAY_WINDOW",
    "TERMINAL_ID_AVG_FRAUD_AMOUNT_30DAY_WINDOW",
    "TERMINAL_ID_FRAUD_AMOUNT_RATIO_30DAY_WINDOW",
]


def derived(values: Mapping[str, float | int]) -> dict[str, float]:
    """The amount against the customer's habits, from a feature vector (0 or the 30-day
    figures when there is no history to compare with)."""
    amount = float(values["TX_AMOUNT"])
    mean = float(values["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"])
    std = float(values["CUSTOMER_ID_STD_AMOUNT_30DAY_WINDOW"])
    known = int(values["CUSTOMER_ID_HIST_NB_TX_30DAY_WINDOW"]) > 0
    usual = float(values["CUSTOMER_ID_HIST_AVG_AMOUNT_30DAY_WINDOW"]) if known else mean
    spread = float(values["CUSTOMER_ID_HIST_STD_AMOUNT_30DAY_WINDOW"]) if known else std
    largest = float(values["CUSTOMER_ID_MAX_AMOUNT_1DAY_WINDOW"])
    frauds = float(values["TERMINAL_ID_NB_FRAUD_30DAY_WINDOW"])
    fraud_amount = _ratio(float(values["TERMINAL_ID_FRAUD_AMOUNT_30DAY_WINDOW"]), frauds, 0.0)
    usual_there = float(values["TERMINAL_ID_AVG_AMOUNT_30DAY_WINDOW"])
    return {
        "TX_AMOUNT_ZSCORE_30DAY_WINDOW": _ratio(amount - mean, std, 0.0),
        "TX_AMOUNT_RATIO_30DAY_WINDOW": _ratio(amount, mean, 1.0),
        "TX_AMOUNT_ZSCORE_HIST_30DAY_WINDOW": _ratio(amount - usual, spread, 0.0),
        "TX_AMOUNT_RATIO_HIST_30DAY_WINDOW": _ratio(amount, usual, 1.0),
        "MAX_AMOUNT_1DAY_RATIO_HIST_30DAY_WINDOW": _ratio(largest, usual, 1.0),
        "TERMINAL_ID_AVG_FRAUD_AMOUNT_30DAY_WINDOW": fraud_amount,
        "TERMINAL_ID_FRAUD_AMOUNT_RATIO_30DAY_WINDOW": _ratio(fraud_amount, usual_there, 0.0),
    }


def _ratio(top: float, bottom: float, otherwise: float) -> float:
    value = top / bottom if bottom > 0 else otherwise
    return value if math.isfinite(value) else otherwise


def model_inputs(features: F.FeatureSet) -> list[str]:
    """The models' inputs, in order: every pipeline feature, then the derived ones."""
    return [*features.names, *DERIVED_NAMES]


def _amount(_: Any, columns: F.Columns) -> Any:
    """The payment's own amount, the 15th model input next to the 14 window features."""
    return columns["tx_amount"]
