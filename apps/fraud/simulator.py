"""Deterministic card-payment simulator with labelled fraud.

Modelled on the simulator of *Reproducible Machine Learning for Credit Card Fraud Detection --
Practical Handbook* (Le Borgne et al.) so that demos and tests need no external data: customers
and terminals live on a 100 x 100 square, each customer pays at the terminals within ``radius``
of home, and three fraud scenarios are injected (see ``scenarios``). The output has the
columns and types of the handbook's published dataset.

Everything is drawn from ``numpy.random.Generator`` streams derived from ``config.seed``, so the
same configuration always yields the same table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from .scenarios import FraudLabels, ScenarioInput, apply_scenarios

SECONDS_PER_DAY = 86_400
AREA_SIZE = 100.0
TX_TIME_MEAN = SECONDS_PER_DAY / 2
TX_TIME_STD = 20_000.0
MEAN_AMOUNT_RANGE = (5.0, 100.0)
MEAN_TX_PER_DAY_RANGE = (0.0, 4.0)

# The handbook compromises 2 of its 10,000 terminals and 3 of its 5,000 customers per day. By
# default we keep those densities, so a small population gets a handbook-like fraud rate instead
# of having most of its terminals compromised within a month.
HANDBOOK_TERMINALS_PER_DAY_PER_TERMINAL = 2 / 10_000
HANDBOOK_CUSTOMERS_PER_DAY_PER_CUSTOMER = 3 / 5_000

# Bounds the (customers x terminals) distance matrix built per chunk to a few tens of MB.
_DISTANCE_CHUNK_CELLS = 4_000_000

TRANSACTION_SCHEMA = pa.schema(
    [
        ("TRANSACTION_ID", pa.int64()),
        ("TX_DATETIME", pa.timestamp("us")),
        ("CUSTOMER_ID", pa.int64()),
        ("TERMINAL_ID", pa.int64()),
        ("TX_AMOUNT", pa.float64()),
        ("TX_TIME_SECONDS", pa.int64()),
        ("TX_TIME_DAYS", pa.int64()),
        ("TX_FRAUD", pa.int8()),
        ("TX_FRAUD_SCENARIO", pa.int8()),
    ]
)


@dataclass(frozen=True)
class FraudSimulatorConfig:
    """Size, start date, seed and fraud intensity of a simulation.

    ``compromised_terminals_per_day`` / ``compromised_customers_per_day`` may be fractional
    (e.g. 0.2 = one every fifth day); ``None`` scales the handbook's densities to the population,
    which gives exactly 2 and 3 per day at the handbook's 10,000 terminals and 5,000 customers.
    """

    n_customers: int = 500
    n_terminals: int = 1000
    n_days: int = 30
    start_date: str = "2018-04-01"
    radius: float = 5.0
    seed: int = 0
    compromised_terminals_per_day: float | None = None
    compromised_customers_per_day: float | None = None

    def __post_init__(self) -> None:
        for name in ("n_customers", "n_terminals", "n_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.radius <= 0:
            raise ValueError("radius must be positive")
        for rate in (self.compromised_terminals_per_day, self.compromised_customers_per_day):
            if rate is not None and rate < 0:
                raise ValueError("compromise rates must be non-negative")
        np.datetime64(self.start_date, "s")  # fail early on an unparsable date

    @property
    def terminals_per_day(self) -> float:
        if self.compromised_terminals_per_day is not None:
            return self.compromised_terminals_per_day
        return self.n_terminals * HANDBOOK_TERMINALS_PER_DAY_PER_TERMINAL

    @property
    def customers_per_day(self) -> float:
        if self.compromised_customers_per_day is not None:
            return self.compromised_customers_per_day
        return self.n_customers * HANDBOOK_CUSTOMERS_PER_DAY_PER_CUSTOMER


@dataclass(frozen=True, eq=False)
class CustomerProfiles:
    """Per-customer spending habits, indexed by CUSTOMER_ID."""

    xy: NDArray[np.float64]
    mean_amount: NDArray[np.float64]
    std_amount: NDArray[np.float64]
    mean_nb_tx_per_day: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class TerminalNeighbours:
    """Terminals each customer may use, in CSR form.

    Customer ``c`` uses ``indices[indptr[c]:indptr[c + 1]]``; a ragged list of arrays would cost
    one Python object per customer and could not be indexed in a vectorised way.
    """

    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]

    def degree(self) -> NDArray[np.int64]:
        return np.diff(self.indptr)


@dataclass(frozen=True, eq=False)
class FraudSimulation:
    """A simulated table together with the hidden state that produced it (for checks, demos)."""

    config: FraudSimulatorConfig
    table: pa.Table
    customers: CustomerProfiles
    terminal_xy: NDArray[np.float64]
    neighbours: TerminalNeighbours
    compromised_terminals: NDArray[np.int64]
    compromised_customers: NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class _Transactions:
    day: NDArray[np.int64]
    seconds_in_day: NDArray[np.int64]
    customer: NDArray[np.int64]
    terminal: NDArray[np.int64]
    amount: NDArray[np.float64]

    def take(self, index: NDArray[np.int64]) -> _Transactions:
        return _Transactions(
            self.day[index],
            self.seconds_in_day[index],
            self.customer[index],
            self.terminal[index],
            self.amount[index],
        )


def simulate_transactions(config: FraudSimulatorConfig | None = None) -> pa.Table:
    """Simulate the transaction table for ``config`` (the defaults if omitted)."""
    return run_simulation(config or FraudSimulatorConfig()).table


def run_simulation(config: FraudSimulatorConfig) -> FraudSimulation:
    """Simulate transactions and keep the profiles and compromise events behind them."""
    # Independent streams per stage, so e.g. changing the fraud logic does not reshuffle the
    # genuine transactions drawn from the same seed.
    profile_rng, tx_rng, fraud_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3)
    )
    customers = _draw_customers(config.n_customers, profile_rng)
    terminal_xy = profile_rng.uniform(0.0, AREA_SIZE, size=(config.n_terminals, 2))
    neighbours = _terminals_within_radius(customers.xy, terminal_xy, config.radius)
    tx = _draw_transactions(customers, neighbours, config.n_days, tx_rng)
    # Stable sort: payments in the same second keep generation order (day, customer, draw).
    tx = tx.take(np.argsort(tx.day * SECONDS_PER_DAY + tx.seconds_in_day, kind="stable"))
    labels = apply_scenarios(
        ScenarioInput(
            day=tx.day,
            customer=tx.customer,
            terminal=tx.terminal,
            amount=tx.amount,
            n_customers=config.n_customers,
            n_terminals=config.n_terminals,
            n_days=config.n_days,
        ),
        config.terminals_per_day,
        config.customers_per_day,
        fraud_rng,
    )
    table = _to_table(tx, labels, config.start_date)
    return FraudSimulation(
        config=config,
        table=table,
        customers=customers,
        terminal_xy=terminal_xy,
        neighbours=neighbours,
        compromised_terminals=labels.compromised_terminals,
        compromised_customers=labels.compromised_customers,
    )


def write_parquet(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write ``table`` to a Parquet file, creating the parent directory if needed."""
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    pq.write_table(table, path)


def _draw_customers(n_customers: int, rng: np.random.Generator) -> CustomerProfiles:
    xy = rng.uniform(0.0, AREA_SIZE, size=(n_customers, 2))
    mean_amount = rng.uniform(*MEAN_AMOUNT_RANGE, size=n_customers)
    mean_nb_tx = rng.uniform(*MEAN_TX_PER_DAY_RANGE, size=n_customers)
    return CustomerProfiles(xy, mean_amount, mean_amount / 2, mean_nb_tx)


def _terminals_within_radius(
    customer_xy: NDArray[np.float64], terminal_xy: NDArray[np.float64], radius: float
) -> TerminalNeighbours:
    """Terminals strictly closer than ``radius`` to each customer, ids ascending."""
    n_customers, n_terminals = customer_xy.shape[0], terminal_xy.shape[0]
    chunk = max(1, _DISTANCE_CHUNK_CELLS // n_terminals)
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    for start in range(0, n_customers, chunk):
        block = customer_xy[start : start + chunk]
        dx = block[:, 0:1] - terminal_xy[:, 0]
        dy = block[:, 1:2] - terminal_xy[:, 1]
        # Squared distances avoid a square root per pair (the dominant cost at full size).
        # Row-major nonzero keeps customers in order and terminal ids ascending within each.
        r, c = np.nonzero(dx * dx + dy * dy < radius * radius)
        rows.append(r.astype(np.int64) + start)
        cols.append(c.astype(np.int64))
    counts = np.bincount(np.concatenate(rows), minlength=n_customers)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return TerminalNeighbours(indptr, np.concatenate(cols))


def _draw_transactions(
    customers: CustomerProfiles,
    neighbours: TerminalNeighbours,
    n_days: int,
    rng: np.random.Generator,
) -> _Transactions:
    """All candidate payments at once, then drop those the handbook would not keep."""
    n_customers = customers.xy.shape[0]
    counts = rng.poisson(np.tile(customers.mean_nb_tx_per_day, n_days)).astype(np.int64)
    slot = np.repeat(np.arange(n_days * n_customers, dtype=np.int64), counts)
    day, customer = np.divmod(slot, n_customers)
    n = slot.shape[0]

    seconds = np.floor(rng.normal(TX_TIME_MEAN, TX_TIME_STD, size=n)).astype(np.int64)
    amount = _draw_amounts(customers, customer, rng)
    degree = neighbours.degree()[customer]
    pick = np.floor(rng.random(n) * degree).astype(np.int64)

    keep = (seconds >= 0) & (seconds < SECONDS_PER_DAY) & (degree > 0)
    customer, pick = customer[keep], pick[keep]
    terminal = neighbours.indices[neighbours.indptr[customer] + pick]
    return _Transactions(day[keep], seconds[keep], customer, terminal, amount[keep])


def _draw_amounts(
    customers: CustomerProfiles, customer: NDArray[np.int64], rng: np.random.Generator
) -> NDArray[np.float64]:
    mean = customers.mean_amount[customer]
    amount = rng.normal(mean, customers.std_amount[customer])
    # A negative payment makes no sense: redraw it uniformly, as the handbook does.
    negative = amount < 0
    amount[negative] = rng.uniform(0.0, 2 * mean[negative])
    rounded: NDArray[np.float64] = np.round(amount, 2)
    return rounded


def _to_table(tx: _Transactions, labels: FraudLabels, start_date: str) -> pa.Table:
    seconds = tx.day * SECONDS_PER_DAY + tx.seconds_in_day
    start = np.datetime64(start_date, "s")
    datetimes = (start + seconds.astype("timedelta64[s]")).astype("datetime64[us]")
    columns = [
        np.arange(seconds.shape[0], dtype=np.int64),
        datetimes,
        tx.customer,
        tx.terminal,
        labels.amount,
        seconds,
        tx.day,
        labels.fraud,
        labels.scenario,
    ]
    arrays = [
        pa.array(values, type=field.type)
        for values, field in zip(columns, TRANSACTION_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=TRANSACTION_SCHEMA)
