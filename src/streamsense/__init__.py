"""streamsense: events → features → decisions, in real time.

The public API is deliberately small; everything else lives in submodules
(``streamsense.brokers``, ``streamsense.runtime``, ``streamsense.testing``...).
"""

from __future__ import annotations

from streamsense.application import Application
from streamsense.brokers import Broker, TopicConfig, TopicPartition, open_broker
from streamsense.errors import InvalidEvent, StreamsenseError
from streamsense.events import Event, Schema, Stream
from streamsense.runtime.app import App, Context, Flow, TopicSink
from streamsense.runtime.repartition import Repartition
from streamsense.runtime.worker import Worker, WorkerConfig

__version__ = "0.1.0"

__all__ = [
    "App",
    "Application",
    "Broker",
    "Context",
    "Event",
    "Flow",
    "InvalidEvent",
    "Repartition",
    "Schema",
    "Stream",
    "StreamsenseError",
    "TopicConfig",
    "TopicPartition",
    "TopicSink",
    "Worker",
    "WorkerConfig",
    "open_broker",
]
