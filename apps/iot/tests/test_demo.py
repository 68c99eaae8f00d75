"""``streamsense demo apps/iot`` runs on its own simulator, without the NAB corpus (then it
says it skipped the NAB table), and reports the multi-sensor detections per machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamsense.cli.main import cli

from .nab_data import ROOT


def test_demo_runs_without_the_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # ../shared/datasets/nab does not exist from here
    args = ["demo", str(ROOT / "apps" / "iot"), "--state-dir", str(tmp_path / "demo")]
    result = CliRunner().invoke(cli, [*args, "--machines", "3", "--failing", "1"])
    output = " ".join(result.output.split())
    assert result.exit_code == 0, output
    assert "NAB table skipped" in output
    assert "planted: machine-000 precursor" in output
    assert "machine-000: 1 × multi-sensor" in output
    for healthy in ("machine-001", "machine-002"):
        assert re.search(rf"{healthy}: \d+ × multi-sensor", output) is None
