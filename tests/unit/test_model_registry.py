from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pytest
import skops.io as sio
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from streamsense.errors import ConfigError, FatalError
from streamsense.serving import ConstantModel, FunctionModel, ModelRegistry
from streamsense.testing import ManualClock

FEATURES = [f"f{i}" for i in range(15)]
RANGE = (1_700_000_000_000, 1_700_600_000_000)


@pytest.fixture(scope="module")
def data() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(500, len(FEATURES))).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] * X[:, 3] + rng.normal(size=500) > 0).astype(np.int64)
    return X, y


@pytest.fixture(scope="module")
def logistic(data: Any) -> LogisticRegression:
    return LogisticRegression().fit(*data)


@pytest.fixture(scope="module")
def booster(data: Any) -> lgb.Booster:
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}
    return lgb.train(params, lgb.Dataset(data[0], data[1]), num_boost_round=50)


@pytest.fixture
def artifacts(tmp_path: Path, logistic: LogisticRegression, booster: lgb.Booster) -> Path:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    sio.dump(logistic, folder / "lr.skops")
    onnx = to_onnx(logistic, np.zeros((1, len(FEATURES)), np.float32), options={"zipmap": False})
    (folder / "lr.onnx").write_bytes(onnx.SerializeToString())
    booster.save_model(folder / "gbm.txt")
    (folder / "lr.pkl").write_bytes(pickle.dumps(logistic))
    return folder


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry", clock=ManualClock(1_700_700_000_000))


CASES = [("lr.skops", "skops"), ("lr.onnx", "onnx"), ("gbm.txt", "lightgbm")]


@pytest.mark.parametrize(("file", "format"), CASES)
@pytest.mark.parametrize("convert", [True, False])
def test_loaded_models_predict_like_the_originals(
    registry: ModelRegistry, artifacts: Path, data: Any, logistic: Any, booster: Any,
    file: str, format: Any, convert: bool,
) -> None:  # fmt: skip
    version = registry.register("fraud", artifacts / file, format, FEATURES)
    model = registry.load("fraud", version, convert=convert)
    X = data[0]
    expected = booster.predict(X) if format == "lightgbm" else logistic.predict_proba(X)[:, 1]
    assert np.allclose(model.predict_proba(X), expected, rtol=0, atol=1e-6)
    assert np.allclose(model.predict_proba(X[3:4]), expected[3:4], rtol=0, atol=1e-6)
    assert (model.name, model.version, model.format) == ("fraud", version, format)
    assert model.features == FEATURES and model.content_hash.startswith("sha256:")
    native = {"skops": "sklearn", "lightgbm": "lightgbm", "onnx": "onnxruntime"}[format]
    assert model.runtime == ("onnxruntime" if convert else native)


def test_versions_count_up_and_metadata_round_trips(
    registry: ModelRegistry, artifacts: Path
) -> None:
    metrics = {"auc": 0.91, "precision_at_100": 0.7}
    first = registry.register("fraud", artifacts / "lr.onnx", "onnx", FEATURES, metrics, RANGE)
    second = registry.register(
        "fraud", artifacts / "gbm.txt", "lightgbm", FEATURES, params={"trees": 50}
    )
    assert (first, second) == (1, 2)
    meta = registry.metadata("fraud", 1)
    assert meta.features == FEATURES and meta.metrics == metrics
    assert meta.training_range == RANGE and meta.created_at == 1_700_700_000_000
    assert meta.format == "onnx" and meta.artifact == "model.onnx"
    assert registry.metadata("fraud", "2").params == {"trees": 50}
    on_disk = json.loads((registry.root / "fraud" / "1" / "metadata.json").read_text())
    assert on_disk["features"] == FEATURES
    assert [(m.name, m.version) for m in registry.list()] == [("fraud", 1), ("fraud", 2)]


def test_a_tampered_artifact_is_refused(registry: ModelRegistry, artifacts: Path) -> None:
    version = registry.register("fraud", artifacts / "gbm.txt", "lightgbm", FEATURES)
    artifact = registry.root / "fraud" / str(version) / "model.txt"
    artifact.write_text(artifact.read_text().replace("leaf_value=", "leaf_value=1", 1))
    with pytest.raises(FatalError, match="modified or corrupted"):
        registry.load("fraud", version)


def test_pickle_is_refused_unless_trusted(
    registry: ModelRegistry, artifacts: Path, data: Any, logistic: Any
) -> None:
    version = registry.register("fraud", artifacts / "lr.pkl", "pickle", FEATURES)
    with pytest.raises(FatalError, match="arbitrary code") as refused:
        registry.load("fraud", version)
    assert not refused.value.retryable
    model = registry.load("fraud", version, trust_pickle=True, convert=False)
    assert np.allclose(model.predict_proba(data[0]), logistic.predict_proba(data[0])[:, 1])


def test_skops_types_outside_the_trusted_list_are_refused(tmp_path: Path, data: Any) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    artifact = tmp_path / "odd.skops"
    sio.dump(_Odd(), artifact)
    with pytest.raises(FatalError, match="not trusted"):
        registry.register("odd", artifact, "skops", FEATURES)


class _Odd:
    """Not a scikit-learn type, so skops does not trust it by default."""


def test_aliases_switch_and_roll_back(registry: ModelRegistry, artifacts: Path) -> None:
    for _ in range(3):
        registry.register("fraud", artifacts / "lr.onnx", "onnx", FEATURES)
    registry.set_alias("fraud", "production", 1)
    registry.set_alias("fraud", "shadow", 3)
    assert registry.load("fraud", "production").version == 1
    assert registry.set_alias("fraud", "production", 2) == 2
    assert registry.set_alias("fraud", "production", "shadow") == 3  # promote the shadow
    assert registry.aliases("fraud") == {"production": 3, "shadow": 3}
    assert registry.rollback("fraud", "production") == 2
    assert registry.rollback("fraud", "production") == 1
    assert registry.load("fraud", "production").version == 1
    with pytest.raises(ConfigError, match="no earlier target"):
        registry.rollback("fraud", "production")
    assert not list((registry.root / "fraud").glob("*.tmp"))


def test_bad_references_and_arguments_are_clear(registry: ModelRegistry, artifacts: Path) -> None:
    registry.register("fraud", artifacts / "lr.onnx", "onnx", FEATURES)
    with pytest.raises(ConfigError, match="no alias 'canary'"):
        registry.load("fraud", "canary")
    with pytest.raises(ConfigError, match="no version 9"):
        registry.set_alias("fraud", "canary", 9)
    with pytest.raises(ConfigError, match="not a path"):
        registry.register("../evil", artifacts / "lr.onnx", "onnx", FEATURES)
    with pytest.raises(ConfigError, match="takes 15 features"):
        registry.register("fraud", artifacts / "lr.onnx", "onnx", FEATURES[:3])
    with pytest.raises(ConfigError, match="listed twice"):
        registry.register("fraud", artifacts / "lr.onnx", "onnx", ["a", *FEATURES[1:], "a"])
    with pytest.raises(ConfigError, match="not an array of shape"):
        registry.load("fraud", 1).predict_proba(np.zeros((1, 3), np.float32))


def test_fakes_behave_like_models() -> None:
    constant = ConstantModel(0.25, ["a", "b"])
    assert constant.predict_proba(np.zeros((3, 2))).tolist() == [0.25] * 3
    doubled = FunctionModel(lambda X: X[:, 0] * 2, ["a", "b"], name="double", version=4)
    assert doubled.predict_proba(np.array([[0.1, 0.0], [0.3, 1.0]])).tolist() == [0.2, 0.6]
    assert (doubled.calls, doubled.version) == (2, 4)
    with pytest.raises(ConfigError):
        ConstantModel(1.5, ["a"])
