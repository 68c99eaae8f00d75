"""The webhook action sink: POSTs each decision, with retries, then a dead letter.

    flow.sink(WebhookSink("https://ops.example.com/hook", dead_letter_topic="hook.dead"))

Every POST carries ``Idempotency-Key: <event id>`` (serving/sinks.py says how the id is
found), so a receiver that deduplicates acts once even when a batch is written again after
a crash. Within a process, ids already delivered are not posted again: a batch written
again because a later sink, stage or commit failed costs no requests (an id that went to
the dead letters gets the same dead letter again, since the failed batch's records were
thrown away). A failed POST is retried with backoff and jitter (``RetryPolicy``); after
the last attempt the decision goes to the dead-letter topic with the reason, or, without
one, the error reaches the worker: retryable (connection errors, timeouts, 408, 429, 5xx)
pauses the partition and writes the batch again later; other 4xx stop the worker.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import httpx

from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.errors import RetryableError
from streamsense.events import Event
from streamsense.resilience.retry import RetryPolicy, RetryTrace
from streamsense.serving.sinks import Delivery, deliveries, id_headers

__all__ = ["WebhookFailed", "WebhookSink"]

log = logging.getLogger(__name__)


class WebhookFailed(RetryableError):
    """The webhook refused or did not answer; ``retryable`` says whether trying again may
    help (connection errors, timeouts, 408, 429, 5xx) or not (other 4xx)."""


class WebhookSink:
    """POSTs each decision as JSON to ``url`` with ``Idempotency-Key: <event id>``."""

    def __init__(
        self,
        url: str,
        *,
        retry: RetryPolicy | None = None,
        dead_letter_topic: str | None = None,
        actions: Collection[str] | None = None,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        remember: int = 100_000,
        client: httpx.Client | None = None,
        name: str = "webhook",
    ) -> None:
        self.url = url
        self.retry = retry or RetryPolicy(attempts=5, base_delay=0.2, max_delay=5.0)
        self.dead_letter_topic = dead_letter_topic
        self.actions = actions
        self.name = name
        self.client = client or httpx.Client(timeout=timeout, headers=dict(headers or {}))
        self.posted = 0  # POST requests made, retries included
        self.dead_letters = 0
        # Delivered ids, each with its dead letter when it went to the dead letters.
        self._delivered: OrderedDict[str, OutRecord | None] = OrderedDict()
        self._remember = remember

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        if self.dead_letter_topic is None:
            return {}
        return {self.dead_letter_topic: TopicConfig(partitions)}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        dead: list[OutRecord] = []
        for delivery in deliveries(events, values, self.actions):
            if delivery.event_id in self._delivered:  # written again: act once
                letter = self._delivered[delivery.event_id]
            else:
                letter = self._deliver(delivery)
                self._remember_delivered(delivery.event_id, letter)
            if letter is not None:
                dead.append(letter)
        return dead

    def _deliver(self, delivery: Delivery) -> OutRecord | None:
        """POST with retries; the dead letter when every attempt failed."""
        trace = RetryTrace()
        try:
            self.retry.call(self._post, delivery, trace=trace)
        except WebhookFailed as error:
            if self.dead_letter_topic is None:
                raise  # no dead letters: the worker pauses and writes the batch again
            return self._dead_letter(delivery, error, trace.attempts)
        return None

    def _post(self, delivery: Delivery) -> None:
        self.posted += 1
        headers = {"content-type": "application/json", "idempotency-key": delivery.event_id}
        try:
            response = self.client.post(self.url, content=delivery.body, headers=headers)
        except httpx.TransportError as error:
            raise WebhookFailed(f"{type(error).__name__}: {error}", retryable=True) from error
        status = response.status_code
        if status >= 300:
            retryable = status in (408, 429) or status >= 500
            raise WebhookFailed(f"HTTP {status}", retryable=retryable)

    def _dead_letter(self, delivery: Delivery, error: Exception, attempts: int) -> OutRecord:
        assert self.dead_letter_topic is not None
        self.dead_letters += 1
        log.warning("webhook %s: dead letter for %s (%s)", self.url, delivery.event_id, error)
        headers = (
            *id_headers(delivery),
            ("sink", self.name.encode()),
            ("error", str(error).encode()),
            ("attempts", str(attempts).encode()),
        )
        return OutRecord(
            self.dead_letter_topic, delivery.body, delivery.key.encode(), headers=headers
        )

    def _remember_delivered(self, event_id: str, dead_letter: OutRecord | None) -> None:
        self._delivered[event_id] = dead_letter
        if len(self._delivered) > self._remember:
            self._delivered.popitem(last=False)

    def close(self) -> None:
        self.client.close()
