"""The records of the IoT app: readings in, scores and alerts out."""

from __future__ import annotations

import msgspec

import streamsense as ss


class Reading(ss.Schema):
    """One sensor reading. ``series`` is the key: one sensor of one machine, or one NAB
    file (``<category>/<name>``); ``seq`` is its row in its file (exports keep file order)."""

    series: str
    timestamp: int  # epoch milliseconds
    value: float
    seq: int = 0
    machine: str = ""
    sensor: str = ""


class Scored(ss.Schema, omit_defaults=True):
    """A reading with its score; one that raises an alert also carries the series' rolling
    features at that reading (when the pipeline computes them), for the alert's record."""

    series: str
    timestamp: int
    value: float
    seq: int
    score: float
    detector: str
    machine: str = ""
    sensor: str = ""
    alert: bool = False
    features: dict[str, float] = msgspec.field(default_factory=dict)


class Alert(ss.Schema):
    """What an action sink receives: which series (and machine), when, how anomalous,
    which detector on which inputs, and why."""

    series: str
    machine: str
    timestamp: int
    score: float
    detector: str
    features: dict[str, float]
    reason: str
    action: str = "alert"  # what action sinks select on


READINGS = ss.Stream("readings", Reading, key="series", time="timestamp", partitions=4)
# The scored readings that name a machine, re-keyed by machine (a repartition, taken in
# event-time order): all sensors of a machine meet in one keyed state.
MACHINE_READINGS = ss.Stream(
    "machine-readings",
    Scored,
    key="machine",
    time="timestamp",
    partitions=4,
    upstream_partitions=4,
)
SCORES_TOPIC = "iot.scores"
MACHINE_SCORES_TOPIC = "iot.machine-scores"
ALERTS_TOPIC = "iot.alerts"
