"""Binary classification metrics over a window of labelled decisions, in numpy alone (no
scikit-learn in the platform's core): AUC ROC, average precision, precision and recall at a
score threshold. Definitions follow scikit-learn's (tied scores share their rank in AUC; AP
is the step-wise sum over distinct thresholds), so a window's figures read like an offline
evaluation's. Undefined values (one class only, nothing flagged) are NaN."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
NAN = float("nan")


def auc_roc(y: npt.NDArray[np.integer], score: Floats) -> float:
    """Mann-Whitney's U over average ranks, so tied scores count one half."""
    positives = int(y.sum())
    negatives = int(y.size) - positives
    if positives == 0 or negatives == 0:
        return NAN
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based ranks, ties averaged
    ranks = average_rank[inverse]
    u = float(ranks[y == 1].sum()) - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


def average_precision(y: npt.NDArray[np.integer], score: Floats) -> float:
    """Sum over distinct thresholds (descending) of precision x the recall it adds."""
    positives = int(y.sum())
    if positives == 0:
        return NAN
    order = np.argsort(-score, kind="stable")
    ranked, hits = score[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    true_positives = np.cumsum(hits)[last_of_tie].astype(np.float64)
    precision = true_positives / (last_of_tie + 1)
    recall = true_positives / positives
    gained = np.diff(np.r_[0.0, recall])
    return float(np.sum(gained * precision))


def precision_recall_at(
    y: npt.NDArray[np.integer], score: Floats, threshold: float
) -> tuple[float, float]:
    """Precision and recall of flagging every score at or above ``threshold``."""
    flagged = score >= threshold
    hits = int((flagged & (y == 1)).sum())
    precision = hits / int(flagged.sum()) if flagged.any() else NAN
    positives = int(y.sum())
    recall = hits / positives if positives else NAN
    return precision, recall
