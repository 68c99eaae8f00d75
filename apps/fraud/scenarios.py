"""Fraud injection for the fraud transaction simulator.

The three scenarios follow the Fraud Detection Handbook (Le Borgne et al.): they are applied in
order 1, 2, 3 to the time-sorted transactions, and a later scenario overwrites the label of an
earlier one, as the handbook does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

LARGE_AMOUNT_THRESHOLD = 220.0
TERMINAL_COMPROMISE_DAYS = 28
CUSTOMER_COMPROMISE_DAYS = 14
CUSTOMER_FRAUD_SHARE_DIVISOR = 3
CUSTOMER_FRAUD_AMOUNT_FACTOR = 5.0


@dataclass(frozen=True, eq=False)
class FraudLabels:
    """Labels and (possibly inflated) amounts, plus the compromise events behind them.

    The event arrays have shape (k, 2) with rows (day the compromise starts, entity id); they are
    the ground truth that tests and demos use to check the labels.
    """

    amount: NDArray[np.float64]
    fraud: NDArray[np.int8]
    scenario: NDArray[np.int8]
    compromised_terminals: NDArray[np.int64]
    compromised_customers: NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class ScenarioInput:
    """Transactions (in final table order) and population sizes the scenarios need."""

    day: NDArray[np.int64]
    customer: NDArray[np.int64]
    terminal: NDArray[np.int64]
    amount: NDArray[np.float64]
    n_customers: int
    n_terminals: int
    n_days: int


def daily_counts(rate_per_day: float, n_days: int) -> NDArray[np.int64]:
    """Whole number of compromises per day whose running total tracks ``rate_per_day * days``.

    A fractional rate lets small populations keep the handbook's fraud density (for instance one
    terminal every fifth day) without drawing extra randomness; an integer rate gives exactly that
    many per day.
    """
    cumulative = np.floor(np.arange(n_days + 1, dtype=np.float64) * rate_per_day)
    return np.diff(cumulative).astype(np.int64)


def draw_compromises(
    n_entities: int, rate_per_day: float, n_days: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Pick, for each day, distinct random entities that become compromised from that day on."""
    events: list[NDArray[np.int64]] = []
    for day, count in enumerate(daily_counts(rate_per_day, n_days)):
        size = min(int(count), n_entities)
        if size == 0:
            continue
        ids = rng.choice(n_entities, size=size, replace=False).astype(np.int64)
        events.append(np.column_stack([np.full(size, day, dtype=np.int64), ids]))
    if not events:
        return np.empty((0, 2), dtype=np.int64)
    return np.concatenate(events)


def apply_scenarios(
    tx: ScenarioInput,
    terminals_per_day: float,
    customers_per_day: float,
    rng: np.random.Generator,
) -> FraudLabels:
    """Label the transactions with scenarios 1, 2 and 3, in that order."""
    amount = tx.amount.copy()
    fraud = np.zeros(amount.shape[0], dtype=np.int8)
    scenario = np.zeros(amount.shape[0], dtype=np.int8)

    _mark(fraud, scenario, amount > LARGE_AMOUNT_THRESHOLD, 1)

    terminal_events = draw_compromises(tx.n_terminals, terminals_per_day, tx.n_days, rng)
    at_risk = _compromised_on_day(terminal_events, tx.n_terminals, tx.n_days)
    _mark(fraud, scenario, at_risk[tx.terminal, tx.day], 2)

    customer_events = draw_compromises(tx.n_customers, customers_per_day, tx.n_days, rng)
    _apply_customer_compromises(tx, customer_events, amount, fraud, scenario, rng)

    return FraudLabels(amount, fraud, scenario, terminal_events, customer_events)


def _mark(
    fraud: NDArray[np.int8], scenario: NDArray[np.int8], mask: NDArray[np.bool_], label: int
) -> None:
    fraud[mask] = 1
    scenario[mask] = label


def _compromised_on_day(
    events: NDArray[np.int64], n_terminals: int, n_days: int
) -> NDArray[np.bool_]:
    """Boolean (terminal, day) matrix: True while at least one compromise window is open.

    A +1/-1 difference array turned into a running sum handles overlapping windows of the same
    terminal without a Python loop.
    """
    delta = np.zeros((n_terminals, n_days + 1), dtype=np.int32)
    starts, ids = events[:, 0], events[:, 1]
    ends = np.minimum(starts + TERMINAL_COMPROMISE_DAYS, n_days)
    np.add.at(delta, (ids, starts), 1)
    np.add.at(delta, (ids, ends), -1)
    open_windows: NDArray[np.bool_] = np.cumsum(delta, axis=1)[:, :n_days] > 0
    return open_windows


def _apply_customer_compromises(
    tx: ScenarioInput,
    events: NDArray[np.int64],
    amount: NDArray[np.float64],
    fraud: NDArray[np.int8],
    scenario: NDArray[np.int8],
    rng: np.random.Generator,
) -> None:
    """Scenario 3: a third of the compromised customers' transactions get 5x amounts.

    Sequential by compromise day because a transaction inside two overlapping windows can be
    inflated twice, as in the handbook. Transactions are looked up through a (customer, day)
    sort so each event costs two binary searches instead of a scan of the whole table.
    """
    key = tx.customer * tx.n_days + tx.day
    by_key = np.argsort(key, kind="stable")
    sorted_key = key[by_key]
    for day in np.unique(events[:, 0]):
        customers = events[events[:, 0] == day, 1]
        window_end = min(int(day) + CUSTOMER_COMPROMISE_DAYS, tx.n_days)
        lo = np.searchsorted(sorted_key, customers * tx.n_days + day, side="left")
        hi = np.searchsorted(sorted_key, customers * tx.n_days + window_end, side="left")
        pool = np.sort(np.concatenate([by_key[a:b] for a, b in zip(lo, hi, strict=True)]))
        n_fraud = pool.shape[0] // CUSTOMER_FRAUD_SHARE_DIVISOR
        if n_fraud == 0:
            continue
        chosen = rng.choice(pool, size=n_fraud, replace=False)
        # Re-round so inflated amounts stay at cent resolution like every other amount.
        amount[chosen] = np.round(amount[chosen] * CUSTOMER_FRAUD_AMOUNT_FACTOR, 2)
        fraud[chosen] = 1
        scenario[chosen] = 3
