"""Applications: flows of events from a source stream through stages into sinks.

    app = App("payments-demo")
    flow = app.flow(payments)
    flow.stage("profile", update_profile)     # fn(value, ctx) -> value or None
    flow.batched_stage("score", score_all)    # fn(values, ctxs) -> a value or None each
    flow.sink(TopicSink("payments-demo.decisions"))

A stage gets the previous stage's value (the validated payload first) and a Context with
the event and the stage's keyed state. Returning None ends the event's way through the flow.
The last value goes to every sink (see Sink: records, and effects outside the broker).
Everything a flow writes to the broker, including state changes, commits atomically with
the consumed offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from streamsense.brokers.base import Headers, OutRecord, TopicConfig
from streamsense.errors import ConfigError
from streamsense.events import Event, Stream
from streamsense.runtime.load import NO_LOAD, LoadMonitor
from streamsense.runtime.state import KeyState


class Context:
    """What a stage sees besides the value: the event, its own state for the event's key,
    and the worker's load (``load.shed_heavy``: skip expensive work and say so)."""

    __slots__ = ("event", "load", "state")

    def __init__(self, event: Event[Any], state: KeyState, load: LoadMonitor = NO_LOAD) -> None:
        self.event = event
        self.state = state
        self.load = load

    @property
    def key(self) -> str:
        return self.event.key

    @property
    def event_time(self) -> int:
        return self.event.event_time


StageFn = Callable[[Any, Context], Any]
# A micro-batch's values and contexts (log order) → a result per value: the next value,
# None (the event goes no further) or an InvalidEvent (the event goes to the dead letters).
BatchedStageFn = Callable[[Sequence[Any], Sequence[Context]], Sequence[Any]]


@dataclass(frozen=True)
class Stage:
    """A function stage: ``fn`` per event, or ``batch_fn`` once per micro-batch (one
    partition's events that reached it, in log order; a realtime worker's batches are one
    event). A batched stage does what ``fn`` would do event by event, at a batch's cost:
    one model call for the batch instead of one per event, say."""

    name: str
    fn: StageFn | None = None
    batch_fn: BatchedStageFn | None = None


class BatchStage(Protocol):
    """A stage that works on micro-batches and keeps its own state (the feature engine).

    ``process_batch`` gets one partition's events in log order and the values the previous
    stages produced, and returns a value per event (None drops it) plus extra records
    (late events, closed windows). Its state goes to a compacted changelog, one entry per
    key: every so many events or seconds, with a commit, the entries of the keys that
    changed since the last such write and a small ``meta`` blob (runtime/batch_state.py).
    After a restart the worker restores the latest entries and replays the events after
    the write, with outputs suppressed up to the committed offsets, so state and outputs
    stay exactly once. Batch stages come first in a flow, as they replay from the source."""

    name: str

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]: ...

    def process_batch(
        self, partition: int, events: list[Event[Any]], values: list[Any]
    ) -> tuple[list[Any], list[OutRecord]]: ...

    def on_idle(self, partition: int, now_ms: int) -> list[OutRecord]:
        """Called when a partition had no event for a while (closes windows)."""
        ...

    def state_changes(self, partition: int) -> tuple[bytes, list[tuple[bytes, bytes | None]]]:
        """``meta`` and an entry (key, value; None: gone) per key changed since the last
        call. Entries may be written before their meta: restore must cope (entries.py)."""
        ...

    def restore(
        self, partition: int, meta: bytes | None, entries: Iterable[tuple[bytes, bytes]]
    ) -> int:
        """Load the state (meta None: start empty) of a partition this worker now owns;
        returns how many keys it holds."""
        ...

    def drop(self, partition: int) -> None: ...


class Sink(Protocol):
    """Where a flow's final values go: records for the broker, effects outside it, or both.

    After a flow's stages ran over a batch of one partition's events, the worker calls
    ``write`` once per sink with the events that reached the end (log order) and their
    values. The records it returns commit with the batch's offsets, in one transaction:
    exactly once wherever commits are transactional.

    An effect outside the broker (an HTTP call, a table row, a line in a file) happens in
    ``write``, so *before* the commit, as in Kafka Streams' and Flink's at-least-once
    sinks. If the commit does not happen (a crash, a fenced commit, a later sink or stage
    failing), the batch is processed and written again: such a sink must be idempotent
    by the event's id (``source_headers``: its source coordinates, or the id a request
    gave it), so each effect still happens once. A transient failure must raise a
    retryable ``StreamsenseError``: the worker then discards the partition's uncommitted
    work, pauses it (its events wait in the broker) and redoes it after a backoff. Any
    other exception stops the worker. ``write`` is not called while batch-stage state is
    rebuilt by replay: those events' outputs and effects happened before their commit.
    """

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]: ...

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]: ...


def source_headers(event: Event[Any]) -> Headers:
    """Every output names the event it came from: sinks use it to stay idempotent."""
    return (("source", event.id.encode()),)


_encode_json = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class TopicSink:
    """Writes each value as JSON to ``topic``, keyed like the event, partitioned like it.
    Records carry the time they are written (not the event time), so a topic's time-based
    retention counts from when an output was produced, even when replaying old data."""

    topic: str
    encode: Callable[[Any], bytes] = _encode_json

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {self.topic: TopicConfig(partitions)}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        return [
            OutRecord(
                self.topic,
                self.encode(value),
                event.key.encode(),
                headers=source_headers(event),
            )
            for event, value in zip(events, values, strict=True)
        ]


@dataclass
class Flow:
    source: Stream[Any]
    stages: list[Stage | BatchStage] = field(default_factory=list)
    sinks: list[Sink] = field(default_factory=list)

    def stage(self, name: str, fn: StageFn) -> Flow:
        self._check_name(name)
        self.stages.append(Stage(name, fn))
        return self

    def batched_stage(self, name: str, fn: BatchedStageFn) -> Flow:
        """A function stage that takes a micro-batch's values at once (see Stage)."""
        self._check_name(name)
        self.stages.append(Stage(name, batch_fn=fn))
        return self

    def batch(self, stage: BatchStage) -> Flow:
        """Add a micro-batch stage (see BatchStage); it must come before function stages."""
        self._check_name(stage.name)
        if any(isinstance(s, Stage) for s in self.stages):
            raise ConfigError(f"batch stage {stage.name!r} must come before function stages")
        self.stages.append(stage)
        return self

    def batch_stages(self) -> list[BatchStage]:
        return [s for s in self.stages if not isinstance(s, Stage)]

    def _check_name(self, name: str) -> None:
        if any(s.name == name for s in self.stages):
            raise ConfigError(f"stage {name!r} appears twice in the flow")

    def sink(self, sink: Sink) -> Flow:
        self.sinks.append(sink)
        return self


@dataclass
class App:
    name: str
    flows: dict[str, Flow] = field(default_factory=dict)

    def flow(self, source: Stream[Any]) -> Flow:
        if source.topic in self.flows:
            raise ConfigError(f"app {self.name!r} already has a flow from {source.topic!r}")
        if self.flows:
            first = next(iter(self.flows.values())).source
            if first.partitions != source.partitions:
                # Keyed state is per partition: every source must be co-partitioned.
                raise ConfigError("all sources of an app need the same partition count")
        self.flows[source.topic] = created = Flow(source)
        return created

    @property
    def group(self) -> str:
        return self.name

    def sources(self) -> dict[str, Flow]:
        """Every topic the app reads, priority lanes included, and the flow it feeds."""
        return {topic: f for f in self.flows.values() for topic in f.source.lane_topics}

    def lane_ranks(self) -> dict[str, int]:
        """Which source topics are read first: 0 for priority lanes, 1 for the rest."""
        return {
            topic: 0 if f.source.priority is not None and topic != f.source.topic else 1
            for f in self.flows.values()
            for topic in f.source.lane_topics
        }

    def merged_topics(self) -> dict[str, tuple[str, ...]]:
        """Topics read in event-time order with others (a repartition target's upstream
        topics): each topic → all the topics of its stream."""
        return {
            topic: f.source.lane_topics
            for f in self.flows.values()
            if f.source.upstream_partitions
            for topic in f.source.lane_topics
        }

    @property
    def partitions(self) -> int:
        if not self.flows:
            raise ConfigError(f"app {self.name!r} has no flow")
        return next(iter(self.flows.values())).source.partitions

    def stage_names(self) -> list[str]:
        """Function stages: their keyed state lives in changelog topics."""
        return sorted(
            {s.name for f in self.flows.values() for s in f.stages if isinstance(s, Stage)}
        )

    def batch_stages(self) -> dict[str, BatchStage]:
        return {s.name: s for f in self.flows.values() for s in f.batch_stages()}

    def state_topic(self, stage: str) -> str:
        """A batch stage's state changelog (one entry per key)."""
        return f"{self.name}.{stage}.state-changelog"

    def changelog_topic(self, stage: str) -> str:
        return f"{self.name}.{stage}.changelog"

    def topic_configs(self) -> dict[str, TopicConfig]:
        """Every topic the app reads or writes, with the configuration it needs."""
        configs: dict[str, TopicConfig] = {}
        for flow in self.flows.values():
            configs.update(flow.source.topic_configs())
            for sink in flow.sinks:
                configs.update(sink.topic_configs(self.partitions))
        for stage in self.stage_names():
            configs[self.changelog_topic(stage)] = TopicConfig(self.partitions, compacted=True)
        for name, batch in self.batch_stages().items():
            configs.update(batch.topic_configs(self.partitions))
            configs[self.state_topic(name)] = TopicConfig(self.partitions, compacted=True)
        return configs
