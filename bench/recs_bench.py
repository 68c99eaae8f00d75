"""Prequential evaluation of apps/recs on MovieLens (issue #16) and its replay speed.

    python bench/recs_bench.py [--data ../shared/datasets/movielens-small]
                               [--score-from 2015-01-01] [--score-until ISO]
                               [--rounds 3] [--results DIR]

For each rating in time order (ties in file order), the list served just before it is
scored where the rated movie lands (Hit@10, MRR@10, NDCG@10), for ratings from
--score-from on; every rating before is learned from. The app's lists are the ones its
pipeline wrote: the bench runs `streamsense replay apps/recs ... --export-recommendations`
on the embedded broker (the same command a user runs) and times it, wall clock and CPU,
--rounds times (each a fresh state dir; the lists of every round must be the same); the
rounds, with the machine's load average, go to --results (bench/results.py prints them).
The baselines run alongside on the same ratings, each never recommending a movie the user
already rated:
- most popular: ratings counted so far;
- most popular, last 30 days: ratings in the 30 days before;
- item-kNN: neighbours of the user's 10 most recent movies by co-occurrence (pairs of
  movies within a user's 20 consecutive ratings, counted without bound), scored as
  P(candidate | recent movie) summed over the recent movies.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from numba import njit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from apps.recs.inputs import ratings_table  # noqa: E402
from results import save_results  # noqa: E402

K = 10
DAY_S = 86_400


def metrics(ranks: np.ndarray) -> dict[str, float]:
    """ranks: 0-based position of the rated movie in the list, -1 when not in the top K."""
    hit = ranks >= 0
    ranks = np.maximum(ranks, 0)  # misses count 0 (masked below)
    return {
        "Hit@10": float(hit.mean()),
        "MRR@10": float(np.where(hit, 1.0 / (ranks + 1), 0.0).mean()),
        "NDCG@10": float(np.where(hit, 1.0 / np.log2(ranks + 2), 0.0).mean()),
    }


def ranks_of(lists: np.ndarray, movies: np.ndarray) -> np.ndarray:
    found = lists[:, :K] == movies[:, None]
    return np.where(found.any(1), found.argmax(1), -1)


@njit(cache=True)
def _top_unrated(score: np.ndarray, rated_row: np.ndarray, out: np.ndarray) -> None:
    """The K best-scored unrated items (ties: lower index first)."""
    best_s = np.full(K, -1.0)
    out[:] = -1
    for c in range(len(score)):
        s = score[c]
        if s <= best_s[K - 1] or rated_row[c]:
            continue
        pos = K - 1
        while pos > 0 and best_s[pos - 1] < s:
            best_s[pos] = best_s[pos - 1]
            out[pos] = out[pos - 1]
            pos -= 1
        best_s[pos] = s
        out[pos] = c


@njit(cache=True)
def _baselines(users, items, times, scored, n_users, n_items):  # type: ignore[no-untyped-def]
    """Lists of the three baselines for the scored ratings (item indices)."""
    n = len(users)
    out = np.full((3, n, K), -1, np.int64)
    rated = np.zeros((n_users, n_items), np.bool_)
    count = np.zeros(n_items)
    recent_count = np.zeros(n_items)
    co = np.zeros((n_items, n_items), np.float32)
    history = np.full((n_users, 20), -1, np.int64)
    seen = np.zeros(n_users, np.int64)
    tail = 0
    score = np.zeros(n_items)
    for e in range(n):
        u, i, t = users[e], items[e], times[e]
        while times[tail] <= t - 30 * DAY_S:
            recent_count[items[tail]] -= 1.0
            tail += 1
        if scored[e]:
            _top_unrated(count, rated[u], out[0, e])
            _top_unrated(recent_count, rated[u], out[1, e])
            score[:] = 0.0
            for r in range(min(seen[u], 10)):
                j = history[u, (seen[u] - 1 - r) % 20]
                score += co[j] / max(count[j], 1.0)
            _top_unrated(score, rated[u], out[2, e])
        if not rated[u, i]:
            for r in range(min(seen[u], 20)):
                j = history[u, (seen[u] - 1 - r) % 20]
                if j != i:
                    co[i, j] += 1.0
                    co[j, i] += 1.0
            rated[u, i] = True
            count[i] += 1.0
        recent_count[i] += 1.0
        history[u, seen[u] % 20] = i
        seen[u] += 1
    return out


def run_app(data: Path) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The app's served lists (movie ids) through `streamsense replay`, its wall and CPU
    seconds."""
    with tempfile.TemporaryDirectory() as state:
        out = Path(state) / "served.parquet"
        command = [
            str(Path(sys.executable).parent / "streamsense"),
            "replay",
            str(ROOT / "apps" / "recs"),
            "--ratings",
            str(data / "ratings.csv"),
            "--movies",
            str(data / "movies.csv"),
            "--state-dir",
            state,
            "--export-recommendations",
            str(out),
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        table = pq.read_table(out)
        lists = np.array([(x + [-1] * K)[:K] for x in table.column("recommended").to_pylist()])
        return table.column("movieId").to_numpy(), lists, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "../shared/datasets/movielens-small")
    parser.add_argument("--score-from", default="2015-01-01")
    parser.add_argument("--score-until", default="2100-01-01")
    parser.add_argument("--rounds", type=int, default=3, help="Replays timed.")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    table = ratings_table(args.data / "ratings.csv")
    times = table.column("timestamp").to_numpy()
    movies = table.column("movieId").to_numpy()
    start = int(datetime.fromisoformat(args.score_from).replace(tzinfo=UTC).timestamp())
    end = int(datetime.fromisoformat(args.score_until).replace(tzinfo=UTC).timestamp())
    scored = (times >= start) & (times < end)
    print(f"{len(times):,} ratings; scoring {scored.sum():,} from {args.score_from}")

    rounds = []
    for n in range(args.rounds):
        served_movies, served, wall, cpu = run_app(args.data)
        assert np.array_equal(served_movies, movies), "the export is not in the ratings' order"
        if n == 0:
            lists = served
        assert np.array_equal(served, lists), "two replays served different lists"
        rate = len(times) / cpu
        rounds.append({"round": n, "wall_s": wall, "cpu_s": cpu, "ratings_per_cpu_s": rate,
                       "load_average": os.getloadavg()[0]})  # fmt: skip
        print(f"round {n + 1}: {wall:.1f} s wall, {cpu:.2f} s CPU, {rate:,.0f} ratings/s per core")
    results = {"apps/recs (pipeline replay)": metrics(ranks_of(lists[scored], movies[scored]))}

    user_ids, users = np.unique(table.column("userId").to_numpy(), return_inverse=True)
    item_ids, items = np.unique(movies, return_inverse=True)
    out = _baselines(users, items, times, scored, len(user_ids), len(item_ids))
    for name, chosen in zip(
        ["most popular", "most popular, last 30 days", "item-kNN, recent items"], out, strict=True
    ):
        baseline = np.where(chosen[scored] >= 0, item_ids[chosen[scored]], -1)
        results[name] = metrics(ranks_of(baseline, movies[scored]))

    print(f"{'':32} {'Hit@10':>8} {'MRR@10':>8} {'NDCG@10':>8}")
    for name, values in results.items():
        print(f"{name:32} " + " ".join(f"{v:8.4f}" for v in values.values()))
    best = max(v["Hit@10"] for n, v in results.items() if not n.startswith("apps"))
    app_hit = results["apps/recs (pipeline replay)"]["Hit@10"]
    print(f"Hit@10 ratio to the best baseline: {app_hit / best:.2f} (goal 1.3)")
    rates = sorted(r["ratings_per_cpu_s"] for r in rounds)
    print(
        f"replay + export of {len(times):,} ratings, {len(rounds)} rounds: "
        f"{statistics.median(rates):,.0f} ratings/s per core ({rates[0]:,.0f}-{rates[-1]:,.0f}); "
        "goal 20,000 per core"
    )
    settings = {"score_from": args.score_from, "score_until": args.score_until,
                "ratings": len(times), "quality": results}  # fmt: skip
    print(f"results: {save_results(Path(args.results), 'recs_bench', settings, rounds)}")


if __name__ == "__main__":
    main()
