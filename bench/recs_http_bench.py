"""Latency of `GET /v1/recommend/{user}?k=20` (apps/recs, issue #16) under open-loop load.

    python bench/recs_http_bench.py [--rate 500] [--seconds 10] [--rounds 3] [--data DIR]
                                    [--no-pin] [--results DIR]

Setup (not timed): `streamsense replay apps/recs` of the MovieLens catalogue and ratings
into a fresh state dir (topics and the stage's state changelog). Each round then starts
`streamsense serve apps/recs` on it (its own process, CPU 0 when taskset is there), which
loads its model from the changelog, follows the topics from there and is ready (/readyz)
once caught up; the seconds to ready are recorded. Load: requests for random known users
are scheduled at a fixed rate for --seconds after a 2-second warm-up, from this process
(CPU 1), over up to 64 keep-alive connections. A request's latency counts from its
scheduled send time (as wrk2 does): a stalled server is charged for the requests that queue
behind it. Non-200 answers, errors and requests still unanswered 5 s after the run are
errors; degraded answers are counted. Rows (one per round, with the machine's load average
then: the machine is shared) go to --results (bench/results.py prints the table).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from apps.recs.inputs import ratings_table  # noqa: E402
from results import save_results  # noqa: E402

STREAMSENSE = str(Path(sys.executable).parent / "streamsense")
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
WARM_UP_S = 2.0


def prepare(data: Path, state: Path) -> np.ndarray:
    """The pipeline replayed into ``state``; returns the user ids."""
    command = [STREAMSENSE, "replay", str(ROOT / "apps" / "recs"), "--ratings",
               str(data / "ratings.csv"), "--movies", str(data / "movies.csv"),
               "--state-dir", str(state)]  # fmt: skip
    subprocess.run(command, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return np.unique(ratings_table(data / "ratings.csv").column("userId").to_numpy())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(state: Path, port: int, pin: bool) -> subprocess.Popen[bytes]:
    command = [STREAMSENSE, "serve", str(ROOT / "apps" / "recs")]
    command += ["--state-dir", str(state), "--port", str(port)]
    if pin and shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    return subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL)


def wait_ready(port: int) -> None:
    """Until the server's model has every rating (GET /readyz)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not catch up within 300 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(state: Path, users: np.ndarray, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    started = time.monotonic()
    server = start_server(state, port, not args.no_pin)
    try:
        wait_ready(port)
        ready_s = time.monotonic() - started
        cpu = cpu_seconds(server.pid)
        result = uvloop.run(run_load(port, users, args.rate, args.seconds))
        # The server's own CPU per request (warm-up included): what an answer costs,
        # whatever else the machine runs; the latencies say what the machine allowed.
        served = args.rate * (args.seconds + WARM_UP_S)
        cpu_ms = (cpu_seconds(server.pid) - cpu) * 1000 / served
    finally:
        server.terminate()
        server.wait(10)
    row = {"ready_s": ready_s, "cpu_ms_per_request": cpu_ms, "load_average": os.getloadavg()[0]}
    return {**result, **row}


async def _get(
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]], port: int, path: str
) -> tuple[int, bytes]:
    """One GET over a pooled keep-alive connection (plain asyncio streams: an HTTP client
    library would cost the generator more than the server)."""
    reader, writer = await pool.get()
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(head[9:12]), await reader.readexactly(length)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return -1, b""
    finally:
        pool.put_nowait((reader, writer))


async def run_load(port: int, users: np.ndarray, rate: float, seconds: float) -> dict[str, float]:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    rng = np.random.default_rng(1)
    latencies: list[float] = []
    errors = degraded = 0

    async def one(user: int, scheduled: float, record: bool) -> None:
        nonlocal errors, degraded
        status, body = await _get(pool, port, f"/v1/recommend/{user}?k=20")
        if record:
            latencies.append((time.monotonic() - scheduled) * 1000)
            errors += status != 200
            degraded += b'"degraded":true' in body

    tasks = []
    for phase_seconds, record in ((WARM_UP_S, False), (seconds, True)):
        start = time.monotonic()
        n = int(rate * phase_seconds)
        i = 0
        while i < n:
            now = time.monotonic()
            while i < n and start + i / rate <= now:  # everything due, even if woken late
                user = int(users[rng.integers(len(users))])
                tasks.append(asyncio.ensure_future(one(user, start + i / rate, record)))
                i += 1
            wait = start + i / rate - time.monotonic()
            await asyncio.sleep(wait - 0.001 if wait > 0.002 else 0)
    await asyncio.wait(tasks, timeout=5)  # unanswered ones count as errors below
    values = np.asarray(latencies)
    sent = int(rate * seconds)
    return {
        "sent": sent,
        "answered": len(values),
        "errors": errors + sent - len(values),
        "degraded": degraded,
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "p999_ms": float(np.percentile(values, 99.9)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "../shared/datasets/movielens-small")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="Server restarts, each measured.")
    parser.add_argument(
        "--no-pin", action="store_true", help="Let the OS place server and generator."
    )
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if not args.no_pin and shutil.which("taskset"):
        os.sched_setaffinity(0, {1})
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder)
        users = prepare(args.data, state)
        for n in range(args.rounds):
            rows.append({"round": n, **one_round(state, users, args)})
            row = rows[-1]
            print(
                f"round {n + 1}: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                f"p99.9 {row['p999_ms']:.2f} ms; {row['answered']:,} answered, "
                f"{row['errors']} errors, {row['degraded']} degraded; ready in "
                f"{row['ready_s']:.1f} s; server CPU {row['cpu_ms_per_request']:.3f} ms per "
                f"request; load average {row['load_average']:.1f}",
                flush=True,
            )
    p99 = sorted(r["p99_ms"] for r in rows)
    print(
        f"GET /v1/recommend/{{user}}?k=20 at {args.rate:,.0f}/s for {args.seconds:.0f} s: "
        f"p99 median {statistics.median(p99):.2f} ms ({p99[0]:.2f}-{p99[-1]:.2f}) over "
        f"{len(rows)} rounds (goal <= 10 ms)"
    )
    settings = {"rate": args.rate, "seconds": args.seconds, "pinned": not args.no_pin}
    print(f"results: {save_results(Path(args.results), 'recs_http_bench', settings, rows)}")


if __name__ == "__main__":
    main()
