"""What monitoring compares the live pipeline with, made when the models are trained and kept
beside the heavy model's version in the registry (issue #17):

* ``reference_profile.json``: the profile of every model input over the training window
  (the vectors the models were fitted on), split by weekday x hour; and of the cascade's
  score over the days between the training window and the test start, scored by the new
  models: out of sample, as live scores are (in-sample scores of boosted trees are more
  extreme than any live ones, which would look like prediction drift from the first day);
* ``reference_performance.json``: the mean daily AUC, average precision, precision and
  recall at the action thresholds and Card Precision@100 of the new models on the week
  before the training window, with the labels known at the test start (the level live
  windows are held against: the training week's own would flatter them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

import streamsense as ss
from streamsense.errors import StreamsenseError
from streamsense.monitoring import ReferenceProfile, build_profile, load_reference, save_reference
from streamsense.monitoring.performance import PerformanceWindows
from streamsense.monitoring.seasons import Seasonality
from streamsense.serving.cascade import Candidate

from .fraud_exports import decisions
from .fraud_training import TrainingSet, training_set
from .metrics import card_precision_at_100
from .monitoring_config import load_config
from .serving import HEAVY, load_cascade, registry

PERFORMANCE_FILE = "reference_performance.json"
DAY_MS = 86_400_000
REFERENCE_BATCH = 1_000
SEASONALITY: Seasonality = "weekday_hour"


def scores_of(state_dir: Path, names: Sequence[str], X: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The cascade in production in ``state_dir`` scoring each row as the pipeline would."""
    cascade = load_cascade(state_dir)
    out = np.empty(len(X), np.float64)
    rows, customers = X.tolist(), keys.tolist()
    for start in range(0, len(rows), REFERENCE_BATCH):  # a micro-batch's calls, as replays
        candidates = [
            Candidate(f"reference-{i}", str(customers[i]), dict(zip(names, rows[i], strict=True)))
            for i in range(start, min(start + REFERENCE_BATCH, len(rows)))
        ]
        for i, record in enumerate(cascade.decide_batch(candidates), start):
            out[i] = record.score
    return out


def reference_profile(
    broker: ss.Broker, state_dir: Path, names: Sequence[str], data: TrainingSet, as_of_ms: int
) -> ReferenceProfile:
    """Inputs over the training set, the score over (training end, as of]."""
    inputs = build_profile(
        {name: data.X[:, i] for i, name in enumerate(names)},
        data.event_time,
        seasonality=SEASONALITY,
    )
    after = decisions(broker, names, int(data.event_time.max()) + 1, as_of_ms)
    if not len(after["event_time"]):  # nothing decided after the training window
        after = {"event_time": data.event_time, "CUSTOMER_ID": data.customers}
        X = data.X
    else:
        X = np.column_stack([after[n] for n in names])
    scored = build_profile(
        {"score": scores_of(state_dir, names, X, after["CUSTOMER_ID"])},
        after["event_time"],
        scores=["score"],
        seasonality=SEASONALITY,
    )
    return ReferenceProfile(
        rows=inputs.rows,
        start_ms=inputs.start_ms,
        end_ms=inputs.end_ms,
        seasonality=inputs.seasonality,
        columns=[*inputs.columns, *scored.columns],
    )


def reference_performance(
    broker: ss.Broker, state_dir: Path, names: Sequence[str], start_ms: int, as_of_ms: int,
    thresholds: Sequence[float],
) -> dict[str, float]:  # fmt: skip
    """Mean daily metrics of the models in production on the week before ``start_ms``,
    computed by the same windows as live (``PerformanceWindows``, one day of label time)."""
    week = training_set(broker, list(names), start_ms - 7 * DAY_MS, start_ms, as_of_ms)
    if not len(week.y) or not week.y.sum():
        return {}
    windows = PerformanceWindows(
        DAY_MS, thresholds=thresholds, metrics={"card_precision@100": card_precision_at_100}
    )
    scores = scores_of(state_dir, names, week.X, week.customers)
    ids = week.transaction_ids.tolist()
    windows.decisions(ids, scores.tolist(), week.event_time.tolist(), week.customers.tolist())
    windows.labels(ids, week.y.tolist(), week.label_time.tolist())
    values: dict[str, list[float]] = {}
    for seen in windows.flush():
        if seen.statistic == "value":
            values.setdefault(seen.subject, []).append(seen.value)
    return {name: float(np.mean(v)) for name, v in values.items()}


def save_references(
    broker: ss.Broker, state_dir: Path, names: Sequence[str], train_start_ms: int,
    train_end_ms: int, as_of_ms: int,
) -> None:  # fmt: skip
    """Attach both references to the heavy model in production (just trained on
    [train start, train end) with the labels known at ``as_of``)."""
    data = training_set(broker, list(names), train_start_ms, train_end_ms, as_of_ms)
    thresholds = load_config().performance.thresholds
    models = registry(state_dir)
    save_reference(models, HEAVY, "production", reference_profile(
        broker, state_dir, names, data, as_of_ms
    ))  # fmt: skip
    level = reference_performance(broker, state_dir, names, train_start_ms, as_of_ms, thresholds)
    models.attach(HEAVY, "production", PERFORMANCE_FILE, msgspec.json.encode(level))


def load_references(state_dir: Path) -> tuple[ReferenceProfile, dict[str, float]] | None:
    """The profile and performance level of the heavy model in production, if trained."""
    models = registry(state_dir)
    try:
        profile = load_reference(models, HEAVY, "production")
        level: Any = msgspec.json.decode(models.attachment(HEAVY, "production", PERFORMANCE_FILE))
    except StreamsenseError:
        return None
    return profile, {str(k): float(v) for k, v in level.items()}
