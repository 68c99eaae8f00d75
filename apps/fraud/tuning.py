"""`streamsense fraud tune`: the heavy model's parameters and the heavy band, chosen by the
handbook's prequential validation on weeks *before* the training week.

Fold i moves the whole protocol back: its test week ends i weeks before the training week
starts, its training week lies train + delay days before that. Each fold trains on the
labels known at its own test start (as the real protocol does) and is scored on its test
week, known-compromised cards left out as in the test. Every payment a fold touches
happened before the training week; every label it reads was known when the real training
starts (its test start), so nothing of the test week, nor a label arriving later, can steer
the choice.

Search: a small grid of LightGBM settings, chosen on the folds' mean average precision (the
handbook's main figure for a rare class); then the heavy band's lower edge: the cascade
scored on each fold as it decides live (the heavy score for light scores in the band, the
light score otherwise), the highest edge within ``BAND_TOLERANCE`` of the best mean average
precision (each heavy call costs ~20 µs; equal quality for fewer calls).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import streamsense as ss
from streamsense.application import Session
from streamsense.errors import ConfigError

from .fraud_exports import decisions, labels
from .fraud_metrics import DAY_MS, Protocol, scores, test_mask
from .fraud_training import TrainingSet, fit_heavy_model, fit_light_model, select_training_set
from .metrics import average_precision
from .tuned_params import FIXED_HEAVY_PARAMS, Tuned

FOLDS = 3
HEAVY_GRID: list[dict[str, float | int]] = [
    {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 7, "min_child_samples": 100},
    {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 50},
    {"n_estimators": 500, "learning_rate": 0.02, "num_leaves": 15, "min_child_samples": 50},
    {"n_estimators": 500, "learning_rate": 0.02, "num_leaves": 31, "min_child_samples": 50},
    {"n_estimators": 800, "learning_rate": 0.01, "num_leaves": 15, "min_child_samples": 100},
]
BAND_LOWS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
BAND_HIGH = 1.01  # every score above the lower edge: a confident light score is checked too
BAND_TOLERANCE = 0.002


@dataclass(frozen=True)
class Fold:
    protocol: Protocol  # the fold's own train / delay / test weeks
    train: TrainingSet
    valid: TrainingSet
    valid_keep: np.ndarray  # the validation payments in its test set


def fold_protocols(protocol: Protocol, folds: int = FOLDS) -> list[Protocol]:
    """The folds' protocols: fold i's test week ends i test-lengths before training starts."""
    back = protocol.train_days + protocol.delay_days + protocol.test_days
    return [
        replace(protocol, train_start_ms=protocol.train_start_ms - (back + i * protocol.test_days)
                * DAY_MS)
        for i in range(folds)
    ]  # fmt: skip


def load_folds(
    broker: ss.Broker, names: list[str], protocol: Protocol, folds: int = FOLDS
) -> list[Fold]:
    """Each fold's training and validation sets from the replayed decisions and labels."""
    as_of = protocol.train_start_ms  # nothing of (or after) the training week
    decided = decisions(broker, names, end_ms=as_of)  # read once: slicing beats re-reading
    known = labels(broker)
    cut = known["label_time"] <= protocol.test_start_ms  # known when the real training runs
    loaded: list[Fold] = []
    for fold in fold_protocols(protocol, folds):
        if fold.test_end_ms > as_of:
            raise ConfigError("a validation fold would reach into the training week")
        train = select_training_set(decided, known, names, fold.train_start_ms,
                                    fold.train_end_ms, as_of_ms=fold.test_start_ms)  # fmt: skip
        valid = select_training_set(decided, known, names, fold.test_start_ms,
                                    fold.test_end_ms, as_of_ms=protocol.test_start_ms)  # fmt: skip
        if valid.unlabelled or not 0 < train.y.sum() < len(train.y):
            raise ConfigError(
                f"fold {len(loaded)}: {len(train.y):,} training rows with {int(train.y.sum())} "
                f"frauds, {valid.unlabelled:,} unlabelled validation rows: replay its weeks"
            )
        keep = test_mask(valid.event_time, valid.customers, known["CUSTOMER_ID"][cut],
                         known["TX_FRAUD"][cut], known["label_time"][cut], fold)  # fmt: skip
        loaded.append(Fold(fold, train, valid, keep))
    return loaded


def _fold_scores(fold: Fold, p: np.ndarray) -> dict[str, float]:
    keep = fold.valid_keep
    day = (fold.valid.event_time[keep] - fold.protocol.test_start_ms) // DAY_MS
    s = scores("", day, fold.valid.customers[keep], fold.valid.y[keep], p[keep])
    return {
        "auc": s.auc,
        "average_precision": s.average_precision,
        "card_precision": s.card_precision,
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {name: round(float(np.mean([r[name] for r in rows])), 4) for name in rows[0]}


def search(folds: list[Fold], grid: list[dict[str, float | int]] = HEAVY_GRID) -> Tuned:
    """The grid on every fold, then the band for the chosen parameters."""
    light = [fit_light_model(f.train.X, f.train.y).predict_proba(f.valid.X)[:, 1] for f in folds]
    candidates, heavy_scores = [], []
    for params in grid:
        full = {**FIXED_HEAVY_PARAMS, **params}
        scored = [fit_heavy_model(f.train.X, f.train.y, full).predict_proba(f.valid.X)[:, 1]
                  for f in folds]  # fmt: skip
        mean = _mean([_fold_scores(f, p) for f, p in zip(folds, scored, strict=True)])
        candidates.append({"params": params, "mean": mean})
        heavy_scores.append(scored)
    best = max(range(len(grid)), key=lambda i: candidates[i]["mean"]["average_precision"])
    bands = _bands(folds, light, heavy_scores[best])
    top = max(b["average_precision"] for b in bands)
    low = max(b["low"] for b in bands if b["average_precision"] >= top - BAND_TOLERANCE)
    validation = {
        "folds": [_describe(f) for f in folds],
        "light_mean": _mean([_fold_scores(f, p) for f, p in zip(folds, light, strict=True)]),
        "heavy_candidates": candidates,
        "bands": bands,
    }
    return Tuned(heavy_params=grid[best], heavy_band=(low, BAND_HIGH), validation=validation)


def _bands(folds: list[Fold], light: list[np.ndarray], heavy: list[np.ndarray]) -> list[Any]:
    rows = []
    for low in BAND_LOWS:
        ap, sent = [], []
        for fold, lp, hp in zip(folds, light, heavy, strict=True):
            to_heavy = (lp >= low) & (lp < BAND_HIGH)
            cascade = np.where(to_heavy, hp, lp)
            keep = fold.valid_keep
            ap.append(average_precision(fold.valid.y[keep], cascade[keep]))
            sent.append(float(to_heavy.mean()))
        rows.append({"low": low, "average_precision": round(float(np.mean(ap)), 4),
                     "heavy_share": round(float(np.mean(sent)), 4)})  # fmt: skip
    return rows


def _describe(fold: Fold) -> dict[str, Any]:
    from .handbook_protocol import dates

    p = fold.protocol
    return {
        "train": dates(p.train_start_ms, p.train_end_ms),
        "test": dates(p.test_start_ms, p.test_end_ms),
        "train_rows": len(fold.train.y),
        "train_frauds": int(fold.train.y.sum()),
        "test_rows": int(fold.valid_keep.sum()),
        "test_frauds": int(fold.valid.y[fold.valid_keep].sum()),
    }


def tune_on_replay(
    session: Session, files: Mapping[str, Path], protocol: Protocol, names: list[str]
) -> Tuned:
    """Replay the folds' weeks (with the features' history) and search."""
    from .handbook_protocol import dates

    earliest = fold_protocols(protocol)[-1].train_start_ms
    begin = earliest - protocol.history_days * DAY_MS if protocol.history_days else None
    console = session.console
    console.print(
        f"[bold]replaying the validation weeks[/bold] ({dates(begin, protocol.train_start_ms)})"
    )
    replayed = session.replay(files, begin, protocol.train_start_ms)
    console.print(f"processed {replayed.stats.events:,} events in {replayed.seconds:.1f} s")
    began = time.perf_counter()
    tuned = search(load_folds(session.broker, names, protocol))
    console.print(f"searched {len(HEAVY_GRID)} settings on {FOLDS} folds in "
                  f"{time.perf_counter() - began:.1f} s")  # fmt: skip
    return tuned
