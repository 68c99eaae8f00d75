"""Test helpers: the real NAB corpus (a missing corpus fails the test) and small corpora
in NAB's layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
NAB = ROOT.parent / "shared" / "datasets" / "nab"


def nab_root() -> Path:
    if not (NAB / "data").is_dir():
        pytest.fail(f"the NAB data set is missing: {NAB}", pytrace=False)
    return NAB


def copy_nab_files(target: Path, names: list[str]) -> Path:
    """A corpus of a few real NAB files (``<category>/<name>``) under ``target``."""
    for name in names:
        destination = target / "data" / f"{name}.csv"
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(nab_root() / "data" / f"{name}.csv", destination)
    return target


def write_series(path: Path, values: np.ndarray, start: str = "2015-01-01") -> None:
    """A NAB-style file: 5-minute readings from ``start``."""
    times = np.datetime64(start) + np.arange(len(values)) * np.timedelta64(5, "m")
    lines = [f"{str(t).replace('T', ' ')},{v}\n" for t, v in zip(times, values, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,value\n" + "".join(lines))
