"""The serving process freezes its start-up heap once started, and unfreezes at shutdown."""

from __future__ import annotations

import gc

from fastapi import FastAPI
from fastapi.testclient import TestClient

from streamsense.serving.gc_tuning import freeze_after_startup


def test_the_startup_heap_is_frozen_while_serving() -> None:
    gc.unfreeze()  # start clean: a server started earlier in this process may have frozen
    started = []
    api = FastAPI()

    @api.get("/frozen")
    def frozen() -> dict[str, int]:
        return {"frozen": gc.get_freeze_count()}

    api.router.on_startup.append(lambda: started.append(gc.get_freeze_count()))
    with TestClient(freeze_after_startup(api)) as client:
        assert client.get("/frozen").json()["frozen"] > 0
    assert started == [0]  # the app's own start-up ran first
    assert gc.get_freeze_count() == 0
