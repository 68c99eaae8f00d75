"""The fraud app's monitoring end to end on its own simulator (issue #17), through the
contract: `streamsense fraud train` then `streamsense replay apps/fraud --transactions F
--state-dir D --export-alerts A.jsonl`, on a steady stream and on a copy whose amounts at a
fifth of the terminals are x 2.5 from a given day (drift_scenarios.py). The handbook-sized
version of the same scenarios is bench/monitoring_acceptance.py."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from streamsense.cli.main import cli
from streamsense.monitoring import load_reference
from streamsense.serving.registry import ModelRegistry

from ..drift_scenarios import shift_amounts
from ..features import DERIVED_NAMES
from ..monitoring_config import CONFIG_ENV
from ..simulator import FraudSimulatorConfig, simulate_transactions, write_parquet

APP = str(Path(__file__).resolve().parents[1])
TEST_START = "2018-05-22"  # training on 2018-05-08..14, labels known a week later
SHIFT = datetime(2018, 5, 24)  # two days after the test start
# monitoring.yaml's levels, over daily windows: the simulation has ~2,000 payments a day.
CONFIG = """
drift: {window: 1d, min_slot_rows: 5}
performance: {window: 1d, thresholds: [0.5, 0.9]}
rules:
  - {kind: feature_drift, statistic: wasserstein, threshold: 0.25, min_rows: 500, cooldown: 1d}
  - {kind: feature_drift, statistic: psi, threshold: 0.25, min_rows: 500, cooldown: 1d}
  - {kind: prediction_drift, statistic: wasserstein, threshold: 0.25, min_rows: 500,
     cooldown: 1d}
  - {kind: prediction_drift, statistic: psi, threshold: 0.25, min_rows: 500, cooldown: 1d}
"""
runner = CliRunner()
# Training replays 62 days of the simulation through the whole pipeline: minutes on a
# loaded machine, past the suite's default timeout.
pytestmark = pytest.mark.timeout(900)


def streamsense(*args: str) -> None:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, pa.Table]]:
    """A state dir with models trained on 2018-05-08..14 (labels known by 05-22), the
    37 days before warming every feature window up (the widest: 30 days ending 7 back)."""
    folder = tmp_path_factory.mktemp("monitoring")
    settings = folder / "monitoring.yaml"
    settings.write_text(CONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONFIG_ENV, str(settings))
        table = simulate_transactions(
            FraudSimulatorConfig(n_customers=1000, n_terminals=2000, n_days=62, seed=5)
        )
        write_parquet(table, folder / "steady.parquet")
        state = folder / "trained"
        streamsense(
            "fraud", "train", "--app", APP, "--transactions", str(folder / "steady.parquet"),
            "--state-dir", str(state), "--train-start", "2018-05-08", "--history-days", "0",
        )  # fmt: skip
        yield state, table


def replay_alerts(trained: tuple[Path, pa.Table], table: pa.Table, name: str) -> list[Any]:
    """The alerts of a replay of ``table`` from the test start on, in a copy of the trained
    state dir: as the contract has it, the replay follows the training in its state dir (the
    payments before the test start were decided during training)."""
    state = trained[0].parent / name
    shutil.copytree(trained[0], state)
    data, alerts = state.parent / f"{name}.parquet", state.parent / f"{name}-alerts.jsonl"
    write_parquet(table, data)
    streamsense(
        "replay", APP, "--transactions", str(data), "--state-dir", str(state),
        "--start", TEST_START, "--export-alerts", str(alerts),
    )  # fmt: skip
    return [json.loads(line) for line in alerts.read_text().splitlines()]


def at(alert: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(alert["detected_at"].replace("Z", "+00:00"))


def test_training_keeps_the_reference_with_the_model_in_production(
    trained: tuple[Path, pa.Table],
) -> None:
    models = ModelRegistry(trained[0] / "models")
    profile = load_reference(models, "fraud-heavy", "production")
    names = [column.name for column in profile.columns]
    assert {"TX_AMOUNT", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW", *DERIVED_NAMES} <= set(names)
    assert profile.column("score").role == "score"
    assert profile.seasonality == "weekday_hour"
    level = json.loads(models.attachment("fraud-heavy", "production", "reference_performance.json"))
    assert 0.5 < level["auc"] <= 1.0 and 0.0 < level["average_precision"] <= 1.0


def test_a_steady_stream_raises_no_drift_alert(trained: tuple[Path, pa.Table]) -> None:
    alerts = replay_alerts(trained, trained[1], "steady")
    assert [a for a in alerts if a["kind"] in ("feature_drift", "prediction_drift")] == []


def test_amounts_shifted_at_a_fifth_of_the_terminals_raise_drift_within_a_day(
    trained: tuple[Path, pa.Table],
) -> None:
    alerts = replay_alerts(trained, shift_amounts(trained[1], SHIFT), "shifted")
    shift = SHIFT.replace(tzinfo=UTC)
    assert all(at(a) > shift for a in alerts), "nothing before the shift"
    amount = [a for a in alerts if a["kind"] == "feature_drift" and "AMOUNT" in a["subject"]]
    assert amount and min(at(a) for a in amount) <= shift + timedelta(hours=24)
    assert {"kind", "subject", "detected_at", "statistic", "value", "threshold"} <= set(amount[0])
    assert amount[0]["value"] > amount[0]["threshold"]
    follow = [a for a in alerts if a["kind"] in ("prediction_drift", "performance")]
    assert follow and min(at(a) for a in follow) <= shift + timedelta(days=14)
