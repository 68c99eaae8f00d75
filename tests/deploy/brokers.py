"""Broker and store URLs of a deployment, checked the way streamsense parses them."""

from __future__ import annotations

from urllib.parse import parse_qsl

from streamsense.brokers.kafka import worker_url
from streamsense.errors import ConfigError

from .code_facts import transaction_timeout_s


def kafka_url_problems(url: str, *, exactly_once: bool) -> list[str]:
    """What is wrong with a worker's or the API's broker URL: not Kafka, an option the
    broker refuses (its own parser decides), exactly once when it should not be or not when
    it should."""
    if not url.startswith("kafka://"):
        return [f"{url}: not a kafka:// URL"]
    try:
        worker_url(url, "check", 0)  # parses every option as KafkaBroker does
    except ConfigError as error:
        return [f"{url}: {error}"]
    query = dict(parse_qsl(url.partition("?")[2]))
    if (query.get("exactly_once", "false").lower() in ("true", "1", "yes")) != exactly_once:
        return [f"{url}: exactly_once should be {str(exactly_once).lower()}"]
    return []


def bootstrap(url: str) -> str:
    return url.removeprefix("kafka://").partition("?")[0]


def url_timeout_s(url: str) -> float:
    return transaction_timeout_s(dict(parse_qsl(url.partition("?")[2])))
