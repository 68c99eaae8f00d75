"""``streamsense demo apps/iot``: a simulated fleet through the pipeline (detections per
machine, with the precursors the simulator planted), and a small NAB score table when the
NAB corpus is beside the project (the same kernels as the pipeline, run directly)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from rich.table import Table

from streamsense.application import Option, OptionValue, Session

from .kernels import DETECTORS, USES_FEATURES, no_features, score_and_alert
from .layout import ROW, TABLE
from .nab_evaluate import PUBLISHED_THESE_18, labelled_corpus
from .nab_files import nab_paths, read_nab_file
from .nab_scoring import PROFILES, score_corpus
from .simulator import FleetConfig, simulate_fleet

NAB = Path("..") / "shared" / "datasets" / "nab"  # relative to the project root
OPTIONS = [
    Option("machines", 4, "Simulated machines (three sensors each)."),
    Option("days", 1.0, "Days of readings, one a minute per sensor."),
    Option("failing", 2, "Machines that show a failure precursor."),
    Option("seed", 15, "The simulation's seed: the same seed, the same readings."),
]


def run(session: Session, options: Mapping[str, OptionValue]) -> Mapping[str, Path] | None:
    config = FleetConfig(
        machines=int(str(options["machines"])),
        days=float(str(options["days"])),
        failing=int(str(options["failing"])),
        seed=int(str(options["seed"])),
    )
    table, precursors = simulate_fleet(config)
    path = session.state_dir / "readings.parquet"
    pq.write_table(table, path)
    console = session.console
    console.print(f"simulated {table.num_rows:,} readings of {config.machines} machines")
    for p in precursors:
        minutes = (p.end_ms - p.start_ms) // 60_000
        console.print(f"  planted: {p.machine} precursor for {minutes} min before its failure")
    nab_table(session)
    return {"readings": path}


def nab_table(session: Session, root: Path = NAB) -> None:
    """NAB's standard score of each detector on the corpus, if it is there."""
    if not (root / "data").is_dir():
        session.console.print(f"(no NAB corpus at {root}: NAB table skipped)")
        return
    files = [read_nab_file(series, path) for series, path in nab_paths(root)]
    labels = labelled_corpus(root, files)
    table = Table(title="NAB standard score, 18 files (bench/nab_bench.py: every profile)")
    for column in ("detector", "score"):
        table.add_column(column)
    for name, detector in DETECTORS.items():
        if name in USES_FEATURES:  # these need the feature engine: bench/nab_bench.py
            continue
        scores = {}
        for f in files:
            scores[f.series] = out = np.empty(len(f.values))
            never = np.empty(len(f.values), dtype=np.bool_)  # no alerts: threshold above 1
            index, times = np.zeros(len(f.values), dtype=np.int64), f.times_ms
            rows, tables = np.zeros((1, ROW)), np.zeros((1, 2 * TABLE))
            features = no_features(len(f.values))
            score_and_alert(
                detector, index, f.values, times, features, rows, tables, 2.0, 0, out, never
            )
        corpus = {series: (labels[series], scores[series]) for series in labels}
        result = score_corpus(corpus, PROFILES["standard"], candidates=100)
        table.add_row(name, f"{result.score:.1f}")
    for name, score in PUBLISHED_THESE_18.items():
        table.add_row(f"{name} (published)", f"{score:.1f}")
    session.console.print(table)
