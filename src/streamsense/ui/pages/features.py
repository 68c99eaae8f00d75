"""Features: the app's feature stages (their features, how fresh their newest output is)
and the served feature views, with a lookup of an entity's vector as of a time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from streamsense.errors import StreamsenseError
from streamsense.events import to_epoch_ms
from streamsense.features.engine import FeatureEngine
from streamsense.store.verify import VerifyReport, verify
from streamsense.ui.context import UiContext
from streamsense.ui.tail import tail

VERIFY_LIMIT = 200_000  # records (source and feature log) a page may replay
VERIFY_SAMPLE = 200


@dataclass(frozen=True)
class StageFeatures:
    stage: str
    source: str
    features: list[str]
    log_topic: str | None
    newest_served_ms: int | None  # when the newest logged vector was served

    @property
    def age_s(self) -> float | None:
        if self.newest_served_ms is None:
            return None
        return max(0.0, time.time() - self.newest_served_ms / 1000)


@dataclass(frozen=True)
class Lookup:
    view: str
    key: str
    at_ms: int
    features: dict[str, float | int]
    newest_event_ms: int | None  # the newest event folded into the key's stored state
    error: str = ""


def feature_stages(context: UiContext) -> list[StageFeatures]:
    if context.app is None:
        return []
    found: list[StageFeatures] = []
    for flow in context.app.flows.values():
        for stage in flow.batch_stages():
            engine = getattr(stage, "engine", None)
            names = list(getattr(getattr(engine, "features", None), "names", []))
            log_topic = getattr(stage, "feature_log_topic", None)
            topic = log_topic if isinstance(log_topic, str) else None
            found.append(
                StageFeatures(stage.name, flow.source.topic, names, topic, _newest(context, topic))
            )
    return found


def _newest(context: UiContext, topic: str | None) -> int | None:
    if topic is None or topic not in set(context.broker.list_topics()):
        return None
    for record in tail(context.broker, topic, 1):
        try:
            served = msgspec.json.decode(record.value or b"").get("served_at")
        except (msgspec.DecodeError, AttributeError):
            return record.timestamp
        return int(served) if isinstance(served, int) else record.timestamp
    return None


def verify_stage(context: UiContext, stage_name: str) -> tuple[VerifyReport | None, str]:
    """``streamsense verify`` of one feature stage, sampled, when its logs are small enough
    to replay while a page waits; else why not."""
    stage = None if context.app is None else context.app.batch_stages().get(stage_name)
    engine = getattr(stage, "engine", None)
    log_topic = getattr(stage, "feature_log_topic", None)
    if stage is None or not isinstance(engine, FeatureEngine) or not isinstance(log_topic, str):
        return None, f"{stage_name!r} is not a feature stage with a feature log"
    topics = context.existing([engine.source.topic, log_topic])
    sizes = [context.broker.describe_topic(topic).messages for topic in topics]
    if sum(sizes) > VERIFY_LIMIT:
        return None, (
            f"{sum(sizes):,} records to replay: more than a page should wait for "
            f"(run `streamsense verify`)"
        )
    try:
        report = verify(
            engine.features, context.broker, log_topic, sample=VERIFY_SAMPLE,
            allowed_lateness_ms=engine.lateness_ms,
        )  # fmt: skip
    except StreamsenseError as error:
        return None, str(error)
    return report, ""


def lookup(context: UiContext, view_name: str, key: str, at: str) -> Lookup:
    """``key``'s features in ``view_name`` as of ``at`` (ISO 8601; empty: now)."""
    view = context.views().get(view_name)
    try:
        when = datetime.now(UTC) if not at else datetime.fromisoformat(at)
    except ValueError:
        return Lookup(view_name, key, 0, {}, None, f"{at!r} is not an ISO 8601 time")
    at_ms = to_epoch_ms(when if when.tzinfo else when.replace(tzinfo=UTC))
    if view is None:
        return Lookup(view_name, key, at_ms, {}, None, f"no feature view {view_name!r}")
    try:
        vector = view.get([key], at_ms)[0]
        rows = view.store.read(view.name, [key])
    except StreamsenseError as error:
        return Lookup(view_name, key, at_ms, {}, None, str(error))
    newest = rows[0].event_time if rows and rows[0] is not None else None
    return Lookup(view_name, key, at_ms, vector, newest)
