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
    """The real fraud-handbook data set beside the project. CI always has it; a developer
    machine without it skips these tests (the project itself never needs the file)."""
    if not HANDBOOK.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{HANDBOOK} is missing on CI")
        pytest.skip(f"{HANDBOOK} not present")
    return HANDBOOK
