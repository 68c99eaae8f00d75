"""EventTimeMerge takes a head's followers in runs: the records it gives, in order and over
as many calls as it takes, are the ones the one-record-at-a-time rule gives (the smallest
head first, ties to the earlier upstream, nothing past what a counted upstream is known to
have reached), and each call stays within its limit."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from streamsense.brokers.base import Record, TopicPartition
from streamsense.runtime.merge import EventTimeMerge
from streamsense.runtime.repartition import CLOCK_HEADER, TIME_HEADER, is_marker, record_time
from streamsense.testing import ManualClock

GROUP = [TopicPartition(f"t.u{u}", 0) for u in range(3)]


def one_at_a_time(
    buffers: dict[TopicPartition, deque[Record]], limit: int, reached: dict[TopicPartition, int]
) -> list[Record]:
    """The rule itself, for a merge that never waits (no time passes) and no idle upstream;
    ``reached`` (how far each upstream is known to be) carries over between calls."""
    out: list[Record] = []
    while len(out) < limit:
        for tp in GROUP:
            while buffers[tp] and is_marker(buffers[tp][0]):
                marker = buffers[tp].popleft()
                out.append(marker)
                reached[tp] = max(record_time(marker) or 0, reached.get(tp, -(2**62)))
        heads = {tp: record_time(b[0]) or 0 for tp, b in buffers.items() if b}
        if not heads:
            break
        first = min(heads, key=lambda tp: (heads[tp], GROUP.index(tp)))
        known = {tp: max(heads.get(tp, -(2**62)), reached.get(tp, -(2**62))) for tp in GROUP}
        if any(known[tp] < heads[first] for tp in GROUP if tp != first):
            break
        out.append(buffers[first].popleft())
        reached[first] = max(heads[first], reached.get(first, -(2**62)))
    return out


def record(tp: TopicPartition, offset: int, time_ms: int, marker: bool) -> Record:
    header = (CLOCK_HEADER if marker else TIME_HEADER, str(time_ms).encode())
    return Record(tp.topic, 0, offset, 0, None, None if marker else b"v", (header,))


# Each upstream: steps of event time (ties included) and, now and then, a marker.
upstream = st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=25)


@settings(max_examples=300, deadline=None)
@given(st.lists(upstream, min_size=3, max_size=3), st.integers(1, 40))
def test_runs_take_what_the_one_record_rule_takes(
    steps: list[list[tuple[int, bool]]], limit: int
) -> None:
    def fill() -> dict[TopicPartition, deque[Record]]:
        buffers: dict[TopicPartition, deque[Record]] = {}
        for tp, upstream_steps in zip(GROUP, steps, strict=True):
            time_ms, buffers[tp] = 100, deque()
            for offset, (step, marker) in enumerate(upstream_steps):
                time_ms += step
                buffers[tp].append(record(tp, offset, time_ms, marker and offset % 3 == 0))
        return buffers

    merge = EventTimeMerge(wait_ms=1_000, clock=ManualClock())
    mine, theirs = fill(), fill()
    reached: dict[TopicPartition, int] = {}
    taken: list[Record] = []
    while got := merge.take(mine, GROUP, limit):  # until blocked or drained
        assert sum(not is_marker(r) for r in got) <= limit
        taken += got
    assert taken == one_at_a_time(theirs, 10**6, reached)
    assert {tp: list(b) for tp, b in mine.items()} == {tp: list(b) for tp, b in theirs.items()}
