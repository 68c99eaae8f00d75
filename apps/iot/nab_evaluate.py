"""Scoring detections of the NAB corpus with NAB's rules (labels read here only), and the
published scoreboard they are compared with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .nab_files import NabFile, nab_paths, read_nab_file, read_windows
from .nab_scoring import PROFILES, CorpusScore, LabelledSeries, score_corpus
from .readings import Scored

# NAB's scoreboard (standard profile, full 58-file corpus), as published by NAB.
PUBLISHED_FULL = {
    "ARTime": 74.9,
    "Numenta HTM": 70.1,
    "CAD OSE": 69.9,
    "KNN CAD": 58.0,
    "Random Cut Forest": 51.7,
    "windowed Gaussian": 39.6,
}
PUBLISHED_THESE_18 = {"Numenta HTM": 61.3}


def labelled_corpus(root: Path, files: Sequence[NabFile] = ()) -> dict[str, LabelledSeries]:
    """Each series' labelled windows as row ranges (of ``files`` when given: read already)."""
    read = files or [read_nab_file(series, path) for series, path in nab_paths(root)]
    return {f.series: read_windows(root, f.series, f.times_ms) for f in read}


def scores_by_series(scored: list[Scored]) -> dict[str, npt.NDArray[np.float64]]:
    """The scores of each series in file order."""
    grouped: dict[str, list[Scored]] = {}
    for s in scored:
        grouped.setdefault(s.series, []).append(s)
    return {
        name: np.array([s.score for s in sorted(rows, key=lambda r: r.seq)])
        for name, rows in grouped.items()
    }


def evaluate(
    labels: Mapping[str, LabelledSeries],
    scores: Mapping[str, npt.NDArray[np.float64]],
    candidates: int = 2000,
) -> dict[str, CorpusScore]:
    """The normalised score per profile; every labelled series must have been scored.
    ``candidates``: how many thresholds to try besides a grid (fewer: faster, coarser)."""
    missing = sorted(set(labels) - set(scores))
    if missing:
        raise ValueError(f"no scores for {missing}")
    corpus = {name: (labels[name], scores[name]) for name in labels}
    return {
        name: score_corpus(corpus, profile, candidates=candidates)
        for name, profile in PROFILES.items()
    }
