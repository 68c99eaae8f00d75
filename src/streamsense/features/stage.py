"""The feature engine as a pipeline stage: each event leaves it with its feature vector.

Late events (older than the partition's watermark) go to ``<source>.late`` with their
original payload; windows that close (tumbling, hopping, session) go to
``<stage>.windows`` with their final values. A partition with no event for
``idle_timeout_ms`` (by the injected clock) advances its watermark so windows still close.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import numpy.typing as npt

from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError
from streamsense.events import Event
from streamsense.features.definitions import FeatureSet
from streamsense.features.engine import BatchResult, FeatureEngine
from streamsense.features.entries import Entry
from streamsense.features.group import Final
from streamsense.store.online import OnlineStore

if TYPE_CHECKING:
    from streamsense.store.views import OnlineView

_encode = msgspec.json.Encoder().encode


class Enriched(msgspec.Struct, frozen=True):
    """An event's payload with its features, as the next stages receive it."""

    payload: Any
    features: dict[str, float | int]


class FeatureLogEntry(msgspec.Struct, frozen=True):
    event_id: str
    key: str
    event_time: int
    served_at: int
    features: dict[str, float | int]


class FeatureStage:
    def __init__(
        self,
        name: str,
        features: FeatureSet,
        *,
        allowed_lateness_ms: int = 0,
        idle_timeout_ms: int | None = 60_000,
        clock: Clock = SYSTEM_CLOCK,
        online: OnlineStore | None = None,
        feature_log: bool = True,
        vectors: bool = True,
    ) -> None:
        """``vectors``: each event goes on as ``Enriched`` (its payload and a dict of its
        features); False passes the payloads on unchanged and keeps the batch's features
        as one matrix (``batch_columns``) for a stage that reads them by column: for wide
        feature sets a dict per event costs more than the engine's folds. The feature log
        records each event's dict, so it needs them."""
        if feature_log and not vectors:
            raise ConfigError(f"feature stage {name!r}: the feature log needs vectors=True")
        self.name = name
        self.vectors = vectors
        self._columns: dict[int, npt.NDArray[np.float64]] = {}
        self.engine = FeatureEngine(features, allowed_lateness_ms=allowed_lateness_ms)
        self.idle_timeout_ms = idle_timeout_ms
        self.clock = clock
        self.late_topic = f"{self.engine.source.topic}.late"
        self.windows_topic = f"{name}.windows"
        self.feature_log_topic = f"{name}.feature-log" if feature_log else None
        # Imported here: the store's views are built on this package (no import cycle).
        from streamsense.store.views import OnlineView

        self.views: dict[str, OnlineView] = (
            {}
            if online is None
            else {
                group: OnlineView(self.engine.view_name(group), plan, online)
                for group, plan in self.engine.plans.items()
            }
        )
        self.late_events = 0
        self._integer_columns = [f.output_dtype == "int64" for f in features.features]
        self._last_event_ms: dict[int, int] = {}

    def attach_online(self, store: OnlineStore) -> None:
        """Serve this stage's features from ``store`` (written as batches are processed)."""
        from streamsense.store.views import OnlineView

        self.views = {
            group: OnlineView(self.engine.view_name(group), plan, store)
            for group, plan in self.engine.plans.items()
        }

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        configs = {
            self.late_topic: TopicConfig(partitions),
            self.windows_topic: TopicConfig(partitions),
        }
        if self.feature_log_topic is not None:
            configs[self.feature_log_topic] = TopicConfig(partitions)
        return configs

    def process_batch(
        self, partition: int, events: list[Event[Any]], values: list[Any]
    ) -> tuple[list[Any], list[OutRecord]]:
        # One clock reading per batch: its events are served together.
        served_at = self._last_event_ms[partition] = self.clock.now_ms()
        result = self.engine.process_events(partition, events)
        extra: list[OutRecord] = []
        if self.vectors:
            out = self._enriched(events, values, result, served_at, extra)
        else:
            out = self._columns_kept(partition, values, result)
            if result.late.any():
                late = zip(events, result.late.tolist(), strict=True)
                extra.extend(self._late_record(e, result) for e, is_late in late if is_late)
        extra.extend(self._final_record(partition, f) for f in result.finals)
        self._write_online(partition, events, result)
        return out, extra

    def _enriched(
        self,
        events: list[Event[Any]],
        values: list[Any],
        result: BatchResult,
        served_at: int,
        extra: list[OutRecord],
    ) -> list[Any]:
        """Each event's payload with its feature dict (None for late ones, which go to the
        late topic), and its feature log record."""
        out: list[Any] = []
        late = result.late.tolist()
        for event, value, vector, is_late in zip(
            events, values, self._vectors(result), late, strict=True
        ):
            if is_late:
                extra.append(self._late_record(event, result))
                out.append(None)
            else:
                out.append(Enriched(value, vector))
                if self.feature_log_topic is not None:
                    extra.append(self._log_record(event, vector, served_at))
        return out

    def _columns_kept(self, partition: int, values: list[Any], result: BatchResult) -> list[Any]:
        """``vectors=False``: the payloads on (None for late ones), features kept by column."""
        if not result.late.any():
            self._columns[partition] = result.values
            return list(values)
        self._columns[partition] = result.values[~result.late]
        return [None if is_late else v for v, is_late in zip(values, result.late, strict=True)]

    def batch_columns(self, partition: int) -> npt.NDArray[np.float64]:
        """With ``vectors=False``: the features of the partition's last batch, a row per
        event that went on (late ones left out), a column per feature in the order of
        ``engine.features.names``."""
        return self._columns[partition]

    def _log_record(
        self, event: Event[Any], vector: dict[str, float | int], served_at: int
    ) -> OutRecord:
        """The feature log: the vector each event was given, with its id and when."""
        assert self.feature_log_topic is not None
        event_id = event.id
        body = FeatureLogEntry(event_id, event.key, event.event_time, served_at, vector)
        return OutRecord(self.feature_log_topic, _encode(body), event_id.encode(), event.partition)

    def _write_online(self, partition: int, events: list[Event[Any]], result: BatchResult) -> None:
        """Online stores are sinks that stay correct when written again (last write wins
        by event time), so they are written as batches are processed."""
        if not self.views or not events:
            return
        engine = self.engine.partition(partition)
        for group, view in self.views.items():
            keys = {
                getattr(e.payload, group)
                for e, late in zip(events, result.late, strict=True)
                if not late
            }
            view.write(engine.groups[group].buffer, sorted(keys, key=str))

    def _vectors(self, result: BatchResult) -> list[dict[str, float | int]]:
        """One dict per event, built column by column (numpy does the int conversion)."""
        columns = [
            (result.values[:, j].astype(np.int64) if is_int else result.values[:, j]).tolist()
            for j, is_int in enumerate(self._integer_columns)
        ]
        names = self.engine.features.names
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

    def _late_record(self, event: Event[Any], result: BatchResult) -> OutRecord:
        self.late_events += 1
        headers = (("source", event.id.encode()), ("reason", b"older than the watermark"))
        return OutRecord(
            self.late_topic,
            _encode(event.payload),
            event.key.encode(),
            partition=event.partition,
            headers=headers,
        )

    def _final_record(self, partition: int, final: Final) -> OutRecord:
        body = {
            "feature": final.feature,
            "key": final.key,
            "start": final.start,
            "end": final.end,
            "value": final.value,
        }
        return OutRecord(
            self.windows_topic,
            _encode(body),
            str(final.key).encode(),
            partition=partition,
        )

    def on_idle(self, partition: int, now_ms: int) -> list[OutRecord]:
        last = self._last_event_ms.get(partition)
        if self.idle_timeout_ms is None or last is None or now_ms - last < self.idle_timeout_ms:
            return []
        engine = self.engine.partition(partition)
        target = now_ms - self.idle_timeout_ms - self.engine.lateness_ms
        return [self._final_record(partition, f) for f in engine.advance(target)]

    def state_changes(self, partition: int) -> tuple[bytes, list[Entry]]:
        return self.engine.partition(partition).state_changes()

    def restore(
        self, partition: int, meta: bytes | None, entries: Iterable[tuple[bytes, bytes]]
    ) -> int:
        self.drop(partition)
        if meta is None:
            return 0
        return self.engine.partition(partition).restore_entries(meta, entries)

    def drop(self, partition: int) -> None:
        self.engine.partitions.pop(partition, None)
        self._columns.pop(partition, None)
        self._last_event_ms.pop(partition, None)
