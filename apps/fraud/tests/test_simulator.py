"""Tests for the handbook-style fraud transaction simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ..scenarios import daily_counts
from ..simulator import (
    TRANSACTION_SCHEMA,
    FraudSimulation,
    FraudSimulatorConfig,
    run_simulation,
    simulate_transactions,
    write_parquet,
)

EXPECTED_COLUMNS = [
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

# Few terminals and many compromises per day, so scenarios 2 and 3 get plenty of rows to check.
BUSY_FRAUD = FraudSimulatorConfig(
    n_customers=300,
    n_terminals=300,
    n_days=40,
    seed=7,
    compromised_terminals_per_day=2,
    compromised_customers_per_day=3,
)


def col(table: pa.Table, name: str) -> np.ndarray:
    values: np.ndarray = table.column(name).to_numpy()
    return values


@pytest.fixture(scope="module")
def default_sim() -> FraudSimulation:
    return run_simulation(FraudSimulatorConfig())


@pytest.fixture(scope="module")
def busy_sim() -> FraudSimulation:
    return run_simulation(BUSY_FRAUD)


def test_same_seed_gives_identical_table() -> None:
    config = FraudSimulatorConfig(n_customers=200, n_terminals=300, n_days=10, seed=3)
    assert simulate_transactions(config).equals(simulate_transactions(config))


def test_different_seed_gives_different_table() -> None:
    first = simulate_transactions(FraudSimulatorConfig(n_days=10, seed=1))
    second = simulate_transactions(FraudSimulatorConfig(n_days=10, seed=2))
    assert not first.equals(second)


def test_default_config_when_none_given(default_sim: FraudSimulation) -> None:
    assert simulate_transactions().equals(default_sim.table)


def test_schema_matches_handbook_dataset(default_sim: FraudSimulation) -> None:
    schema = default_sim.table.schema
    assert [(f.name, f.type) for f in schema] == EXPECTED_COLUMNS
    assert schema.equals(TRANSACTION_SCHEMA)
    assert default_sim.table.num_rows > 10_000


def test_rows_time_sorted_with_sequential_ids(default_sim: FraudSimulation) -> None:
    table = default_sim.table
    seconds = col(table, "TX_TIME_SECONDS")
    assert np.all(np.diff(seconds) >= 0)
    assert np.array_equal(col(table, "TRANSACTION_ID"), np.arange(table.num_rows))
    assert np.array_equal(col(table, "TX_TIME_DAYS"), seconds // 86_400)
    assert col(table, "TX_TIME_DAYS").max() < default_sim.config.n_days


def test_datetime_is_start_date_plus_seconds(default_sim: FraudSimulation) -> None:
    table = default_sim.table
    expected = np.datetime64("2018-04-01T00:00:00", "us") + col(table, "TX_TIME_SECONDS").astype(
        "timedelta64[s]"
    )
    assert np.array_equal(col(table, "TX_DATETIME"), expected)


def test_start_date_is_configurable() -> None:
    table = simulate_transactions(FraudSimulatorConfig(n_days=2, start_date="2020-01-31"))
    days = np.unique(col(table, "TX_DATETIME").astype("datetime64[D]"))
    assert np.array_equal(days, np.array(["2020-01-31", "2020-02-01"], dtype="datetime64[D]"))


def test_amounts_non_negative_at_cent_resolution(default_sim: FraudSimulation) -> None:
    amount = col(default_sim.table, "TX_AMOUNT")
    assert np.all(amount >= 0)
    assert np.allclose(amount, np.round(amount, 2), rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fraud_rate_plausible(seed: int) -> None:
    table = simulate_transactions(FraudSimulatorConfig(seed=seed))
    rate = col(table, "TX_FRAUD").mean()
    assert 0.003 <= rate <= 0.03


def test_fraud_flag_matches_scenario(busy_sim: FraudSimulation) -> None:
    fraud = col(busy_sim.table, "TX_FRAUD")
    scenario = col(busy_sim.table, "TX_FRAUD_SCENARIO")
    assert set(np.unique(scenario).tolist()) == {0, 1, 2, 3}
    assert np.array_equal(fraud == 1, scenario > 0)


def test_scenario_1_rows_have_large_amounts(busy_sim: FraudSimulation) -> None:
    table = busy_sim.table
    scenario = col(table, "TX_FRAUD_SCENARIO")
    amount = col(table, "TX_AMOUNT")
    assert np.all(amount[scenario == 1] > 220)
    # Only scenarios 2 and 3 may overwrite a large amount's label.
    assert np.all(scenario[amount > 220] > 0)


def _in_window(events: np.ndarray, entity: np.ndarray, day: np.ndarray, days: int) -> np.ndarray:
    """For each (entity, day): was the entity compromised at most ``days - 1`` days earlier?"""
    starts = events[:, 0][None, :]
    hits = (events[:, 1][None, :] == entity[:, None]) & (starts <= day[:, None])
    covered: np.ndarray = np.any(hits & (day[:, None] < starts + days), axis=1)
    return covered


def test_scenario_2_frauds_within_28_days_of_terminal_compromise(
    busy_sim: FraudSimulation,
) -> None:
    table = busy_sim.table
    terminal, day = col(table, "TERMINAL_ID"), col(table, "TX_TIME_DAYS")
    scenario = col(table, "TX_FRAUD_SCENARIO")
    in_window = _in_window(busy_sim.compromised_terminals, terminal, day, 28)
    assert np.count_nonzero(scenario == 2) > 50
    assert np.all(in_window[scenario == 2])
    # Every payment at an open compromised terminal is fraud (scenario 3 may relabel it).
    assert np.all(np.isin(scenario[in_window], [2, 3]))


def test_scenario_3_frauds_within_14_days_of_customer_compromise(
    busy_sim: FraudSimulation,
) -> None:
    table = busy_sim.table
    customer, day = col(table, "CUSTOMER_ID"), col(table, "TX_TIME_DAYS")
    scenario = col(table, "TX_FRAUD_SCENARIO")
    in_window = _in_window(busy_sim.compromised_customers, customer, day, 14)
    assert np.count_nonzero(scenario == 3) > 50
    assert np.all(in_window[scenario == 3])
    # Roughly a third of the exposed payments, not all of them.
    share = np.count_nonzero(scenario == 3) / np.count_nonzero(in_window)
    assert 0.2 < share < 0.5


def test_explicit_daily_compromise_counts(busy_sim: FraudSimulation) -> None:
    expected = ((busy_sim.compromised_terminals, 2), (busy_sim.compromised_customers, 3))
    for events, per_day in expected:
        assert np.array_equal(np.bincount(events[:, 0]), np.full(BUSY_FRAUD.n_days, per_day))
        for day in range(BUSY_FRAUD.n_days):
            ids = events[events[:, 0] == day, 1]
            assert len(set(ids.tolist())) == per_day


def test_default_rates_scale_handbook_density() -> None:
    handbook = FraudSimulatorConfig(n_customers=5000, n_terminals=10_000)
    assert handbook.terminals_per_day == pytest.approx(2)
    assert handbook.customers_per_day == pytest.approx(3)
    assert FraudSimulatorConfig().terminals_per_day == pytest.approx(0.2)


def test_daily_counts_track_fractional_rate() -> None:
    counts = daily_counts(0.25, 40)
    assert counts.sum() == 10
    assert set(counts.tolist()) == {0, 1}
    assert np.array_equal(daily_counts(2.0, 5), np.full(5, 2))


def test_customers_use_only_terminals_within_radius(default_sim: FraudSimulation) -> None:
    table = default_sim.table
    customer_xy = default_sim.customers.xy[col(table, "CUSTOMER_ID")]
    terminal_xy = default_sim.terminal_xy[col(table, "TERMINAL_ID")]
    distance = np.hypot(*(customer_xy - terminal_xy).T)
    assert np.all(distance < default_sim.config.radius)


def test_customer_profiles_follow_handbook_ranges(default_sim: FraudSimulation) -> None:
    profiles = default_sim.customers
    assert np.all((profiles.xy >= 0) & (profiles.xy <= 100))
    assert np.all((profiles.mean_amount >= 5) & (profiles.mean_amount <= 100))
    assert np.allclose(profiles.std_amount, profiles.mean_amount / 2)
    assert np.all((profiles.mean_nb_tx_per_day >= 0) & (profiles.mean_nb_tx_per_day <= 4))


def test_write_parquet_round_trip(tmp_path: Path) -> None:
    table = simulate_transactions(FraudSimulatorConfig(n_days=3))
    path = tmp_path / "nested" / "transactions.parquet"
    write_parquet(table, path)
    assert pq.read_table(path).equals(table)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_customers": 0},
        {"n_terminals": 0},
        {"n_days": 0},
        {"radius": 0.0},
        {"compromised_terminals_per_day": -1.0},
        {"start_date": "not a date"},
    ],
)
def test_invalid_config_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FraudSimulatorConfig(**kwargs)


@settings(max_examples=15, deadline=None)
@given(
    n_customers=st.integers(1, 60),
    n_terminals=st.integers(1, 80),
    n_days=st.integers(1, 20),
    radius=st.floats(1.0, 40.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_invariants_hold_for_small_configs(
    n_customers: int, n_terminals: int, n_days: int, radius: float, seed: int
) -> None:
    config = FraudSimulatorConfig(
        n_customers=n_customers, n_terminals=n_terminals, n_days=n_days, radius=radius, seed=seed
    )
    sim = run_simulation(config)
    table = sim.table
    assert table.schema.equals(TRANSACTION_SCHEMA)
    assert np.all(np.diff(col(table, "TX_TIME_SECONDS")) >= 0)
    assert np.all(col(table, "CUSTOMER_ID") < n_customers)
    assert np.all(col(table, "TERMINAL_ID") < n_terminals)
    assert np.all(col(table, "TX_TIME_DAYS") < n_days)
    offset = (
        sim.customers.xy[col(table, "CUSTOMER_ID")] - sim.terminal_xy[col(table, "TERMINAL_ID")]
    )
    distance = np.hypot(*offset.T)
    assert np.all(distance < radius)
