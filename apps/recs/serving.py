"""What `streamsense serve apps/recs` answers (api.py), free of HTTP: a user's list now,
with reasons, and degradation.

The service keeps its own model (the pipeline's stage class) up to date in a thread: it
loads the state the pipeline's last write left in the stage's changelog (when there is
one), then follows the ``items`` and ``interactions`` topics from the offsets that state
names (else from their start). An interaction posted to the API goes to the broker like any
other, and the answer waits until the follower has taken it, so the next answer includes it
(read your writes).

Degradation: ranking runs behind a circuit breaker; when the model is busy past the budget
(a catch-up batch holds it), or the breaker is open after repeated slow or failed
rankings, the answer is the trending movies of the user's long-term genres, marked
``degraded``. A user without history gets trending movies (not degraded: that is the
answer for them).
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

import streamsense as ss
from streamsense.brokers.base import Record, TopicPartition
from streamsense.errors import CircuitOpen, RetryableError
from streamsense.resilience.breaker import BreakerConfig, CircuitBreaker
from streamsense.runtime.batch_state import latest_state

from .layout import P_LOOKBACK
from .model import RecsModel
from .stage import Movie, Rating, RecsStage

RANK_BUDGET_S = 0.005  # wait at most this for the model before falling back
BREAKER = BreakerConfig(slow_call_duration=0.02, window_size=50, minimum_calls=20, wait_in_open=5.0)


class RankerBusy(RetryableError):
    """The model stayed busy past the budget (a transient failure for the breaker)."""


class Answer(msgspec.Struct):
    user: int
    items: list[int]
    degraded: bool = False
    reason: str = ""  # why degraded, or "no_history"
    because_of: dict[str, list[int]] = msgspec.field(default_factory=dict)  # movie -> recent
    genres: list[str] = msgspec.field(default_factory=list)  # the user's genres that drove it


@dataclass
class RecsService:
    broker: ss.Broker
    interactions: ss.Stream[Rating]
    items: ss.Stream[Movie]
    stage: RecsStage = field(default_factory=RecsStage)
    # The stage's state changelog (App.state_topic): None follows the topics from the start.
    state_topic: str | None = None
    breaker: CircuitBreaker = field(default_factory=lambda: CircuitBreaker("recs-ranker", BREAKER))
    _positions: dict[str, int] = field(default_factory=dict)
    _producer_lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    # Set once the follower has read both topics to their end (GET /v1/ready).
    caught_up: threading.Event = field(default_factory=threading.Event)
    _moved: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._producer = self.broker.producer()

    # -- following the topics ---------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name="recs-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)  # it closes its consumer
        self._producer.close()

    def _restore(self) -> dict[str, int]:
        """The model from the pipeline's last state write; the offsets to follow from."""
        topics = [s.topic for s in (self.items, self.interactions)]
        stored = None
        if self.state_topic is not None:
            stored = latest_state(self.broker, self.state_topic, 0, topics)
        if stored is None:
            return {}
        self.stage.restore(0, stored.meta, stored.entries)
        return stored.offsets

    def _follow(self) -> None:
        offsets = self._restore()
        consumer = self.broker.consumer()
        tps = [TopicPartition(s.topic, 0) for s in (self.items, self.interactions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, offsets.get(tp.topic, 0))
        with self._moved:
            self._positions.update(offsets)
        try:
            while not self._stop.is_set():
                records = consumer.poll(5000, timeout=0.05)
                self.take(records)
                if not records and not self.caught_up.is_set():
                    # Caught up: the model's heap lives as long as the process; out of the
                    # collector's full passes it cannot stall answers for ~100 ms
                    # (serving/gc_tuning.py measured such stalls).
                    self._warm_up()
                    gc.collect()
                    gc.freeze()
                    self.caught_up.set()
        finally:
            consumer.close()

    def _warm_up(self) -> None:
        """Rank once before answering: the first call loads the compiled ranking from
        numba's cache (hundreds of ms), which no request should wait for."""
        model = self.stage.model()
        if model.user_index:
            self.recommend(next(iter(model.user_index)), 20)

    def take(self, records: list[Record]) -> None:
        """Run polled records through the model (the catalogue first) and move on."""
        if not records:
            return
        for stream in (self.items, self.interactions):
            mine = [r for r in records if r.topic == stream.topic]
            if not mine:
                continue
            events = [e for e in stream.decode_batch(mine) if isinstance(e, ss.Event)]
            self.stage.process_batch(0, events, [e.payload for e in events])
            with self._moved:
                self._positions[stream.topic] = mine[-1].offset + 1
                self._moved.notify_all()

    def wait_for(self, topic: str, offset: int, timeout_s: float = 2.0) -> bool:
        with self._moved:
            return self._moved.wait_for(lambda: self._positions.get(topic, 0) >= offset, timeout_s)

    # -- answering ----------------------------------------------------------------------
    def post(self, body: bytes) -> Answer | None:
        """Publish an interaction (validated: InvalidEvent names the field) and wait until
        the model has it."""
        rating = self.interactions.parse(_with_time(body))
        record = self.interactions.to_record(rating)
        with self._producer_lock:  # one producer for the API's threads
            self._producer.send(record.topic, record.value, record.key, partition=0)
            self._producer.flush()
        end = self.broker.describe_topic(self.interactions.topic).partitions[0].high
        self.wait_for(self.interactions.topic, end)
        return None

    def recommend(self, user: int, k: int) -> Answer:
        model = self.stage.model()
        if user not in model.user_index:
            return Answer(user, model.trending_movies()[:k], reason="no_history")
        try:
            return self.breaker.call(self._ranked, user, k)
        except (CircuitOpen, RankerBusy) as error:
            reason = "ranker_unavailable" if isinstance(error, CircuitOpen) else "ranker_slow"
            return self._fallback(model, user, k, reason)

    def _ranked(self, user: int, k: int) -> Answer:
        if not self.stage.lock.acquire(timeout=RANK_BUDGET_S):
            raise RankerBusy("the recommender model is busy")
        try:
            model = self.stage.model()
            movies, _ = model.recommend(user, k)
            ranked = [m for m in movies.tolist() if m >= 0]
            return Answer(
                user,
                ranked,
                because_of=_because_of(model, user, ranked),
                genres=[model.genre_names[g] for g in model.long_term_genres(user)],
            )
        finally:
            self.stage.lock.release()

    def _fallback(self, model: RecsModel, user: int, k: int, reason: str) -> Answer:
        """Trending in the user's long-term genres, without the model's lock (the lists are
        read as they are; a refresh under way can only reorder them)."""
        genres = model.long_term_genres(user)
        rated = set(model.recent_movies(user, 10**6))
        chosen = [m for m in model.trending_movies(genres) if m not in rated][:k]
        names = [model.genre_names[g] for g in genres]
        return Answer(user, chosen, degraded=True, reason=reason, genres=names)


def _with_time(body: bytes) -> dict[str, Any]:
    """An interaction as posted: MovieLens fields; time_ms from timestamp (seconds), or
    now when neither is given."""
    data = msgspec.json.decode(body)
    if isinstance(data, dict):
        if "timestamp" not in data:
            data["timestamp"] = int(time.time())
        if isinstance(data["timestamp"], int) and "time_ms" not in data:
            data["time_ms"] = data["timestamp"] * 1000
        data.setdefault("rating", 0.0)
        return data
    return {"body": data}  # not an object: validation names it


def _because_of(model: RecsModel, user: int, ranked: list[int]) -> dict[str, list[int]]:
    """For each listed movie, the user's recent movies that have it as a neighbour."""
    listed = np.asarray([model.item_index[m] for m in ranked], np.int32)
    reasons: dict[str, list[int]] = {}
    for j in model.recent_movies(user, int(model.params[P_LOOKBACK])):
        row = model.items.nbr_id[model.item_index[j]]
        near = (listed[:, None] == row[None, :]).any(axis=1)  # 20 x 128: cheaper than isin
        for movie in np.asarray(ranked)[near].tolist():
            reasons.setdefault(str(movie), []).append(j)
    return reasons


__all__ = ["Answer", "RecsService"]
