"""A registry model served over HTTP, in a process of its own: a model tier that can be
scaled, restarted or killed apart from the API (``RemoteModel`` is its client).

    streamsense model-server --registry models/ --model risk-heavy --alias production --port 8100

    POST /v1/score   {"rows": [[f1, f2, ...], ...]}  → {"name", "version", "scores": [...]}
    GET  /healthz    {"status": "ok", "name", "version", "format", "content_hash", "features"}

Rows are in the model's feature order (``/healthz`` lists it). A malformed body or a row of
the wrong width is a 4xx naming the problem; a model that fails to score is a 500. The app is
plain ASGI (no framework on the scoring path) run by uvicorn; scoring one row takes
microseconds, so it runs on the event loop.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import numpy as np

from streamsense.serving.models import LoadedModel
from streamsense.serving.registry import ModelRegistry

__all__ = ["ModelInfo", "ModelServerApp", "ScoreReply", "ScoreRequest", "serve_model"]

log = logging.getLogger(__name__)


class ScoreRequest(msgspec.Struct, forbid_unknown_fields=True):
    rows: list[list[float]]


class ScoreReply(msgspec.Struct):
    name: str
    version: int
    scores: list[float]


class ModelInfo(msgspec.Struct):
    status: str
    name: str
    version: int
    format: str
    content_hash: str
    features: list[str]


_encode = msgspec.json.Encoder().encode
_decode_request = msgspec.json.Decoder(ScoreRequest).decode
Send = Any  # the ASGI callables, untyped as in the ASGI spec
Receive = Any


class ModelServerApp:
    """The ASGI app serving one loaded model."""

    def __init__(self, model: LoadedModel, *, max_body_bytes: int = 1 << 20) -> None:
        self.model = model
        self.max_body_bytes = max_body_bytes
        self._width = len(model.features)
        self._info = _encode(
            ModelInfo(
                "ok",
                model.name,
                model.version,
                model.format,
                model.content_hash,
                list(model.features),
            )
        )

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"])
        if route == ("GET", "/healthz"):
            await _respond(send, 200, self._info)
        elif route == ("POST", "/v1/score"):
            body = await _body(receive, self.max_body_bytes)
            status, reply = (413, _error("body too large")) if body is None else self.score(body)
            await _respond(send, status, reply)
        else:
            await _respond(send, 404, _error(f"no route {scope['method']} {scope['path']}"))

    def score(self, body: bytes) -> tuple[int, bytes]:
        """(HTTP status, JSON reply) for a score request's body."""
        try:
            rows = _decode_request(body).rows
        except msgspec.DecodeError as error:
            return 422, _error(f"body must be {{'rows': [[numbers]]}}: {error}")
        if not rows or any(len(row) != self._width for row in rows):
            return 422, _error(f"each row needs {self._width} values: {self.model.features}")
        try:
            scores = self.model.predict_proba(np.asarray(rows, np.float32))
        except Exception as error:  # the model's failure is the client's 500, not a crash
            log.exception("model %s failed to score", self.model.name)
            return 500, _error(f"model failed: {error}")
        reply = ScoreReply(self.model.name, self.model.version, scores.tolist())
        return 200, _encode(reply)


def serve_model(
    registry_dir: str, name: str, alias: str, *, host: str = "127.0.0.1", port: int = 8100
) -> None:
    """Load ``name`` at ``alias`` from the registry and serve it until stopped."""
    import uvicorn

    model = ModelRegistry(registry_dir).load(name, alias)
    model.predict_proba(np.zeros((1, len(model.features)), np.float32))  # warm up the runtime
    app = ModelServerApp(model)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _error(message: str) -> bytes:
    return _encode({"error": message})


async def _body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
