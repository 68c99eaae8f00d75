"""The handbook's evaluation protocol and metrics, on the decisions the pipeline made live.

Each figure comes with a 95 % bootstrap interval over the test set's cards (bootstrap.py).

Test set: the payments of the test week, leaving out the cards already known to be
compromised — those with a fraud in the training week and, for each test day, those whose
fraud label had arrived by that day's start (fraud up to the day minus 8, as the handbook's
code counts). Metrics: AUC ROC, average precision and Card Precision@100 (each day, every
card's highest score, the top 100 cards, the share of them that were defrauded; cards found
are removed from later days; averaged over the days), as in the handbook's
``card_precision_top_k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import streamsense as ss
from streamsense.errors import StreamsenseError

from .bootstrap import Intervals, card_draws, intervals
from .features import LABEL_DELAY_MS
from .fraud_exports import decisions, labels
from .metrics import auc_roc, average_precision, card_precision_at_k
from .serving import HEAVY, LIGHT, registry

DAY_MS = 86_400_000

# The handbook's published test results (AUC ROC, average precision, Card Precision@100).
HANDBOOK_RESULTS = {
    "handbook logistic regression": (0.871, 0.606, 0.291),
    "handbook random forest": (0.867, 0.658, 0.287),
    "handbook XGBoost (tuned)": (0.869, 0.687, 0.303),
}


@dataclass(frozen=True)
class Protocol:
    """Train [train_start, +train_days), wait delay_days for labels, test test_days; the
    replay before training starts history_days before it (0: the whole file before it)."""

    train_start_ms: int
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7
    history_days: int = 0

    @property
    def train_end_ms(self) -> int:
        return self.train_start_ms + self.train_days * DAY_MS

    @property
    def test_start_ms(self) -> int:
        return self.train_end_ms + self.delay_days * DAY_MS

    @property
    def test_end_ms(self) -> int:
        return self.test_start_ms + self.test_days * DAY_MS


@dataclass(frozen=True)
class Scores:
    name: str
    auc: float
    average_precision: float
    card_precision: float
    intervals: Intervals | None = None  # bootstrap over cards (bootstrap.py)


@dataclass
class Evaluation:
    test_payments: int = 0
    test_frauds: int = 0
    left_out_known_cards: int = 0
    rows: list[Scores] = field(default_factory=list)
    by_tier: dict[str, int] = field(default_factory=dict)
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    degraded: int = 0


def test_mask(
    event_time: np.ndarray,
    customers: np.ndarray,
    label_customers: np.ndarray,
    label_fraud: np.ndarray,
    label_time: np.ndarray,
    protocol: Protocol,
) -> np.ndarray:
    """Which payments are in the test set (the known-compromised cards left out)."""
    in_week = (event_time >= protocol.test_start_ms) & (event_time < protocol.test_end_ms)
    frauds = (label_fraud == 1) & (label_time - LABEL_DELAY_MS >= protocol.train_start_ms)
    keep = in_week.copy()
    for day in range(protocol.test_days):
        start = protocol.test_start_ms + day * DAY_MS
        today = in_week & (event_time >= start) & (event_time < start + DAY_MS)
        known = np.unique(label_customers[frauds & (label_time < start)])
        keep &= ~(today & np.isin(customers, known))
    return keep


def scores(
    name: str,
    day: np.ndarray,
    card: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    draws: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Scores:
    """The three metrics, with bootstrap intervals over ``draws`` (bootstrap.card_draws)."""

    return Scores(
        name,
        auc_roc(y, p),
        average_precision(y, p),
        card_precision_at_k(day, card, y, p),
        intervals(draws, day, y, p) if draws else None,
    )


def evaluate(
    broker: ss.Broker, state_dir: object, names: list[str], protocol: Protocol
) -> Evaluation:
    """Score the test week's live decisions (and, for comparison, each production model
    alone on the same feature vectors)."""
    from pathlib import Path

    decided = decisions(broker, names, protocol.test_start_ms, protocol.test_end_ms)
    known = labels(broker)
    order = np.argsort(known["TRANSACTION_ID"], kind="stable")
    ids = known["TRANSACTION_ID"][order]
    at = np.clip(np.searchsorted(ids, decided["TRANSACTION_ID"]), 0, max(len(ids) - 1, 0))
    labelled = (ids[at] == decided["TRANSACTION_ID"]) if len(ids) else np.zeros(0, bool)
    if not labelled.all():
        raise StreamsenseError(f"{int((~labelled).sum())} test payments have no label")
    y = known["TX_FRAUD"][order][at]
    keep = test_mask(
        decided["event_time"],
        decided["CUSTOMER_ID"],
        known["CUSTOMER_ID"],
        known["TX_FRAUD"],
        known["label_time"],
        protocol,
    )
    evaluation = Evaluation(
        test_payments=int(keep.sum()),
        test_frauds=int(y[keep].sum()),
        left_out_known_cards=int((~keep).sum()),
    )
    if not keep.any():
        return evaluation
    day = (decided["event_time"][keep] - protocol.test_start_ms) // DAY_MS
    card, y, score = decided["CUSTOMER_ID"][keep], y[keep], decided["score"][keep]
    draws = card_draws(card)  # the same resampled cards for every row
    evaluation.rows.append(scores("cascade, live", day, card, y, score, draws))
    models = registry(Path(str(state_dir)))
    X = np.column_stack([decided[n][keep] for n in names]).astype(np.float32)
    for label, name in (("light", LIGHT), ("heavy", HEAVY)):
        try:
            model = models.load(name, "production")
        except StreamsenseError:
            continue
        p = model.predict_proba(X)
        evaluation.rows.append(scores(f"{label} model alone", day, card, y, p, draws))
    tiers, counts = np.unique(decided["tier"], return_counts=True)
    evaluation.by_tier = {str(t): int(c) for t, c in zip(tiers, counts, strict=True)}
    latency = decided["latency_ms"]
    evaluation.latency_p50_ms = float(np.percentile(latency, 50))
    evaluation.latency_p99_ms = float(np.percentile(latency, 99))
    evaluation.latency_max_ms = float(latency.max())
    evaluation.degraded = int(decided["degraded"].sum())
    return evaluation
