"""Peers of the streaming benchmark: the 15 fraud-handbook features over the whole file.

    python bench/handbook_peers.py [--limit N] [--peers duckdb1,duckdb2,python,bytewax]

Every peer computes TRANSACTION_ID + the handbook's 15 model inputs (handbook_reference) for the
events in file order, in a fresh spawned process. Timed: from the events in memory (an Arrow
table read from Parquet, timed apart) to the peer's output (all events' features in memory);
turning that output into the Arrow table compared here is not timed. Peak RSS is the process's
high-water mark while the peer runs (reset after the read; interpreter, imports and the events
table included). Each peer is measured cold (its first call in the process: compilation, caches
and first queries included) and warm (after an untimed call on the first 10,000 events), each
in a process of its own. Every peer is checked against DuckDB: counts exactly, floats within 1e-9
relative (plus 1e-9 absolute: a running sum left with a single 0.00 amount may hold ~1e-14).

Another script adds a peer with main({"name": Peer(run, to_table)}): `run` (top-level, picklable)
takes the events table; `to_table` turns its result into the features table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from array import array
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from handbook_reference import (
    DATASET,
    DAY,
    DELAY_DAYS,
    FEATURE_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    WINDOWS,
    duckdb_features_from_table,
)

EVENT_COLUMNS = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_FRAUD",
]
CHUNK = 65_536  # events converted to Python objects at a time by the streaming peers
BYTEWAX_BATCH = 1_000  # TestingSource batch size
NIGHT_END = 7 * 3600  # hour <= 6
SPANS = tuple(days * DAY for days in WINDOWS)
DELAY = DELAY_DAYS * DAY
# The streaming peers emit flat float64 rows: file row, TRANSACTION_ID, then FEATURE_COLUMNS.
ROW_WIDTH = 2 + len(FEATURE_COLUMNS)

# row in file, TRANSACTION_ID, epoch seconds, customer, terminal, amount, fraud
Event = tuple[int, int, int, int, int, float, int]
ROW, TX_ID, SECONDS, CUSTOMER, TERMINAL, AMOUNT, FRAUD = range(7)


def load_events(path: str = DATASET, limit: int | None = None) -> pa.Table:
    """The columns the features need, the first `limit` rows, in file order."""
    table = pq.read_table(path, columns=EVENT_COLUMNS)
    return table if limit is None else table.slice(0, limit)


def iter_events(events: pa.Table) -> Iterator[Event]:
    """Events as Python tuples, converted one chunk at a time (as a stream consumer would)."""
    row = 0
    for batch in events.to_batches(max_chunksize=CHUNK):
        seconds = batch["TX_DATETIME"].to_numpy().astype("datetime64[s]").astype(np.int64)
        rows = range(row, row + batch.num_rows)
        row += batch.num_rows
        yield from zip(
            rows,
            batch["TRANSACTION_ID"].to_pylist(),
            seconds.tolist(),
            batch["CUSTOMER_ID"].to_pylist(),
            batch["TERMINAL_ID"].to_pylist(),
            batch["TX_AMOUNT"].to_pylist(),
            batch["TX_FRAUD"].to_pylist(),
            strict=True,
        )


# ---------------------------------------------------------------- per-event state (python, bytewax)


class Windows:
    """For each span in SPANS, a deque of (time, value) pairs and the running sum of the values."""

    __slots__ = ("deques", "sums")

    def __init__(self) -> None:
        self.deques: list[deque[tuple[int, float]]] = [deque() for _ in SPANS]
        self.sums = [0.0] * len(SPANS)

    def add(self, seconds: int, value: float) -> None:
        pair = (seconds, value)
        sums = self.sums
        for i, window in enumerate(self.deques):
            window.append(pair)
            sums[i] += value

    def stats(self, end: int) -> list[float]:
        """Count and mean of each window over (end - span, end], evicting older pairs."""
        out: list[float] = []
        sums = self.sums
        for i, window in enumerate(self.deques):
            cutoff = end - SPANS[i]
            total = sums[i]
            while window and window[0][0] <= cutoff:
                total -= window.popleft()[1]
            sums[i] = total
            n = len(window)
            out += (n, total / n if n else 0.0)
        return out


class CustomerState(Windows):
    """Count and mean amount over (t - w, t], the current payment included."""

    __slots__ = ()

    def update(self, seconds: int, amount: float) -> list[float]:
        self.add(seconds, amount)
        return self.stats(seconds)


class TerminalState(Windows):
    """Count and fraud share over (t - 7d - w, t - 7d]: payments wait in `pending` for 7 days."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        super().__init__()
        self.pending: deque[tuple[int, int]] = deque()

    def update(self, seconds: int, fraud: int) -> list[float]:
        end = seconds - DELAY
        pending = self.pending
        while pending and pending[0][0] <= end:
            self.add(*pending.popleft())
        pending.append((seconds, fraud))
        return self.stats(end)


def calendar_flags(seconds: int) -> tuple[int, int]:
    """TX_DURING_WEEKEND, TX_DURING_NIGHT (UTC; 1970-01-01 was a Thursday)."""
    day, second_of_day = divmod(seconds, DAY)
    return int((day + 3) % 7 >= 5), int(second_of_day < NIGHT_END)


def _sorted_rows(flat: array, width: int) -> np.ndarray:
    """Flat float64 rows starting with the file row -> 2-D array in file order."""
    rows = np.frombuffer(flat, dtype=np.float64).reshape(-1, width)
    return rows[np.argsort(rows[:, 0], kind="stable")]


def _features_table(rows: np.ndarray) -> pa.Table:
    columns = {"TRANSACTION_ID": rows[:, 1].astype(np.int64)}
    for i, name in enumerate(FEATURE_COLUMNS, start=2):
        columns[name] = rows[:, i].astype(np.int64) if name in INT_COLUMNS else rows[:, i]
    return pa.table(columns)


def rows_to_table(flat: array) -> pa.Table:
    """Rows of ROW_WIDTH floats (file row, TRANSACTION_ID, FEATURE_COLUMNS) -> features table."""
    return _features_table(_sorted_rows(flat, ROW_WIDTH))


# ---------------------------------------------------------------- peers


def python_run(events: pa.Table) -> array:
    """The plain per-event loop: dicts of per-entity deques with running sums."""
    customers: defaultdict[int, CustomerState] = defaultdict(CustomerState)
    terminals: defaultdict[int, TerminalState] = defaultdict(TerminalState)
    out = array("d")
    for row, tx_id, seconds, customer, terminal, amount, fraud in iter_events(events):
        out.extend((row, tx_id, amount, *calendar_flags(seconds)))
        out.extend(customers[customer].update(seconds, amount))
        out.extend(terminals[terminal].update(seconds, fraud))
    return out


def customer_step(state: CustomerState | None, event: Event) -> tuple[CustomerState, tuple]:
    state = state or CustomerState()
    flags = calendar_flags(event[SECONDS])
    features = state.update(event[SECONDS], event[AMOUNT])
    return state, (event[ROW], event[TX_ID], event[AMOUNT], *flags, *features)


def terminal_step(state: TerminalState | None, event: Event) -> tuple[TerminalState, tuple]:
    state = state or TerminalState()
    return state, (event[ROW], *state.update(event[SECONDS], event[FRAUD]))


def bytewax_run(events: pa.Table) -> tuple[array, array]:
    """The state of python_run in two keyed stateful_map branches: by customer, by terminal.

    Both branches read the input stream directly: bytewax keeps each key's order from its input,
    but a keyed step regroups a batch by key, so chaining terminal after customer would hand the
    terminal state its payments out of time order. The branches are joined on the file row in
    bytewax_to_table, outside the timed region.
    """
    from bytewax import operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSource, run_main

    flow = Dataflow("handbook_features")
    stream = op.input("events", flow, TestingSource(iter_events(events), BYTEWAX_BATCH))
    by_customer = op.key_on("by_customer", stream, lambda e: str(e[CUSTOMER]))
    by_terminal = op.key_on("by_terminal", stream, lambda e: str(e[TERMINAL]))
    customer_rows, terminal_rows = array("d"), array("d")
    customer = op.stateful_map("customer", by_customer, customer_step)
    terminal = op.stateful_map("terminal", by_terminal, terminal_step)
    op.output("customer_out", op.key_rm("customer_rows", customer), _array_sink(customer_rows))
    op.output("terminal_out", op.key_rm("terminal_rows", terminal), _array_sink(terminal_rows))
    run_main(flow)
    return customer_rows, terminal_rows


def bytewax_to_table(output: tuple[array, array]) -> pa.Table:
    customer = _sorted_rows(output[0], ROW_WIDTH - len(WINDOWS) * 2)
    terminal = _sorted_rows(output[1], 1 + len(WINDOWS) * 2)
    return _features_table(np.hstack([customer, terminal[:, 1:]]))


def _array_sink(out: array) -> Any:
    """A bytewax sink appending rows to `out`: 8 bytes a value, where TestingSink's list of
    tuples would hold ~0.6 KiB of Python objects per row."""
    from bytewax.outputs import DynamicSink, StatelessSinkPartition

    class Partition(StatelessSinkPartition):
        def write_batch(self, items: list[tuple]) -> None:
            for item in items:
                out.extend(item)

    class Sink(DynamicSink):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> Partition:
            return Partition()

    return Sink()


def _identity(table: pa.Table) -> pa.Table:
    return table


@dataclass(frozen=True)
class Peer:
    run: Callable[[pa.Table], Any]  # timed: events table -> the peer's output
    to_table: Callable[[Any], pa.Table] = _identity  # not timed: output -> features table


PEERS = {
    "duckdb1": Peer(partial(duckdb_features_from_table, threads=1)),
    "duckdb2": Peer(partial(duckdb_features_from_table, threads=2)),
    "python": Peer(python_run, rows_to_table),
    "bytewax": Peer(bytewax_run, bytewax_to_table),
}


# ---------------------------------------------------------------- measuring and checking


@dataclass
class Measurement:
    rows: int
    read_seconds: float
    seconds: float
    base_rss_mib: float  # RSS once the events are read, before the peer runs
    peak_rss_mib: float
    table: pa.Table | None  # None once checked


def _proc_status_mib(field: str) -> float:
    """VmRSS / VmHWM (peak) of this process. Not ru_maxrss: Linux carries that across exec, so
    a spawned child would report the RSS of the parent it was forked from."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise LookupError(field)


def _reset_peak_rss() -> None:
    """Restart VmHWM from the current RSS (Linux clear_refs), to leave out the read's peak."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


WARM_UP_ROWS = 10_000


def _measure_here(peer: Peer, path: str, limit: int | None, warm: bool) -> Measurement:
    """Cold: the peer's first call in a fresh process (compiling, loading caches, first
    queries included). Warm: the timed call follows an untimed one on the first
    WARM_UP_ROWS events, in a fresh process too."""
    started = time.perf_counter()
    events = load_events(path, limit)
    read_seconds = time.perf_counter() - started
    if warm:
        peer.run(events.slice(0, WARM_UP_ROWS))
    base_rss = _proc_status_mib("VmRSS")
    _reset_peak_rss()
    started = time.perf_counter()
    output = peer.run(events)
    seconds = time.perf_counter() - started
    peak_rss = _proc_status_mib("VmHWM")
    table = peer.to_table(output)
    return Measurement(events.num_rows, read_seconds, seconds, base_rss, peak_rss, table)


def measure(
    peer: Peer, path: str = DATASET, limit: int | None = None, *, warm: bool = False
) -> Measurement:
    """Run one peer in a fresh spawned process (so its peak RSS is its own)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure_here, (peer, path, limit, warm))


def check_agreement(
    reference: pa.Table, table: pa.Table, rtol: float = 1e-9, atol: float = 1e-9
) -> None:
    """Raise AssertionError unless `table` matches the DuckDB `reference` (see module doc)."""
    if table.column_names != reference.column_names or table.num_rows != reference.num_rows:
        raise AssertionError(f"shape {table.shape} {table.column_names} != {reference.shape}")
    for name in ["TRANSACTION_ID", *INT_COLUMNS]:
        expected, actual = reference[name].to_numpy(), table[name].to_numpy()
        np.testing.assert_array_equal(actual, expected, err_msg=name)
    for name in FLOAT_COLUMNS:
        expected, actual = reference[name].to_numpy(), table[name].to_numpy()
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=name)


def measurement_row(name: str, start: str, round_index: int, m: Measurement) -> dict[str, Any]:
    return {"round": round_index, "peer": name, "start": start, "events": m.rows,
            "seconds": m.seconds, "events_per_s": m.rows / m.seconds,
            "read_seconds": m.read_seconds, "rss_after_read_mib": m.base_rss_mib,
            "peak_rss_mib": m.peak_rss_mib}  # fmt: skip


def rotated(names: list[str], round_index: int) -> list[str]:
    """Round r starts with peer r, so no peer always runs first on the quietest machine."""
    r = round_index % len(names)
    return names[r:] + names[:r]


def main(extra_peers: dict[str, Peer] | None = None, bench: str = "handbook_peers") -> None:
    from results import ROOT, render, save_results

    peers = {**PEERS, **(extra_peers or {})}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--peers", default=",".join(peers))
    parser.add_argument("--path", default=DATASET)
    parser.add_argument("--starts", default="cold,warm", help="cold, warm or both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    reference = duckdb_features_from_table(load_events(args.path, args.limit), threads=2)
    rows = []
    for round_index in range(args.rounds):
        for name in rotated(args.peers.split(","), round_index):
            for start in args.starts.split(","):
                result = measure(peers[name], args.path, args.limit, warm=start == "warm")
                assert result.table is not None
                check_agreement(reference, result.table)
                result.table = None  # free it before the next peer
                rows.append(measurement_row(name, start, round_index, result))
                print(f"round {round_index}: {name} ({start}): {result.seconds:.2f} s, "
                      "agrees with DuckDB", flush=True)  # fmt: skip
    settings = {"limit": args.limit, "peers": args.peers, "starts": args.starts,
                "rounds": args.rounds, "path": Path(args.path).name}  # fmt: skip
    path = save_results(Path(args.results), bench, settings, rows)
    print(f"\n{reference.num_rows:,} events, all peers agree with DuckDB; raw results: {path}\n")
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
