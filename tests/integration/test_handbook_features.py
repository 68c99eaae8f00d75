"""The 15 handbook features streamed over the whole real file, in file order and in
micro-batches, equal DuckDB's batch computation of their definitions (written separately,
in bench/handbook_reference.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow.parquet as pq

from streamsense import features as F
from streamsense.runtime.loader import load_app

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_streamed_handbook_features_equal_duckdb_on_the_whole_file(handbook_file: Path) -> None:
    reference = _module(ROOT / "bench" / "handbook_reference.py", "handbook_reference")
    fraud = load_app(str(ROOT / "apps" / "fraud")).module
    table = pq.read_table(handbook_file)
    times = table.column("TX_DATETIME").cast("int64").to_numpy() // 1000
    columns = {
        "customer_id": table.column("CUSTOMER_ID").to_numpy(),
        "terminal_id": table.column("TERMINAL_ID").to_numpy(),
        "tx_amount": table.column("TX_AMOUNT").to_numpy(),
        "tx_fraud": table.column("TX_FRAUD").to_numpy().astype(np.float64),
    }
    feature_set = fraud.handbook_features(fraud.transactions)
    engine = F.FeatureEngine(feature_set)
    parts = []
    for lo in range(0, len(times), 100_000):
        batch = {k: v[lo : lo + 100_000] for k, v in columns.items()}
        result = engine.process(0, times[lo : lo + 100_000], batch)
        assert not result.late.any()
        parts.append(result.values)
    streamed = np.concatenate(parts)
    expected = reference.duckdb_features(str(handbook_file), threads=2)
    assert expected.num_rows == len(times) == 1_754_155
    for j, name in enumerate(feature_set.names):
        want = expected.column(name).to_numpy().astype(np.float64)
        got = streamed[:, j]
        if name in reference.INT_COLUMNS:
            assert np.array_equal(got, want), name
        else:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=name)
