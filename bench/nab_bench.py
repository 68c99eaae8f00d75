"""NAB on the IoT app: each detector scores the 18 NAB files live through the pipeline
(embedded broker, readings keyed by series, the detector stage), the scores are judged
with NAB's rules (apps/iot/nab_scoring.py) and printed beside NAB's published scoreboard.

    taskset -c 0 python bench/nab_bench.py [--detectors rarity,likelihood,...]

Also prints each run's throughput (readings/s through the whole pipeline: broker read,
decode, validate, detector, score and alert records, commits).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from apps.iot.app import build_app  # noqa: E402
from apps.iot.kernels import DETECTORS  # noqa: E402
from apps.iot.nab_evaluate import (  # noqa: E402
    PUBLISHED_FULL,
    PUBLISHED_THESE_18,
    evaluate,
    labelled_corpus,
    scores_by_series,
)
from apps.iot.nab_input import nab_readings  # noqa: E402
from apps.iot.pipeline_run import run_pipeline  # noqa: E402
from apps.iot.readings import SCORES_TOPIC  # noqa: E402
from apps.iot.score_batches import read_scores  # noqa: E402

from streamsense.brokers import EmbeddedBroker  # noqa: E402

NAB = ROOT.parent / "shared" / "datasets" / "nab"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nab", type=Path, default=NAB)
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    args = parser.parse_args()
    labels = labelled_corpus(args.nab)
    readings = nab_readings(args.nab)["readings"]
    rows = []
    for detector in args.detectors.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            broker = EmbeddedBroker(Path(tmp) / "broker.db")
            run = run_pipeline(build_app(detector, name=f"nab-{detector}"), broker, readings)
            results = evaluate(labels, scores_by_series(read_scores(broker, SCORES_TOPIC)))
            broker.close()
        rate = run.events / run.seconds
        rows.append((f"streamsense {detector}", results, rate))
        print(f"{detector}: {run.events:,} readings in {run.seconds:.1f} s ({rate:,.0f}/s)")
    print()
    print("| detector | standard | reward_low_FP | reward_low_FN | threshold | readings/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, results, rate in rows:
        std, low_fp, low_fn = (results[p] for p in results)
        print(
            f"| {name} (18 files) | {std.score:.1f} | {low_fp.score:.1f} | {low_fn.score:.1f} "
            f"| {std.threshold:.4f} | {rate:,.0f} |"
        )
    for name, score in PUBLISHED_THESE_18.items():
        print(f"| {name}, published (these 18 files) | {score:.1f} | | | | |")
    for name, score in PUBLISHED_FULL.items():
        print(f"| {name}, published (full corpus, 58 files) | {score:.1f} | | | | |")


if __name__ == "__main__":
    main()
