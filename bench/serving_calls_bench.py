"""What one serving call costs on its own: a rule set's decision and a model's single-row
score, per call, over --rounds rounds, raw results kept in bench/results/ (no threshold:
timings are measured here, never asserted by tests).

    python bench/serving_calls_bench.py [--calls 20000] [--rounds 3]

* Rules: ``RuleSet.decide`` on three rules of the fraud kind (an amount, a terminal's risk
  with a customer's count, a second amount), none matching: every condition is evaluated.
* Models: ``predict_proba`` of one row of 15 float32 features, for a logistic regression
  (skops, and ONNX) and a 50-tree LightGBM model, each registered and loaded through the
  model registry, natively and converted to ONNX where the registry can.

Each call is timed alone with perf_counter_ns after a warm-up; p50 and p99 in µs.
"""

from __future__ import annotations

import argparse
import json
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


def rules_row(calls: int) -> dict[str, Any]:
    rules = RuleSet.from_dicts([{"name": n, "when": w, "action": a} for n, w, a in RULES])
    p50, p99 = percentiles_us(lambda: rules.decide(NO_MATCH), calls)
    return {"call": "RuleSet.decide, 3 rules, no match", "p50_us": p50, "p99_us": p99}


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


def model_rows(calls: int) -> list[dict[str, Any]]:
    row = np.zeros((1, len(FEATURES)), np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(Path(tmp) / "registry")
        for path, format in write_models(Path(tmp)):
            version = registry.register("bench", path, format, FEATURES)  # type: ignore[arg-type]
            for convert in (True, False) if format != "onnx" else (True,):
                model = registry.load("bench", version, convert=convert)
                p50, p99 = percentiles_us(lambda m=model: m.predict_proba(row), calls)
                call = f"predict_proba 1×15, {format} via {model.runtime}"
                rows.append({"call": call, "p50_us": p50, "p99_us": p99})
    return rows


def main() -> None:
    from results import render, save_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    rows = []
    for round_index in range(args.rounds):
        measured = [rules_row(args.calls), *model_rows(args.calls)]
        rows += [{"round": round_index, **row} for row in measured]
        print(f"round {round_index} done", flush=True)
    settings = {"calls": args.calls, "rounds": args.rounds}
    path = save_results(Path(args.results), "serving_calls_bench", settings, rows)
    print(f"raw results: {path}\n")
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
