"""Run the chaos scenarios (tests/chaos) and write their figures into docs/reliability.md.

    python bench/chaos_report.py [--repeat 1] [-k EXPR] [--dry-run] [--with-failures]

Each scenario appends its measured figures to a JSON-lines file (tests/chaos/conftest.py);
this script collects them into the table between the ``chaos-figures`` markers of
docs/reliability.md, with the command, the machine and the date. Only passing scenarios
record figures; a failing one makes the script exit non-zero and leaves the doc untouched,
unless ``--with-failures``: then the passing scenarios' figures are written and the failed
ones are listed under the table (the exit status stays non-zero).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- chaos-figures:start -->", "<!-- chaos-figures:end -->"
COLUMNS = [
    ("scenario", "scenario"),
    ("delivery", "delivery"),
    ("events", "events"),
    ("lost", "lost"),
    ("duplicates", "dup."),
    ("copies_deduplicated", "copies dedup."),
    ("degraded", "degraded"),
    ("dead_letters", "dead letters"),
    ("breaker_opened", "breaker opened"),
    ("breaker_open_to_closed_s", "breaker open→closed s"),
    ("breaker_closed_after_fast_s", "closed after fix s"),
    ("server_start_s", "restart s"),
    ("healthy_after_fix_s", "healthy after fix s"),
    ("worker_pauses", "worker pauses"),
    ("fault_s", "fault s"),
    ("resume_s", "resume s"),
    ("catch_up_s", "catch-up s"),
    ("worst_delay_s", "worst delay s"),
    ("drain_s", "drain s"),
]


def run_scenarios(
    figures: Path, repeat: int, select: str | None, *, keep_going: bool = False
) -> tuple[int, list[str]]:
    """pytest's exit status (the first non-zero one) and the tests that failed."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/chaos"]
    if select:
        command += ["-k", select]
    env = {**os.environ, "STREAMSENSE_CHAOS_FIGURES": str(figures)}
    status, failed = 0, []
    for run in range(repeat):
        junit = figures.with_name(f"junit-{run}.xml")
        code = subprocess.run([*command, f"--junitxml={junit}"], cwd=ROOT, env=env).returncode
        failed += failures(junit)
        status = status or code
        if code != 0 and not keep_going:
            break
    return status, failed


def failures(junit: Path) -> list[str]:
    """``file::test[id]`` of each test that failed or errored in a JUnit XML report."""
    if not junit.exists():
        return []
    found = []
    for case in ET.parse(junit).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            module = case.get("classname", "").rsplit(".", 1)[-1]
            found.append(f"{module}::{case.get('name')}")
    return found


# Figures too specific for a column, listed under the table with the scenario's reasons.
NOTES = [
    ("breaker_open_after_kill_s", "breaker opened after the fault (s)"),
    ("api_requests", "API requests"),
    ("api_degraded", "API answers degraded"),
    ("api_min_confidence", "lowest API confidence during the outage"),
    ("api_empty_windows_after_restart", "API answers on empty windows after the restart"),
]


def cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(key)) for key, _ in COLUMNS) + " |")
    return "\n".join([*lines, "", *map(note, rows)])


def note(row: dict[str, Any]) -> str:
    text = f"- `{row['scenario']}`: degraded reasons {row.get('degraded_reasons') or '{}'}"
    if "dead_letter_reasons" in row:
        text += f", dead-letter reasons {row['dead_letter_reasons']}"
    for key, title in NOTES:
        if key in row:
            text += f"; {title}: {cell(row[key])}"
    return text


def section(rows: list[dict[str, Any]], command: str, failed: list[str]) -> str:
    machine = f"{platform.node()}, {os.cpu_count()} CPUs, {platform.machine()}"
    machine += f", Python {platform.python_version()}"
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            START,
            f"Measured with `{command}` on {machine}, {date}.",
            "",
            table(rows),
            *([""] + [f"- **failed in this run**: `{test}`" for test in failed] if failed else []),
            END,
        ]
    )


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC} lacks the {START} … {END} markers")
    before, rest = doc.split(START, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(before + text + after)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="run the scenarios N times")
    parser.add_argument("-k", dest="select", help="pytest -k expression (a subset)")
    parser.add_argument("--dry-run", action="store_true", help="print the table, do not write")
    parser.add_argument(
        "--with-failures",
        action="store_true",
        help="write the passing scenarios' figures even if some fail (and list the failures)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.jsonl"
        figures.touch()
        code, failed = run_scenarios(
            figures, args.repeat, args.select, keep_going=args.with_failures
        )
        rows = [json.loads(line) for line in figures.read_text().splitlines() if line.strip()]
    if code != 0 and not args.with_failures:
        print(f"chaos scenarios failed (pytest exit {code}); {DOC} not updated", file=sys.stderr)
        return code
    text = section(rows, " ".join(["python bench/chaos_report.py", *sys.argv[1:]]), failed)
    print(text)
    if not args.dry_run:
        write_doc(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
