from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("STREAMSENSE_ROOT", str(ROOT))

HANDBOOK = ROOT.parent / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"


@pytest.fixture(scope="session")
def handbook_file() -> Path:
    """The real fraud-handbook data set beside the project (the project itself never needs
    the file, its tests do). Missing, the tests that use it fail: a green run always means
    they ran on it."""
    if not HANDBOOK.exists():
        pytest.fail(f"the fraud-handbook data set is missing: {HANDBOOK}", pytrace=False)
    return HANDBOOK
