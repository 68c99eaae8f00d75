"""Where the fraud app keeps its online features: $STREAMSENSE_ONLINE_STORE when set (the
store a cluster's workers and API share, issue #20), else the state dir's SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamsense.store.memory_online import MemoryOnlineStore
from streamsense.store.sqlite_online import SqliteOnlineStore

from ..serving import ONLINE_STORE_ENV, online_store


def test_the_environment_names_the_shared_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ONLINE_STORE_ENV, "memory://")
    assert isinstance(online_store(tmp_path), MemoryOnlineStore)
    assert not (tmp_path / "online.db").exists()


def test_unset_it_is_the_state_dirs_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ONLINE_STORE_ENV, raising=False)
    store = online_store(tmp_path)
    assert isinstance(store, SqliteOnlineStore)
    store.close()
    assert (tmp_path / "online.db").exists()
