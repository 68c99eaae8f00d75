"""The validation behind the tuned parameters: folds wholly before the training week, and a
search that picks from its grid by what the folds measured."""

from __future__ import annotations

import numpy as np

from ..fraud_metrics import DAY_MS, Protocol
from ..fraud_training import TrainingSet
from ..tuning import BAND_HIGH, BAND_LOWS, Fold, fold_protocols, search

DAY0 = 1_532_476_800_000  # 2018-07-25, the handbook's training start
PROTOCOL = Protocol(DAY0, train_days=7, delay_days=7, test_days=7, history_days=40)


def test_every_fold_ends_before_the_training_week_and_trains_on_its_own_labels() -> None:
    folds = fold_protocols(PROTOCOL, 3)
    assert [f.test_end_ms for f in folds] == [DAY0, DAY0 - 7 * DAY_MS, DAY0 - 14 * DAY_MS]
    for fold in folds:
        assert (fold.train_days, fold.delay_days, fold.test_days) == (7, 7, 7)
        assert fold.test_start_ms - fold.train_end_ms == 7 * DAY_MS  # the label delay
        # Every label of a fold's test week is known when the real training runs.
        assert fold.test_end_ms + 7 * DAY_MS <= PROTOCOL.test_start_ms


def _set(rng: np.random.Generator, start: int, n: int) -> TrainingSet:
    """Payments where fraud needs a large amount and a risky terminal (a rule the trees
    learn and the linear model only approximates)."""
    X = rng.uniform(0, 1, (n, 3))
    y = ((X[:, 0] > 0.8) & (X[:, 1] > 0.5)).astype(np.int64)
    flip = rng.uniform(0, 1, n) < 0.02
    y[flip] = 1 - y[flip]
    return TrainingSet(
        X=X, y=y, transaction_ids=np.arange(n), event_time=start + rng.integers(0, 7 * DAY_MS, n),
        customers=rng.integers(0, n // 4, n), label_time=np.zeros(n, np.int64),
        names=["a", "b", "c"], unlabelled=0,
    )  # fmt: skip


def test_the_search_chooses_from_its_grid_by_the_folds_scores() -> None:
    rng = np.random.default_rng(3)
    folds = []
    for protocol in fold_protocols(PROTOCOL, 2):
        valid = _set(rng, protocol.test_start_ms, 2000)
        train = _set(rng, protocol.train_start_ms, 2000)
        folds.append(Fold(protocol, train, valid, np.ones(len(valid.y), bool)))
    grid: list[dict[str, float | int]] = [
        {"n_estimators": 1, "learning_rate": 0.01, "num_leaves": 2, "min_child_samples": 500},
        {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 10},
    ]
    tuned = search(folds, grid)
    assert tuned.heavy_params == grid[1]  # one stump cannot express the rule
    candidates = tuned.validation["heavy_candidates"]
    first, second = (c["mean"]["average_precision"] for c in candidates)
    assert second > first
    assert tuned.heavy_band[0] in BAND_LOWS and tuned.heavy_band[1] == BAND_HIGH
    assert [b["low"] for b in tuned.validation["bands"]] == list(BAND_LOWS)
    assert len(tuned.validation["folds"]) == 2
