"""The handbook's published figures are shown on the handbook's run only: its protocol on
its file. The simulator's files, however close in shape, are not it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ..fraud_metrics import DAY_MS
from ..handbook_data import (
    HANDBOOK_PROTOCOL,
    is_handbook_data,
    is_handbook_protocol,
    is_handbook_run,
)
from ..simulator import FraudSimulatorConfig, simulate_transactions, write_parquet

ROOT = Path(__file__).resolve().parents[3]
HANDBOOK = ROOT.parent / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"


@pytest.fixture(scope="module")
def handbook() -> Path:
    if not HANDBOOK.exists():  # a missing data set fails, on every machine
        pytest.fail(f"the fraud-handbook data set is missing: {HANDBOOK}", pytrace=False)
    return HANDBOOK


def test_the_handbook_file_on_its_protocol_is_the_handbook_run(handbook: Path) -> None:
    assert is_handbook_run(handbook, HANDBOOK_PROTOCOL)
    later = replace(HANDBOOK_PROTOCOL, train_start_ms=HANDBOOK_PROTOCOL.train_start_ms + DAY_MS)
    assert not is_handbook_run(handbook, later)
    assert not is_handbook_protocol(replace(HANDBOOK_PROTOCOL, test_days=14))
    assert is_handbook_protocol(replace(HANDBOOK_PROTOCOL, history_days=0))  # any history


def test_simulated_payments_are_never_the_handbook_data(tmp_path: Path) -> None:
    path = tmp_path / "simulated.parquet"
    write_parquet(simulate_transactions(FraudSimulatorConfig(n_days=10, seed=1)), path)
    assert not is_handbook_data(path)
    assert not is_handbook_run(path, HANDBOOK_PROTOCOL)
    assert not is_handbook_data(tmp_path / "payments.jsonl")
