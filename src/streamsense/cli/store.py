"""Feature-store commands: `plan`, `apply`, `backfill`, `materialize`, `verify` and
`features get`, all driven by the project file (streamsense.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from streamsense.brokers import open_broker
from streamsense.cli.common import console, fail
from streamsense.errors import StreamsenseError
from streamsense.features.definitions import FeatureSet
from streamsense.store.project import Project, apply, load_registry, plan

ProjectOption = Annotated[Path, typer.Option("--project", "-p", help="The project file.")]
DEFAULT_PROJECT = Path("streamsense.yaml")
features_app = typer.Typer(help="Read features from the online store.", no_args_is_help=True)


def _project(path: Path) -> Project:
    try:
        return Project.load(path)
    except StreamsenseError as error:
        fail(str(error))


def _sets(project: Project, name: str | None = None) -> list[FeatureSet]:
    try:
        sets = project.feature_sets()
    except StreamsenseError as error:
        fail(str(error))
    chosen = [s for s in sets if name is None or s.name == name]
    if not chosen:
        fail(f"no feature set named {name!r} (there are {[s.name for s in sets]})")
    return chosen


def plan_command(project: ProjectOption = DEFAULT_PROJECT) -> None:
    """Show what `apply` would register: added, changed and removed features."""
    loaded = _project(project)
    changes = plan(_sets(loaded), load_registry(loaded.registry_path))
    for label, names, colour in (
        ("add", changes.added, "green"),
        ("change", changes.changed, "yellow"),
        ("remove", changes.removed, "red"),
    ):
        for name in names:
            console.print(f"[{colour}]{label:>7}[/{colour}] {name}")
    console.print(
        f"{len(changes.added)} to add, {len(changes.changed)} to change, "
        f"{len(changes.removed)} to remove, {len(changes.unchanged)} unchanged"
    )


def apply_command(project: ProjectOption = DEFAULT_PROJECT) -> None:
    """Register the current definitions (changed features get a new version)."""
    loaded = _project(project)
    changes = apply(_sets(loaded), loaded.registry_path)
    console.print(
        f"applied: {len(changes.added)} added, {len(changes.changed)} changed, "
        f"{len(changes.removed)} removed"
    )


def backfill_command(
    project: ProjectOption = DEFAULT_PROJECT,
    feature_set: Annotated[str | None, typer.Option(help="Only this feature set.")] = None,
) -> None:
    """Replay history through the feature engine into the offline and online stores."""
    from streamsense.store import open_online_store
    from streamsense.store.backfill import backfill
    from streamsense.store.offline import OfflineStore

    loaded = _project(project)
    broker = open_broker(loaded.resolve(loaded.config.broker))
    online = open_online_store(loaded.resolve(loaded.config.online_store))
    offline = OfflineStore(loaded.resolve(loaded.config.offline_store))
    try:
        for features in _sets(loaded, feature_set):
            source = next(iter(features.sources.values()))
            total = broker.describe_topic(source.topic).messages
            with Progress(console=console) as progress:
                task = progress.add_task(f"backfilling {features.name}", total=total)

                def advance(n: int, task: TaskID = task) -> None:
                    progress.advance(task, n)

                result = backfill(
                    features,
                    broker,
                    loaded.root / ".streamsense",
                    offline=offline,
                    online=online,
                    progress=advance,
                )
            console.print(
                f"{features.name}: {result.events:,} events in {result.seconds:.1f} s "
                f"({result.rate:,.0f} events/s), {result.keys_online:,} entities online"
            )
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        broker.close()
        online.close()


def materialize_command(
    project: ProjectOption = DEFAULT_PROJECT,
    topic: Annotated[
        list[str] | None, typer.Option(help="Topics to copy (default: feature logs).")
    ] = None,
) -> None:
    """Copy topics into the offline store, resumably (default: the feature sets' source
    streams, as the event archive, and every feature log)."""
    from streamsense.store.materialize import materialize, offline_table
    from streamsense.store.offline import OfflineStore

    loaded = _project(project)
    broker = open_broker(loaded.resolve(loaded.config.broker))
    offline = OfflineStore(loaded.resolve(loaded.config.offline_store))
    try:
        sources = [s.topic for fs in _sets(loaded) for s in fs.sources.values()]
        logs = [t for t in broker.list_topics() if t.endswith(".feature-log")]
        topics = topic or sorted(set(sources + logs))
        for name in topics:
            copied = materialize(broker, name, offline)
            console.print(f"{name}: {copied:,} records copied to {offline_table(name)}")
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        broker.close()


def verify_command(
    project: ProjectOption = DEFAULT_PROJECT,
    log_topic: Annotated[
        str, typer.Option(help="The feature log to check.")
    ] = "features.feature-log",
    sample: Annotated[int, typer.Option(min=1)] = 1000,
    feature_set: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Recompute sampled served vectors by replay; exit 1 on any mismatch."""
    from streamsense.store.verify import verify

    loaded = _project(project)
    broker = open_broker(loaded.resolve(loaded.config.broker))
    try:
        report = verify(_sets(loaded, feature_set)[0], broker, log_topic, sample=sample)
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        broker.close()
    table = Table("feature", "checked", "mismatched", "rate", "largest difference")
    for check in report.features.values():
        table.add_row(
            check.name,
            f"{check.checked:,}",
            f"{check.mismatched:,}",
            f"{check.rate:.2%}",
            f"{check.largest_difference:.6g}",
        )
    console.print(table)
    console.print(f"sampled {report.sampled:,} served vectors, {report.missing_events} not found")
    if not report.ok:
        console.print("[red]MISMATCH: served features differ from the definitions[/red]")
        raise typer.Exit(1)
    console.print("[green]every sampled vector matches[/green]")


@features_app.command("get")
def features_get(
    view: str,
    entity: list[str],
    at: Annotated[str | None, typer.Option(help="ISO time (default: now).")] = None,
    project: ProjectOption = DEFAULT_PROJECT,
) -> None:
    """Features of ENTITY (one or more keys) from VIEW, windows evaluated at the read time."""
    from streamsense.store import open_online_store
    from streamsense.store.views import OnlineView

    loaded = _project(project)
    engines = {}
    for features in _sets(loaded):
        from streamsense.features.engine import FeatureEngine

        engine = FeatureEngine(features)
        for group, plan_ in engine.plans.items():
            engines[engine.view_name(group)] = plan_
    if view not in engines:
        fail(f"no view {view!r} (there are {sorted(engines)})")
    when = datetime.now(UTC) if at is None else datetime.fromisoformat(at)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    store = open_online_store(loaded.resolve(loaded.config.online_store))
    try:
        rows = OnlineView(view, engines[view], store).get(entity, int(when.timestamp() * 1000))
    finally:
        store.close()
    table = Table("entity", *rows[0].keys()) if rows else Table("entity")
    for key, row in zip(entity, rows, strict=True):
        table.add_row(key, *(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)
