"""Reference profiles: bins, categories, missing rates, time range, JSON, and keeping one
beside a model version in the registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from streamsense.errors import ConfigError
from streamsense.monitoring import (
    ReferenceProfile,
    build_profile,
    load_reference,
    profile_table,
    save_reference,
)
from streamsense.monitoring.profile import OTHER, bin_index
from streamsense.serving.registry import ModelRegistry
from streamsense.testing import ManualClock


def small_profile() -> ReferenceProfile:
    values = np.arange(100, dtype=np.float64)
    values[::10] = np.nan  # 10 missing
    kinds = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + [None] * 5
    times = 1_000 + np.arange(100) * 10
    return build_profile(
        {"x": values, "kind": kinds, "p": np.linspace(0, 1, 100)},
        times,
        scores=["p"],
        categorical=["kind"],
        bins=4,
        top_categories=2,
    )


def test_numeric_columns_get_quantile_bins_with_open_ends() -> None:
    x = small_profile().column("x")
    assert x.role == "feature" and x.rows == 100 and x.missing == 10
    assert x.missing_rate == pytest.approx(0.1)
    assert x.numeric is not None
    kept = np.array([v for v in range(100) if v % 10], dtype=np.float64)
    assert x.numeric.edges == pytest.approx(np.quantile(kept, [0.25, 0.5, 0.75]).tolist())
    assert sum(x.numeric.counts) == 90 and len(x.numeric.counts) == 4
    assert x.numeric.mean == pytest.approx(kept.mean())
    # A value below or above everything the reference saw still has a bin.
    edges = np.asarray(x.numeric.edges)
    assert bin_index(np.array([-1e9, 1e9]), edges).tolist() == [0, 4 - 1]


def test_categorical_columns_keep_the_top_categories_and_the_rest_as_other() -> None:
    kind = small_profile().column("kind")
    assert kind.categorical is not None
    assert kind.categorical.categories == ["a", "b", OTHER]
    assert kind.categorical.counts == [50, 30, 15]
    assert kind.missing == 5


def test_scores_and_the_time_range_are_recorded() -> None:
    profile = small_profile()
    assert profile.column("p").role == "score"
    assert (profile.rows, profile.start_ms, profile.end_ms) == (100, 1_000, 1_990)


def test_seasonal_profiles_count_per_weekday_hour_slot() -> None:
    hour = 3_600_000
    monday = 1_767_571_200_000
    times = np.array([monday, monday + hour, monday + 24 * hour])  # Mon 0h, Mon 1h, Tue 0h
    profile = build_profile({"x": [1.0, 2.0, 3.0]}, times, bins=2, seasonality="weekday_hour")
    numeric = profile.column("x").numeric
    assert numeric is not None and len(numeric.slot_counts) == 168
    occupied = {s: sum(c) for s, c in enumerate(numeric.slot_counts) if sum(c)}
    assert occupied == {0: 1, 1: 1, 24: 1}


def test_pyarrow_columns_are_accepted() -> None:
    table = pa.table({"x": [1.0, 2.0, None, 4.0], "kind": ["a", None, "b", "a"]})
    columns = {name: table[name] for name in table.column_names}
    profile = build_profile(columns, [1, 2, 3, 4], bins=2, categorical=["kind"])
    assert profile.column("x").missing == 1
    kind = profile.column("kind")
    assert kind.missing == 1 and kind.categorical is not None
    assert kind.categorical.categories == ["a", "b", OTHER]


def test_a_profile_survives_json() -> None:
    profile = small_profile()
    assert ReferenceProfile.from_json(profile.to_json()) == profile


def test_bad_input_is_refused_with_the_column_named() -> None:
    with pytest.raises(ConfigError, match="'x'"):
        build_profile({"x": [1.0, 2.0]}, [1, 2, 3])
    with pytest.raises(ConfigError, match="no finite value"):
        build_profile({"x": [np.nan]}, [1])
    with pytest.raises(ConfigError, match="no column"):
        small_profile().column("nope")


def _registered(tmp_path: Path) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "models", clock=ManualClock())
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(b"not loaded: pickles are never run at registration")
    registry.register("scorer", artifact, "pickle", ["x"])
    registry.register("scorer", artifact, "pickle", ["x"])
    registry.set_alias("scorer", "production", 2)
    return registry


def test_a_profile_is_kept_beside_its_model_version(tmp_path: Path) -> None:
    registry = _registered(tmp_path)
    profile = small_profile()
    path = save_reference(registry, "scorer", "production", profile)
    assert path.parent.parent == tmp_path / "models" / "scorer" / "2"
    assert load_reference(registry, "scorer", 2) == profile
    with pytest.raises(ConfigError, match="nothing attached"):
        load_reference(registry, "scorer", 1)


def test_attachments_do_not_touch_the_artifact_and_refuse_paths(tmp_path: Path) -> None:
    registry = _registered(tmp_path)
    before = registry.metadata("scorer", 2)
    registry.attach("scorer", 2, "notes.txt", b"one")
    registry.attach("scorer", 2, "notes.txt", b"two")  # replaced whole
    assert registry.attachment("scorer", 2, "notes.txt") == b"two"
    assert registry.metadata("scorer", 2) == before
    with pytest.raises(ConfigError, match="not a path"):
        registry.attach("scorer", 2, "../escape", b"x")
    with pytest.raises(ConfigError, match="no version"):
        registry.attach("scorer", 9, "notes.txt", b"x")


def test_a_table_with_a_timestamp_column_is_profiled_whole() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    table = pa.table(
        {
            "ts": pa.array([start + timedelta(hours=h) for h in range(48)], pa.timestamp("us")),
            "amount": [float(h) for h in range(48)],
        }
    )
    profile = profile_table(table, "ts", bins=4, seasonality="weekday_hour")
    assert [c.name for c in profile.columns] == ["amount"]
    assert profile.start_ms == int(start.timestamp() * 1000)
    assert profile.end_ms == profile.start_ms + 47 * 3_600_000
