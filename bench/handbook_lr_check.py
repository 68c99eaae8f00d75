"""The handbook's own logistic regression on streamsense's feature vectors.

    python bench/handbook_lr_check.py [--path PARQUET]  (default: the handbook file)
                                      [--features FEATURES.parquet]

If streamsense computes the handbook's 15 features as the handbook does, the handbook's
baseline model trained on them must score what the handbook publishes for it (AUC ROC 0.871,
average precision 0.606, Card Precision@100 0.291). The model is the handbook's: scikit-learn's
LogisticRegression(random_state=0) on the 15 inputs standardised with the training week's
mean and deviation, trained on every payment of 2018-07-25..07-31, scored on 2018-08-08..08-14
with known-compromised cards left out (apps/fraud/fraud_metrics.py, the evaluation
`streamsense fraud evaluate` uses).

The vectors: by default the fraud app's `FeatureSet` run through the `FeatureEngine` over the
whole file (the operators the pipeline runs; tests/e2e/test_fraud_app.py checks that a replay
exports exactly these); or `--features`, a replay's export (`streamsense replay apps/fraud
--transactions F --export-features FEATURES.parquet`), joined by TRANSACTION_ID.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASET = ROOT.parent / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"
PUBLISHED = (0.871, 0.606, 0.291)


def engine_vectors(events: pa.Table) -> tuple[np.ndarray, list[str]]:
    """The handbook's 15 for every row, in file order, from the app's definitions."""
    from apps.fraud.app import FEATURES

    from streamsense import features as F

    times = events.column("TX_DATETIME").cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy()
    columns = {
        "customer_id": events.column("CUSTOMER_ID").to_numpy(),
        "terminal_id": events.column("TERMINAL_ID").to_numpy(),
        "tx_amount": events.column("TX_AMOUNT").to_numpy(),
        "tx_fraud": events.column("TX_FRAUD").to_numpy().astype(np.float64),
    }
    values = F.FeatureEngine(FEATURES).process(0, times, columns).values
    return np.asarray(values, np.float64), list(FEATURES.names)


def exported_vectors(events: pa.Table, path: Path) -> tuple[np.ndarray, list[str]]:
    """A replay's export, in the file's row order (each payment exactly once)."""
    table = pq.read_table(path)
    names = [n for n in table.column_names if n != "TRANSACTION_ID"]
    ids = table.column("TRANSACTION_ID").to_numpy()
    order = np.argsort(ids)
    wanted = events.column("TRANSACTION_ID").to_numpy()
    at = order[np.searchsorted(ids, wanted, sorter=order)]
    if not np.array_equal(ids[at], wanted):
        raise SystemExit(f"{path} does not hold every payment of the file")
    return np.column_stack([table.column(n).to_numpy()[at] for n in names]), names


def check(events: pa.Table, X: np.ndarray) -> None:
    from apps.fraud.bootstrap import card_draws
    from apps.fraud.features import LABEL_DELAY_MS
    from apps.fraud.fraud_metrics import DAY_MS, scores, test_mask
    from apps.fraud.handbook_data import HANDBOOK_PROTOCOL as protocol
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    paid = events.column("TX_DATETIME").cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy()
    customers = events.column("CUSTOMER_ID").to_numpy()
    y = events.column("TX_FRAUD").to_numpy().astype(np.int64)
    train = (paid >= protocol.train_start_ms) & (paid < protocol.train_end_ms)
    scaler = StandardScaler().fit(X[train])
    model = LogisticRegression(random_state=0).fit(scaler.transform(X[train]), y[train])
    test = test_mask(paid, customers, customers, y, paid + LABEL_DELAY_MS, protocol)
    p = model.predict_proba(scaler.transform(X[test]))[:, 1]
    day = (paid[test] - protocol.test_start_ms) // DAY_MS
    card = customers[test]
    got = scores("handbook LR", day, card, y[test], p, card_draws(card))
    print(f"train: {int(train.sum()):,} payments ({int(y[train].sum())} frauds); "
          f"test: {int(test.sum()):,} payments ({int(y[test].sum())} frauds)")  # fmt: skip
    assert got.intervals is not None
    figures = zip(
        ("AUC ROC", "average precision", "Card Precision@100"),
        (got.auc, got.average_precision, got.card_precision),
        (got.intervals.auc, got.intervals.average_precision, got.intervals.card_precision),
        PUBLISHED,
        strict=True,
    )
    for name, value, (low, high), published in figures:
        print(f"{name:>20}: {value:.3f} [{low:.3f}, {high:.3f}]  published {published:.3f}  "
              f"difference {value - published:+.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", type=Path, default=DATASET)
    parser.add_argument("--features", type=Path, help="a replay's --export-features file")
    args = parser.parse_args()
    began = time.perf_counter()
    events = pq.read_table(args.path)
    if args.features is None:
        X, names = engine_vectors(events)
        source = "the FeatureEngine over the whole file"
    else:
        X, names = exported_vectors(events, args.features)
        source = str(args.features)
    print(f"vectors: {len(names)} features of {events.num_rows:,} payments from {source}")
    check(events, X)
    print(f"{time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
