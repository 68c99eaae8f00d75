"""Samples the deployment while someone looks at the UI: every ``interval_s`` (2 s), each known
topic's end offsets and the app's committed offsets (lag and rates over time come from
these), and the records new on the decision and alert topics since the last sample (read
from where the previous sample stopped, at most ``FOLLOW_CAP`` per partition and sample).

It runs only while pages are open: ``touch`` (each UI request) starts it, and it stops by
itself once no request came for ``idle_s``, so a closed UI costs the pipeline nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from streamsense.brokers.base import Record, TopicPartition
from streamsense.errors import StreamsenseError
from streamsense.ui.context import UiContext
from streamsense.ui.decision_stats import DecisionStats
from streamsense.ui.live_drift import LiveDrift
from streamsense.ui.tail import read_range

log = logging.getLogger(__name__)

KEPT_SAMPLES = 600
FOLLOW_CAP = 5_000  # alert records per partition and sample; behind by more: skip ahead
# Decision records read per partition and sample (2 s): above that rate the running
# aggregates come from the newest ones, each counting for several (the UI's CPU then stays
# flat however fast decisions come).
DECISIONS_READ = 400
FIRST_LOOK = 1_000  # records per partition read back when following starts


@dataclass(frozen=True)
class Sample:
    at_s: float
    highs: dict[TopicPartition, int]
    committed: dict[TopicPartition, int | None]


@dataclass
class Follower:
    """Reads what is new on some topics, sample after sample: per partition at most ``cap``
    of the newest records (the first time, the newest ``FIRST_LOOK``)."""

    topics: list[str]
    cap: int = FOLLOW_CAP
    positions: dict[TopicPartition, int] = field(default_factory=dict)

    def new_records(
        self, context: UiContext, highs: dict[TopicPartition, int]
    ) -> tuple[list[Record], float]:
        """The records read, oldest first, and how many new records each stands for (1.0
        unless a partition had more than ``cap`` new ones: then the read is a sample)."""
        got: list[Record] = []
        new = read = 0
        capped = False
        for tp, high in highs.items():
            if tp.topic not in self.topics:
                continue
            first = tp not in self.positions
            start = max(0, high - FIRST_LOOK) if first else self.positions[tp]
            if not first and high - start > self.cap:
                capped, new = True, new + high - start
                start = high - self.cap
            elif not first:
                new += high - start
            if high > start:
                records = read_range(context.broker, tp, start, high)
                got += records
                read += 0 if first else len(records)
            self.positions[tp] = high
        got.sort(key=lambda r: (r.timestamp, r.offset))
        return got, (new / read if capped and read else 1.0)


class Sampler:
    def __init__(self, context: UiContext, interval_s: float = 2.0, idle_s: float = 60.0) -> None:
        self.context = context
        self.interval_s, self.idle_s = interval_s, idle_s
        self.samples: deque[Sample] = deque(maxlen=KEPT_SAMPLES)
        self.decisions = DecisionStats()
        self.drift = LiveDrift(context.registry)
        self.alerts: deque[Record] = deque(maxlen=1_000)
        self._decided = Follower([], cap=DECISIONS_READ)
        self._alerted = Follower([])
        self.lock = threading.Lock()  # guards what pages read: samples, decisions, alerts
        self._sampling = threading.Lock()  # one sample at a time (followers' positions)
        self._thread: threading.Thread | None = None
        self._last_touch = 0.0
        self._stop = threading.Event()

    def touch(self) -> None:
        """A page was asked for: sample (now, if not running) and keep sampling."""
        with self.lock:
            self._last_touch = time.monotonic()
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ui-sampler", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def latest(self, *, follow: bool = True) -> Sample:
        """The newest sample, taken now if there is none yet (a page's first look); without
        ``follow``, such a first sample reads offsets only (the thread reads the records)."""
        with self._sampling:
            with self.lock:
                if self.samples:
                    return self.samples[-1]
            return self._sample(follow=follow)

    def sample_once(self) -> Sample:
        """One sample, taken now (the thread calls it; tests may too)."""
        with self._sampling:
            return self._sample()

    def _sample(self, *, follow: bool = True) -> Sample:
        context = self.context
        self._decided.topics = context.decision_topics()
        self._alerted.topics = context.alerts_topics()
        watched = _unique(
            context.source_topics() + context.sink_topics() + context.dead_letter_topics()
            + self._decided.topics + self._alerted.topics
        )  # fmt: skip
        highs: dict[TopicPartition, int] = {}
        for topic in context.existing(watched):
            for part in context.broker.describe_topic(topic).partitions:
                highs[TopicPartition(topic, part.partition)] = part.high
        sources = [tp for tp in highs if tp.topic in set(context.source_topics())]
        group = context.group
        committed = context.broker.committed(group, sources) if group and sources else {}
        sample = Sample(time.time(), highs, committed)
        decided, weight = self._decided.new_records(context, highs) if follow else ([], 1.0)
        alerted, _ = self._alerted.new_records(context, highs) if follow else ([], 1.0)
        with self.lock:
            self.samples.append(sample)
            self.decisions.fold(decided, weight)
            self.drift.follow(decided)
            self.alerts.extend(alerted)
        return sample

    def snapshot(self) -> list[Sample]:
        with self.lock:
            return list(self.samples)

    def _run(self) -> None:
        while not self._stop.is_set():
            if time.monotonic() - self._last_touch > self.idle_s:
                return  # nobody is looking: stop (a request starts it again)
            try:
                self.sample_once()
            except StreamsenseError as error:  # the broker may come back
                log.warning("UI sample failed: %s", error)
            self._stop.wait(self.interval_s)


def _unique(topics: list[str]) -> list[str]:
    return list(dict.fromkeys(topics))
