"""Fraud detection on card payments: the flagship application.

    transactions ─→ features ─→ decide ─→ fraud.decisions
                    (feature engine,   (cascade: rules → light model → heavy model,
                     online store)      the models in production in the state dir)
    labels ───────→ cards ───→ fraud.compromised-cards

Two streams: the payments, and their fraud labels as delayed feedback (one label per payment,
7 days after it). The features are the handbook's 15 plus velocity, habits and the
terminal's label history (features.py); the decisions are records of what was decided, by
which tier, on which features, in how long. `streamsense fraud train` trains the models on
the handbook's protocol (parameters from `streamsense fraud tune`) and puts them in
production; `streamsense fraud evaluate` scores the test week live, with bootstrap intervals,
beside the handbook's published results on the handbook's own run.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import typer

import streamsense as ss
from streamsense import features as F
from streamsense.application import InputOption, Session, Training
from streamsense.runtime.ingest import RowFilter
from streamsense.runtime.input_files import columns_of, file_format
from streamsense.serving import DECIDED_BY_API, Serving
from streamsense.serving.cascade import Candidate
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.request_reply import ReplySink, request_id

from . import demo, handbook_protocol
from . import serving as serving_setup
from .features import (
    HANDBOOK_NAMES,
    LABEL_DELAY_MS,
    fraud_features,
    handbook_features,
    model_inputs,
)
from .fraud_exports import export_decisions_file, export_features_file
from .fraud_metrics import HANDBOOK_RESULTS, Evaluation, Protocol
from .fraud_summary import summary
from .monitoring import FraudMonitor, export_alerts

DAY_MS = 86_400_000


class Transaction(ss.Schema, rename="upper"):
    """One card payment; field names on the wire are the handbook's (TX_AMOUNT, ...)."""

    transaction_id: int
    tx_datetime: datetime
    customer_id: int
    terminal_id: int
    tx_amount: float
    # The handbook file carries the label with the payment; the features read it only
    # through terminal windows that end 7 days back, exactly when the label stream has it.
    # One log keeps the pipeline deterministic (two topics interleave as they are polled).
    tx_fraud: int = 0
    tx_fraud_amount: float = 0.0  # the amount when it was a fraud: set from the two above

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "tx_fraud_amount", self.tx_amount * self.tx_fraud)


class Label(ss.Schema, rename="upper"):
    """A payment's fraud label, as the bank learns it (7 days after the payment)."""

    transaction_id: int
    label_time: datetime
    customer_id: int
    terminal_id: int
    tx_datetime: datetime
    tx_fraud: int


class FraudDecision(DecisionRecord, kw_only=True):
    """A decision record, naming the payment and when it happened (epoch ms)."""

    transaction_id: int = -1
    event_time: int = 0


class CompromisedCard(ss.Schema):
    """A card whose fraud just became known (the first known fraud in 30 days)."""

    customer_id: int
    transaction_id: int
    tx_datetime: datetime
    known_at: datetime


# One partition: the terminal features need every payment of a terminal, and payments are
# keyed by customer. Scaling out means repartitioning by terminal (bench/kafka_bench.py).
transactions = ss.Stream(
    "transactions", Transaction, key="customer_id", time="tx_datetime", partitions=1
)
labels = ss.Stream("labels", Label, key="customer_id", time="label_time", partitions=1)

FEATURES = handbook_features(transactions)  # the handbook's 15 (benchmarks use them)
PIPELINE_FEATURES = fraud_features(transactions)  # the 15, velocity, habits, label history
MODEL_INPUTS = model_inputs(PIPELINE_FEATURES)
FEATURE_STAGE = F.FeatureStage("features", PIPELINE_FEATURES, allowed_lateness_ms=60_000)


@dataclass
class Decide:
    """The decision stage: the cascade of the state dir (``configure`` loads it), called
    once per micro-batch (one call per model tier for the batch's payments)."""

    cascade: serving_setup.FraudCascade = field(
        default_factory=lambda: serving_setup.load_cascade(None)
    )

    def __call__(
        self, batch: Sequence[F.Enriched], contexts: Sequence[ss.Context]
    ) -> list[FraudDecision | None]:
        # Posted to /v1/decide: decided then; its features still count.
        todo = [i for i, ctx in enumerate(contexts) if DECIDED_BY_API not in ctx.event.headers]
        candidates = [
            Candidate(request_id(contexts[i].event), contexts[i].key, batch[i].features)
            for i in todo
        ]
        shed_heavy = bool(contexts) and contexts[0].load.shed_heavy
        records = self.cascade.decide_batch(candidates, shed_heavy=shed_heavy)
        out: list[FraudDecision | None] = [None] * len(batch)
        for i, record in zip(todo, records, strict=True):
            out[i] = FraudDecision(
                transaction_id=batch[i].payload.transaction_id,
                event_time=contexts[i].event_time,
                **msgspec.structs.asdict(record),
            )
        return out


def cards(label: Label, ctx: ss.Context) -> CompromisedCard | None:
    """Known-compromised cards: a fraud label for a card with none in the 30 days before."""
    if not label.tx_fraud:
        return None
    last = ctx.state.get()
    ctx.state.set(ctx.event_time)
    if last is not None and ctx.event_time - last < 30 * DAY_MS:
        return None
    return CompromisedCard(
        label.customer_id, label.transaction_id, label.tx_datetime, label.label_time
    )


def cards_and_monitor(label: Label, ctx: ss.Context) -> CompromisedCard | None:
    """Each label also reaches the monitor, which joins it to its decision (issue #17)."""
    MONITOR.observe_label(label, ctx)
    return cards(label, ctx)


DECIDE = Decide()
MONITOR = FraudMonitor()  # drift and performance alerts → fraud.alerts (monitoring.py)
app = ss.App("fraud")
# ReplySink: each decision also names the request it answers, so a card-authorisation
# caller (serving.request_reply.RequestReply) can wait for it.
app.flow(transactions).batch(FEATURE_STAGE).batched_stage("decide", DECIDE).sink(
    ReplySink("fraud.decisions")
).sink(MONITOR)
app.flow(labels).stage("cards", cards_and_monitor).sink(ss.TopicSink("fraud.compromised-cards"))


_LAST_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999 in epoch microseconds


@dataclass(frozen=True)
class LabelRows:
    """The label of each payment row (a row filter for the ingest, so its repr is stable:
    it names the ingest's resumable cursor)."""

    window: RowFilter | None = None
    delay_ms: int = LABEL_DELAY_MS

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.window is not None:
            batch = self.window(batch)
        paid = batch.column("TX_DATETIME")
        known = pc.add(paid, pa.scalar(self.delay_ms * 1000, pa.duration("us")))
        # A payment dated in the last week of year 9999 (a hostile file: its payment is a
        # dead letter, far in the future) has its label then too, not past what Python's
        # datetime holds (issue #21).
        if known.type.unit != "ns":  # nanoseconds end in 2262 anyway
            last = pa.scalar(_LAST_US, pa.timestamp("us", known.type.tz))
            known = pc.min_element_wise(known, last.cast(known.type, safe=False), skip_nulls=False)
        names = ["TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID", "TX_DATETIME", "TX_FRAUD"]
        return pa.RecordBatch.from_arrays(
            [batch.column(name) for name in names] + [known], names=[*names, "LABEL_TIME"]
        )


def derived_inputs(
    name: str, path: Path, row_filter: RowFilter | None
) -> list[tuple[ss.Stream[Any], Path, RowFilter | None]]:
    """Streams a replay feeds from an input file besides its own: each payment's label, when
    the file has them (the handbook's file and the simulator's do)."""
    if name != "transactions" or file_format(path) == "jsonl":  # rows, not lines
        return []
    if "TX_FRAUD" not in columns_of(path):
        return []
    return [(labels, path, LabelRows(row_filter))]


def configure(state_dir: Path) -> None:
    """The pipeline keeps the online store in the state dir up to date and decides with the
    models in production there (call again after training to load the new ones)."""
    serving_setup.attach(FEATURE_STAGE, state_dir)
    DECIDE.cascade = serving_setup.load_cascade(state_dir)
    MONITOR.configure(state_dir)  # the references of the models in production, if any
    # What is loaded by now (libraries, models) lives as long as the process: kept out of
    # the garbage collector's full passes, they cannot stall a decision for 100 ms.
    gc.collect()
    gc.freeze()


def serving(broker: ss.Broker, state_dir: Path) -> Serving:
    return serving_setup.build_serving(broker, state_dir, PIPELINE_FEATURES, transactions)


def export_features(broker: ss.Broker, path: Path, start_ms: int | None, end_ms: int | None) -> int:
    """`replay --export-features`: TRANSACTION_ID and the handbook's 15, one row a payment."""
    integers = {f.name for f in FEATURES.features if f.output_dtype == "int64"}
    return export_features_file(broker, path, HANDBOOK_NAMES, integers, start_ms, end_ms)


def export_decisions(
    broker: ss.Broker, path: Path, start_ms: int | None, end_ms: int | None
) -> int:
    """`replay --export-decisions`: TRANSACTION_ID, score, action, tier, model_version,
    degraded, latency_ms, one row a payment."""
    return export_decisions_file(broker, path, start_ms, end_ms)


def train_on_replay(session: Session, files: Mapping[str, Path], protocol: Protocol) -> None:
    """`streamsense fraud train`: replay up to the test week, train, reload the cascade."""
    handbook_protocol.train_on_replay(session, files, protocol, MODEL_INPUTS)


def score_live(session: Session, files: Mapping[str, Path], protocol: Protocol) -> Evaluation:
    """`streamsense fraud evaluate`, once trained: the test week decided live, scored."""
    return handbook_protocol.score_live(session, files, protocol, MODEL_INPUTS)


def _commands() -> typer.Typer:
    from .commands import commands  # imported only when `streamsense fraud` runs

    return commands


application = ss.Application(
    app=app,
    inputs={"transactions": transactions},
    input_options=[
        InputOption("transactions", "The payments (Parquet or JSON lines); their labels too.")
    ],
    derived_inputs=derived_inputs,
    configure=configure,
    exports={"features": export_features, "decisions": export_decisions, "alerts": export_alerts},
    summary=summary,
    serving=serving,
    training=Training(train=train_on_replay, evaluate=score_live),
    demo=demo.run,
    demo_options=demo.OPTIONS,
    commands=_commands,
)

__all__ = [
    "FEATURES",
    "HANDBOOK_RESULTS",
    "Protocol",
    "app",
    "application",
    "transactions",
]
