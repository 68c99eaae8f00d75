"""What one serving call costs on its own: a rule set's decision and a model's single-row
score, per call, printed (no threshold: timings are measured here, never asserted by tests).

    python bench/serving_calls_bench.py [--calls 20000]

* Rules: ``RuleSet.decide`` on three rules of the fraud kind (an amount, a terminal's risk
  with a customer's count, a second amount), none matching: every condition is evaluated.
* Models: ``predict_proba`` of one row of 15 float32 features, for a logistic regression
  (skops, and ONNX) and a 50-tree LightGBM model, each registered and loaded through the
  model registry, natively and converted to ONNX where the registry can.

Each call is timed alone with perf_counter_ns after a warm-up; p50 and p99 in µs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from streamsense.serving import ModelRegistry, RuleSet  # noqa: E402

FEATURES = [f"f{i}" for i in range(15)]
RULES = [
    ("huge_amount", "amount > 220", "block"),
    ("risky_terminal", "terminal_risk_7d >= 0.3 and customer_tx_1d > 3", "review"),
    ("large_amount", "amount > 100", "review"),
]
NO_MATCH = {"amount": 50.0, "terminal_risk_7d": 0.0, "customer_tx_1d": 1}


def percentiles_us(call: Callable[[], Any], n: int) -> tuple[float, float]:
    """p50 and p99 of ``n`` calls, each timed alone, after a warm-up."""
    for _ in range(min(n, 1000)):
        call()
    samples = np.empty(n)
    for i in range(n):
        start = time.perf_counter_ns()
        call()
        samples[i] = time.perf_counter_ns() - start
    return float(np.percentile(samples, 50)) / 1000, float(np.percentile(samples, 99)) / 1000


def rules_line(calls: int) -> str:
    rules = RuleSet.from_dicts([{"name": n, "when": w, "action": a} for n, w, a in RULES])
    p50, p99 = percentiles_us(lambda: rules.decide(NO_MATCH), calls)
    return f"RuleSet.decide, 3 rules, no match    p50 {p50:6.2f} µs  p99 {p99:7.2f} µs"


def write_models(folder: Path) -> list[tuple[Path, str]]:
    """A logistic regression (skops, ONNX) and a LightGBM model on synthetic data."""
    import lightgbm as lgb
    import skops.io as sio
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = rng.normal(size=(500, len(FEATURES))).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=500) > 0).astype(np.int64)
    logistic = LogisticRegression().fit(X, y)
    sio.dump(logistic, folder / "lr.skops")
    onnx = to_onnx(logistic, X[:1], options={"zipmap": False})
    (folder / "lr.onnx").write_bytes(onnx.SerializeToString())
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}
    lgb.train(params, lgb.Dataset(X, y), num_boost_round=50).save_model(folder / "gbm.txt")
    return [
        (folder / n, f)
        for n, f in (("lr.skops", "skops"), ("lr.onnx", "onnx"), ("gbm.txt", "lightgbm"))
    ]


def model_lines(calls: int) -> list[str]:
    row = np.zeros((1, len(FEATURES)), np.float32)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(Path(tmp) / "registry")
        for path, format in write_models(Path(tmp)):
            version = registry.register("bench", path, format, FEATURES)  # type: ignore[arg-type]
            for convert in (True, False) if format != "onnx" else (True,):
                model = registry.load("bench", version, convert=convert)
                p50, p99 = percentiles_us(lambda m=model: m.predict_proba(row), calls)
                lines.append(
                    f"predict_proba 1×15, {format:9} {model.runtime:12} "
                    f"p50 {p50:6.1f} µs  p99 {p99:7.1f} µs"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    for line in [rules_line(args.calls), *model_lines(args.calls)]:
        print(line)


if __name__ == "__main__":
    main()
