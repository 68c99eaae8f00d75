"""The test week's three metrics: AUC ROC, average precision and the handbook's Card
Precision@k. Plain functions of labels and scores, used by the evaluation (fraud_metrics.py)
and by its bootstrap (bootstrap.py)."""

from __future__ import annotations

import numpy as np


def auc_roc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, score)) if y.sum() > 0 else float("nan")


def card_precision_at_k(
    day: np.ndarray, card: np.ndarray, y: np.ndarray, score: np.ndarray, k: int = 100
) -> float:
    """The handbook's Card Precision@k (ties: the lower card id first)."""
    found: set[int] = set()
    per_day = []
    for d in np.unique(day):
        today = (day == d) & ~np.isin(card, list(found))
        cards, inverse = np.unique(card[today], return_inverse=True)
        best = np.full(len(cards), -np.inf)
        np.maximum.at(best, inverse, score[today])
        defrauded = np.zeros(len(cards), np.int64)
        np.maximum.at(defrauded, inverse, y[today])
        top = np.argsort(-best, kind="stable")[:k]
        hits = cards[top][defrauded[top] == 1]
        found.update(int(c) for c in hits)
        per_day.append(len(hits) / k)
    return float(np.mean(per_day)) if per_day else float("nan")


def card_precision_at_100(
    y: np.ndarray, score: np.ndarray, cards: np.ndarray, decided: np.ndarray
) -> float:
    """The handbook's Card Precision@100 over the window's payments, day by day."""
    return card_precision_at_k(decided // 86_400_000, cards, y, score, 100)
