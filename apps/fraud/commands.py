"""`streamsense fraud train|evaluate`: the fraud application on the Fraud Detection
Handbook's protocol.

    streamsense fraud tune --transactions FILE.parquet [--output tuned.json]
    streamsense fraud train --transactions FILE.parquet --state-dir DIR
    streamsense fraud evaluate --transactions FILE.parquet [--export-decisions OUT.parquet]

Train on 2018-07-25..07-31 with the labels known 7 days later, test on 2018-08-08..08-14.
Both replay the file through the application's real pipeline (features computed live, as
`streamsense replay` does); training reads the vectors the pipeline computed and the labels
that had arrived on the label stream; evaluation scores the test week live through the
cascade the training put in production. `tune` chooses the heavy model's parameters and
band on the weeks before the training week (tuning.py) and writes apps/fraud/tuned.json,
which training reads.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, cast

import typer

from streamsense.cli.common import BrokerOption, VerboseOption, console, setup_logging
from streamsense.cli.session import open_session
from streamsense.cli.time_range import epoch_ms

from .features import fraud_features, model_inputs
from .fraud_metrics import Evaluation, Protocol
from .handbook_data import is_handbook_run
from .handbook_protocol import print_evaluation
from .tuned_params import TUNED_PATH, save_tuned

commands = typer.Typer(
    help="The fraud application on the Fraud Detection Handbook's protocol.",
    no_args_is_help=True,
)

HERE = str(Path(__file__).resolve().parent)
TransactionsOption = Annotated[
    Path, typer.Option(exists=True, dir_okay=False, help="The payments (Parquet).")
]
AppOption = Annotated[str, typer.Option("--app", help="The fraud application.")]
ScratchStateDirOption = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Where the pipeline lives (default: a temporary dir)."),
]
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


@commands.command()
def tune(
    transactions: TransactionsOption,
    output: Annotated[Path, typer.Option(dir_okay=False, help="Where to write.")] = TUNED_PATH,
    state_dir: ScratchStateDirOption = None,
    app: AppOption = HERE,
    broker: BrokerOption = None,
    train_start: TrainStartOption = "2018-07-25",
    train_days: TrainDaysOption = 7,
    delay_days: DelayDaysOption = 7,
    test_days: TestDaysOption = 7,
    history_days: HistoryDaysOption = 40,
    verbose: VerboseOption = False,
) -> None:
    """Prequential validation on the weeks before the training week: the heavy model's
    parameters and the heavy band, written to tuned.json (training reads it)."""
    from .tuning import tune_on_replay

    setup_logging(verbose)
    folder = state_dir or Path(tempfile.mkdtemp(prefix="streamsense-fraud-tune-"))
    protocol = _protocol(train_start, train_days, delay_days, test_days, history_days)
    try:
        with open_session(app, folder, broker) as session:
            # The models' inputs, from the application's stream (as app.py derives them).
            stream = session.application.inputs["transactions"]
            names = model_inputs(fraud_features(stream))
            tuned = tune_on_replay(session, {"transactions": transactions}, protocol, names)
        save_tuned(tuned, output)
        console.print(
            f"chose {tuned.heavy_params} and heavy band {tuned.heavy_band} → {output}",
            soft_wrap=True,
        )
    finally:
        if state_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


@commands.command()
def train(
    transactions: TransactionsOption,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the pipeline lives.")],
    app: AppOption = HERE,
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
    protocol = _protocol(train_start, train_days, delay_days, 7, history_days)
    with open_session(app, state_dir, broker) as session:
        training = session.application.training
        assert training is not None, "the fraud application trains"
        training.train(session, {"transactions": transactions}, protocol)


@commands.command()
def evaluate(
    transactions: TransactionsOption,
    export_decisions: Annotated[
        Path | None, typer.Option(dir_okay=False, help="The test week's decisions (Parquet).")
    ] = None,
    state_dir: ScratchStateDirOption = None,
    app: AppOption = HERE,
    broker: BrokerOption = None,
    train_start: TrainStartOption = "2018-07-25",
    train_days: TrainDaysOption = 7,
    delay_days: DelayDaysOption = 7,
    test_days: TestDaysOption = 7,
    history_days: HistoryDaysOption = 40,
    verbose: VerboseOption = False,
) -> None:
    """The whole protocol: replay, training set, training, live scoring of the test week
    through the cascade, and AUC ROC, average precision and Card Precision@100 with 95 %
    bootstrap intervals over cards; beside them the handbook's published results when this
    is the handbook's protocol on its data."""
    setup_logging(verbose)
    folder = state_dir or Path(tempfile.mkdtemp(prefix="streamsense-fraud-"))
    protocol = _protocol(train_start, train_days, delay_days, test_days, history_days)
    files = {"transactions": transactions}
    try:
        with open_session(app, folder, broker) as session:
            training = session.application.training
            assert training is not None, "the fraud application trains"
            training.train(session, files, protocol)
            evaluation = training.evaluate(session, files, protocol)
            handbook_run = is_handbook_run(transactions, protocol)
            print_evaluation(session, cast(Evaluation, evaluation), handbook_run=handbook_run)
            if export_decisions is not None:
                export = session.application.exports["decisions"]
                test = (protocol.test_start_ms, protocol.test_end_ms)
                rows = export(session.broker, export_decisions, *test)
                console.print(f"exported {rows:,} test-week decisions → {export_decisions}")
    finally:
        if state_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


def _protocol(
    train_start: str, train_days: int, delay_days: int, test_days: int, history_days: int
) -> Protocol:
    start = epoch_ms(train_start, "--train-start")
    assert start is not None
    return Protocol(start, train_days, delay_days, test_days, history_days)
