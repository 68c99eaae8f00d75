"""`streamsense demo apps/fraud`: simulated card payments through the fraud application.

With 28 days or more it follows the handbook's protocol on the last three weeks: until the
test week no model is in production and, with no default rules, every payment is allowed;
the models are trained on the week three weeks before the end with the labels known then,
and the last week is decided by the cascade and scored (its summary of the whole replay
therefore flags few frauds: only the test week is decided by models)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from streamsense.application import Option, OptionValue, Session
from streamsense.errors import ConfigError
from streamsense.events import to_epoch_ms

from .fraud_metrics import Evaluation, Protocol
from .handbook_protocol import print_evaluation
from .simulator import FraudSimulatorConfig, simulate_transactions, write_parquet

DAY_MS = 86_400_000
OPTIONS = [
    Option("days", 56, "Days of payments to simulate (28 or more: train and score too)."),
    Option("customers", 1000, "Simulated customers."),
    Option("terminals", 2000, "Simulated terminals."),
    Option("seed", 7, "The simulation's seed: the same seed, the same payments."),
]


def run(session: Session, options: Mapping[str, OptionValue]) -> Mapping[str, Path] | None:
    days = _positive(options, "days")
    config = FraudSimulatorConfig(
        n_customers=_positive(options, "customers"),
        n_terminals=_positive(options, "terminals"),
        n_days=days,
        seed=int(str(options["seed"])),
    )
    path = session.state_dir / "transactions.parquet"
    with session.console.status("simulating transactions"):
        table = simulate_transactions(config)
        write_parquet(table, path)
    session.console.print(f"simulated {table.num_rows:,} transactions over {days} days → {path}")
    files = {"transactions": path}
    if days < 28:
        return files  # too short for the protocol: the rules decide, the command summarises
    _train_and_score(session, files, config)
    return None


def _train_and_score(
    session: Session, files: Mapping[str, Path], config: FraudSimulatorConfig
) -> None:
    application = session.application
    assert application.training is not None and application.summary is not None
    first_day = to_epoch_ms(datetime.fromisoformat(config.start_date).replace(tzinfo=UTC))
    protocol = Protocol(first_day + (config.n_days - 21) * DAY_MS, 7, 7, 7)
    application.training.train(session, files, protocol)
    evaluation = application.training.evaluate(session, files, protocol)
    application.summary(session.broker, session.console, files)
    print_evaluation(session, cast(Evaluation, evaluation), handbook_run=False)


def _positive(options: Mapping[str, OptionValue], name: str) -> int:
    value = int(str(options[name]))
    if value < 1:
        raise ConfigError(f"--{name} must be at least 1, not {value}")
    return value
