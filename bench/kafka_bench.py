"""The 15 fraud-handbook features through real Kafka, scaled out: streamsense next to Quix
Streams on the same broker in the same run.

    python bench/kafka_bench.py [--limit 300000] [--peers streamsense,quix,bare] [--workers 1,2]
                                [--rate 1000] [--seconds 20] [--latency-batch-ms 2]
                                [--no-throughput] [--no-latency]

The handbook's features need every payment of a customer (customer windows) and every
payment of a terminal (terminal windows, 7 days delayed): on more than one partition that
takes a repartition, so both peers run the same two-step pipeline, at least once:

    transactions (keyed by TERMINAL_ID, 4 partitions)
      → terminal features (6) → repartition by CUSTOMER_ID (a topic keyed by customer)
      → customer features (6) + TX_AMOUNT, weekend, night → the fraud app's rules
      → decisions (one per transaction, with its 15 features)

* streamsense (`streamsense run bench/kafka_bench.py`, create_app below): one App with two
  flows, each a FeatureStage (the definitions of apps/fraud/features.py, split by entity)
  and a function stage; the repartition is `ss.Repartition`, keyed by customer. At least once, with
  the default (plain) commits; no feature log, as the decisions carry the features and
  Quix writes nothing of the kind.
* Quix Streams (its own virtualenv, ~/.cache/streamsense/quix-venv, holding exactly
  bench/quix-requirements.txt: quixstreams pins an older confluent-kafka): stateful per-key
  functions (`sdf.apply(..., stateful=True)`, state in Quix's RocksDB State with changelog topics)
  and `sdf.group_by(customer id)` for the repartition. Quix's windowing is not used: it
  cannot express the terminal windows that end 7 days back. Two designs of its state, both
  measured side by side: `quix` keeps running sums per window (like the plain-Python peer
  of bench/handbook_peers.py), `quix-rescan` rescans each key's window rows per event.

* bare (`--peers bare`, latency only): the two hops in plain confluent-kafka, computing
  nothing, sending at once, committing in the background: the floor of this broker and
  machine, for reading the other two against.

Throughput: the workers join and the group settles on empty topics; then every event is
produced at once, and the time runs from the first send until the decisions topic holds
one decision per event. The workers' CPU time per event is reported beside it: on a shared
machine it moves less than the wall clock. Latency: one worker, open loop at --rate
events/s for --seconds; latency = when a decision is first seen by a reader of the
decisions topic (a separate process, which stamps each record as it arrives) minus its
event's scheduled send time; the first second is warm-up. streamsense commits every
--latency-batch-ms (both hops' outputs are sent at commits); Quix runs with its defaults.

Correctness: every run's decisions are compared with DuckDB's batch computation of the
handbook definitions (bench/handbook_reference.py); the share of exact decisions is
reported. On a backlog the terminal partitions are processed at different speeds, so the
repartition topic holds a customer's payments out of time order. streamsense's repartition
(ss.Repartition into a stream with upstream_partitions, runtime/repartition.py) keeps one
topic per terminal partition and reads them in event-time order while the worker is behind
(runtime/merge.py); Quix's group_by reads them as they come.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"
QUIX_VENV = Path.home() / ".cache" / "streamsense" / "quix-venv"
QUIX_VERSION = "3.28.1"
QUIX_REQUIREMENTS = Path(__file__).with_name("quix-requirements.txt")
PARTITIONS = 4
RETENTION_MS = 100 * 365 * 86_400_000  # decisions carry 2018 event times as timestamps
DAY = 86_400
WINDOWS = (1, 7, 30)
DELAY = 7 * DAY
# Out-of-order arrivals after the repartition are inserted where they belong, not dropped.
LATENESS_MS = 400 * 86_400_000
CUSTOMER_NAMES = [
    f"CUSTOMER_ID_{k}_{w}DAY_WINDOW" for w in WINDOWS for k in ("NB_TX", "AVG_AMOUNT")
]
TERMINAL_NAMES = [f"TERMINAL_ID_{k}_{w}DAY_WINDOW" for w in WINDOWS for k in ("NB_TX", "RISK")]


def decision(tx: dict[str, Any], f: dict[str, Any]) -> dict[str, Any]:
    """apps/fraud/kafka_bench_rules.py, line for line (Quix; streamsense calls it itself)."""
    amount = tx["TX_AMOUNT"]
    usual = float(f["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"])
    if amount > 220:
        action, rule = "block", "amount_over_220"
    elif float(f["TERMINAL_ID_RISK_7DAY_WINDOW"]) >= 0.3:
        action, rule = "block", "terminal_risk_7d"
    elif int(f["CUSTOMER_ID_NB_TX_30DAY_WINDOW"]) >= 10 and amount > 4 * usual:
        action, rule = "review", "amount_4x_customer_mean"
    else:
        action, rule = "allow", "default"
    return {
        "transaction_id": tx["TRANSACTION_ID"],
        "customer_id": tx["CUSTOMER_ID"],
        "amount": amount,
        "action": action,
        "rule": rule,
        "features": f,
    }


# ---------------------------------------------------------------- streamsense's worker


def create_app() -> Any:
    """This run's pipeline (names from $KAFKA_BENCH_NAME): `streamsense run` loads it."""
    sys.path.insert(0, str(ROOT))
    from apps.fraud.app import Transaction  # apps/fraud/app.py, unchanged
    from apps.fraud.features import LABEL_DELAY, WINDOWS_DAYS, _amount
    from apps.fraud.kafka_bench_rules import kafka_bench_rules as rules  # the fixed workload

    import streamsense as ss
    from streamsense import features as F

    name = os.environ["KAFKA_BENCH_NAME"]

    class WithTerminal(ss.Schema, rename="upper"):
        """A payment and its terminal features, keyed by customer after the repartition."""

        transaction_id: int
        tx_datetime: datetime
        customer_id: int
        terminal_id: int
        tx_amount: float
        tx_fraud: int
        terminal: dict[str, float | int]

    by_terminal = ss.Stream(
        f"{name}.transactions", Transaction, key="terminal_id", time="tx_datetime",
        partitions=PARTITIONS,
    )  # fmt: skip
    # A repartition target: one topic per terminal partition, read in event-time order.
    by_customer = ss.Stream(
        f"{name}.by-customer", WithTerminal, key="customer_id", time="tx_datetime",
        partitions=PARTITIONS, upstream_partitions=PARTITIONS, retention_ms=RETENTION_MS,
    )  # fmt: skip
    terminal = F.FeatureGroup(by_terminal, key="terminal_id")
    for days in WINDOWS_DAYS:
        delayed = F.rolling(f"{days}d", offset=LABEL_DELAY)
        terminal.add(f"TERMINAL_ID_NB_TX_{days}DAY_WINDOW", F.count(), delayed)
        terminal.add(f"TERMINAL_ID_RISK_{days}DAY_WINDOW", F.mean("tx_fraud"), delayed)
    customer = F.FeatureGroup(by_customer, key="customer_id")
    for days in WINDOWS_DAYS:
        window = F.rolling(f"{days}d")
        customer.add(f"CUSTOMER_ID_NB_TX_{days}DAY_WINDOW", F.count(), window)
        customer.add(f"CUSTOMER_ID_AVG_AMOUNT_{days}DAY_WINDOW", F.mean("tx_amount"), window)
    own = [
        F.Computed("TX_AMOUNT", by_customer, _amount, ("tx_amount",)),
        F.weekend(by_customer, "TX_DURING_WEEKEND"),
        F.night(by_customer, "TX_DURING_NIGHT"),
    ]

    def attach(enriched: F.Enriched, ctx: ss.Context) -> WithTerminal:
        tx = enriched.payload
        return WithTerminal(
            tx.transaction_id, tx.tx_datetime, tx.customer_id, tx.terminal_id,
            tx.tx_amount, tx.tx_fraud, enriched.features,
        )  # fmt: skip

    def decide(enriched: F.Enriched, ctx: ss.Context) -> Any:
        tx = enriched.payload
        features = {**enriched.features, **tx.terminal}
        return rules(F.Enriched(Transaction(
            tx.transaction_id, tx.tx_datetime, tx.customer_id, tx.terminal_id,
            tx.tx_amount, tx.tx_fraud,
        ), features), ctx)  # fmt: skip

    app = ss.App(name)
    # No feature log (a record per event and stage): the decisions carry the 15 features,
    # and Quix writes nothing of the kind, so both peers write the same records.
    app.flow(by_terminal).batch(
        F.FeatureStage(f"{name}-terminal", F.FeatureSet("terminal", terminal.features),
                       allowed_lateness_ms=60_000, feature_log=False)
    ).stage("attach", attach).sink(ss.Repartition(by_customer))  # fmt: skip
    app.flow(by_customer).batch(
        F.FeatureStage(f"{name}-customer", F.FeatureSet("customer", [*own, *customer.features]),
                       allowed_lateness_ms=LATENESS_MS, feature_log=False)
    ).stage("rules", decide).sink(ss.TopicSink(f"{name}.decisions"))  # fmt: skip
    return app


# ---------------------------------------------------------------- Quix Streams' worker


SPANS = tuple(days * DAY for days in WINDOWS)  # ascending: the last window is the longest


def _windows() -> dict[str, Any]:
    """One key's windows as plain JSON (what Quix's State stores): rows [time, value] in time
    order, each window's first row `lo` and running sum `s`, the latest time `last`, and the
    terminal's payments still inside their 7-day delay `p`. The same design as the running
    sums of the plain-Python peer (bench/handbook_peers.py): no rescan per event."""
    return {"r": [], "lo": [0] * len(SPANS), "s": [0.0] * len(SPANS), "last": None, "p": []}


def _add(w: dict[str, Any], row: list[Any]) -> None:
    w["r"].append(row)
    w["s"] = [total + row[1] for total in w["s"]]


def _evict(w: dict[str, Any], end: int) -> None:
    """Move each window's start past the rows at or before end - span, then drop the rows no
    window holds any more."""
    rows, lo, sums = w["r"], w["lo"], w["s"]
    for i, span in enumerate(SPANS):
        cutoff, j, total = end - span, lo[i], sums[i]
        while j < len(rows) and rows[j][0] <= cutoff:
            total -= rows[j][1]
            j += 1
        lo[i], sums[i] = j, (total if j < len(rows) else 0.0)  # an empty window sums to 0
    drop = lo[-1]
    if drop:
        w["r"], w["lo"] = rows[drop:], [j - drop for j in lo]


def _stats(w: dict[str, Any]) -> list[float]:
    """Count and mean of each window."""
    out: list[float] = []
    for lo, total in zip(w["lo"], w["s"], strict=True):
        n = len(w["r"]) - lo
        out += (n, total / n if n else 0.0)
    return out


def _rebuild(w: dict[str, Any]) -> None:
    """Pointers and sums from scratch, for the windows ending at w["last"]."""
    w["lo"], w["s"] = [0] * len(SPANS), [0.0] * len(SPANS)
    rows, w["r"] = w["r"], []
    for row in rows:
        _add(w, row)
    _evict(w, w["last"])


def _terminal(state: Any, ts: int, fraud: int) -> list[float]:
    """Count and fraud share over (t - 7d - w, t - 7d]: payments wait in `p` for 7 days."""
    w = state.get("w") or _windows()
    end, pending = ts - DELAY, w["p"]
    while pending and pending[0][0] <= end:
        _add(w, pending.pop(0))
    pending.append([ts, fraud])
    _evict(w, end)
    state.set("w", w)
    return _stats(w)


def _customer(state: Any, ts: int, amount: float) -> list[float]:
    """Count and mean amount over (t - w, t]. A payment older than the key's latest one (the
    repartition's order on a backlog) is inserted where it belongs and its windows rescanned."""
    w = state.get("w") or _windows()
    if w["last"] is not None and ts < w["last"]:
        rows = w["r"]
        at = len(rows)
        while at and rows[at - 1][0] > ts:
            at -= 1
        rows.insert(at, [ts, amount])
        out: list[float] = []
        for span in SPANS:
            inside = [a for t, a in rows[: at + 1] if t > ts - span]
            out += (len(inside), sum(inside) / len(inside))
        _rebuild(w)
        state.set("w", w)
        return out
    w["last"] = ts
    _add(w, [ts, amount])
    _evict(w, ts)
    state.set("w", w)
    return _stats(w)


def _terminal_rescan(state: Any, ts: int, fraud: int) -> list[float]:
    """The `quix-rescan` peer: each key's 37 days of payments as one State value, every
    window counted again per event (the design before running sums; kept because, with
    Quix's per-event State serialisation, it measured no slower)."""
    rows: list[list[int]] = state.get("rows") or []
    end = ts - DELAY
    rows = [r for r in rows if r[0] > end - WINDOWS[-1] * DAY]
    rows.append([ts, fraud])
    state.set("rows", rows)
    out: list[float] = []
    for days in WINDOWS:
        inside = [f for t, f in rows if end - days * DAY < t <= end]
        out += (len(inside), sum(inside) / len(inside) if inside else 0.0)
    return out


def _customer_rescan(state: Any, ts: int, amount: float) -> list[float]:
    """The `quix-rescan` peer's customer windows: rows kept in time order, rescanned."""
    rows: list[list[float]] = state.get("rows") or []
    rows = [r for r in rows if r[0] > ts - WINDOWS[-1] * DAY]
    at = len(rows)
    while at and rows[at - 1][0] > ts:  # an out-of-order arrival goes where it belongs
        at -= 1
    rows.insert(at, [ts, amount])
    state.set("rows", rows)
    out: list[float] = []
    for days in WINDOWS:
        inside = [a for t, a in rows if ts - days * DAY < t <= ts]
        out += (len(inside), sum(inside) / len(inside))
    return out


def _seconds(tx: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(tx["TX_DATETIME"]).replace(tzinfo=UTC).timestamp())


# Quix's settings in the throughput runs: its defaults, the fastest measured. Tried on
# 2026-12-06 (one worker, 300,000 events): producer linger 20 ms + 10,000-message batches +
# consumer fetch.min.bytes 64 KiB / fetch.wait.max.ms 100 gave 154-171 us of CPU per event
# against 137 with the defaults (bench/results/kafka_bench-2026-12-06T2129-*.json).
QUIX_THROUGHPUT_SETTINGS: dict[str, Any] = {}


def quix_worker(
    bootstrap: str, name: str, state_dir: str, settings: str = "{}", design: str = "running-sums"
) -> None:
    from quixstreams import Application

    terminal_step, customer_step = (
        (_terminal_rescan, _customer_rescan) if design == "rescan" else (_terminal, _customer)
    )

    app = Application(
        broker_address=bootstrap,
        consumer_group=name,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
        processing_guarantee="at-least-once",
        **json.loads(settings),
    )
    source = app.topic(f"{name}.transactions", value_deserializer="json")
    output = app.topic(f"{name}.decisions", value_serializer="json")

    def terminal(tx: dict[str, Any], state: Any) -> dict[str, Any]:
        values = terminal_step(state, _seconds(tx), tx["TX_FRAUD"])
        return {**tx, "terminal": dict(zip(TERMINAL_NAMES, values, strict=True))}

    def customer(tx: dict[str, Any], state: Any) -> dict[str, Any]:
        ts = _seconds(tx)
        f: dict[str, Any] = {
            "TX_AMOUNT": tx["TX_AMOUNT"],
            "TX_DURING_WEEKEND": int((ts // DAY + 3) % 7 >= 5),
            "TX_DURING_NIGHT": int((ts // 3600) % 24 <= 6),
        }
        f.update(zip(CUSTOMER_NAMES, customer_step(state, ts, tx["TX_AMOUNT"]), strict=True))
        f.update(tx["terminal"])
        return decision(tx, f)

    sdf = app.dataframe(source).apply(terminal, stateful=True)
    by_customer = sdf.group_by(
        lambda tx: str(tx["CUSTOMER_ID"]),
        name="customer",
        key_serializer="str",
        key_deserializer="str",
    )
    sdf = by_customer.apply(customer, stateful=True)
    sdf.to_topic(output)
    app.run()


def bare_worker(bootstrap: str, name: str) -> None:
    """The floor: the same two hops in plain confluent-kafka, computing nothing and waiting
    for nothing (records sent at once with linger 0, offsets committed in the background
    every second). No framework can be faster through this broker on this machine."""
    from confluent_kafka import Consumer, Producer

    source, middle = f"{name}.transactions", f"{name}.bare-repartition"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 1000,
            "fetch.wait.max.ms": 100,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    consumer.subscribe([source, middle])
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    while not stop:
        first = consumer.poll(0.1)
        if first is None:
            continue
        for message in [first, *consumer.consume(500, 0)]:
            if message.error() is not None:
                continue
            tx = json.loads(message.value())
            if message.topic() == source:
                producer.produce(middle, message.value(), str(tx["CUSTOMER_ID"]).encode())
            else:
                decided = {"transaction_id": tx["TRANSACTION_ID"], "features": {}}
                producer.produce(f"{name}.decisions", json.dumps(decided).encode())
        producer.poll(0)
    producer.flush(10)
    consumer.close()


def pinned_quix_packages() -> list[str]:
    lines = QUIX_REQUIREMENTS.read_text().splitlines()
    return sorted(line for line in lines if line and not line.startswith("#"))


def ensure_quix_venv() -> Path:
    """Quix's virtualenv holding exactly bench/quix-requirements.txt (remade when it differs:
    an unpinned rebuild once moved Quix's speed between runs of the same day)."""
    python = QUIX_VENV / "bin" / "python"
    if python.exists() and sorted(quix_packages()) == pinned_quix_packages():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(QUIX_VENV)], check=True)
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "-r", str(QUIX_REQUIREMENTS)]
    subprocess.run(install, check=True)
    return python


# ---------------------------------------------------------------- the driver


def _describe_group(admin_client: Any, group: str) -> Any:
    """The group's description, or None while its coordinator cannot answer yet: on a
    freshly started broker the offsets topic is still loading (NOT_COORDINATOR,
    COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE), which passes by itself."""
    from confluent_kafka import KafkaError, KafkaException

    loading = {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError._WAIT_COORD,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
    try:
        return admin_client.describe_consumer_groups([group])[group].result()
    except KafkaException as error:
        if error.args[0].code() in loading or error.args[0].retriable():
            return None
        raise


class Run:
    """One peer with n workers on topics of its own."""

    def __init__(
        self,
        peer: str,
        workers: int,
        bootstrap: str,
        tmp: Path,
        *,
        latency: bool,
        latency_batch_ms: int = 2,
        quix_settings: dict[str, Any] | None = None,
    ):
        self.peer, self.workers, self.bootstrap = peer, workers, bootstrap
        self.quix_settings = QUIX_THROUGHPUT_SETTINGS if quix_settings is None else quix_settings
        self.latency_batch_ms = latency_batch_ms
        self.name = f"kb-{peer}-{workers}w-{uuid.uuid4().hex[:6]}"
        self.tmp = tmp / self.name
        self.latency = latency
        self.processes: list[subprocess.Popen[bytes]] = []

    def create_topics(self, admin: Any) -> None:
        from streamsense.brokers import TopicConfig

        for topic in ("transactions", "decisions", "bare-repartition"):
            config = TopicConfig(PARTITIONS, retention_ms=RETENTION_MS)
            admin.create_topic(f"{self.name}.{topic}", config)

    def start(self) -> None:
        self.tmp.mkdir(parents=True)
        for i in range(self.workers):
            with (self.tmp / f"worker{i}.log").open("wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        self._command(i), env=self._env(), stdout=log, stderr=subprocess.STDOUT
                    )
                )

    def _command(self, i: int) -> list[str]:
        if self.peer == "bare":
            return [sys.executable, __file__, "bare-worker", self.bootstrap, self.name]
        if self.peer in ("quix", "quix-rescan"):
            state = str(self.tmp / f"state{i}")
            settings = self.quix_settings if not self.latency else {}
            return [
                str(ensure_quix_venv()),
                __file__,
                "quix-worker",
                self.bootstrap,
                self.name,
                state,
                json.dumps(settings),
                "rescan" if self.peer == "quix-rescan" else "running-sums",
            ]
        # Throughput: big micro-batches. Latency: commit every few ms (--latency-batch-ms),
        # or after every event (0: realtime mode).
        batch = ["--batch-size", "5000"]
        if self.latency:
            ms = self.latency_batch_ms
            batch = ["--mode", "realtime"] if ms == 0 else ["--batch-ms", str(ms)]
        return [
            sys.executable, "-m", "streamsense", "run", __file__,
            "--broker", f"kafka://{self.bootstrap}", "--state-dir", str(self.tmp), *batch,
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BENCH_NAME": self.name,
            "PYTHONPATH": str(ROOT / "src"),
            "COLUMNS": "200",
        }

    def wait_stable(self, admin_client: Any, timeout: float = 120) -> None:
        """Until every worker is a member and the group is stable with all partitions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, p in enumerate(self.processes):
                if p.poll() is not None:
                    raise RuntimeError(f"worker {i} died:\n{self.log(i)[-3000:]}")
            group = _describe_group(admin_client, self.name)
            if group is None:  # the coordinator is still loading (a fresh broker)
                time.sleep(0.2)
                continue
            source = f"{self.name}.transactions"
            assigned = sum(
                tp.topic == source for m in group.members for tp in m.assignment.topic_partitions
            )
            stable = str(group.state).endswith("STABLE")
            if stable and len(group.members) == self.workers and assigned == PARTITIONS:
                time.sleep(1.0)  # let the members finish restoring
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: the group did not settle")

    def cpu_seconds(self) -> float:
        """CPU time the workers used so far (user + system, all threads): on a shared
        machine a steadier measure of the work per event than the wall clock."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for p in self.processes:
            with open(f"/proc/{p.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def log(self, i: int) -> str:
        return (self.tmp / f"worker{i}.log").read_text(errors="replace")

    def stop(self) -> None:
        for p in self.processes:
            p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()


Events = tuple[list[bytes], list[bytes], list[int]]


def load_events(limit: int) -> tuple[Events, dict[int, tuple[float, ...]]]:
    """JSON values, keys (terminal ids) and partitions (murmur2) of the first ``limit``
    events, and DuckDB's handbook features for them (TRANSACTION_ID → the 15 values)."""
    import msgspec
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT / "bench"))
    from handbook_reference import FEATURE_COLUMNS, duckdb_features_from_table

    from streamsense.brokers import partition_for

    columns = [
        "TRANSACTION_ID",
        "TX_DATETIME",
        "CUSTOMER_ID",
        "TERMINAL_ID",
        "TX_AMOUNT",
        "TX_FRAUD",
    ]
    table = pq.read_table(DATASET, columns=columns).slice(0, limit)
    encode = msgspec.json.encode
    values, keys, parts = [], [], []
    for row in table.to_pylist():
        row["TX_DATETIME"] = row["TX_DATETIME"].isoformat()
        key = str(row["TERMINAL_ID"]).encode()
        values.append(encode(row))
        keys.append(key)
        parts.append(partition_for(key, PARTITIONS))
    reference = duckdb_features_from_table(table, threads=2)
    ids = reference.column("TRANSACTION_ID").to_pylist()
    rows = zip(*(reference.column(c).to_pylist() for c in FEATURE_COLUMNS), strict=True)
    return (values, keys, parts), dict(zip(ids, rows, strict=True))


def _producer(bootstrap: str, linger_ms: float) -> Any:
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": linger_ms,
            "enable.idempotence": True,
            "queue.buffering.max.messages": 1_000_000,
        }
    )


def _produced(admin: Any, topic: str) -> int:
    return sum(p.high - p.low for p in admin.describe_topic(topic).partitions)


def throughput(
    run: Run, admin: Any, events: tuple[list[bytes], list[bytes], list[int]]
) -> dict[str, float]:
    values, keys, parts = events
    producer = _producer(run.bootstrap, 5)
    topic, out = f"{run.name}.transactions", f"{run.name}.decisions"
    cpu = run.cpu_seconds()
    started = time.perf_counter()
    for value, key, part in zip(values, keys, parts, strict=True):
        while True:
            try:
                producer.produce(topic, value, key, part)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush()
    produced = time.perf_counter() - started
    while _produced(admin, out) < len(values):
        if time.perf_counter() - started > 3600:
            raise TimeoutError(f"{run.name}: outputs did not arrive")
        for i, p in enumerate(run.processes):
            if p.poll() is not None:
                raise RuntimeError(f"worker {i} died:\n{run.log(i)[-3000:]}")
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    cpu_us = (run.cpu_seconds() - cpu) / len(values) * 1e6
    return {
        "seconds": seconds,
        "events_per_s": len(values) / seconds,
        "produce_s": produced,
        "cpu_us_per_event": cpu_us,
    }


def _watch_outputs(bootstrap: str, topic: str, expected: int, result: Any) -> None:
    """In its own process: when each decision (by transaction id) is first seen."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"watch-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 1,
            "fetch.error.backoff.ms": 1,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    seen: dict[int, float] = {}
    deadline = time.time() + 600
    while len(seen) < expected and time.time() < deadline:
        # consume(n, timeout) would hold what arrived until n came or the timeout passed,
        # adding up to the timeout to every latency: wait for one, then take what is there.
        first = consumer.poll(0.05)
        if first is None:
            continue
        now = time.time()
        for message in [first, *consumer.consume(1000, 0)]:
            if message.error() is None:
                tx = json.loads(message.value())["transaction_id"]
                seen.setdefault(tx, now)
    consumer.close()
    result.send(seen)


def latency(
    run: Run, events: tuple[list[bytes], list[bytes], list[int]], rate: float, seconds: float
) -> dict[str, float]:
    values, keys, parts = events
    n = min(len(values), int(rate * seconds))
    ids = [json.loads(v)["TRANSACTION_ID"] for v in values[:n]]
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    watcher = ctx.Process(
        target=_watch_outputs, args=(run.bootstrap, f"{run.name}.decisions", n, send)
    )
    watcher.start()
    time.sleep(2.0)  # the reader is assigned and fetching
    producer = _producer(run.bootstrap, 0)
    topic = f"{run.name}.transactions"
    scheduled: list[float] = []
    start = time.time() + 0.1
    for i in range(n):
        due = start + i / rate
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)  # not a busy loop: the machine's two cores run everything
        producer.produce(topic, values[i], keys[i], parts[i])
        producer.poll(0)
        scheduled.append(due)
    producer.flush()
    seen: dict[int, float] = receive.recv()
    watcher.join()
    warm = int(rate)  # the first second is warm-up
    lat = sorted(
        (seen[tx] - due) * 1000
        for tx, due in zip(ids[warm:], scheduled[warm:], strict=True)
        if tx in seen
    )
    missing = n - warm - len(lat)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    return {
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "max_ms": lat[-1],
        "missing": missing,
        "events": n,
    }


def read_decisions(admin: Any, name: str) -> dict[int, dict[str, Any]]:
    import msgspec

    from streamsense.testing import drain_topic

    decode = msgspec.json.decode
    return {
        d["transaction_id"]: d
        for d in (decode(r.value) for r in drain_topic(admin, f"{name}.decisions"))
    }


def check(decisions: dict[int, dict[str, Any]], reference: dict[int, tuple[float, ...]]) -> float:
    """The share of decisions that carry exactly DuckDB's handbook features (floats within 1e-9)."""
    import math

    from handbook_reference import FEATURE_COLUMNS

    exact = 0
    wrong: dict[str, int] = {}
    for tx, d in decisions.items():
        want = reference.get(tx)
        f = d["features"]
        bad = [
            c
            for c, w in zip(FEATURE_COLUMNS, want or (), strict=False)
            if not math.isclose(f[c], w, rel_tol=1e-9, abs_tol=1e-9)
        ]
        exact += want is not None and not bad
        for c in bad:
            wrong[c] = wrong.get(c, 0) + 1
    if os.environ.get("KAFKA_BENCH_DEBUG"):
        print("features that differ:", wrong)
        differ = sorted(tx for tx, d in decisions.items() if reference.get(tx) is None or any(
            not math.isclose(d["features"][c], w, rel_tol=1e-9, abs_tol=1e-9)
            for c, w in zip(FEATURE_COLUMNS, reference[tx], strict=False)))  # fmt: skip
        print("transactions that differ:", len(differ), "first", differ[:5], "last", differ[-5:])
    return exact / len(decisions)


def machine() -> str:
    with open("/proc/cpuinfo") as info:
        models = [line.split(":", 1)[1].strip() for line in info if "model name" in line]
    cpu = models[0] if models else platform.processor()
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"
    )


def quix_packages() -> list[str]:
    """What Quix's virtualenv holds (pip freeze), recorded with every result."""
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        return []
    freeze = [str(python), "-m", "pip", "freeze"]
    return subprocess.run(freeze, capture_output=True, text=True, check=False).stdout.split()


def rotated(peers: list[str], round_index: int) -> list[str]:
    """Round r starts with peer r: over len(peers) rounds each peer runs first once (a broker
    loaded by the runs before is slower: no peer keeps the freshest one)."""
    r = round_index % len(peers)
    return peers[r:] + peers[:r]


def throughput_runs(
    args: argparse.Namespace, admin: Any, client: Any, events: Events, reference: Any, tmp: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    peers = [p for p in args.peers.split(",") if p != "bare"]  # the floor is for latency
    quix_settings = json.loads(args.quix_settings) if args.quix_settings else None
    for round_index in range(args.rounds):
        for workers in [int(w) for w in args.workers.split(",")]:
            for peer in rotated(peers, round_index):
                run = Run(peer, workers, args.bootstrap, tmp, latency=False,
                          quix_settings=quix_settings)  # fmt: skip
                run.create_topics(admin)
                run.start()
                try:
                    run.wait_stable(client)
                    measured = throughput(run, admin, events)
                finally:
                    run.stop()
                checked = check(read_decisions(admin, run.name), reference)
                rows.append({"kind": "throughput", "round": round_index, "peer": peer,
                             "workers": workers, **measured, "exact": checked})  # fmt: skip
                print(f"round {round_index} {peer} x{workers}: "
                      f"{measured['events_per_s']:,.0f} events/s ({measured['seconds']:.1f} s; "
                      f"producing {measured['produce_s']:.1f} s; workers' CPU "
                      f"{measured['cpu_us_per_event']:.0f} us/event); decisions: "
                      f"{checked:.2%} equal DuckDB's", flush=True)  # fmt: skip
    return rows


def latency_runs(
    args: argparse.Namespace, admin: Any, client: Any, events: Events, reference: Any, tmp: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    peers = args.peers.split(",")
    for round_index in range(args.rounds):
        for peer in rotated(peers, round_index):
            run = Run(peer, 1, args.bootstrap, tmp, latency=True,
                      latency_batch_ms=args.latency_batch_ms)  # fmt: skip
            run.create_topics(admin)
            run.start()
            try:
                run.wait_stable(client)
                lat = latency(run, events, args.rate, args.seconds)
            finally:
                run.stop()
            checked = None if peer == "bare" else check(read_decisions(admin, run.name), reference)
            rows.append({"kind": "latency", "round": round_index, "peer": peer, "workers": 1,
                         "rate": args.rate, **lat, "exact": checked})  # fmt: skip
            print(f"round {round_index} {peer} latency at {args.rate:,.0f}/s: "
                  f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, "
                  f"max {lat['max_ms']:.1f} ms, missing {lat['missing']}; decisions: "
                  f"{'computes nothing' if checked is None else f'{checked:.2%} equal'}",
                  flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--limit", type=int, default=300_000)
    parser.add_argument("--peers", default="streamsense,quix")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=3, help="each peer first in one round")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument(
        "--latency-batch-ms",
        type=int,
        default=2,
        help="streamsense's commit interval in the latency run (0: realtime mode)",
    )
    parser.add_argument(
        "--quix-settings",
        default="",
        help="JSON of quixstreams.Application arguments for the throughput runs "
        "(default: QUIX_THROUGHPUT_SETTINGS)",
    )
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]
    from confluent_kafka.admin import AdminClient
    from results import save_results

    from streamsense.brokers.kafka import KafkaBroker

    admin = KafkaBroker(args.bootstrap)
    client = AdminClient({"bootstrap.servers": args.bootstrap})
    if {"quix", "quix-rescan"} & set(args.peers.split(",")):
        ensure_quix_venv()
    started = time.perf_counter()
    events, reference = load_events(args.limit)
    print(f"{len(events[0]):,} events loaded, encoded and computed by DuckDB "
          f"in {time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="kafka-bench-"))
    rows: list[dict[str, Any]] = []
    try:
        if not args.no_throughput:
            rows += throughput_runs(args, admin, client, events, reference, tmp)
        if not args.no_latency:
            rows += latency_runs(args, admin, client, events, reference, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        admin.close()
    settings = {**vars(args), "quix_version": QUIX_VERSION, "quix_venv": quix_packages(),
                "quix_throughput_settings": json.loads(args.quix_settings or "null")
                or QUIX_THROUGHPUT_SETTINGS}  # fmt: skip
    path = save_results(Path(args.results), "kafka_bench", settings, rows)
    print(f"\nmachine: {machine()}; {datetime.now(UTC):%Y-%m-%d}; raw results: {path}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "quix-worker":
        quix_worker(*sys.argv[2:7])
    elif len(sys.argv) > 1 and sys.argv[1] == "bare-worker":
        bare_worker(*sys.argv[2:4])
    else:
        main()
