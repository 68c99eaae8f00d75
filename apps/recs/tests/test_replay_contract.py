"""The replay contract, through the command line: every rating once, in time order (ties in
file order), each with a list of at least 10 movie ids none of which the user had rated.
On MovieLens-shaped CSV files from the simulator, and on the real dataset (slow)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ..simulator import SimulatorConfig, movies_table, ratings_table

ROOT = Path(__file__).resolve().parents[3]
RATING_COLUMNS = ["userId", "movieId", "rating", "timestamp"]
MOVIE_COLUMNS = ["movieId", "title", "genres"]
MOVIELENS = ROOT / ".." / "shared" / "datasets" / "movielens-small"


def replay(ratings: Path, movies: Path, state_dir: Path) -> Path:
    out = state_dir / "served.parquet"
    command = [
        str(Path(sys.executable).parent / "streamsense"),
        "replay",
        str(ROOT / "apps" / "recs"),
    ]
    command += ["--ratings", str(ratings), "--movies", str(movies), "--state-dir", str(state_dir)]
    command += ["--export-recommendations", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(command, env=env, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    return out


def check_contract(ratings_csv: Path, served: Path) -> None:
    with ratings_csv.open() as handle:
        rows = [
            (int(r["userId"]), int(r["movieId"]), int(r["timestamp"]))
            for r in csv.DictReader(handle)
        ]
    order = np.argsort(np.array([t for _, _, t in rows]), kind="stable")
    expected = [rows[i] for i in order]
    table = pq.read_table(served)
    got = list(
        zip(
            table.column("userId").to_pylist(),
            table.column("movieId").to_pylist(),
            table.column("timestamp").to_pylist(),
            strict=True,
        )
    )
    assert got == expected
    rated: dict[int, set[int]] = {}
    for (user, movie, _), listed in zip(got, table.column("recommended").to_pylist(), strict=True):
        assert len(listed) >= 10 and len(set(listed)) == len(listed)
        assert not rated.setdefault(user, set()) & set(listed)
        rated[user].add(movie)


def test_simulated_csv_files_replay_to_the_contract(tmp_path: Path) -> None:
    config = SimulatorConfig(ratings=3000, seed=2)
    movies = movies_table(config)
    ratings = ratings_table(config, movies)
    # as MovieLens orders them: by user, then movie (not by time), timestamps in seconds
    by_user = sorted(
        zip(*(ratings.column(c).to_pylist() for c in RATING_COLUMNS), strict=True),
        key=lambda r: (r[0], r[1]),
    )
    ratings_csv, movies_csv = tmp_path / "ratings.csv", tmp_path / "movies.csv"
    with ratings_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RATING_COLUMNS)
        writer.writerows(by_user)
    with movies_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MOVIE_COLUMNS)
        writer.writerows(zip(*(movies.column(c).to_pylist() for c in MOVIE_COLUMNS), strict=True))
    check_contract(ratings_csv, replay(ratings_csv, movies_csv, tmp_path / "state"))


@pytest.mark.slow
def test_movielens_replays_to_the_contract(tmp_path: Path) -> None:
    ratings = MOVIELENS / "ratings.csv"
    assert ratings.exists(), f"the MovieLens dataset is missing: {MOVIELENS}"
    check_contract(ratings, replay(ratings, MOVIELENS / "movies.csv", tmp_path))
