"""Overview: the app's flows as a graph (source → stages → sinks), events in and out per
second, what waits in the broker, dead letters, and decision latencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from streamsense.ui.context import FlowShape, UiContext
from streamsense.ui.sampler import Sample, Sampler
from streamsense.ui.series import Chart, committed_sum, high_sum, rate, rates_chart


@dataclass
class FlowView:
    shape: FlowShape
    produced: int  # records in the source topic (its end offsets)
    consumed: int  # the app's committed offsets on it
    in_rate: float | None
    waiting: int  # produced - consumed: what the worker has still to take
    dead_letters: int
    sink_rates: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Overview:
    name: str
    flows: list[FlowView]
    produced: int
    consumed: int
    latencies: dict[str, tuple[float, float, int]]
    known_app: bool


def overview(context: UiContext, sampler: Sampler) -> Overview:
    samples = sampler.snapshot()
    # A first sample of offsets only: the sampler thread reads the records.
    newest = samples[-1] if samples else sampler.latest(follow=False)
    flows = [_flow(shape, newest, samples) for shape in context.flows()]
    with sampler.lock:
        latencies = sampler.decisions.percentiles(by_stage=True)
    return Overview(
        name=context.name,
        flows=flows,
        produced=sum(f.produced for f in flows),
        consumed=sum(f.consumed for f in flows),
        latencies=latencies,
        known_app=context.app is not None,
    )


def _flow(shape: FlowShape, newest: Sample, samples: list[Sample]) -> FlowView:
    produced = high_sum(newest, shape.source)
    consumed = committed_sum(newest, shape.source)
    sinks = {
        topic: rate(samples, partial(high_sum, topic=topic))
        for _, ts in shape.sinks
        for topic in ts
    }
    return FlowView(
        shape=shape,
        produced=produced,
        consumed=consumed,
        in_rate=rate(samples, partial(committed_sum, topic=shape.source)),
        waiting=max(0, produced - consumed),
        dead_letters=high_sum(newest, shape.dead_letters),
        sink_rates=sinks,
    )


def throughput_chart(context: UiContext, sampler: Sampler) -> Chart:
    """Events taken per second from each source topic (the app's committed offsets)."""
    totals: dict[str, Callable[[Sample], int]] = {
        f"{topic} in": partial(committed_sum, topic=topic) for topic in context.source_topics()
    }
    for topic in context.source_topics():
        totals[f"{topic} produced"] = partial(high_sum, topic=topic)
    return rates_chart(sampler.snapshot(), totals)
