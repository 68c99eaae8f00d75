"""The recommender as a batch stage: the catalogue and the ratings both reach it (one stage
in two flows), and its state goes to the platform's state changelog, one entry per user and
movie (state.py).

For each rating it ranks what the app would have served that user just before it, then
learns from the rating, all in one compiled call per micro-batch (kernels.py); the lists go
to ``recs.served`` as a few records per batch (served.py), committed with the batch's
offsets. Every event returns None: nothing else follows the stage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import streamsense as ss
from streamsense.brokers.base import OutRecord, TopicConfig

from .model import RecsModel, default_params
from .served import SERVED_TOPIC, served_records
from .state import changed_entries, restored


class Rating(ss.Schema):
    """One rating as MovieLens gives it (timestamp in epoch seconds), with its event time
    in milliseconds (``time_ms``: the replay's input conversion adds it)."""

    userId: int
    movieId: int
    rating: float
    timestamp: int
    time_ms: int


class Movie(ss.Schema):
    """A catalogue record: MovieLens's movies.csv row (genres joined by ``|``)."""

    movieId: int
    title: str
    genres: str
    time_ms: int = 0


class RecsStage:
    """One model per partition (the app's streams have one: movie state is global)."""

    name = "recs"

    def __init__(self, params_factory: Callable[[], Any] = default_params) -> None:
        self._params = params_factory
        self._models: dict[int, RecsModel] = {}
        # Serving reads a model while the stage updates it from another thread.
        self.lock = threading.Lock()

    def model(self, partition: int = 0) -> RecsModel:
        found = self._models.get(partition)
        if found is None:
            found = self._models[partition] = RecsModel(params=self._params())
        return found

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {SERVED_TOPIC: TopicConfig(partitions)}

    def process_batch(
        self, partition: int, events: list[ss.Event[Any]], values: list[Any]
    ) -> tuple[list[Any], list[OutRecord]]:
        model = self.model(partition)
        ratings = [v for v in values if isinstance(v, Rating)]
        nothing: list[Any] = [None] * len(values)
        with self.lock:
            for value in values:
                if isinstance(value, Movie):
                    model.catalogue(value.movieId, value.genres.split("|"))
            if not ratings:
                return nothing, []
            users = np.fromiter((r.userId for r in ratings), np.int64, len(ratings))
            movies = np.fromiter((r.movieId for r in ratings), np.int64, len(ratings))
            times = np.fromiter((r.timestamp for r in ratings), np.int64, len(ratings))
            served = model.rate(users, movies, times)
        return nothing, served_records(partition, users, movies, times, served)

    def on_idle(self, partition: int, now_ms: int) -> list[OutRecord]:
        return []

    def state_changes(self, partition: int) -> tuple[bytes, list[tuple[bytes, bytes | None]]]:
        with self.lock:
            return changed_entries(self.model(partition))

    def restore(
        self, partition: int, meta: bytes | None, entries: Iterable[tuple[bytes, bytes]]
    ) -> int:
        with self.lock:
            if meta is None:
                self._models[partition] = RecsModel(params=self._params())
                return 0
            model = self._models[partition] = restored(self._params(), meta, entries)
            return len(model.user_ids) + len(model.item_ids)

    def drop(self, partition: int) -> None:
        with self.lock:
            self._models.pop(partition, None)
