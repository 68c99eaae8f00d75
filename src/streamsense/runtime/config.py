"""How a worker is configured (WorkerConfig) and what it counts (WorkerStats)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from streamsense.runtime.load import SheddingConfig
from streamsense.runtime.pauses import Backoff

Mode = Literal["realtime", "microbatch"]
OrderMode = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker batches, buffers, commits, snapshots, retries and sheds.

    ``buffer_records`` bounds each topic-partition's intake buffer (default: twice
    ``batch_size``), and ``buffer_bytes`` its keys and values (None: no byte bound), so
    large events cannot hold more memory than that while they wait (issue #21).
    ``shedding`` (off by default: shedding makes decisions depend on load)
    sets the lag thresholds of ``ctx.load.shed_heavy``."""

    mode: Mode = "microbatch"
    batch_size: int = 1000
    batch_ms: int = 100
    poll_timeout_s: float = 0.05
    session_timeout_ms: int = 10_000
    commit_attempts: int = 5
    snapshot_every_events: int = 200_000
    snapshot_every_s: float = 30.0
    buffer_records: int | None = None
    buffer_bytes: int | None = 16 * 1024 * 1024
    retry: Backoff = field(default_factory=Backoff)
    shedding: SheddingConfig | None = None
    # A repartition target's records in event-time order (runtime/merge.py): "auto" orders
    # replays and catch-ups (a full buffer, or own lag above order_lag; off again at a
    # hundredth of it).
    order: OrderMode = "auto"
    order_lag: int = 10_000
    # How long an upstream with nothing to show may hold the order back. Generous: in a
    # catch-up a worker may take seconds to come back to an upstream partition it owns.
    order_wait_ms: int = 10_000

    @property
    def buffer_capacity(self) -> int:
        return self.buffer_records or max(64, 2 * self.batch_size)


@dataclass
class WorkerStats:
    events: int = 0
    dead_letters: int = 0
    outputs: int = 0
    commits: int = 0
    fenced: int = 0
    restored_keys: int = 0
    replayed_events: int = 0
    priority_events: int = 0
    failures: int = 0  # retryable failures (each one pauses and retries its partitions)
    pauses: int = 0  # partitions paused (full buffer or waiting to retry)
    paused_s: float = 0.0  # partition-seconds spent paused
    largest_buffer: int = 0
    largest_buffer_bytes: int = 0  # the most key and value bytes any one buffer held
    shed_changes: int = 0
    order_waits: int = 0  # times a repartition target's order waited its bound out
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    input_rows: int = 0  # rows a replay read from its input files (the dead letters' share)
