"""`streamsense monitor`: reference profiles and drift alerts over Parquet files.

    streamsense monitor profile train.parquet --time ts --score score --categorical channel \\
        --out profile.json [--registry .streamsense/models --model light --version 3]
    streamsense monitor drift live.parquet --time ts --profile profile.json --window 1d \\
        [--rules rules.yaml] --out alerts.jsonl
    streamsense monitor status APP [--state-dir DIR]    # the alerts an app's monitoring raised

Rules are a YAML (or JSON) list of mappings (monitoring.alerts.AlertRule's fields, with
``window`` and ``cooldown`` as durations); without ``--rules``, PSI above 0.1 (the usual
"moderate shift" level) on any input or score over windows of at least 100 rows raises an
alert, at most once a window per column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from streamsense.cli.common import (
    DEFAULT_STATE_DIR,
    AppArgument,
    BrokerOption,
    StateDirOption,
    connect,
    console,
    fail,
)
from streamsense.cli.monitor_status import alerts_topics, read_alerts, status_table
from streamsense.cli.session import load_spec
from streamsense.errors import StreamsenseError
from streamsense.features.windows import to_ms
from streamsense.monitoring import (
    AlertRule,
    ReferenceProfile,
    alerts_jsonl,
    load_reference,
    rules_from_config,
    save_reference,
)
from streamsense.monitoring.files import drift_parquet, profile_parquet
from streamsense.monitoring.seasons import Seasonality
from streamsense.serving.registry import ModelRegistry

monitor_app = typer.Typer(help="Model monitoring over files: profiles and drift alerts.")

TimeOption = Annotated[str, typer.Option("--time", help="Event-time column (ms or timestamp).")]
RegistryOption = Annotated[
    Path | None, typer.Option("--registry", help="Model registry directory.")
]
ModelOption = Annotated[str | None, typer.Option("--model", help="Model name in the registry.")]
VersionOption = Annotated[str, typer.Option("--version", help="Model version or alias.")]
SEASONALITIES: tuple[Seasonality, ...] = ("none", "hour", "weekday", "weekday_hour")


@monitor_app.command("profile")
def profile_command(
    data: Annotated[Path, typer.Argument(help="Parquet file of model inputs and scores.")],
    time: TimeOption,
    score: Annotated[list[str] | None, typer.Option("--score", help="A score column.")] = None,
    categorical: Annotated[
        list[str] | None, typer.Option("--categorical", help="A categorical column.")
    ] = None,
    bins: Annotated[int, typer.Option("--bins", min=2, help="Quantile bins per column.")] = 20,
    seasonality: Annotated[str, typer.Option("--seasonality")] = "weekday_hour",
    out: Annotated[Path | None, typer.Option("--out", help="Write the profile here.")] = None,
    registry: RegistryOption = None,
    model: ModelOption = None,
    version: VersionOption = "production",
) -> None:
    """Profile a reference file; keep it in a file and/or beside a registered model."""
    if out is None and model is None:
        fail("say where the profile goes: --out FILE and/or --registry DIR --model NAME")
    try:
        profile = profile_parquet(
            data,
            time,
            scores=score or [],
            categorical=categorical or [],
            bins=bins,
            seasonality=_seasonality(seasonality),
        )
        if out is not None:
            out.write_bytes(profile.to_json())
        if model is not None:
            save_reference(
                ModelRegistry(registry or Path(".streamsense/models")), model, version, profile
            )
    except StreamsenseError as error:
        fail(str(error))
    console.print(f"profiled {profile.rows:,} rows, {len(profile.columns)} columns")


@monitor_app.command("drift")
def drift_command(
    data: Annotated[Path, typer.Argument(help="Parquet file to check, in event-time order.")],
    time: TimeOption,
    profile: Annotated[Path | None, typer.Option("--profile", help="Profile file.")] = None,
    registry: RegistryOption = None,
    model: ModelOption = None,
    version: VersionOption = "production",
    window: Annotated[str, typer.Option("--window", help="Tumbling window, e.g. 1h, 1d.")] = "1d",
    rules: Annotated[Path | None, typer.Option("--rules", help="YAML list of rules.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Alerts as JSON lines.")] = None,
) -> None:
    """Compare a file with a reference profile window by window; print and export alerts."""
    try:
        window_ms = to_ms(window)
        reference = _reference(profile, registry, model, version)
        chosen = _rules(rules, window_ms)
        alerts = drift_parquet(data, reference, time, window_ms, chosen)
    except StreamsenseError as error:
        fail(str(error))
    if out is not None:
        out.write_bytes(alerts_jsonl(alerts))
    table = Table("detected at", "kind", "subject", "statistic", "value", "threshold")
    for alert in alerts:
        table.add_row(
            alert.detected_at,
            alert.kind,
            alert.subject,
            alert.statistic,
            f"{alert.value:.4g}",
            f"{alert.threshold:g}",
        )
    console.print(table if alerts else "no alert")


def _reference(
    path: Path | None, registry: Path | None, model: str | None, version: str
) -> ReferenceProfile:
    if path is not None:
        return ReferenceProfile.from_json(path.read_bytes())
    if model is None:
        fail("give the reference: --profile FILE or --registry DIR --model NAME")
    return load_reference(ModelRegistry(registry or Path(".streamsense/models")), model, version)


def _rules(path: Path | None, window_ms: int) -> list[AlertRule]:
    if path is not None:
        try:
            data = msgspec.yaml.decode(path.read_bytes())
        except msgspec.DecodeError as error:
            fail(f"{path}: {error}")
        return rules_from_config(data)
    return [
        AlertRule(kind=kind, statistic="psi", threshold=0.1, min_rows=100, cooldown_ms=window_ms)
        for kind in ("feature_drift", "prediction_drift")
    ]


def _seasonality(name: str) -> Seasonality:
    for choice in SEASONALITIES:
        if name == choice:
            return choice
    fail(f"--seasonality: one of {', '.join(SEASONALITIES)}")


@monitor_app.command("status")
def status_command(
    app: AppArgument,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    broker: BrokerOption = None,
) -> None:
    """The alerts an app's monitoring raised: per kind and subject, how many and the last."""
    application = load_spec(app)
    topics = alerts_topics(application.app)
    if not topics:
        fail(f"{application.name} has no monitoring sink (none offers an alerts_topic)")
    target = connect(broker, state_dir)
    try:
        raised = read_alerts(target, topics)
    finally:
        target.close()
    title = f"{application.name}: {len(raised):,} alerts in {', '.join(topics)}"
    console.print(status_table(raised, title))
