"""Garbage collection in a worker process.

A worker allocates a few short-lived objects per event (records, events, output rows) and
keeps a large long-lived heap: compiled kernels, the app, keyed state. With CPython's
defaults a young collection runs every 700 net allocations and every tenth of them also
walks the older generation, so the collector kept revisiting objects that never become
garbage: on the Kafka benchmark one worker spent 64 µs of CPU per event with the defaults
and 44 µs with the settings below (BENCHMARKS.md). Start-up's heap is frozen (never walked
again) and the young generation is collected every ``YOUNG_THRESHOLD`` allocations;
garbage is still collected, only in larger, rarer batches.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def tune_for_streaming() -> None:
    """Call once start-up is over, before the worker's loop."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
