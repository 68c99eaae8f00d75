"""Prometheus metrics in a registry of their own, never prometheus-client's global default:
the embedding application decides what it exposes and where (inject the metrics back end).

    metrics = Metrics()
    metrics.observe_lag(group_lag(broker, app.group, app.sources()))
    body = metrics.render()  # text exposition format, for /metrics or a file

prometheus-client is a dependency of streamsense; importing this module without it raises
ImportError, which callers that treat metrics as optional catch.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from streamsense.runtime.lag import GroupLag

_PARTITION_LABELS = ("group", "topic", "partition")


class Metrics:
    """The gauges streamsense reports, registered in ``registry`` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.lag = Gauge(
            "streamsense_consumer_lag",
            "Offsets between the group's committed offset and the partition's high watermark.",
            _PARTITION_LABELS,
            registry=self.registry,
        )
        self.committed = Gauge(
            "streamsense_consumer_committed_offset",
            "The group's committed (next) offset; -1 when it committed none.",
            _PARTITION_LABELS,
            registry=self.registry,
        )
        self.high_watermark = Gauge(
            "streamsense_partition_high_watermark",
            "The next offset to be written to the partition.",
            _PARTITION_LABELS,
            registry=self.registry,
        )
        self.lag_total = Gauge(
            "streamsense_consumer_lag_total",
            "Lag summed over every partition the group reads.",
            ("group",),
            registry=self.registry,
        )

    def observe_lag(self, lag: GroupLag) -> None:
        for p in lag.partitions:
            labels = (lag.group, p.topic, str(p.partition))
            self.lag.labels(*labels).set(p.lag)
            self.committed.labels(*labels).set(-1 if p.committed is None else p.committed)
            self.high_watermark.labels(*labels).set(p.high)
        self.lag_total.labels(lag.group).set(lag.total)

    def render(self) -> bytes:
        """Every metric of the registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)
