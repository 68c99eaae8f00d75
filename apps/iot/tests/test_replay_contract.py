"""The command other checks rely on: ``streamsense replay apps/iot --nab DIR
--export-detections OUT`` writes OUT/<category>/<name>.csv for every input file, with the
same rows in the same order and a score in [0, 1] for each (labels are not even there)."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from streamsense.cli.main import cli

from .nab_data import ROOT, copy_nab_files

FILES = [
    "artificialWithAnomaly/art_daily_jumpsup",
    "realKnownCause/ec2_request_latency_system_failure",
]


def rows(path: Path) -> list[list[str]]:
    with path.open() as f:
        return list(csv.reader(f))


def test_replay_exports_a_scored_copy_of_every_file(tmp_path: Path) -> None:
    corpus = copy_nab_files(tmp_path / "nab", FILES)  # no labels folder: none is read
    out = tmp_path / "out"
    args = ["replay", str(ROOT / "apps" / "iot"), "--nab", str(corpus)]
    args += ["--state-dir", str(tmp_path / "state"), "--export-detections", str(out)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name in FILES:
        given = rows(corpus / "data" / f"{name}.csv")
        scored = rows(out / f"{name}.csv")
        assert scored[0] == ["timestamp", "value", "anomaly_score"]
        assert [r[0] for r in scored[1:]] == [r[0] for r in given[1:]]
        assert [float(r[1]) for r in scored[1:]] == [float(r[1]) for r in given[1:]]
        scores = [float(r[2]) for r in scored[1:]]
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert max(scores) > 0.5  # both files have an anomaly the detector sees
