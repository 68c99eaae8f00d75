"""A deliberately slow app on 4 partitions, for the supervisor's scale-by-lag tests.

Each event waits $STREAMSENSE_SLOW_MS milliseconds (default 3), like a stage that calls an
outside service: the wait uses no CPU, so more workers drain a backlog faster even on a
busy machine. Each output carries the user's running count, so state lost or repeated when
partitions move between workers shows as a gap or a repeat in 1, 2, 3...

Topic and group names start with $STREAMSENSE_SLOW_NAME (default "slow"), so tests on a
shared Kafka broker each get their own.
"""

from __future__ import annotations

import os
import time
from typing import Any

import streamsense as ss
from tests.apps.counter import Click

PARTITIONS = 4
SLOW_S = float(os.environ.get("STREAMSENSE_SLOW_MS", "3")) / 1000


def handle(click: Click, ctx: ss.Context) -> dict[str, Any]:
    time.sleep(SLOW_S)
    n = ctx.state.get(0) + 1
    ctx.state.set(n)
    return {"user": click.user, "n": n, "source": ctx.event.id}


def build(name: str) -> tuple[ss.App, ss.Stream[Click]]:
    clicks = ss.Stream(f"{name}.clicks", Click, key="user", time="ts", partitions=PARTITIONS)
    app = ss.App(name)
    app.flow(clicks).stage("handle", handle).sink(ss.TopicSink(f"{name}.out"))
    return app, clicks


app, clicks = build(os.environ.get("STREAMSENSE_SLOW_NAME", "slow"))
