"""A fast flood of hostile HTTP requests over raw sockets (issue #21): random paths, invalid
UTF-8, huge headers, wrong or missing keys, lying Content-Length, bad JSON, wrong types,
oversized bodies, garbage instead of HTTP. Raw bytes, because an HTTP client refuses to send
most of these, and fast: 10,000 requests take seconds, not minutes."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from urllib.parse import quote

GOOD_EVENT = {
    "TRANSACTION_ID": 1,
    "TX_DATETIME": "2026-01-01T00:00:00",
    "CUSTOMER_ID": 7,
    "TERMINAL_ID": 9,
    "TX_AMOUNT": 12.5,
}
# Status "garbage" when the server closed the connection without an HTTP answer.
NO_ANSWER = 0


def _random_text(rng: random.Random, size: int) -> str:
    return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(size))


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(9)
    if kind == 0:
        return b"{" * rng.randrange(1, 5000)  # deep nesting, unclosed
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == 2:
        return b'{"TX_AMOUNT": "\xff\xfe", "TRANSACTION_ID": 1}'  # invalid UTF-8
    if kind == 3:
        field = rng.choice(list(GOOD_EVENT))
        wrong = rng.choice([None, [], {}, "x", True, 1e308, -(2**70), "NaN", 2**64])
        return json.dumps({**GOOD_EVENT, field: wrong}).encode()
    if kind == 4:
        return b'{"TX_AMOUNT": NaN, "TX_DATETIME": Infinity}'
    if kind == 5:
        return json.dumps([GOOD_EVENT | {"TX_AMOUNT": "12"}] * rng.randrange(1, 50)).encode()
    if kind == 6:
        return json.dumps({**GOOD_EVENT, "TX_DATETIME": "99999-01-01T00:00:00"}).encode()
    if kind == 7:
        return b"x" * rng.randrange(60_000, 200_000)  # over the 64 KiB limit
    return json.dumps({"version": _random_text(rng, 8)}).encode()


def _path(rng: random.Random) -> bytes:
    choices: list[Callable[[], bytes]] = [
        lambda: f"/v1/{_random_text(rng, rng.randrange(1, 40))}".encode(errors="replace"),
        lambda: b"/v1/" + quote(_random_text(rng, rng.randrange(1, 40)), safe="/").encode(),
        lambda: b"/v1/decide/transactions",
        lambda: b"/v1/events/transactions",
        lambda: b"/v1/decide/" + bytes(rng.randrange(128, 256) for _ in range(8)),
        lambda: b"/v1/features/fraud.customer_id/%ff%fe?at=" + b"%ff" * rng.randrange(1, 9),
        lambda: b"/v1/models/m/aliases/a",
        lambda: b"/metrics",
        lambda: b"/" + b"a/" * rng.randrange(1, 2000),
        lambda: b"/v1/features/x/y?" + b"&".join(b"at=%d" % i for i in range(rng.randrange(500))),
    ]
    return rng.choice(choices)().replace(b" ", b"%20").replace(b"\r", b"").replace(b"\n", b"")


def hostile_request(rng: random.Random, api_key: str) -> tuple[bytes, bool]:
    """One request, as bytes on the wire, and whether to wait for the answer (not for a
    request whose body is shorter than it says: the client hangs up instead)."""
    if rng.random() < 0.05:  # not HTTP at all
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 500))) + b"\r\n\r\n", True
    method = rng.choice([b"POST", b"POST", b"GET", b"PUT", b"DELETE", b"PATCH", b"BREW"])
    body = _body(rng) if method != b"GET" else b""
    headers = [b"Host: 127.0.0.1", b"Connection: close", b"Content-Type: application/json"]
    auth = rng.choice([f"Bearer {api_key}", f"Bearer {api_key}", "Bearer nope", "Basic x", ""])
    if auth:
        headers.append(f"Authorization: {auth}".encode())
    length = rng.choice([len(body), len(body), len(body) + 10, max(len(body) - 1, 0), -1, -2])
    if length == -2:  # chunked: no declared length, one chunk over the body limit
        headers.append(b"Transfer-Encoding: chunked")
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) + 70_000, body + b" " * 70_000)
    else:
        headers.append(b"Content-Length: %d" % length if length >= 0 else b"Content-Length: lots")
    if rng.random() < 0.1:
        headers.append(b"X-Big: " + b"A" * rng.randrange(8_000, 300_000))
    if rng.random() < 0.1:
        headers.extend(b"X-N%d: %d" % (i, i) for i in range(rng.randrange(100, 2000)))
    head = b"%s %s HTTP/1.1\r\n" % (method, _path(rng)) + b"\r\n".join(headers)
    return head + b"\r\n\r\n" + body, length != len(body) + 10


async def _send(host: str, port: int, request: bytes, wait: bool, timeout: float) -> int:
    """The answer's status code, or NO_ANSWER when the server closed without one (or the
    client hung up without waiting)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return NO_ANSWER
    try:
        writer.write(request)
        await asyncio.wait_for(writer.drain(), timeout)
        if not wait:
            return NO_ANSWER
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else NO_ANSWER
    except (OSError, TimeoutError):
        return NO_ANSWER
    finally:
        writer.close()


async def flood(
    host: str, port: int, api_key: str, *, count: int, seed: int, concurrency: int = 16
) -> Counter[int]:
    """Send ``count`` hostile requests, ``concurrency`` at a time; statuses counted."""
    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    queue = (hostile_request(rng, api_key) for _ in range(count))  # made as sent: some are big

    async def sender() -> None:
        for request, wait in queue:
            statuses[await _send(host, port, request, wait, timeout=20)] += 1

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return statuses
