"""The operator web UI: pages over a running deployment, built from the application
contract alone (the app's flows, its serving, the broker, the registry, the monitoring
topics), mounted at ``/ui`` by ``streamsense serve APP`` or served by ``streamsense ui``.

Needs the ``serving`` extra (Starlette, Jinja2). Modules: ``context`` (what is read and
where), ``tail`` (newest records by offsets), ``sampler`` and ``decision_stats`` (running
aggregates while the UI is open), ``series`` (charts), ``pages/`` (view models),
``page_data`` and ``charts`` (what each page and chart gets), ``auth`` and ``actions``
(login, confirmed state changes), ``web`` (routes and templates)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from streamsense.brokers.base import Broker
from streamsense.serving.registry import ModelRegistry
from streamsense.ui.context import UiContext

if TYPE_CHECKING:
    from streamsense.runtime.app import App
    from streamsense.serving.served import Serving

__all__ = ["UiContext", "ui_context"]


def ui_context(
    broker: Broker,
    *,
    name: str,
    app: App | None = None,
    serving: Serving | None = None,
    state_dir: Path | None = None,
    api_key: str | None = None,
) -> UiContext:
    """What the UI of a deployment reads: the serving's registry, else the state dir's."""
    registry = serving.registry if serving is not None else None
    if registry is None and state_dir is not None and (state_dir / "models").is_dir():
        registry = ModelRegistry(state_dir / "models")
    key = api_key if api_key is not None else (serving.api_key if serving is not None else None)
    return UiContext(
        broker, name, app=app, serving=serving, registry=registry, api_key=key, state_dir=state_dir
    )
