"""The generic package names no application: nothing under src/streamsense mentions the
fraud app, its stream's columns or the handbook it follows (apps/fraud holds all that)."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "streamsense"
APP_WORDS = re.compile(r"fraud|handbook|TX_AMOUNT|TX_DURING", re.IGNORECASE)


def test_no_file_of_the_generic_package_names_an_application() -> None:
    naming = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and path.suffix not in (".pyc",)
        and APP_WORDS.search(path.read_text(errors="replace"))
    }
    assert naming == set()
