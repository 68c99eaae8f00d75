"""`streamsense monitor profile|drift` over Parquet files of the synthetic stream."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from streamsense.cli.main import cli
from streamsense.monitoring.seasons import DAY_MS
from streamsense.monitoring.synthetic import MONDAY_MS, WEEK_MS, SyntheticStream, weekly_stream
from streamsense.serving.registry import ModelRegistry
from streamsense.testing import ManualClock

SHIFT_MS = MONDAY_MS + 5 * WEEK_MS + 3 * DAY_MS


def write(stream: SyntheticStream, path: Path) -> Path:
    columns = {k: stream.columns[k] for k in ("amount", "channel", "score")}
    table = pa.table({"ts": pa.array(stream.times, pa.timestamp("ms")), **columns})
    pq.write_table(table, path)
    return path


def files(tmp_path: Path) -> tuple[Path, Path]:
    stream = weekly_stream(7, seed=31, shift_from=SHIFT_MS)
    split = MONDAY_MS + 4 * WEEK_MS
    reference = write(stream.between(MONDAY_MS, split), tmp_path / "train.parquet")
    live = write(stream.between(split, MONDAY_MS + 7 * WEEK_MS), tmp_path / "live.parquet")
    return reference, live


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, ["monitor", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_profile_then_drift_finds_the_shift_and_exports_it(tmp_path: Path) -> None:
    reference, live = files(tmp_path)
    profile = tmp_path / "profile.json"
    invoke("profile", str(reference), "--time", "ts", "--score", "score",
           "--categorical", "channel", "--out", str(profile))  # fmt: skip
    alerts = tmp_path / "alerts.jsonl"
    output = invoke("drift", str(live), "--time", "ts", "--profile", str(profile),
                    "--window", "1d", "--out", str(alerts))  # fmt: skip
    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert lines and all(line["detected_at_ms"] > SHIFT_MS for line in lines)
    first = next(line for line in lines if line["subject"] == "amount")
    assert first["detected_at_ms"] == SHIFT_MS + DAY_MS
    assert first["kind"] == "feature_drift" and first["statistic"] == "psi"
    assert "amount" in output


def test_rules_from_yaml_and_a_profile_kept_in_the_registry(tmp_path: Path) -> None:
    reference, live = files(tmp_path)
    registry = ModelRegistry(tmp_path / "models", clock=ManualClock())
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(b"never loaded")
    registry.register("light", artifact, "pickle", ["amount"])
    registry.set_alias("light", "production", 1)
    where = ("--registry", str(tmp_path / "models"), "--model", "light")
    invoke("profile", str(reference), "--time", "ts", "--categorical", "channel", *where)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- {kind: feature_drift, subject: amount, statistic: wasserstein, threshold: 0.15,\n"
        "   window: 1d, cooldown: 7d, severity: critical}\n"
    )
    alerts = tmp_path / "alerts.jsonl"
    invoke("drift", str(live), "--time", "ts", *where, "--rules", str(rules),
           "--out", str(alerts))  # fmt: skip
    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    # Once the day after the shift, then again when the week's cooldown is over.
    assert [line["detected_at_ms"] for line in lines] == [SHIFT_MS + DAY_MS, SHIFT_MS + 8 * DAY_MS]
    assert lines[0]["statistic"] == "wasserstein" and lines[0]["severity"] == "critical"


def test_bad_arguments_are_named() -> None:
    result = CliRunner().invoke(cli, ["monitor", "drift", "x.parquet", "--time", "ts"])
    assert result.exit_code == 2 and "--profile" in result.output
