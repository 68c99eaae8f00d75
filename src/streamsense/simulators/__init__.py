"""Data simulators, so demos and tests run without external files."""

from streamsense.simulators.fraud import (
    TRANSACTION_SCHEMA,
    FraudSimulation,
    FraudSimulatorConfig,
    run_simulation,
    simulate_transactions,
    write_parquet,
)

__all__ = [
    "TRANSACTION_SCHEMA",
    "FraudSimulation",
    "FraudSimulatorConfig",
    "run_simulation",
    "simulate_transactions",
    "write_parquet",
]
