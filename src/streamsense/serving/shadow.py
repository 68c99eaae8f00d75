"""Shadow models: scored off the hot path (a background thread), their scores logged next to
the live decision's, never affecting it."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from streamsense.serving.decision import DecisionRecord, ShadowScore
from streamsense.serving.models import LoadedModel

log = logging.getLogger(__name__)


class ShadowScorer:
    """Scores shadow models on a background thread; a full queue skips (and counts) shadow
    work rather than slow the live path."""

    def __init__(
        self, models: list[LoadedModel], sink: Callable[[ShadowScore], None] | None
    ) -> None:
        self.models = models
        self.sink = sink or (lambda score: log.info("shadow %s", score))
        self.skipped = 0
        self.scored = 0
        self._queue: queue.Queue[tuple[DecisionRecord, dict[str, Any]] | None] = queue.Queue(10_000)
        self._thread = threading.Thread(target=self._run, daemon=True, name="shadow-models")
        self._thread.start()

    def submit(self, record: DecisionRecord, values: Mapping[str, Any]) -> None:
        try:
            self._queue.put_nowait((record, dict(values)))
        except queue.Full:
            self.skipped += 1

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            record, values = item
            for model in self.models:
                try:
                    row = np.array([[float(values[n]) for n in model.features]], np.float32)
                    score = float(model.predict_proba(row)[0])
                except Exception:  # a broken shadow model must never affect live decisions
                    log.exception("shadow model %s failed", model.name)
                    continue
                self.scored += 1
                self.sink(
                    ShadowScore(
                        record.event_id,
                        model.name,
                        str(model.version),
                        score,
                        record.score,
                        record.tier,
                    )
                )

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
