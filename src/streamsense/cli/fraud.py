"""`streamsense fraud train|evaluate`: the fraud application on the Fraud Detection
Handbook's protocol.

    streamsense fraud train --transactions FILE.parquet --state-dir DIR
    streamsense fraud evaluate --transactions FILE.parquet [--export-decisions OUT.parquet]

Train on 2018-07-25..07-31 with the labels known 7 days later, test on 2018-08-08..08-14.
Both replay the file through the application's real pipeline (features computed live, as
`streamsense replay` does); training reads the vectors the pipeline computed and the labels
that had arrived on the label stream; evaluation scores the test week live through the
cascade the training put in production. The application provides the protocol and the
models through its hooks (``Protocol``, ``train_models``, ``evaluate_models``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from streamsense.brokers import Broker
from streamsense.cli.apps import TimeRange, VerboseOption, load_spec, replay_files
from streamsense.cli.common import BrokerOption, connect, console, fail, setup_logging
from streamsense.errors import StreamsenseError
from streamsense.runtime.loader import LoadedApp

fraud_app = typer.Typer(
    help="The fraud application on the Fraud Detection Handbook's protocol.",
    no_args_is_help=True,
)

DAY_MS = 86_400_000
TransactionsOption = Annotated[
    Path, typer.Option(exists=True, dir_okay=False, help="The payments (Parquet).")
]
AppOption = Annotated[str, typer.Option("--app", help="The fraud application.")]
TrainStartOption = Annotated[
    str, typer.Option(help="First training day (UTC); the handbook's is 2018-07-25.")
]
TrainDaysOption = Annotated[int, typer.Option(min=1)]
DelayDaysOption = Annotated[int, typer.Option(min=0, help="Days until labels are known.")]
TestDaysOption = Annotated[int, typer.Option(min=1)]
HistoryDaysOption = Annotated[
    int,
    typer.Option(
        min=0,
        help="Replay from this many days before the training start (0: the whole file "
        "before it). The widest window spans 37 days, so 40 gives the same features.",
    ),
]


def train(
    transactions: TransactionsOption,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the pipeline lives.")],
    app: AppOption = "apps/fraud",
    broker: BrokerOption = None,
    train_start: TrainStartOption = "2018-07-25",
    train_days: TrainDaysOption = 7,
    delay_days: DelayDaysOption = 7,
    history_days: HistoryDaysOption = 40,
    verbose: VerboseOption = False,
) -> None:
    """Replay up to the test week, train the light and heavy models on the training week
    with the labels known by then, and put them in production in the state dir."""
    setup_logging(verbose)
    loaded = load_spec(app, state_dir)
    protocol = _protocol(loaded, train_start, train_days, delay_days, 7)
    target = connect(broker, state_dir)
    try:
        train_on_replay(loaded, target, transactions, state_dir, protocol, history_days)
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        target.close()


def evaluate(
    transactions: TransactionsOption,
    export_decisions: Annotated[
        Path | None, typer.Option(dir_okay=False, help="The test week's decisions (Parquet).")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Where the pipeline lives (default: a temporary dir)."),
    ] = None,
    app: AppOption = "apps/fraud",
    broker: BrokerOption = None,
    train_start: TrainStartOption = "2018-07-25",
    train_days: TrainDaysOption = 7,
    delay_days: DelayDaysOption = 7,
    test_days: TestDaysOption = 7,
    history_days: HistoryDaysOption = 40,
    verbose: VerboseOption = False,
) -> None:
    """The whole protocol: replay, training set, training, live scoring of the test week
    through the cascade, and AUC ROC, average precision and Card Precision@100 beside the
    handbook's published results."""
    setup_logging(verbose)
    folder = state_dir or Path(tempfile.mkdtemp(prefix="streamsense-fraud-"))
    loaded = load_spec(app, folder)
    protocol = _protocol(loaded, train_start, train_days, delay_days, test_days)
    target = connect(broker, folder)
    try:
        train_on_replay(loaded, target, transactions, folder, protocol, history_days)
        test = TimeRange(protocol.test_start_ms, protocol.test_end_ms)
        evaluation = score_live(loaded, target, transactions, folder, protocol, test)
        print_evaluation(evaluation, loaded.module)
        if export_decisions is not None:
            export = loaded.hook("export_decisions")
            rows = export(target, export_decisions, test.start_ms, test.end_ms)
            console.print(f"exported {rows:,} test-week decisions → {export_decisions}")
    except StreamsenseError as error:
        fail(str(error), code=1)
    finally:
        target.close()
        if state_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


fraud_app.command("train")(train)
fraud_app.command("evaluate")(evaluate)


def _protocol(
    loaded: LoadedApp, train_start: str, train_days: int, delay_days: int, test_days: int
) -> Any:
    make = loaded.hook("Protocol")
    if make is None or loaded.hook("train_models") is None:
        fail(f"{loaded.app.name} has no Protocol and train_models hooks")
    start = TimeRange.parse(train_start, None).start_ms
    return make(start, train_days, delay_days, test_days)


def train_on_replay(
    loaded: LoadedApp,
    broker: Broker,
    transactions: Path,
    state_dir: Path,
    protocol: Any,
    history_days: int,
) -> None:
    """Replay [training start − history, test start) through the pipeline, train on the
    training window with the labels known at the test start, reload the cascade."""
    begin = protocol.train_start_ms - history_days * DAY_MS if history_days else None
    window = TimeRange(begin, protocol.test_start_ms)
    files = {"transactions": (loaded.hook("inputs")["transactions"], transactions)}
    console.print(f"[bold]replaying up to the test week[/bold] ({_dates(window)})")
    stats, elapsed = replay_files(loaded, broker, files, window)
    console.print(f"processed {stats.events:,} events in {elapsed:.1f} s")
    report = loaded.hook("train_models")(broker, state_dir, protocol)
    console.print(
        f"trained on {report.rows:,} payments ({report.frauds:,} frauds, "
        f"{_dates(TimeRange(protocol.train_start_ms, protocol.train_end_ms))}) in "
        f"{report.seconds:.1f} s: fraud-light v{report.light_version} and fraud-heavy "
        f"v{report.heavy_version} in production in {state_dir / 'models'}"
    )
    loaded.hook("configure")(state_dir)  # the pipeline now decides with the new models


def score_live(
    loaded: LoadedApp,
    broker: Broker,
    transactions: Path,
    state_dir: Path,
    protocol: Any,
    test: TimeRange,
) -> Any:
    """Replay the test week through the cascade; its evaluation on the handbook's metrics."""
    files = {"transactions": (loaded.hook("inputs")["transactions"], transactions)}
    console.print(f"[bold]scoring the test week live[/bold] ({_dates(test)})")
    stats, elapsed = replay_files(loaded, broker, files, test)
    console.print(f"processed {stats.events:,} events in {elapsed:.1f} s")
    return loaded.hook("evaluate_models")(broker, state_dir, protocol)


def print_evaluation(evaluation: Any, module: Any, *, handbook_data: bool = True) -> None:
    """The test week's metrics, beside the handbook's published ones when the data is the
    handbook's (they say nothing about other data)."""
    published: dict[str, tuple[float, float, float]] = getattr(module, "HANDBOOK_RESULTS", {})
    handbook = published if handbook_data else {}
    console.print(
        f"test set: {evaluation.test_payments:,} payments, {evaluation.test_frauds:,} frauds "
        f"({evaluation.left_out_known_cards:,} payments of cards known to be compromised "
        "left out)"
    )
    table = Table(title="handbook protocol, test week")
    table.add_column("model", no_wrap=True)
    for name in ("AUC ROC", "average precision", "Card Precision@100"):
        table.add_column(name, justify="right")
    for row in evaluation.rows:
        table.add_row(
            row.name,
            f"{row.auc:.3f}",
            f"{row.average_precision:.3f}",
            f"{row.card_precision:.3f}",
        )
    for name, (auc, ap, cp) in handbook.items():
        table.add_row(name, f"{auc:.3f}", f"{ap:.3f}", f"{cp:.3f}", style="dim")
    console.print(table)
    for row in evaluation.rows[:1]:
        console.print(
            f"{row.name}: AUC ROC {row.auc:.3f}, average precision "
            f"{row.average_precision:.3f}, Card Precision@100 {row.card_precision:.3f}",
            soft_wrap=True,
        )
    if evaluation.rows and handbook:
        live = evaluation.rows[0]
        best = [max(v[i] for v in handbook.values()) for i in range(3)]
        mine = [live.auc, live.average_precision, live.card_precision]
        verdict = ", ".join(
            f"{name} {'beats' if m > b else 'does not beat'} {b:.3f}"
            for name, m, b in zip(("AUC", "AP", "CP@100"), mine, best, strict=True)
        )
        console.print(f"the live cascade against the best published figure of each: {verdict}")
    tiers = ", ".join(f"{tier} {n:,}" for tier, n in sorted(evaluation.by_tier.items()))
    console.print(
        f"decided by: {tiers}; decision latency p50 {evaluation.latency_p50_ms:.3f} ms, "
        f"p99 {evaluation.latency_p99_ms:.3f} ms, max {evaluation.latency_max_ms:.3f} ms; "
        f"{evaluation.degraded:,} degraded"
    )


def _dates(window: TimeRange) -> str:
    from datetime import UTC, datetime

    def day(ms: int | None) -> str:
        if ms is None:
            return "the start"
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")

    return f"{day(window.start_ms)} to {day(window.end_ms)}"
