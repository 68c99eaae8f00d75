"""Topics, watermarks and committed offsets on Kafka, through one AdminClient."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
)
from confluent_kafka import TopicPartition as KafkaPartition

# The admin package re-exports these without an __all__, which strict mypy does not see.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from streamsense.brokers.base import (
    RECORD_LIMIT_BYTES,
    PartitionInfo,
    TopicConfig,
    TopicInfo,
    TopicPartition,
)
from streamsense.brokers.kafka_calls import abandon
from streamsense.brokers.kafka_common import (
    ATTEMPT_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    log,
    offsets_of,
    to_error,
)
from streamsense.errors import BrokerUnavailable, ConfigError, TopicNotFound

# Topics Kafka keeps for itself; streamsense's own "__streamsense.*" topics stay visible.
INTERNAL_TOPICS = frozenset(
    {"__consumer_offsets", "__transaction_state", "__share_group_state", "__remote_log_metadata"}
)
_WEEK_MS = 7 * 24 * 3600 * 1000
TOPIC_MAX_MESSAGE_BYTES = 1_048_588  # Kafka's default, set explicitly: a broker may lower it
MIN_COMPACTION_LAG_MS = 3_600_000
_MIB = 1 << 20
_SET_ON_TOPIC = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
# confluent-kafka leaves these factories unannotated.
_EARLIEST: Any = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
_LATEST: Any = OffsetSpec.latest()  # type: ignore[no-untyped-call]


def topic_settings(config: TopicConfig) -> dict[str, str]:
    """Kafka topic configs for a TopicConfig.

    Kafka deletes whole segments, and only closed ones, so a segment that is large or long
    next to the retention keeps records far past it (the defaults roll after 1 GiB or 7
    days). Segments are therefore sized from the retention: at most one segment's worth
    (time: at least a minute; bytes: a tenth of the retention, at least Kafka's 1 MiB
    minimum) beyond what the TopicConfig asks for."""
    settings = {
        "cleanup.policy": "compact" if config.compacted else "delete",
        "max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES),
    }
    if config.compacted:
        # A restore at least once reads each key as of the committed offsets, which may
        # need a key's value from before its latest: compaction leaves them this long.
        settings["min.compaction.lag.ms"] = str(MIN_COMPACTION_LAG_MS)
    if config.retention_ms is not None:
        settings["retention.ms"] = str(config.retention_ms)
        settings["segment.ms"] = str(min(max(config.retention_ms, 60_000), _WEEK_MS))
    if config.retention_bytes is not None:
        settings["retention.bytes"] = str(config.retention_bytes)
        settings["segment.bytes"] = str(min(max(config.retention_bytes // 10, _MIB), 1 << 30))
    return settings


class KafkaAdmin:
    def __init__(self, config: dict[str, Any], *, replication_factor: int, settle_s: float) -> None:
        """``settle_s``: how long to wait for a transaction another producer left open
        (offsets it sent, records it wrote) to end before giving up retryably."""
        self._config = config
        self._admin = AdminClient(config)
        self._replication = replication_factor
        self.settle_s = max(REQUEST_TIMEOUT_S, settle_s)

    # -- topics -----------------------------------------------------------------------------
    def create_topic(self, name: str, config: TopicConfig, *, exist_ok: bool) -> None:
        if config.partitions < 1:
            raise ConfigError(f"topic {name!r} needs at least one partition")
        topic = NewTopic(name, config.partitions, self._replication, config=topic_settings(config))
        future = self._admin.create_topics([topic], request_timeout=REQUEST_TIMEOUT_S)[name]
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                if exist_ok:
                    self._check_existing(name, config)
                    return
                raise ConfigError(f"topic {name!r} already exists") from None
            raise to_error(error, f"creating topic {name!r}") from None
        # The controller answers before every partition has a leader; wait, so the topic
        # can be written and described as soon as this returns.
        self._wait_for(f"topic {name!r} to be ready", lambda: self._ready(name, config.partitions))

    def _check_existing(self, name: str, config: TopicConfig) -> None:
        """A topic made by someone else must still hold what streamsense writes to it. One
        made a moment ago (by another worker starting beside this one) may not be known to
        every broker yet: it is waited for, as for a topic this admin created."""
        self._wait_for(f"topic {name!r} to be known", lambda: self._known(name))
        resource = ConfigResource(ResourceType.TOPIC, name)
        configs = self._admin.describe_configs([resource], request_timeout=REQUEST_TIMEOUT_S)
        try:
            entries = configs[resource].result()
        except KafkaException as error:
            raise to_error(error, f"describing topic {name!r}") from None
        problems = topic_problems(config, entries)
        if problems:
            raise ConfigError(f"topic {name!r} exists with " + "; ".join(problems))

    def delete_topic(self, name: str) -> None:
        future = self._admin.delete_topics([name], request_timeout=REQUEST_TIMEOUT_S)[name]
        try:
            future.result()
        except KafkaException as error:
            raise to_error(error, f"deleting topic {name!r}") from None
        self._wait_for(f"topic {name!r} to go", lambda: name not in self._all_topics())

    def list_topics(self) -> list[str]:
        return sorted(t for t in self._all_topics() if t not in INTERNAL_TOPICS)

    def partition_count(self, name: str) -> int:
        return len(self._metadata(name).partitions)

    def describe_topic(self, name: str) -> TopicInfo:
        count = self.partition_count(name)
        # Configs and both watermarks are asked for at once: one round trip, not three.
        resource = ConfigResource(ResourceType.TOPIC, name)
        configs = self._admin.describe_configs([resource], request_timeout=REQUEST_TIMEOUT_S)
        tps = [TopicPartition(name, p) for p in range(count)]
        lows, highs = self.watermarks(tps)
        try:
            entries = configs[resource].result()
        except KafkaException as error:
            raise to_error(error, f"describing topic {name!r}") from None
        parts = tuple(PartitionInfo(tp.partition, lows[tp], highs[tp]) for tp in tps)
        return TopicInfo(name, _topic_config(count, entries), parts)

    def watermarks(
        self, partitions: Sequence[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Log start offsets and, as read_committed consumers see it, the end of each
        partition (the last stable offset: open transactions are not yet readable)."""
        low = self._list_offsets(partitions, _EARLIEST)
        high = self._list_offsets(partitions, _LATEST)
        return _offsets(low, "log start offsets"), _offsets(high, "end offsets")

    def ends(
        self, partitions: Sequence[TopicPartition], *, latest: bool
    ) -> dict[TopicPartition, int]:
        """The log start (``latest=False``) or end offset of each partition."""
        spec = _LATEST if latest else _EARLIEST
        return _offsets(self._list_offsets(partitions, spec), "partition offsets")

    def settled_end(self, tp: TopicPartition) -> int:
        """The high watermark of ``tp`` once the last stable offset has reached it (see
        Broker.settled_end). A live writer's transaction ends with its commit; one a crashed
        writer left open ends when a producer with its transactional id initialises, else
        when Kafka aborts it (its transaction timeout plus the coordinator's check interval,
        ``transaction.abort.timed.out.transaction.cleanup.interval.ms``)."""
        what = f"reading the end of {tp.topic}[{tp.partition}]"
        end = _offsets(self._list_offsets([tp], _LATEST, committed=False), what)[tp]
        deadline = time.monotonic() + self.settle_s
        pause = 0.02
        while (stable := self.ends([tp], latest=True)[tp]) < end:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"{tp.topic}[{tp.partition}]: a transaction open since offset {stable} "
                    f"did not end within {self.settle_s:.0f} s"
                )
            if pause == 0.02:
                log.info("%s: waiting for the transaction open since %d to end", what, stable)
            time.sleep(pause)
            pause = min(0.5, pause * 2)
        return end

    # -- groups -----------------------------------------------------------------------------
    def committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        what = f"reading group {group!r}'s offsets"
        # Offsets sent in a transaction still open are not answered until it ends.
        deadline = time.monotonic() + self.settle_s
        answer = self._fetch_committed(group, partitions, what, deadline)
        # A transaction that just committed offsets is briefly "unstable" until its markers
        # are written; librdkafka's consumer waits this out, the admin API does not.
        while _unstable(answer) and time.monotonic() < deadline:
            time.sleep(0.02)
            answer = self._fetch_committed(group, partitions, what, deadline)
        found = offsets_of(answer, what)
        return {tp: found.get(tp) for tp in partitions}

    def _fetch_committed(
        self, group: str, partitions: Sequence[TopicPartition], what: str, deadline: float
    ) -> list[KafkaPartition]:
        # require_stable: offsets of a transaction still in flight are not reported as
        # the old value.
        request = ConsumerGroupTopicPartitions(group, [KafkaPartition(*tp) for tp in partitions])
        while True:
            attempt = max(0.1, min(ATTEMPT_TIMEOUT_S, deadline - time.monotonic()))
            futures = self._admin.list_consumer_group_offsets(
                [request], require_stable=True, request_timeout=attempt
            )
            try:
                return list(futures[group].result().topic_partitions)
            except KafkaException as error:
                mapped = to_error(error, what)
                if error.args[0].code() == KafkaError._TIMED_OUT:
                    self._renew(what)
                # The group coordinator may still be loading (a broker that just started),
                # or the broker was away when the request was sent.
                if not mapped.retryable or time.monotonic() > deadline:
                    raise mapped from None
            time.sleep(0.05)

    def alter_group_configs(self, group: str, settings: dict[str, str]) -> None:
        """Set ``settings`` on ``group`` (KIP-848 group configs such as its session timeout)."""
        entries = [
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
            for name, value in settings.items()
        ]
        resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)
        futures = self._admin.incremental_alter_configs(
            [resource], request_timeout=REQUEST_TIMEOUT_S
        )
        try:
            futures[resource].result()
        except KafkaException as error:
            raise to_error(error, f"configuring group {group!r}") from None

    def live_members(self, group: str) -> int:
        """How many consumers are members of ``group`` right now."""
        future = self._admin.describe_consumer_groups([group], request_timeout=REQUEST_TIMEOUT_S)
        what = f"describing group {group!r}"
        try:
            return len(future[group].result().members)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
                return 0
            if error.args[0].code() == KafkaError._TIMED_OUT:
                self._renew(what)
            raise to_error(error, what) from None

    def _renew(self, why: str) -> None:
        """Replace the client after a group request went unanswered: it may be waiting on
        a coordinator that librdkafka decommissioned during a broker restart and will
        never ask about again (see kafka_calls). A new client finds the coordinator anew."""
        log.warning("replacing the admin client: %s timed out", why)
        old, self._admin = self._admin, AdminClient(self._config)
        abandon(old, lambda: None)  # dropped on the reaper thread: destroyed there

    # -- helpers ----------------------------------------------------------------------------
    def _list_offsets(
        self, partitions: Sequence[TopicPartition], spec: Any, *, committed: bool = True
    ) -> Any:
        wanted = {KafkaPartition(*tp): spec for tp in partitions}
        level = IsolationLevel.READ_COMMITTED if committed else IsolationLevel.READ_UNCOMMITTED
        return self._admin.list_offsets(
            wanted,
            isolation_level=level,
            request_timeout=REQUEST_TIMEOUT_S,
        )

    def _metadata(self, name: str) -> Any:
        try:
            # With auto-creation off, asking about one topic cannot create it.
            topics = self._admin.list_topics(topic=name, timeout=REQUEST_TIMEOUT_S).topics
        except KafkaException as error:
            raise to_error(error, f"reading metadata of {name!r}") from None
        found = topics.get(name)
        if found is None or found.error is not None:
            raise TopicNotFound(f"topic {name!r} does not exist")
        return found

    def _all_topics(self) -> set[str]:
        try:
            return set(self._admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics)
        except KafkaException as error:
            raise to_error(error, "listing topics") from None

    def _ready(self, name: str, partitions: int) -> bool:
        try:
            found = self._metadata(name)
        except TopicNotFound:
            return False
        leaders = [p.leader for p in found.partitions.values()]
        return len(leaders) == partitions and all(leader >= 0 for leader in leaders)

    def _known(self, name: str) -> bool:
        """The topic's metadata is served with a leader for every partition it has."""
        try:
            found = self._metadata(name)
        except TopicNotFound:
            return False
        return bool(found.partitions) and all(p.leader >= 0 for p in found.partitions.values())

    @staticmethod
    def _wait_for(what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        while not done():
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"timed out waiting for {what}")
            time.sleep(0.02)


def _unstable(partitions: list[KafkaPartition]) -> bool:
    return any(
        p.error is not None and p.error.code() == KafkaError.UNSTABLE_OFFSET_COMMIT
        for p in partitions
    )


def _offsets(futures: Mapping[KafkaPartition, Any], what: str) -> dict[TopicPartition, int]:
    result = {}
    for kafka_tp, future in futures.items():
        try:
            result[TopicPartition(kafka_tp.topic, kafka_tp.partition)] = future.result().offset
        except KafkaException as error:
            raise to_error(error, what) from None
    return result


def topic_problems(config: TopicConfig, entries: Mapping[str, Any]) -> list[str]:
    """How an existing topic's settings fall short of ``config`` and of the records
    streamsense writes (empty when they do not)."""
    problems = []
    policy = getattr(entries.get("cleanup.policy"), "value", None) or "delete"
    if config.compacted and "compact" not in policy:
        problems.append(f"cleanup.policy={policy}, not compact (set cleanup.policy=compact)")
    limit = getattr(entries.get("max.message.bytes"), "value", None)
    if limit is not None and int(limit) < RECORD_LIMIT_BYTES + 4096:
        problems.append(
            f"max.message.bytes={limit}, below the {RECORD_LIMIT_BYTES + 4096} bytes a record "
            f"may take (set max.message.bytes={TOPIC_MAX_MESSAGE_BYTES})"
        )
    return problems


def _topic_config(partitions: int, entries: Mapping[str, Any]) -> TopicConfig:
    """The TopicConfig a topic was created with: retention only where set on the topic
    itself, so a topic created without one reads back without one."""

    def own(name: str) -> int | None:
        entry = entries.get(name)
        if entry is None or entry.source != _SET_ON_TOPIC:
            return None
        return int(entry.value)

    policy = entries.get("cleanup.policy")
    compacted = policy is not None and "compact" in (policy.value or "")
    return TopicConfig(partitions, own("retention.ms"), own("retention.bytes"), compacted)
