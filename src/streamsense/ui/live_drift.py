"""Drift as the decisions arrive: the newest decisions' features and score, binned like the
reference profile attached to a model in production (``streamsense monitor profile`` or an
app's training put it there), compared with the reference's whole distribution by PSI.

A point per ``EVERY_ROWS`` new decisions, over the newest ``WINDOW_ROWS`` of them, per
column: "drift per feature over time" for any app whose decisions carry the features its
model was profiled on. Not seasonal (the whole reference, not its weekday x hour slots), so
a daily cycle shows as drift here that the app's own monitoring, which is seasonal, does
not alert on; it is a live view, the alerts remain the judgement."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamsense.brokers.base import Record
from streamsense.errors import StreamsenseError
from streamsense.monitoring.profile import ReferenceProfile, bin_index
from streamsense.monitoring.reference import load_reference
from streamsense.monitoring.stats import frequencies, psi
from streamsense.serving.registry import ModelRegistry
from streamsense.ui.decision_stats import decoded

WINDOW_ROWS = 500
EVERY_ROWS = 100
KEPT_POINTS = 360
ALIAS = "production"
RELOAD_S = 30.0


@dataclass
class LiveDrift:
    """Per column, PSI of the newest decisions against the production model's reference."""

    registry: ModelRegistry | None
    model: str = ""  # "name v3" of the reference in use, "" when there is none
    rows: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=WINDOW_ROWS))
    points: deque[tuple[float, dict[str, float]]] = field(
        default_factory=lambda: deque(maxlen=KEPT_POINTS)
    )
    _reference: ReferenceProfile | None = None
    _loaded_at: float = -RELOAD_S
    _since_point: int = 0

    def follow(self, records: list[Record], now_s: float | None = None) -> None:
        """Takes the decision records new since the last call: only the newest
        ``WINDOW_ROWS`` are decoded (the others would leave the window at once)."""
        now = time.time() if now_s is None else now_s
        self._reload(now)
        if self._reference is None or not records:
            return
        skipped = max(0, len(records) - WINDOW_ROWS)
        if skipped >= EVERY_ROWS and self.rows:
            self.points.append((now, self.current()))  # the window before the jump
        self._since_point += skipped % EVERY_ROWS
        newest = [decoded(r) for r in records[skipped:]]
        self.observe([d for d in newest if d is not None], now)

    def observe(self, decisions: list[dict[str, Any]], now_s: float | None = None) -> None:
        now = time.time() if now_s is None else now_s
        self._reload(now)
        if self._reference is None:
            return
        for decision in decisions:
            self.rows.append({**(decision.get("features") or {}), "score": decision.get("score")})
            self._since_point += 1
            if self._since_point >= EVERY_ROWS and len(self.rows) >= EVERY_ROWS:
                self.points.append((now, self.current()))
                self._since_point = 0

    def current(self) -> dict[str, float]:
        """PSI per numeric column of the reference, over the rows kept now."""
        reference = self._reference
        if reference is None or not self.rows:
            return {}
        found: dict[str, float] = {}
        for column in reference.columns:
            numeric = column.numeric
            name = "score" if column.role == "score" else column.name
            values = [r.get(name) for r in self.rows]
            present = np.array([v for v in values if isinstance(v, int | float)], np.float64)
            if numeric is None or present.size == 0:
                continue
            counts = np.bincount(
                bin_index(present, np.asarray(numeric.edges)), minlength=len(numeric.counts)
            )
            found[column.name] = psi(frequencies(numeric.counts), frequencies(counts))
        return found

    def _reload(self, now: float) -> None:
        """The reference of the model in production, looked up again every ``RELOAD_S``."""
        if self.registry is None or now - self._loaded_at < RELOAD_S:
            return
        self._loaded_at = now
        for name in sorted({m.name for m in _listed(self.registry)}, reverse=True):
            try:
                version = self.registry.resolve(name, ALIAS)
                label = f"{name} v{version}"
                if label != self.model:
                    self._reference = load_reference(self.registry, name, ALIAS)
                    self.model, self.points = label, deque(maxlen=KEPT_POINTS)
                return
            except (StreamsenseError, OSError):
                continue  # no production alias, or no reference attached: the next model
        self._reference, self.model = None, ""


def _listed(registry: ModelRegistry) -> list[Any]:
    try:
        return registry.list() if registry.root.is_dir() else []
    except (StreamsenseError, OSError):
        return []
