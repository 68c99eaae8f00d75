"""Model adapters: every model, whatever its runtime, answers ``predict_proba(X) -> p`` with X
an (n, features) float matrix in the model's feature order and p the positive-class
probability of each row.

Loaders turn verified artifact bytes into a scorer. They aim at the decision path's budget
(in-process decide p99 ≤ 1 ms): onnxruntime runs single-threaded and sequential, because a
thread pool costs more than it saves on one row, and LightGBM and scikit-learn models are
converted to ONNX when that converter is installed and agrees with the original on a probe
batch (LightGBM's own single-row predict costs ~25-40 µs, spikes to milliseconds with its
OpenMP pool, and scikit-learn's input validation costs ~100 µs; onnxruntime answers in ~5-10 µs).

Every runtime and converter comes with the ``[ml]`` extra and is imported only when a model
needs it (they are heavy, and most processes load one at most): a missing one is a one-line
MissingExtra naming the extra.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from streamsense.errors import ConfigError, FatalError
from streamsense.extras import require

logger = logging.getLogger(__name__)

Format = Literal["onnx", "lightgbm", "skops", "pickle"]
FloatArray = npt.NDArray[np.float64]
Scorer = Callable[[npt.NDArray[Any]], npt.NDArray[Any]]

_PROBE_ROWS = 256
_PROBE_TOLERANCE = 1e-5


class LoadedModel(Protocol):
    """A model held in memory, ready to score."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def format(self) -> str: ...

    @property
    def content_hash(self) -> str: ...

    @property
    def features(self) -> list[str]: ...

    def predict_proba(self, X: npt.NDArray[Any]) -> FloatArray:
        """(n, len(features)) → (n,) probability of the positive class."""
        ...


class FunctionModel:
    """A model whose scores come from ``fn`` (a matrix in, one score per row out). Every loader
    returns one, and tests use it as a fake: ``calls`` counts the rows it has scored."""

    def __init__(
        self,
        fn: Scorer,
        features: Sequence[str],
        *,
        name: str = "function",
        version: int = 0,
        format: str = "python",
        content_hash: str = "",
        runtime: str = "python",
    ) -> None:
        self._fn = fn
        self.features = list(features)
        self.name, self.version, self.format = name, version, format
        self.content_hash, self.runtime = content_hash, runtime
        self.calls = 0
        self._width = len(self.features)

    def predict_proba(self, X: npt.NDArray[Any]) -> FloatArray:
        if X.ndim != 2 or X.shape[1] != self._width:
            raise ConfigError(
                f"model {self.name} v{self.version} takes (n, {self._width}) rows "
                f"({', '.join(self.features)}), not an array of shape {X.shape}"
            )
        self.calls += X.shape[0]
        return np.asarray(self._fn(X), dtype=np.float64).reshape(X.shape[0])

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name} v{self.version} ({self.format}, {self.runtime})>"
        )


class ConstantModel(FunctionModel):
    """A fake that gives every row the same probability."""

    def __init__(self, probability: float, features: Sequence[str], **info: Any) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ConfigError(f"a probability lies in [0, 1], not {probability}")
        info.setdefault("name", "constant")
        super().__init__(lambda X: np.full(X.shape[0], probability), features, **info)


def build_scorer(
    format: Format,
    artifact: bytes,
    n_features: int,
    *,
    params: dict[str, Any],
    trust_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    convert: bool = True,
) -> tuple[Scorer, str]:
    """Artifact bytes (already checked against their hash) → (scorer, runtime name)."""
    if format == "onnx":
        return onnx_scorer(artifact, n_features, params.get("onnx_output")), "onnxruntime"
    if format == "lightgbm":
        return lightgbm_scorer(artifact, n_features, convert)
    if format == "skops":
        sio = require("skops.io", "ml")
        _check_trusted(sio.get_untrusted_types(data=artifact), trusted_types)
        estimator = sio.loads(artifact, trusted=list(trusted_types) or None)
        return sklearn_scorer(estimator, n_features, convert)
    if format == "pickle":
        if not trust_pickle:
            raise FatalError(
                "refusing to unpickle a model: loading a pickle runs arbitrary code from the "
                "file, so anyone who can write the registry could run code in this process. "
                "Re-register it as skops or ONNX, or pass trust_pickle=True if you trust its source"
            )
        return sklearn_scorer(pickle.loads(artifact), n_features, convert)
    raise ConfigError(f"unknown model format {format!r}: use onnx, lightgbm, skops or pickle")


def onnx_scorer(artifact: bytes, n_features: int, output: str | None = None) -> Scorer:
    ort = require("onnxruntime", "ml")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(artifact, options, providers=["CPUExecutionProvider"])
    input_name, dtype = _onnx_input(session.get_inputs(), n_features)
    names = [_probability_output(session.get_outputs(), output)]
    run = session.run

    def score(X: npt.NDArray[Any]) -> npt.NDArray[Any]:
        result = run(names, {input_name: np.ascontiguousarray(X, dtype=dtype)})[0]
        # (n, 2) class probabilities → column 1; (n, 1) or (n,) → the one score.
        return result.reshape(X.shape[0], -1)[:, -1]  # type: ignore[no-any-return]

    return score


def _onnx_input(inputs: list[Any], n_features: int) -> tuple[str, type[np.floating[Any]]]:
    if len(inputs) != 1:
        raise ConfigError(f"an ONNX model must take one input matrix, this one takes {len(inputs)}")
    dtypes: dict[str, type[np.floating[Any]]] = {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
    }
    item = inputs[0]
    if item.type not in dtypes:
        raise ConfigError(f"ONNX input {item.name!r} is {item.type}, not a float tensor")
    width = item.shape[-1] if item.shape else None
    if isinstance(width, int) and width != n_features:
        raise ConfigError(f"the ONNX model takes {width} features, the metadata lists {n_features}")
    return str(item.name), dtypes[item.type]


def _probability_output(outputs: list[Any], wanted: str | None) -> str:
    """The output holding probabilities: named in params, or skl2onnx's "probabilities", or
    the only float tensor."""
    by_name = {o.name: o for o in outputs}
    if wanted is not None and wanted not in by_name:
        raise ConfigError(f"the ONNX model has no output {wanted!r}, only {sorted(by_name)}")
    floats = [o for o in outputs if o.type in ("tensor(float)", "tensor(double)")]
    if wanted is None:
        named = [o for o in floats if o.name in ("probabilities", "probability")]
        candidates = named or floats
        if len(candidates) != 1:
            raise ConfigError(
                f"cannot tell which ONNX output is the probability among {sorted(by_name)}: "
                'register with params={"onnx_output": NAME} (classifiers converted with '
                "zipmap=True give maps, not tensors: convert with zipmap=False)"
            )
        wanted = candidates[0].name
    width = by_name[wanted].shape[-1] if by_name[wanted].shape else None
    if isinstance(width, int) and width > 2:
        raise ConfigError(f"ONNX output {wanted!r} has {width} classes; only binary is served")
    return str(wanted)


def lightgbm_scorer(artifact: bytes, n_features: int, convert: bool) -> tuple[Scorer, str]:
    lgb = require("lightgbm", "ml")
    booster = lgb.Booster(model_str=artifact.decode("utf-8"))
    if booster.num_feature() != n_features:
        raise ConfigError(
            f"the LightGBM model takes {booster.num_feature()} features, "
            f"the metadata lists {n_features}"
        )
    if booster.num_model_per_iteration() != 1:
        raise ConfigError("the LightGBM model is multiclass; only binary models are served")

    def native(X: npt.NDArray[Any]) -> npt.NDArray[Any]:
        # One thread: an OpenMP pool costs far more than it saves on a few rows.
        return booster.predict(X, num_threads=1)  # type: ignore[no-any-return]

    if convert:
        converted = _converted(booster, n_features, native, _lightgbm_to_onnx)
        if converted is not None:
            return converted, "onnxruntime"
    return native, "lightgbm"


def sklearn_scorer(estimator: Any, n_features: int, convert: bool) -> tuple[Scorer, str]:
    if not callable(getattr(estimator, "predict_proba", None)):
        raise ConfigError(f"{type(estimator).__name__} has no predict_proba: not a classifier")
    classes = getattr(estimator, "classes_", None)
    if classes is not None and len(classes) != 2:
        raise ConfigError(f"the classifier has {len(classes)} classes; only binary is served")
    width = getattr(estimator, "n_features_in_", n_features)
    if width != n_features:
        raise ConfigError(f"the model takes {width} features, the metadata lists {n_features}")

    def native(X: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return estimator.predict_proba(X)[:, 1]  # type: ignore[no-any-return]

    if convert:
        converted = _converted(estimator, n_features, native, _sklearn_to_onnx)
        if converted is not None:
            return converted, "onnxruntime"
    return native, "sklearn"


def _lightgbm_to_onnx(booster: Any, n_features: int) -> bytes:
    onnxmltools = require("onnxmltools", "ml")
    types = require("onnxmltools.convert.common.data_types", "ml")
    initial = [("input", types.FloatTensorType([None, n_features]))]
    model = onnxmltools.convert_lightgbm(booster, initial_types=initial, zipmap=False)
    return model.SerializeToString()  # type: ignore[no-any-return]


def _sklearn_to_onnx(estimator: Any, n_features: int) -> bytes:
    skl2onnx = require("skl2onnx", "ml")
    sample = np.zeros((1, n_features), dtype=np.float32)
    model = skl2onnx.to_onnx(estimator, sample, options={"zipmap": False})
    return model.SerializeToString()  # type: ignore[no-any-return]


def _converted(
    model: Any, n_features: int, native: Scorer, to_onnx: Callable[[Any, int], bytes]
) -> Scorer | None:
    """An onnxruntime scorer for ``model`` if conversion works and agrees with ``native`` on
    a probe batch; otherwise None (and the native runtime serves)."""
    try:
        fast = onnx_scorer(to_onnx(model, n_features), n_features)
    except Exception as error:  # converters fail in many ways on unsupported models
        logger.info("serving %s natively: ONNX conversion failed (%s)", type(model).__name__, error)
        return None
    probe = _probe(n_features)
    gap = float(np.max(np.abs(fast(probe) - native(probe))))
    if gap > _PROBE_TOLERANCE:
        logger.warning("serving %s natively: ONNX differs by %.3g", type(model).__name__, gap)
        return None
    return fast


def _probe(n_features: int) -> npt.NDArray[np.float32]:
    """Rows on several scales, so tree splits on small and large features are both crossed."""
    rng = np.random.default_rng(0)
    scale = 10.0 ** rng.integers(-1, 4, size=(_PROBE_ROWS, 1))
    return (rng.standard_normal((_PROBE_ROWS, n_features)) * scale).astype(np.float32)


def _check_trusted(found: list[str], trusted: Sequence[str]) -> None:
    untrusted = sorted(set(found) - set(trusted))
    if untrusted:
        raise FatalError(
            f"the skops artifact contains types that are not trusted: {untrusted}. Loading "
            "them could run their code; pass trusted_types=[...] naming them if you trust them"
        )
