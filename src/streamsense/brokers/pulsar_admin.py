"""Pulsar's admin REST API, as far as the Pulsar broker needs it: partitioned topics and
their properties, a partition's ledgers, an entry's broker index, subscriptions and the
properties they carry, and which member of a failover subscription is active.

Everything lives in the ``public/default`` namespace. Errors map onto streamsense's: 404 is
TopicNotFound (or None where absence is an answer), 409 a ConfigError, connection failures
and 5xx BrokerUnavailable (retryable)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from streamsense.errors import BrokerUnavailable, ConfigError, StreamsenseError, TopicNotFound

NAMESPACE = "public/default"
TOPIC_PREFIX = f"persistent://{NAMESPACE}/"
_BASE = f"/admin/v2/persistent/{NAMESPACE}"
REQUEST_TIMEOUT_S = 30.0


def partition_topic(topic: str, partition: int) -> str:
    """The full name of one partition of a partitioned topic: Pulsar's own topic for it."""
    return f"{TOPIC_PREFIX}{topic}-partition-{partition}"


class AdminError(StreamsenseError):
    """An answer of the admin API that is neither success nor one of the mapped errors."""


class PulsarAdmin:
    """A small client of ``http://host:port/admin/v2``; one keep-alive connection per thread."""

    def __init__(self, http_url: str) -> None:
        parts = urlsplit(http_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 8080
        self._local = threading.local()

    # -- topics ---------------------------------------------------------------------------
    def create_partitioned(self, topic: str, partitions: int) -> None:
        status, body = self._call("PUT", f"/{_q(topic)}/partitions", partitions)
        if status == 409:
            raise ConfigError(f"topic {topic!r} already exists")
        self._check(status, body, topic)

    def partitions(self, topic: str) -> int:
        """The topic's partition count; TopicNotFound for a missing (or unpartitioned) one."""
        status, body = self._call("GET", f"/{_q(topic)}/partitions")
        self._check(status, body, topic)
        count = int(json.loads(body)["partitions"])
        if count < 1:
            raise TopicNotFound(f"topic {topic!r} does not exist")
        return count

    def delete_partitioned(self, topic: str) -> None:
        status, body = self._call("DELETE", f"/{_q(topic)}/partitions?force=true")
        self._check(status, body, topic)

    def list_partitioned(self) -> list[str]:
        status, body = self._call("GET", "/partitioned")
        self._check(status, body, "list")
        names = [str(name) for name in json.loads(body)]
        return sorted(n.removeprefix(TOPIC_PREFIX) for n in names if n.startswith(TOPIC_PREFIX))

    def properties(self, topic: str) -> dict[str, str]:
        status, body = self._call("GET", f"/{_q(topic)}/properties")
        self._check(status, body, topic)
        return _string_map(body)

    def set_properties(self, topic: str, properties: Mapping[str, str]) -> None:
        """Adds or replaces the given properties (others stay)."""
        status, body = self._call("PUT", f"/{_q(topic)}/properties", dict(properties))
        self._check(status, body, topic)

    def set_policy(self, topic: str, policy: str, value: Any, query: str = "") -> None:
        """A topic-level policy (retention, backlogQuota, compactionThreshold, ...)."""
        status, body = self._call("POST", f"/{_q(topic)}/{policy}{query}", value)
        self._check(status, body, topic)

    # -- one partition ------------------------------------------------------------------------
    def internal_stats(self, topic: str, partition: int) -> dict[str, Any]:
        """The partition's managed ledger: its ledgers and last confirmed entry."""
        status, body = self._call("GET", f"/{_q(_local(topic, partition))}/internalStats")
        self._check(status, body, topic)
        stats: dict[str, Any] = json.loads(body)
        return stats

    def entry_index(self, topic: str, partition: int, ledger: int, entry: int) -> int | None:
        """The broker's index of an entry (its streamsense offset); None if it is gone."""
        path = f"/{_q(_local(topic, partition))}/ledger/{ledger}/entry/{entry}"
        status, headers, body = self._request("GET", path, None)
        if status == 404:
            return None
        self._check(status, body, topic)
        index = headers.get("X-Pulsar-Broker-Entry-METADATA-index")
        if index is None:
            raise ConfigError(
                "the Pulsar broker does not index entries: enable "
                "AppendIndexMetadataInterceptor (scripts/pulsar/standalone.conf.in)"
            )
        return int(index)

    # -- subscriptions ----------------------------------------------------------------------
    def subscription_properties(
        self, topic: str, partition: int, subscription: str
    ) -> dict[str, str] | None:
        path = f"/{_q(_local(topic, partition))}/subscription/{_q(subscription)}/properties"
        status, body = self._call("GET", path)
        if status == 404 and b"subscription" in body.lower():
            return None
        self._check(status, body, topic)
        return _string_map(body)

    def set_subscription_properties(
        self, topic: str, partition: int, subscription: str, properties: Mapping[str, str]
    ) -> None:
        """Store ``properties`` on the subscription, creating it (at the end, so it holds
        back no data) if it does not exist yet."""
        base = f"/{_q(_local(topic, partition))}/subscription/{_q(subscription)}"
        status, body = self._call("PUT", f"{base}/properties", dict(properties))
        if status == 404 and b"subscription" in body.lower():
            status, body = self._call("PUT", base, {"ledgerId": -1, "entryId": -1})
            if status not in (204, 409):
                self._check(status, body, topic)
            status, body = self._call("PUT", f"{base}/properties", dict(properties))
        self._check(status, body, topic)

    def active_consumers(self, topic: str, subscription: str) -> dict[int, str | None]:
        """partition -> name of the consumer a failover subscription delivers to."""
        status, body = self._call("GET", f"/{_q(topic)}/partitioned-stats?perPartition=true")
        self._check(status, body, topic)
        active: dict[int, str | None] = {}
        for name, stats in json.loads(body).get("partitions", {}).items():
            partition = int(str(name).rsplit("-partition-", 1)[1])
            sub = stats.get("subscriptions", {}).get(subscription) or {}
            active[partition] = sub.get("activeConsumerName")
        return active

    # -- transport ----------------------------------------------------------------------------
    def _call(self, method: str, path: str, payload: Any = None) -> tuple[int, bytes]:
        status, _, body = self._request(method, path, payload)
        return status, body

    def _request(
        self, method: str, path: str, payload: Any
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            connection = self._connection()
            try:
                connection.request(method, _BASE + path, body=data, headers=headers)
                response = connection.getresponse()
                return response.status, response.headers, response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise BrokerUnavailable(
                        f"Pulsar admin at {self.host}:{self.port}: {error}"
                    ) from error
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
            self._local.connection = connection
        return connection

    @staticmethod
    def _check(status: int, body: bytes, what: str) -> None:
        if status < 300:
            return
        text = body.decode(errors="replace")[:300]
        if status == 404:
            raise TopicNotFound(f"topic {what!r} does not exist ({text})")
        if status in (400, 409, 412):
            raise ConfigError(f"Pulsar refused {what!r}: {status} {text}")
        if status >= 500 or status in (408, 429):
            raise BrokerUnavailable(f"Pulsar admin: {status} {text}")
        raise AdminError(f"Pulsar admin: {status} {text}")


def _string_map(body: bytes) -> dict[str, str]:
    """A JSON object of strings; an empty answer (no properties at all) is an empty map."""
    loaded = json.loads(body) if body.strip() else None
    return {str(k): str(v) for k, v in (loaded or {}).items()}


def _local(topic: str, partition: int) -> str:
    return f"{topic}-partition-{partition}"


def _q(name: str) -> str:
    return quote(name, safe="")
