"""Training on the handbook's protocol: a point-in-time training set from what the pipeline
decided (each payment's feature vector, exactly as it was computed live) joined with the
labels the bank knew when training starts (the label stream, 7 days behind), then a light
and a heavy model, registered and put in production.

* light: logistic regression on the standardised inputs (the handbook's own baseline
  model, given the extra features), served through ONNX in ~10 µs;
* heavy: gradient-boosted trees (LightGBM), ~20 µs, asked only about the payments the light
  model finds somewhat suspicious. Its parameters and the heavy band are not chosen here:
  `streamsense fraud tune` validates them on the weeks before the training week (tuning.py)
  and writes tuned.json, which ``train`` reads.

Labels reach training only if the bank knew them at ``as_of`` (label time <= as of):
``training_set`` is where that cut-off is applied, and ``train`` checks it again.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import streamsense as ss
from streamsense.errors import ConfigError

from .fraud_exports import decisions, labels
from .serving import HEAVY, LIGHT, registry
from .tuned_params import heavy_params, load_tuned


@dataclass(frozen=True)
class TrainingSet:
    X: np.ndarray
    y: np.ndarray
    transaction_ids: np.ndarray
    event_time: np.ndarray  # when each payment happened (epoch ms)
    customers: np.ndarray
    label_time: np.ndarray  # when the bank learnt each label (all <= as of)
    names: list[str]
    unlabelled: int  # payments of the training window whose label was not known yet


@dataclass(frozen=True)
class TrainingReport:
    rows: int
    frauds: int
    unlabelled: int
    light_version: int
    heavy_version: int
    seconds: float


def training_set(
    broker: ss.Broker, names: list[str], start_ms: int, end_ms: int, as_of_ms: int
) -> TrainingSet:
    """The payments decided in [start, end), each with the vector it was decided on, and
    its label if the bank knew it at ``as_of`` (label time <= as of)."""
    vectors = decisions(broker, names, start_ms, end_ms)
    return select_training_set(vectors, labels(broker), names, start_ms, end_ms, as_of_ms)


def select_training_set(
    decided: dict[str, np.ndarray],
    known: dict[str, np.ndarray],
    names: list[str],
    start_ms: int,
    end_ms: int,
    as_of_ms: int,
) -> TrainingSet:
    """``training_set`` from decisions and labels already read (fraud_exports' columns)."""
    window = (decided["event_time"] >= start_ms) & (decided["event_time"] < end_ms)
    vectors = {name: column[window] for name, column in decided.items()}
    in_time = known["label_time"] <= as_of_ms
    ids, fraud = known["TRANSACTION_ID"][in_time], known["TX_FRAUD"][in_time]
    order = np.argsort(ids, kind="stable")
    ids, fraud = ids[order], fraud[order]
    wanted = vectors["TRANSACTION_ID"]
    known_at = known["label_time"][in_time][order]
    at = np.clip(np.searchsorted(ids, wanted), 0, max(len(ids) - 1, 0))
    found = (ids[at] == wanted) if len(ids) else np.zeros(len(wanted), bool)
    X = np.column_stack([vectors[n] for n in names]) if len(wanted) else np.zeros((0, len(names)))
    none = np.zeros(0, np.int64)
    return TrainingSet(
        X=X[found],
        y=fraud[at][found] if len(ids) else none,
        transaction_ids=wanted[found],
        event_time=vectors["event_time"][found],
        customers=vectors["CUSTOMER_ID"][found],
        label_time=known_at[at][found] if len(ids) else none,
        names=list(names),
        unlabelled=int((~found).sum()),
    )


def fit_light(X: np.ndarray, y: np.ndarray) -> bytes:
    """Logistic regression on standardised inputs, as ONNX."""
    import skl2onnx

    model = fit_light_model(X, y)
    sample = X[:1].astype(np.float32)
    onnx = skl2onnx.to_onnx(model, sample, options={"zipmap": False}, target_opset=17)
    return onnx.SerializeToString()  # type: ignore[no-any-return]


def fit_light_model(X: np.ndarray, y: np.ndarray) -> Any:
    """The light model as scikit-learn fits it (validation scores it without ONNX)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny simulated sets
        model.fit(X, y)
    return model


def fit_heavy_model(X: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> Any:
    """Gradient-boosted trees with LightGBM's full ``params``."""
    import lightgbm as lgb

    model = lgb.LGBMClassifier(**params)
    model.fit(X, y)
    return model


def fit_heavy(X: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> str:
    """Gradient-boosted trees, as LightGBM's text model."""
    return str(fit_heavy_model(X, y, params).booster_.model_to_string())


def train(
    broker: ss.Broker,
    state_dir: Path,
    names: list[str],
    start_ms: int,
    end_ms: int,
    as_of_ms: int,
) -> TrainingReport:
    """Train both models on [start, end) with the labels known at ``as_of`` and put them in
    production in ``state_dir``'s registry."""
    import time

    began = time.perf_counter()
    data = training_set(broker, names, start_ms, end_ms, as_of_ms)
    if len(data.label_time) and int(data.label_time.max()) > as_of_ms:
        raise ConfigError("a label known after the training cut-off reached the training set")
    frauds = int(data.y.sum())
    if frauds == 0 or frauds == len(data.y):
        raise ConfigError(
            f"the training window holds {len(data.y)} labelled payments and {frauds} frauds: "
            "both classes are needed (replay the training period first, or widen it)"
        )
    params = heavy_params(load_tuned())
    light, heavy = fit_light(data.X, data.y), fit_heavy(data.X, data.y, params)
    models = registry(state_dir)
    metrics = {"rows": float(len(data.y)), "frauds": float(frauds)}
    with tempfile.TemporaryDirectory() as folder:
        light_path, heavy_path = Path(folder) / "light.onnx", Path(folder) / "heavy.txt"
        light_path.write_bytes(light)
        heavy_path.write_text(heavy)
        window = (start_ms, end_ms)
        light_version = models.register(LIGHT, light_path, "onnx", names, metrics, window)
        heavy_version = models.register(
            HEAVY, heavy_path, "lightgbm", names, metrics, window, params=_public(params)
        )
    models.set_alias(LIGHT, "production", light_version)
    models.set_alias(HEAVY, "production", heavy_version)
    return TrainingReport(
        len(data.y), frauds, data.unlabelled, light_version, heavy_version,
        time.perf_counter() - began,
    )  # fmt: skip


def _public(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in ("n_jobs", "verbose")}
