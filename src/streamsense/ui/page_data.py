"""What each page's template receives, by page name: the view models of ``pages/`` put
together with the query's choices (which topic to browse, which key to look up)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streamsense.ui.context import UiContext
from streamsense.ui.pages import decisions, features, models, overview, streams
from streamsense.ui.sampler import Sampler

Query = Mapping[str, str]
PageData = Callable[[UiContext, Sampler, Query], dict[str, Any]]


def _overview(context: UiContext, sampler: Sampler, query: Query) -> dict[str, Any]:
    return {"view": overview.overview(context, sampler)}


def _streams(context: UiContext, sampler: Sampler, query: Query) -> dict[str, Any]:
    topic = query.get("topic", "")
    n = int(query["n"]) if query.get("n", "").isdigit() else 20
    return {
        "topics": streams.topics(context),
        "lag": streams.lag_now(context),
        "browsed": topic,
        "n": n,
        "records": streams.browse(context, topic, n) if topic else [],
        "dead_letters": streams.dead_letters(context),
    }


def _decisions(context: UiContext, sampler: Sampler, query: Query) -> dict[str, Any]:
    return {"view": decisions.decisions(context, sampler)}


def _features(context: UiContext, sampler: Sampler, query: Query) -> dict[str, Any]:
    views = context.views()
    chosen, key = query.get("view", next(iter(views), "")), query.get("key", "")
    found = features.lookup(context, chosen, key, query.get("at", "")) if key else None
    verified, why = (
        features.verify_stage(context, query["verify"]) if query.get("verify") else (None, "")
    )
    return {
        "verified": verified,
        "verified_stage": query.get("verify", ""),
        "not_verified": why,
        "stages": features.feature_stages(context),
        "views": views,
        "chosen": chosen,
        "key": key,
        "at": query.get("at", ""),
        "lookup": found,
    }


def _models(context: UiContext, sampler: Sampler, query: Query) -> dict[str, Any]:
    return {"view": models.models(context, sampler)}


PAGES: dict[str, PageData] = {
    "overview": _overview,
    "streams": _streams,
    "decisions": _decisions,
    "features": _features,
    "models": _models,
}
