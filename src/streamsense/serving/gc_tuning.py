"""Garbage collection in a serving process.

A served app holds a large, long-lived heap from its start-up (numba kernels, onnxruntime
sessions, FastAPI's routing and models). CPython's full (generation 2) collections walk all
of it: serving the reference app at 400 requests/s, two of them in 20 s took 113 and 122 ms,
each a stall for every request in flight (BENCHMARKS.md). ``gc.freeze()`` once start-up
is over moves that heap out of the collector's sight; later garbage is collected as usual.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

__all__ = ["freeze_after_startup"]


def freeze_after_startup(api: FastAPI) -> FastAPI:
    """Collect and freeze the heap right after ``api``'s own start-up (its lifespan)."""
    inner = api.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            gc.collect()
            gc.freeze()
            try:
                yield state
            finally:
                gc.unfreeze()

    api.router.lifespan_context = lifespan
    return api
