"""What the UI may change, each only after a confirmation page (a POST carrying the
session's CSRF token and ``confirm=yes``), and each logged: point a model alias at a
version (promote), roll an alias back, reset a breaker, replay dead letters into the topic
they came from (their original bytes and key, partitioned as the key wants)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from streamsense.errors import StreamsenseError
from streamsense.serving.registry import ModelRegistry
from streamsense.ui.context import UiContext
from streamsense.ui.tail import tail

log = logging.getLogger(__name__)
REPLAY_LIMIT = 1_000


@dataclass(frozen=True)
class Action:
    title: str
    fields: tuple[str, ...]
    describe: Callable[[Mapping[str, str]], str]
    run: Callable[[UiContext, Mapping[str, str]], str]


class ActionError(StreamsenseError):
    retryable = False


def _promote(context: UiContext, form: Mapping[str, str]) -> str:
    registry = _registry(context)
    target: int | str = int(form["version"]) if form["version"].isdigit() else form["version"]
    chosen = registry.set_alias(form["model"], form["alias"], target)
    if context.serving is not None and context.serving.on_model_switch is not None:
        context.serving.on_model_switch(form["model"], form["alias"], chosen)
    return f"{form['model']}@{form['alias']} now points at version {chosen}"


def _rollback(context: UiContext, form: Mapping[str, str]) -> str:
    chosen = _registry(context).rollback(form["model"], form["alias"])
    if context.serving is not None and context.serving.on_model_switch is not None:
        context.serving.on_model_switch(form["model"], form["alias"], chosen)
    return f"{form['model']}@{form['alias']} rolled back to version {chosen}"


def _reset(context: UiContext, form: Mapping[str, str]) -> str:
    breaker = context.breakers().get(form["breaker"])
    if breaker is None:
        raise ActionError(f"no breaker {form['breaker']!r} in this process")
    breaker.reset()
    return f"breaker {form['breaker']} reset to closed"


def _replay(context: UiContext, form: Mapping[str, str]) -> str:
    """The newest ``count`` letters of a dead-letter topic, sent again to their source."""
    topic = form["topic"]
    if topic not in context.dead_letter_topics():
        raise ActionError(f"{topic!r} is not one of the app's dead-letter topics")
    count = min(int(form["count"]) if form["count"].isdigit() else 0, REPLAY_LIMIT)
    producer = context.broker.producer()
    sent = 0
    try:
        for record in reversed(tail(context.broker, topic, count)):  # oldest first
            source = dict(record.headers).get("source", b"").decode(errors="replace")
            source_topic = source.rsplit("/", 2)[0] if source.count("/") >= 2 else ""
            if source_topic in context.source_topics():
                producer.send(source_topic, record.value, record.key)
                sent += 1
        producer.flush()
    finally:
        producer.close()
    return f"{sent} dead letters of {topic} sent again to their source topic"


def _registry(context: UiContext) -> ModelRegistry:
    if context.registry is None:
        raise ActionError("no model registry here")
    return context.registry


ACTIONS: dict[str, Action] = {
    "promote": Action(
        "Point a model alias at a version",
        ("model", "alias", "version"),
        lambda f: f"{f['model']}: alias {f['alias']} → version {f['version']}",
        _promote,
    ),
    "rollback": Action(
        "Roll a model alias back",
        ("model", "alias"),
        lambda f: f"{f['model']}: alias {f['alias']} back to its previous version",
        _rollback,
    ),
    "reset-breaker": Action(
        "Reset a circuit breaker",
        ("breaker",),
        lambda f: f"close breaker {f['breaker']} now (its window emptied)",
        _reset,
    ),
    "replay-dead-letters": Action(
        "Replay dead letters",
        ("topic", "count"),
        lambda f: f"send the newest {f['count']} letters of {f['topic']} back to their source",
        _replay,
    ),
}


def perform(context: UiContext, name: str, form: Mapping[str, str], who: str) -> str:
    """Runs action ``name`` (confirmed by the caller) and logs what it did and for whom."""
    action = ACTIONS.get(name)
    if action is None:
        raise ActionError(f"no action {name!r}")
    missing = [f for f in action.fields if not form.get(f)]
    if missing:
        raise ActionError(f"missing {', '.join(missing)}")
    done = action.run(context, form)
    log.warning("UI action %s by %s: %s", name, who, done)
    return done
