"""A small stateful app for runtime tests: counts and sums each user's clicks.

Each output carries the running count, so a lost or replayed state change shows up as a
gap or a repeat in the sequence 1, 2, 3... of a user.
"""

from __future__ import annotations

from typing import Any

import streamsense as ss


class Click(ss.Schema):
    user: str
    ts: int
    amount: float


clicks = ss.Stream("clicks", Click, key="user", time="ts", partitions=3, max_bytes=2048)


def count(click: Click, ctx: ss.Context) -> dict[str, Any]:
    n, total = ctx.state.get((0, 0.0))
    n += 1
    total += click.amount
    ctx.state.set((n, total))
    return {"user": click.user, "n": n, "total": round(total, 6), "source": ctx.event.id}


app = ss.App("counter")
app.flow(clicks).stage("count", count).sink(ss.TopicSink("counter.counts"))


def make_clicks(n: int, users: int = 17, start_ms: int = 1_600_000_000_000) -> list[Click]:
    return [Click(f"user-{i % users}", start_ms + i * 1000, float(i % 10)) for i in range(n)]
