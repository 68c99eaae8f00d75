"""How Kafka consumers form a group: KIP-848's consumer protocol (the default) or the
classic one.

The consumer protocol (Kafka 4.0+, librdkafka 2.12+) moves the assignment to the broker
and reconciles it incrementally: a member that joins, leaves or dies moves only the
partitions that must move, and every other member keeps reading and committing its own
without a pause. Its server-side ``range`` assignor gives partition p of every topic with
the same partition count to one member (co-partitioning: a key's keyed state and all its
sources stay together) and is sticky. The classic protocol's cooperative-sticky assignor
is incremental too, but balances partitions one by one and splits partition p of two
topics between members, which keyed state cannot allow; so ``classic`` keeps the eager
range assignor (every rebalance revokes everything), for brokers older than Kafka 4.

Under the consumer protocol the session timeout and heartbeat interval are the group's
own configs on the broker (``consumer.session.timeout.ms``, ``consumer.heartbeat.
interval.ms``), bounded by the broker's ``group.consumer.min.session.timeout.ms`` (45 s by
default) and ``group.consumer.min.heartbeat.interval.ms`` (5 s). ``configure_group`` sets
them from the worker's session timeout; a broker that refuses (bounds, permissions) keeps
its own values, with a warning: failover is then that much slower, nothing else changes.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, get_args

from streamsense.brokers.kafka_common import log
from streamsense.errors import ConfigError, StreamsenseError

GroupProtocol = Literal["consumer", "classic"]
GROUP_PROTOCOLS: tuple[str, ...] = get_args(GroupProtocol)
DEFAULT_GROUP_PROTOCOL: GroupProtocol = "consumer"


def group_protocol(name: str) -> GroupProtocol:
    if name == "consumer":
        return "consumer"
    if name == "classic":
        return "classic"
    raise ConfigError(f"group_protocol must be one of {', '.join(GROUP_PROTOCOLS)}, not {name!r}")


def heartbeat_interval_ms(session_timeout_ms: int) -> int:
    """A member learns of partitions to give up or take over at its next heartbeat, so
    the interval adds to every hand-over: a tenth of the session, between 0.1 and 1 s."""
    return max(100, min(1000, session_timeout_ms // 10))


def group_settings(
    protocol: GroupProtocol, *, session_timeout_ms: int, max_poll_interval_ms: int
) -> dict[str, Any]:
    """librdkafka settings for a member of a group (the consumer protocol refuses the
    classic protocol's session, heartbeat and assignor settings)."""
    poll_interval = max(max_poll_interval_ms, session_timeout_ms)
    if protocol == "consumer":
        return {
            "group.protocol": "consumer",
            "group.remote.assignor": "range",
            "max.poll.interval.ms": poll_interval,
        }
    return {
        "group.protocol": "classic",
        "session.timeout.ms": session_timeout_ms,
        "heartbeat.interval.ms": max(100, min(3000, session_timeout_ms // 3)),
        "max.poll.interval.ms": poll_interval,
        "partition.assignment.strategy": "range",
    }


def group_timeouts(session_timeout_ms: int) -> dict[str, str]:
    """The group configs that carry the session timeout under the consumer protocol."""
    return {
        "consumer.session.timeout.ms": str(session_timeout_ms),
        "consumer.heartbeat.interval.ms": str(heartbeat_interval_ms(session_timeout_ms)),
    }


class GroupConfigs(Protocol):
    """What ``configure_group`` needs of the admin client (KafkaAdmin)."""

    def alter_group_configs(self, group: str, settings: dict[str, str]) -> None: ...


def configure_group(admin: GroupConfigs, group: str, session_timeout_ms: int) -> bool:
    """Give ``group`` the session timeout (consumer protocol); False, with a warning, if
    the broker keeps its own."""
    try:
        admin.alter_group_configs(group, group_timeouts(session_timeout_ms))
    except StreamsenseError as error:
        if error.retryable:
            raise
        log.warning(
            "group %r keeps the broker's session timeout (%s); a dead member's partitions "
            "move after that timeout. Lower the broker's group.consumer.min.session."
            "timeout.ms and group.consumer.min.heartbeat.interval.ms, or use "
            "group_protocol=classic",
            group,
            error,
        )
        return False
    return True
