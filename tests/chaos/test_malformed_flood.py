"""A flood of malformed records among valid payments: each bad record goes to the dead
letters with its reason, every valid payment is decided exactly once, and the group's lag
returns to 0."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.chaos.checks import assert_one_decision_each, tally_figures
from tests.chaos.harness import Item, payment_items
from tests.chaos.pipeline import ChaosPipeline

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(120)]
VALID, MALFORMED, RATE = 3000, 3000, 1000.0  # half the stream is garbage, at 1,000 records/s


def malformed(n: int, seed: int) -> list[Item]:
    """Every kind of bad input the design names, in turn."""
    now = int(time.time() * 1000)
    rng = random.Random(seed)
    kinds = [
        lambda i: b"\x00\xff not json " + str(i).encode(),
        lambda i: b'{"id": "bad%d", "user": "u"}' % i,  # fields missing
        lambda i: (
            b'{"id": "bad%d", "user": "u", "ts": %d, "amount": "ten", "risk": 0.1}' % (i, now)
        ),
        lambda i: (
            b'{"id": "bad%d", "user": "u", "ts": %d, "amount": 1e999, "risk": 0.1}' % (i, now)
        ),  # infinite
        lambda i: (
            b'{"id": "bad%d", "user": "u", "ts": %d, "amount": 5.0, "risk": 0.1}'
            % (i, now + 3 * 86_400_000)
        ),  # three days in the future
        lambda i: b'{"id": "bad%d", "pad": "%s"}' % (i, b"x" * 70_000),  # over 64 KiB
    ]
    return [
        Item(None, f"user-{rng.randrange(40)}".encode(), kinds[i % len(kinds)](i)) for i in range(n)
    ]


def test_a_flood_of_malformed_events_is_dead_lettered_and_valid_ones_decided(
    make_pipeline: Callable[..., ChaosPipeline], figures: dict[str, Any]
) -> None:
    valid, bad = payment_items(VALID, seed=3), malformed(MALFORMED, seed=3)
    mixed = [item for pair in zip(valid, bad, strict=True) for item in pair]
    pipeline = make_pipeline(exactly_once=True)  # dead letters commit with the offsets
    pipeline.start_worker("w0")
    pipeline.feed(mixed, RATE)
    started = time.time()
    drained = pipeline.wait_drained(VALID, timeout=80)
    result = pipeline.finish([i.event_id for i in valid if i.event_id])

    assert_one_decision_each(result, exactly_once=True)
    dead = pipeline.dead_letter_records()
    assert len({dict(r.headers)["source"] for r in dead}) == len(dead) == MALFORMED
    reasons = Counter(re.sub(r"\d+", "N", dict(r.headers)["reason"].decode())[:48] for r in dead)
    figures.update(
        fault=f"{MALFORMED} malformed records among {VALID} valid ones at {RATE:.0f}/s",
        delivery="exactly once",
        dead_letters=len(dead),
        dead_letter_reasons=dict(reasons),
        **tally_figures(result),
        drain_s=round(drained - started, 2),
    )
