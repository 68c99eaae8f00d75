"""Optional dependencies, imported only where they are used.

``pip install streamsense`` runs the embedded pipeline (SQLite broker and online store,
features, replay, the command line); the rest comes with extras:

    [kafka]    confluent-kafka            kafka:// brokers
    [redis]    redis, hiredis             redis:// online stores
    [serving]  fastapi, uvicorn, grpcio, jinja2   streamsense serve, ui, model-server, gRPC
    [ml]       onnxruntime, lightgbm, skops, scikit-learn   model formats, training
    [all]      everything above
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal

from streamsense.errors import MissingExtra

Extra = Literal["kafka", "redis", "serving", "ml"]


def require(module: str, extra: Extra) -> ModuleType:
    """``module``, or a MissingExtra whose one line says which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtra(
            f"{module} is not installed: pip install 'streamsense[{extra}]'"
        ) from error
