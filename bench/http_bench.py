"""Decision latency of the fraud app: in process, and over HTTP under open-loop load, side by
side with a bare FastAPI endpoint that only parses the JSON (the floor), in one run.

    .venv/bin/python bench/http_bench.py [--events 200000] [--seconds 10] [--rates 200,1000,3000]
        [--rounds 3]

Setup (not timed): the first ``--events`` handbook transactions go through a FeatureEngine
of the features the fraud app serves, and every customer's and terminal's window rows are
written to the online store (SQLite) of a fresh state dir; a LightGBM model is trained on
6,000 of those transactions' feature vectors (all the frauds among them plus non-frauds) and
registered as ``fraud-light`` production, so the app's cascade is rules → LightGBM
(through onnxruntime). The requests are the transactions that follow, as JSON bodies.

In process: ``serving.decide.decide_event`` called directly on the fraud app's serving object
(parse, online features with the event counted in its windows, rules, model, publish the
event and the decision to the embedded broker), one at a time, on CPU 0.

HTTP: ``uvicorn`` (uvloop, httptools) runs the API in its own process on CPU 0; a separate
load generator process on CPU 1 sends ``POST /v1/decide/transactions`` open-loop at a fixed
rate for ``--seconds`` per rate, after a 2-second warm-up, over up to 64 keep-alive
connections. A request's latency counts from its scheduled send time (as wrk2 does), so a
stalled server is charged for the requests that queued behind the stall; the service time
(from the actual send) is shown too. Any non-200 answer, connection error or request still
unanswered 5 s after the run counts as an error.

Targets (``--targets``): ``bare`` (a FastAPI endpoint that only parses the JSON: the floor),
``streamsense`` (the API of ``streamsense serve``), and two experiments that locate the cost:
``no-middleware`` (the same API without its ``@app.middleware("http")`` guard) and ``asgi``
(``decide_event`` behind a bare ASGI callable, no framework).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import numpy as np
from fastapi import FastAPI, Request, Response

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

DATASET = ROOT.parent / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"
STREAM = "transactions"
PATH = f"/v1/decide/{STREAM}"
KINDS = {
    "bare": "bare FastAPI (parse only)",
    "streamsense": "streamsense /v1/decide",
    "no-middleware": "same, without the http middleware",
    "asgi": "decide_event behind a bare ASGI callable",
}


# -- setup --------------------------------------------------------------------------------
def prepare(state_dir: Path, events: int, requests: int) -> list[bytes]:
    """Fill the online store and the model registry; returns the request bodies."""
    import lightgbm as lgb
    import pyarrow.parquet as pq
    from apps.fraud.serving import online_store

    from streamsense import features as F
    from streamsense.brokers import TopicConfig, open_broker
    from streamsense.serving.registry import ModelRegistry
    from streamsense.store.views import rows_of

    broker = open_broker(f"embedded://{state_dir / 'broker.db'}")
    broker.create_topic(STREAM, TopicConfig(1), exist_ok=True)
    broker.create_topic("fraud.decisions", TopicConfig(1), exist_ok=True)
    broker.close()
    serving = build_serving(state_dir)
    features = serving.features[STREAM].features  # what the app serves, whatever it is
    schema = serving.streams[STREAM].schema

    table = pq.read_table(DATASET).slice(0, events + requests)
    times = table.column("TX_DATETIME").cast("int64").to_numpy() // 1000
    engine = F.FeatureEngine(features)
    payloads = msgspec.convert(table.slice(0, events).to_pylist(), list[schema])
    columns = engine.columns_of([SimpleNamespace(payload=p) for p in payloads])
    values = []
    for lo in range(0, events, 50_000):
        hi = min(lo + 50_000, events)
        result = engine.process(0, times[lo:hi], {k: v[lo:hi] for k, v in columns.items()})
        assert result.names == features.names
        values.append(result.values)
    store = online_store(state_dir)
    for group, state in engine.partition(0).groups.items():
        keys = [k for k in state.buffer.key_of if k is not None]
        for lo in range(0, len(keys), 5_000):
            store.write(engine.view_name(group), rows_of(state.buffer, keys[lo : lo + 5_000]))
    store.close()

    # Train on the later half (the windows are warm there): every fraud, then non-frauds.
    X = np.vstack(values)[events // 2 :]
    y = np.array([p.tx_fraud for p in payloads[events // 2 :]])
    rng = np.random.default_rng(7)
    frauds = np.flatnonzero(y == 1)
    others = rng.choice(np.flatnonzero(y == 0), 6_000 - len(frauds), replace=False)
    chosen = np.concatenate([frauds, others])
    model = lgb.LGBMClassifier(n_estimators=50, num_leaves=15, verbose=-1)
    model.fit(X[chosen], y[chosen])
    artifact = state_dir / "fraud-light.txt"
    model.booster_.save_model(str(artifact))
    registry = ModelRegistry(state_dir / "models")
    version = registry.register(
        "fraud-light", artifact, "lightgbm", features.names, metrics={"rows": len(chosen)}
    )
    registry.set_alias("fraud-light", "production", version)

    rows = table.slice(events).drop_columns(["TX_FRAUD"]).to_pylist()
    return [msgspec.json.encode(row) for row in rows]


def build_serving(state_dir: Path) -> Any:
    from apps.fraud.app import application

    from streamsense.brokers import open_broker

    assert application.serving is not None
    broker = open_broker(f"embedded://{state_dir / 'broker.db'}")
    return application.serving(broker, state_dir)


def percentiles(latencies_ms: list[float]) -> dict[str, float]:
    if not latencies_ms:
        return dict.fromkeys(("p50", "p99", "p999", "max"), float("nan"))
    ordered = sorted(latencies_ms)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"p50": rank(0.5), "p99": rank(0.99), "p999": rank(0.999), "max": ordered[-1]}


# -- in process ---------------------------------------------------------------------------
class _NoProducer:
    """Publishes nothing: what deciding costs without the broker."""

    def send(self, *args: Any, **kwargs: Any) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def in_process(state_dir: Path, bodies: list[bytes], n: int) -> dict[str, Any]:
    from streamsense.serving.decide import decide_event

    os.sched_setaffinity(0, {0})
    serving = build_serving(state_dir)
    for online in serving.features.values():
        online.warm_up()
    results = {}
    for name, producer in [
        ("publishing", serving.broker.producer(linger_ms=2.0)),
        ("not publishing", _NoProducer()),
    ]:
        for body in bodies[:1000]:  # warm-up: model session, SQLite pages, numba dispatch
            decide_event(serving, producer, STREAM, body)
        gc.collect()
        gc.freeze()  # as served (see serving.gc_tuning)
        timings, actions = [], {}
        stages: dict[str, list[float]] = {"features": [], "rules": [], "light": [], "rest": []}
        clock = time.perf_counter
        for i in range(n):
            body = bodies[(1000 + i) % len(bodies)]
            start = clock()
            record = decide_event(serving, producer, STREAM, body)
            timings.append((clock() - start) * 1000)
            known = 0.0
            for stage in ("features", "rules", "light"):
                stages[stage].append(record.latency_ms.get(stage, 0.0))
                known += record.latency_ms.get(stage, 0.0)
            stages["rest"].append(timings[-1] - known)
            outcome = f"{record.tier}:{record.action}"
            actions[outcome] = actions.get(outcome, 0) + 1
        producer.close()
        gc.unfreeze()
        results[name] = {
            "total": percentiles(timings),
            "stages": {k: percentiles(v) for k, v in stages.items()},
            "actions": actions,
        }
    serving.broker.close()
    return results


# -- servers ------------------------------------------------------------------------------
def serve(state_dir: Path, port: int, kind: str) -> None:
    import uvicorn

    if kind == "bare":
        api = FastAPI()

        @api.post("/v1/decide/{stream}")
        async def parse_only(stream: str, request: Request) -> Response:
            msgspec.json.decode(await request.body())
            return Response(b'{"ok":true}', media_type="application/json")

        @api.get("/healthz")
        def healthz() -> Response:
            return Response(b'{"status":"ok"}', media_type="application/json")
    elif kind == "asgi":
        api = raw_asgi_decide(build_serving(state_dir))
    else:
        from streamsense.serving.service import create_api

        api = create_api(build_serving(state_dir))
        if kind == "no-middleware":  # the experiment: the same API without its http guard
            api.user_middleware.clear()
    if kind != "asgi":
        from streamsense.serving.gc_tuning import freeze_after_startup

        api = freeze_after_startup(api)  # as `streamsense serve` does
    uvicorn.run(
        api,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off" if kind == "asgi" else "on",
    )


def raw_asgi_decide(serving: Any) -> Any:
    """The experiment: ``decide_event`` behind a bare ASGI callable, no framework at all."""
    from streamsense.serving.decide import RequestError, decide_event, encode_reply

    producer = serving.broker.producer(linger_ms=2.0)
    for online in serving.features.values():
        online.warm_up()
    gc.collect()
    gc.freeze()
    json_type = (b"content-type", b"application/json")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            status, out = 200, b'{"status":"ok"}'
        else:
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                status = 200
                out = encode_reply(decide_event(serving, producer, scope["path"][11:], body))
            except RequestError as error:
                status, out = error.status, msgspec.json.encode({"error": error.message})
        headers = [json_type, (b"content-length", str(len(out)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not come up")


def child(args: list[str], cpu: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )


# -- the open-loop load generator (its own process) ----------------------------------------
async def _request(
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    port: int,
    payload: bytes,
) -> tuple[float, int]:
    reader, writer = await pool.get()
    sent = time.monotonic()
    try:
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        status = -1
    finally:
        pool.put_nowait((reader, writer))
    return sent, status


async def _phase(
    port: int, bodies: list[bytes], rate: float, seconds: float, connections: int
) -> dict[str, Any]:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    payloads = [head.encode() + f"Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]
    clock = time.monotonic  # not loop.time(): uvloop's is cached per iteration, in ms
    n = int(rate * seconds)
    start = clock() + 0.01
    results: list[tuple[float, float, float, int]] = []  # scheduled, sent, done, status

    async def one(i: int, scheduled: float) -> None:
        sent, status = await _request(pool, port, payloads[i % len(payloads)])
        results.append((scheduled, sent, time.monotonic(), status))

    tasks = []
    i = 0
    while i < n:
        now = clock()
        while i < n and start + i / rate <= now:  # everything due, even if we woke late
            tasks.append(asyncio.ensure_future(one(i, start + i / rate)))
            i += 1
        if i < n:
            wait = start + i / rate - clock()
            await asyncio.sleep(wait - 0.001 if wait > 0.002 else 0)  # spin the last ms
    _done, pending = await asyncio.wait(tasks, timeout=5.0)
    for task in pending:
        task.cancel()
    elapsed = max((r[2] for r in results), default=start) - start
    errors = len(pending) + sum(1 for r in results if r[3] != 200)
    ok = [r for r in results if r[3] == 200]
    while not pool.empty():
        pool.get_nowait()[1].close()
    return {
        "rate": rate,
        "sent": n,
        "ok": len(ok),
        "errors": errors,
        "statuses": sorted({r[3] for r in results if r[3] != 200}),
        "achieved": len(results) / elapsed if elapsed > 0 else 0.0,
        "latency": percentiles([(r[2] - r[0]) * 1000 for r in ok]),
        "service": percentiles([(r[2] - r[1]) * 1000 for r in ok]),
        "worst": sorted(((r[2] - r[0]) * 1000, r[0]) for r in ok)[-20:],
    }


def load(port: int, bodies_file: Path, rate: float, seconds: float, warmup: float) -> None:
    import uvloop

    bodies = bodies_file.read_bytes().splitlines()

    async def main() -> dict[str, Any]:
        await _phase(port, bodies, min(rate, 1000.0), warmup, 64)
        gc.collect()
        gc.disable()  # the generator's own pauses must not count against the server
        return await _phase(port, bodies, rate, seconds, 64)

    print(json.dumps(uvloop.run(main())))


def http_run(
    kind: str, state_dir: Path, bodies_file: Path, rates: list[float], seconds: float
) -> list[dict[str, Any]]:
    port = free_port()
    server = child(["serve", "--state-dir", str(state_dir), "--port", str(port), kind], cpu=0)
    try:
        wait_ready(port)
        results = []
        for rate in rates:
            args = ["load", "--port", str(port), "--bodies", str(bodies_file)]
            args += ["--rate", str(rate), "--seconds", str(seconds)]
            gen = child(args, cpu=1)
            out, _ = gen.communicate(timeout=seconds + 60)
            results.append(json.loads(out))
            time.sleep(1.0)
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    p_serve = sub.add_parser("serve")
    p_serve.add_argument("--state-dir", type=Path, required=True)
    p_serve.add_argument("--port", type=int, required=True)
    p_serve.add_argument("kind", choices=KINDS)
    p_load = sub.add_parser("load")
    p_load.add_argument("--port", type=int, required=True)
    p_load.add_argument("--bodies", type=Path, required=True)
    p_load.add_argument("--rate", type=float, required=True)
    p_load.add_argument("--seconds", type=float, default=10.0)
    p_load.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="200,1000,3000")
    parser.add_argument("--targets", default="bare,streamsense,no-middleware,asgi")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.state_dir, args.port, args.kind)
        return
    if args.command == "load":
        load(args.port, args.bodies, args.rate, args.seconds, args.warmup)
        return
    report(args)


def one_round(args: argparse.Namespace, round_index: int) -> list[dict[str, Any]]:
    """In process, then every HTTP target (their order rotating by round), on a fresh state."""
    from handbook_peers import rotated

    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        bodies = prepare(state_dir, args.events, args.requests)
        bodies_file = state_dir / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(bodies))
        inproc = in_process(state_dir, bodies, args.requests)
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        http = {
            kind: http_run(kind, state_dir, bodies_file, rates, args.seconds)
            for kind in rotated(args.targets.split(","), round_index)
        }
    return in_process_rows(round_index, inproc) + http_rows(round_index, http)


def in_process_rows(round_index: int, inproc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for mode, result in inproc.items():
        parts = [(f"decide, {mode}", result["total"])]
        if mode == "publishing":
            parts += [(f"decide, publishing: {stage}", p) for stage, p in result["stages"].items()]
        rows += [{"round": round_index, "kind": "in process", "part": name,
                  **{f"{k}_ms": v for k, v in p.items()}} for name, p in parts]  # fmt: skip
    return rows


def http_rows(round_index: int, http: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {
            "round": round_index,
            "kind": "http",
            "endpoint": KINDS[kind],
            "rate": f"{r['rate']:g}/s",
            "achieved": r["achieved"],
            **{f"{k}_ms": v for k, v in r["latency"].items()},
            "service_p50_ms": r["service"]["p50"],
            "service_p99_ms": r["service"]["p99"],
            "errors": r["errors"],
            "sent": r["sent"],
        }
        for kind, runs in http.items()
        for r in runs
    ]


def report(args: argparse.Namespace) -> None:
    from results import render, save_results

    load_before = os.getloadavg()[0]  # other work on the machine skews the tails
    rows = []
    for round_index in range(args.rounds):
        rows += one_round(args, round_index)
        print(f"round {round_index} done", flush=True)
    settings = {"events": args.events, "requests": args.requests, "seconds": args.seconds,
                "rates": args.rates, "targets": args.targets, "rounds": args.rounds,
                "load_average_before_after": [load_before, os.getloadavg()[0]]}  # fmt: skip
    path = save_results(Path(args.results), "http_bench", settings, rows)
    print(f"raw results: {path}\n")
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
