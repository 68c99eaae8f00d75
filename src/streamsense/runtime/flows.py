"""Running one partition's records through a flow: decode, stages, sinks.

Records arrive in log order. Invalid ones become dead letters; function stages run per
event with keyed state; batch stages (the feature engine) see the whole micro-batch.
In ``restoring`` mode (rebuilding batch-stage state after a restart) only the batch stages
run and nothing is written: those events' outputs were committed before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streamsense.brokers.base import RECORD_LIMIT_BYTES, OutRecord, Record, record_size
from streamsense.errors import FatalError, InvalidEvent
from streamsense.events import Event
from streamsense.runtime.app import Context, Flow, Stage
from streamsense.runtime.load import NO_LOAD, LoadMonitor
from streamsense.runtime.repartition import is_marker
from streamsense.runtime.state import StateStore


@dataclass
class FlowOutcome:
    records: list[OutRecord] = field(default_factory=list)
    events: int = 0
    outputs: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)


def run_flow(
    flow: Flow,
    state: StateStore,
    partition: int,
    records: list[Record],
    *,
    restoring: bool,
    load: LoadMonitor = NO_LOAD,
) -> FlowOutcome:
    """Raises whatever a stage or sink raises, except InvalidEvent (a dead letter): the
    worker then discards the partition's uncommitted work (see worker.py)."""
    if flow.source.upstream_partitions:  # markers only move the order's clocks
        records = [r for r in records if not is_marker(r)]
    outcome = FlowOutcome(events=len(records))
    sources: list[Record] = []
    events: list[Event[Any]] = []
    for record, decoded in zip(records, flow.source.decode_batch(records), strict=True):
        if isinstance(decoded, InvalidEvent):
            _dead_letter(flow, record, decoded, outcome)
        else:
            events.append(decoded)
            sources.append(record)
    values: list[Any] = [e.payload for e in events]
    for stage in flow.stages:
        if isinstance(stage, Stage):
            if restoring:  # function-stage state is already at the committed offsets
                break
            events, values, sources = _run_function(
                flow, stage, state, partition, events, values, sources, outcome, load
            )
        else:
            values, extra = stage.process_batch(partition, events, values)
            outcome.records.extend(extra)
            kept = [i for i, v in enumerate(values) if v is not None]
            events, values, sources = (
                [events[i] for i in kept],
                [values[i] for i in kept],
                [sources[i] for i in kept],
            )
    if restoring:
        return FlowOutcome(events=len(records))
    out = [r for sink in flow.sinks if events for r in sink.write(events, values)]
    if max(map(record_size, out), default=0) > RECORD_LIMIT_BYTES:
        out = _oversized_to_dead_letters(flow, out, sources, outcome)
    outcome.records.extend(out)
    outcome.outputs += len(out)
    return outcome


def _oversized_to_dead_letters(
    flow: Flow, out: list[OutRecord], sources: list[Record], outcome: FlowOutcome
) -> list[OutRecord]:
    """An event with an output too large for the broker goes to the dead letters, and
    none of its outputs is written (outputs name their event in the ``source`` header)."""
    oversized: dict[bytes | None, int] = {}
    for record in out:
        size = record_size(record)
        if size > RECORD_LIMIT_BYTES:
            origin = _source_of(record)
            oversized[origin] = max(size, oversized.get(origin, 0))
    if None in oversized:
        raise FatalError(
            "a sink wrote a record over the broker's record limit without a `source` header "
            "naming its event (see runtime/app.py source_headers)"
        )
    for source in sources:
        largest = oversized.get(f"{source.topic}/{source.partition}/{source.offset}".encode())
        if largest is not None:
            letter = flow.source.oversized_letter(source_record(source), "output", largest)
            outcome.records.append(letter)
            _count_dead_letter("output-size", outcome)
    return [r for r in out if _source_of(r) not in oversized]


def _source_of(record: OutRecord) -> bytes | None:
    return next((value for name, value in record.headers if name == "source"), None)


def source_record(record: Record) -> OutRecord:
    """The record as it was consumed, to go to the dead letters with its coordinates."""
    coordinates = f"{record.topic}/{record.partition}/{record.offset}".encode()
    headers = (("source", coordinates), *record.headers)
    return OutRecord(record.topic, record.value, record.key, None, record.timestamp, headers)


def _run_function(
    flow: Flow,
    stage: Stage,
    state: StateStore,
    partition: int,
    events: list[Event[Any]],
    values: list[Any],
    sources: list[Record],
    outcome: FlowOutcome,
    load: LoadMonitor,
) -> tuple[list[Event[Any]], list[Any], list[Record]]:
    kept_events, kept_values, kept_sources = [], [], []
    results = _stage_results(stage, state, partition, events, values, load)
    for event, result, source in zip(events, results, sources, strict=True):
        if isinstance(result, InvalidEvent):  # a stage may reject an event it cannot handle
            _dead_letter(flow, source, result, outcome)
        elif result is not None:
            kept_events.append(event)
            kept_values.append(result)
            kept_sources.append(source)
    return kept_events, kept_values, kept_sources


def _stage_results(
    stage: Stage,
    state: StateStore,
    partition: int,
    events: list[Event[Any]],
    values: list[Any],
    load: LoadMonitor,
) -> Sequence[Any]:
    """What the stage made of each value: a value, None or an InvalidEvent."""
    if stage.batch_fn is not None:
        if not events:
            return []
        contexts = [Context(e, state.state(stage.name, partition, e.key), load) for e in events]
        results = stage.batch_fn(values, contexts)
        if len(results) != len(events):
            raise FatalError(
                f"batched stage {stage.name!r} returned {len(results)} results "
                f"for {len(events)} events"
            )
        return results
    assert stage.fn is not None
    out: list[Any] = []
    for event, value in zip(events, values, strict=True):
        try:
            out.append(
                stage.fn(value, Context(event, state.state(stage.name, partition, event.key), load))
            )
        except InvalidEvent as error:
            out.append(error)
    return out


def _dead_letter(flow: Flow, record: Record, error: InvalidEvent, outcome: FlowOutcome) -> None:
    outcome.records.append(flow.source.dead_letter(record, error))
    _count_dead_letter(error.field or error.reason.split(" ")[0], outcome)


def _count_dead_letter(reason: str, outcome: FlowOutcome) -> None:
    outcome.dead_letters[reason] = outcome.dead_letters.get(reason, 0) + 1
