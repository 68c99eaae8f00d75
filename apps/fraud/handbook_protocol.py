"""The handbook's protocol over replays (the app's ``Training``): replay up to the test
week, train the light and heavy models on the training week with the labels known by then
and put them in production; then replay the test week through the cascade and score it.
``print_evaluation`` shows the result, beside the handbook's published figures on the
handbook's own run only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

from streamsense.application import Session

from .fraud_metrics import DAY_MS, HANDBOOK_RESULTS, Evaluation, Protocol, Scores, evaluate
from .fraud_training import train
from .monitoring_reference import save_references


def train_on_replay(
    session: Session, files: Mapping[str, Path], protocol: Protocol, model_inputs: list[str]
) -> None:
    """Replay [training start − history, test start) through the pipeline, train on the
    training window with the labels known at the test start, reload the cascade."""
    history = protocol.history_days
    begin = protocol.train_start_ms - history * DAY_MS if history else None
    session.console.print(
        f"[bold]replaying up to the test week[/bold] ({dates(begin, protocol.test_start_ms)})"
    )
    replayed = session.replay(files, begin, protocol.test_start_ms)
    session.console.print(f"processed {replayed.stats.events:,} events in {replayed.seconds:.1f} s")
    report = train(
        session.broker,
        session.state_dir,
        model_inputs,
        protocol.train_start_ms,
        protocol.train_end_ms,
        as_of_ms=protocol.test_start_ms,
    )
    session.console.print(
        f"trained on {report.rows:,} payments ({report.frauds:,} frauds, "
        f"{dates(protocol.train_start_ms, protocol.train_end_ms)}) in "
        f"{report.seconds:.1f} s: fraud-light v{report.light_version} and fraud-heavy "
        f"v{report.heavy_version} in production in {session.state_dir / 'models'}"
    )
    # What monitoring compares the live pipeline with, kept with these versions (#17).
    save_references(
        session.broker, session.state_dir, model_inputs, protocol.train_start_ms,
        protocol.train_end_ms, protocol.test_start_ms,
    )  # fmt: skip
    session.configure()  # the pipeline now decides with the new models, monitored


def score_live(
    session: Session, files: Mapping[str, Path], protocol: Protocol, model_inputs: list[str]
) -> Evaluation:
    """Replay the test week through the cascade; its evaluation on the handbook's metrics."""
    test = (protocol.test_start_ms, protocol.test_end_ms)
    session.console.print(f"[bold]scoring the test week live[/bold] ({dates(*test)})")
    replayed = session.replay(files, *test)
    session.console.print(f"processed {replayed.stats.events:,} events in {replayed.seconds:.1f} s")
    return evaluate(session.broker, session.state_dir, model_inputs, protocol)


def print_evaluation(session: Session, evaluation: Evaluation, *, handbook_run: bool) -> None:
    """The test week's metrics with their bootstrap intervals; beside them the handbook's
    published figures only when this run is the handbook's protocol on its data
    (handbook_data.is_handbook_run): they say nothing about any other run."""
    console = session.console
    console.print(
        f"test set: {evaluation.test_payments:,} payments, {evaluation.test_frauds:,} frauds "
        f"({evaluation.left_out_known_cards:,} payments of cards known to be compromised "
        "left out)"
    )
    table = Table(title="test week (95 % bootstrap intervals over cards)")
    table.add_column("model", no_wrap=True)
    for name in ("AUC ROC", "average precision", "Card Precision@100"):
        table.add_column(name, justify="right")
    for row in evaluation.rows:
        table.add_row(row.name, *(_with_interval(v, i) for v, i in _figures(row)))
    if handbook_run:
        for name, (auc, ap, cp) in HANDBOOK_RESULTS.items():
            table.add_row(name, f"{auc:.3f}", f"{ap:.3f}", f"{cp:.3f}", style="dim")
    console.print(table)
    for row in evaluation.rows[:1]:
        console.print(
            f"{row.name}: AUC ROC {row.auc:.3f}, average precision "
            f"{row.average_precision:.3f}, Card Precision@100 {row.card_precision:.3f}",
            soft_wrap=True,
        )
        if handbook_run:
            console.print(_against_handbook(row), soft_wrap=True)
    tiers = ", ".join(f"{tier} {n:,}" for tier, n in sorted(evaluation.by_tier.items()))
    console.print(
        f"decided by: {tiers}; decision latency p50 {evaluation.latency_p50_ms:.3f} ms, "
        f"p99 {evaluation.latency_p99_ms:.3f} ms, max {evaluation.latency_max_ms:.3f} ms; "
        f"{evaluation.degraded:,} degraded"
    )


def _figures(row: Scores) -> list[tuple[float, tuple[float, float] | None]]:
    i = row.intervals
    return [
        (row.auc, i.auc if i else None),
        (row.average_precision, i.average_precision if i else None),
        (row.card_precision, i.card_precision if i else None),
    ]


def _with_interval(value: float, interval: tuple[float, float] | None) -> str:
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _against_handbook(row: Scores) -> str:
    """Each metric against the best published figure: above or below it only when the
    interval lies wholly on that side, otherwise within the test set's noise."""
    best = [max(v[i] for v in HANDBOOK_RESULTS.values()) for i in range(3)]
    verdicts = []
    for name, (value, interval), theirs in zip(
        ("AUC", "AP", "CP@100"), _figures(row), best, strict=True
    ):
        low, high = interval if interval is not None else (value, value)
        if low > theirs:
            verdict = "above"
        elif high < theirs:
            verdict = "below"
        else:
            verdict = "within the interval of"
        verdicts.append(f"{name} {value:.3f} {verdict} {theirs:.3f}")
    return "the live cascade against the best published figure of each: " + ", ".join(verdicts)


def dates(start_ms: int | None, end_ms: int | None) -> str:
    def day(ms: int | None) -> str:
        if ms is None:
            return "the start"
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")

    return f"{day(start_ms)} to {day(end_ms)}"
